//! RFC 3161 timestamps: a trusted timestamp authority vouches for when the bundle was signed.
//!
//! RFC 3161 timestamps, as Sigstore bundles carry them (`timestampVerificationData`): a
//! `TimeStampResp` whose token is a CMS `SignedData` over a `TSTInfo`. A timestamp is trusted when
//! its message imprint is the hash of the bundle's signature, its signed attributes name the
//! `TSTInfo`'s digest, its signature verifies with a certificate that chains to a timestamp
//! authority of the trust root, and that chain and the authority's `validFor` cover its time.
//!
//! The DER is walked by hand rather than decoded into types and encoded again: the signature
//! covers the signed attributes exactly as the authority encoded them.

use super::certificate::{chain_valid, check_unique_extensions, ext_bytes, extensions, Usage};
use super::encoding::{b64, generalized_time_seconds};
use super::keys::{ec_key_of_spki_info, Curve};
use super::oids::{
    OID_CONTENT_TYPE_ATTR, OID_EKU, OID_MESSAGE_DIGEST_ATTR, OID_SHA256, OID_SHA384, OID_SHA512,
    OID_SIGNED_DATA, OID_TIME_STAMPING, OID_TST_INFO,
};
use super::refusal::{as_check, refuse, Check, Refusal};
use super::root::TrustRoot;
use ring::signature::{self, EcdsaVerificationAlgorithm, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::Certificate;

/// Why a timestamp is refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum TimestampError {
    #[error("the timestamp is not well-formed DER")]
    Malformed,
    #[error("the timestamp's {0} is missing")]
    Missing(&'static str),
    #[error("the timestamp has trailing bytes")]
    TrailingBytes,
    #[error("the timestamp authority did not grant the timestamp")]
    NotGranted,
    #[error("the timestamp token is not CMS signed data")]
    NotSignedData,
    #[error("the timestamp token does not hold a TSTInfo")]
    NoTstInfo,
    #[error("the timestamp has more than one signer")]
    ManySigners,
    #[error("the timestamp's digest algorithm is not SHA-2")]
    DigestNotSha2,
    #[error("the timestamp's imprint is not a SHA-2 hash")]
    ImprintNotSha2,
    #[error("the timestamp has no signed attributes")]
    NoSignedAttributes,
    #[error("an embedded certificate does not parse: {0}")]
    BadCertificate(x509_cert::der::Error),
    #[error("the timestamp's signed content type is not TSTInfo")]
    NotTstInfo,
    #[error("the timestamp's signed digest is not its TSTInfo's")]
    OtherDigest,
    #[error("the timestamp's time is malformed")]
    BadTime,
    #[error("the timestamp is for another signature")]
    OtherSignature,
    #[error("the timestamp does not verify with a trusted timestamp authority at its time")]
    Untrusted,
}

/// The hashes a message imprint or a signer's digest may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// The hash an OID's DER content names.
    fn of_oid(oid: &[u8]) -> Option<Hash> {
        [
            (OID_SHA256, Hash::Sha256),
            (OID_SHA384, Hash::Sha384),
            (OID_SHA512, Hash::Sha512),
        ]
        .into_iter()
        .find_map(|(o, hash)| (o.as_bytes() == oid).then_some(hash))
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha384 => Sha384::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// One DER element: its tag, its content and the whole encoding.
#[derive(Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// Reads DER elements one after another from a slice.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn next(&mut self) -> Result<Tlv<'a>, TimestampError> {
        let b = self.0;
        let bad = || TimestampError::Malformed;
        let (&tag, rest) = b.split_first().ok_or_else(bad)?;
        // High tag numbers never occur in these structures.
        if tag & 0x1f == 0x1f {
            return Err(bad());
        }
        let (&len0, rest) = rest.split_first().ok_or_else(bad)?;
        let (len, rest) = if len0 < 0x80 {
            (len0 as usize, rest)
        } else {
            let n = (len0 & 0x7f) as usize;
            // Four length bytes reach 4 GiB, far past the 1 MiB bundle cap.
            if n == 0 || n > 4 || rest.len() < n {
                return Err(bad());
            }
            let len = rest[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(bad());
        }
        let head = b.len() - rest.len();
        let tlv = Tlv {
            tag,
            content: &rest[..len],
            whole: &b[..head + len],
        };
        self.0 = &rest[len..];
        Ok(tlv)
    }

    /// The next element, which must have `tag`.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, TimestampError> {
        let t = self.next()?;
        if t.tag != tag {
            return Err(TimestampError::Missing(what));
        }
        Ok(t)
    }

    /// The next element if it has `tag`; otherwise nothing is read.
    fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, TimestampError> {
        match self.0.first() {
            Some(&t) if t == tag => self.next().map(Some),
            _ => Ok(None),
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Returns the OID an `AlgorithmIdentifier` names.
fn algorithm<'a>(alg: Tlv<'a>) -> Result<&'a [u8], TimestampError> {
    Ok(Der(alg.content).expect(0x06, "algorithm")?.content)
}

/// What a timestamp token says and what its signature covers.
struct Token<'a> {
    /// Unix seconds of `genTime`.
    time: i64,
    imprint_hash: Hash,
    imprint: &'a [u8],
    /// The signed attributes as signed: their DER with the SET OF tag.
    signed_attrs: Vec<u8>,
    digest_alg: Hash,
    signature: &'a [u8],
    /// The certificates the token embeds.
    certificates: Vec<(Vec<u8>, Certificate)>,
}

/// Parses a `TimeStampResp` (or a bare `TimeStampToken`) and checks what can be checked without
/// a key: a granted status, the signed attributes naming the `TSTInfo` and its digest.
fn parse(der: &[u8]) -> Result<Token<'_>, TimestampError> {
    let mut sd = Der(signed_data(der)?);
    sd.expect(0x02, "version")?;
    sd.expect(0x31, "digest algorithms")?;
    let econtent = encapsulated_tst_info(sd.expect(0x30, "content")?)?;
    let certificates = embedded_certificates(&mut sd)?;
    sd.optional(0xa1)?;
    let signer_infos = sd.expect(0x31, "signer infos")?;
    let mut signers = Der(signer_infos.content);
    let signer = signers.expect(0x30, "signer info")?;
    if !signers.is_empty() {
        return Err(TimestampError::ManySigners);
    }
    let mut si = Der(signer.content);
    si.expect(0x02, "signer version")?;
    si.next()?; // sid: the certificate is found by its signature instead
    let digest_alg = Hash::of_oid(algorithm(si.expect(0x30, "digest algorithm")?)?)
        .ok_or(TimestampError::DigestNotSha2)?;
    let attrs = si
        .optional(0xa0)?
        .ok_or(TimestampError::NoSignedAttributes)?;
    si.expect(0x30, "signature algorithm")?;
    let signature = si.expect(0x04, "signature")?.content;
    check_attributes(attrs.content, digest_alg, econtent)?;
    let mut signed_attrs = attrs.whole.to_vec();
    signed_attrs[0] = 0x31; // signed as a SET OF, though carried as [0] IMPLICIT
    let tst = tst_info(econtent)?;
    Ok(Token {
        time: tst.0,
        imprint_hash: tst.1,
        imprint: tst.2,
        signed_attrs,
        digest_alg,
        signature,
        certificates,
    })
}

/// The content of the token's `SignedData`, from a response whose status grants it or from a
/// bare token.
fn signed_data(der: &[u8]) -> Result<&[u8], TimestampError> {
    let mut top = Der(der);
    let outer = top.expect(0x30, "response")?;
    if !top.is_empty() {
        return Err(TimestampError::TrailingBytes);
    }
    let mut items = Der(outer.content);
    let first = items.expect(0x30, "status")?;
    // A response starts with its status (a SEQUENCE); a token with its content type (an OID).
    let content_info = if Der(first.content).optional(0x02)?.is_some() {
        let status = Der(first.content).expect(0x02, "status")?;
        // granted (0) or grantedWithMods (1).
        if !matches!(status.content, [0] | [1]) {
            return Err(TimestampError::NotGranted);
        }
        items.expect(0x30, "token")?.content
    } else {
        outer.content
    };
    let mut ci = Der(content_info);
    if ci.expect(0x06, "content type")?.content != OID_SIGNED_DATA.as_bytes() {
        return Err(TimestampError::NotSignedData);
    }
    let explicit = ci.expect(0xa0, "signed data")?;
    Ok(Der(explicit.content).expect(0x30, "signed data")?.content)
}

/// The DER of the `TSTInfo` the `SignedData`'s encapsulated content holds.
fn encapsulated_tst_info(encap: Tlv<'_>) -> Result<&[u8], TimestampError> {
    let mut ec = Der(encap.content);
    if ec.expect(0x06, "content type")?.content != OID_TST_INFO.as_bytes() {
        return Err(TimestampError::NoTstInfo);
    }
    Ok(Der(ec.expect(0xa0, "TSTInfo")?.content)
        .expect(0x04, "TSTInfo")?
        .content)
}

/// The X.509 certificates the `SignedData` embeds, if it has its optional `certificates`.
fn embedded_certificates(sd: &mut Der<'_>) -> Result<Vec<(Vec<u8>, Certificate)>, TimestampError> {
    let mut certificates = Vec::new();
    if let Some(certs) = sd.optional(0xa0)? {
        let mut list = Der(certs.content);
        while !list.is_empty() {
            let c = list.next()?;
            // Other certificate formats than X.509 (tags [0]..[3]) are not used here.
            if c.tag == 0x30 {
                let cert =
                    Certificate::from_der(c.whole).map_err(TimestampError::BadCertificate)?;
                certificates.push((c.whole.to_vec(), cert));
            }
        }
    }
    Ok(certificates)
}

/// The signed attributes must name the TSTInfo as the content type and its digest.
fn check_attributes(attrs: &[u8], hash: Hash, econtent: &[u8]) -> Result<(), TimestampError> {
    let (mut content_type, mut digest) = (None, None);
    let mut list = Der(attrs);
    while !list.is_empty() {
        let attr = list.expect(0x30, "attribute")?;
        let mut a = Der(attr.content);
        let oid = a.expect(0x06, "attribute type")?.content;
        let mut values = Der(a.expect(0x31, "attribute values")?.content);
        let value = values.next()?;
        if oid == OID_CONTENT_TYPE_ATTR.as_bytes() {
            content_type = Some(value.content);
        } else if oid == OID_MESSAGE_DIGEST_ATTR.as_bytes() {
            digest = Some(value.content);
        }
    }
    if content_type != Some(OID_TST_INFO.as_bytes()) {
        return Err(TimestampError::NotTstInfo);
    }
    if digest != Some(hash.digest(econtent).as_slice()) {
        return Err(TimestampError::OtherDigest);
    }
    Ok(())
}

/// `genTime` (Unix seconds) and the message imprint of a `TSTInfo`.
fn tst_info(der: &[u8]) -> Result<(i64, Hash, &[u8]), TimestampError> {
    let mut t = Der(Der(der).expect(0x30, "TSTInfo")?.content);
    t.expect(0x02, "version")?;
    t.expect(0x06, "policy")?;
    let mut imprint = Der(t.expect(0x30, "message imprint")?.content);
    let hash = Hash::of_oid(algorithm(imprint.expect(0x30, "imprint algorithm")?)?)
        .ok_or(TimestampError::ImprintNotSha2)?;
    let hashed = imprint.expect(0x04, "imprint")?.content;
    t.expect(0x02, "serial number")?;
    let time = generalized_time(t.expect(0x18, "time")?.content)?;
    Ok((time, hash, hashed))
}

/// `genTime` in Unix seconds.
fn generalized_time(b: &[u8]) -> Result<i64, TimestampError> {
    generalized_time_seconds(b).ok_or(TimestampError::BadTime)
}

impl Token<'_> {
    /// Returns an error unless the token's imprint is the hash of `message`.
    fn check_imprint(&self, message: &[u8]) -> Result<(), TimestampError> {
        if self.imprint_hash.digest(message) != self.imprint {
            return Err(TimestampError::OtherSignature);
        }
        Ok(())
    }

    /// The signed attributes as signed, the hash the signer used over them, and the signature.
    fn signed(&self) -> (&[u8], Hash, &[u8]) {
        (&self.signed_attrs, self.digest_alg, self.signature)
    }
}

/// Bundles carry a handful of timestamps; more is malformed.
const MAX_TIMESTAMPS: usize = 16;

/// Returns the time of each RFC 3161 timestamp of the bundle: each one must be over `sig` and
/// verify with a certificate that chains to a trusted timestamp authority, valid (chain and
/// authority) at the time it states.
pub(super) fn timestamp_times(
    list: Option<&Value>,
    sig: &[u8],
    root: &TrustRoot,
) -> Result<Vec<i64>, Refusal> {
    /// One of a bundle's `rfc3161Timestamps`.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct SignedTimestamp {
        signed_timestamp: String,
    }
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .filter(|l| l.len() <= MAX_TIMESTAMPS)
        .ok_or_else(|| refuse(Check::Timestamp, "malformed timestamps"))?;
    list.iter()
        .map(|ts| {
            let ts = SignedTimestamp::deserialize(ts).map_err(as_check(Check::Timestamp))?;
            let der =
                b64(&ts.signed_timestamp, "a timestamp").map_err(as_check(Check::Timestamp))?;
            check_timestamp(&der, sig, root).map_err(as_check(Check::Timestamp))
        })
        .collect()
}

/// Verifies one timestamp (see [`timestamp_times`]) and returns its time.
fn check_timestamp(der: &[u8], sig: &[u8], root: &TrustRoot) -> Result<i64, TimestampError> {
    let token = parse(der)?;
    token.check_imprint(sig)?;
    let t = token.time;
    let (signed, hash, signature) = token.signed();
    for tsa in root.tsas.iter().filter(|a| a.window.covers(t)) {
        let candidates = token.certificates.iter().chain(tsa.chain.first());
        for (cand_der, cand) in candidates {
            if !key_signed(cand, signed, hash, signature) {
                continue;
            }
            // The signer is the authority's own certificate, or one it issued.
            if check_unique_extensions(cand).is_ok()
                && chain_valid(cand_der, &tsa.chain, t, Usage::TimeStamping).is_ok()
                && is_timestamping(cand)
            {
                return Ok(t);
            }
        }
    }
    Err(TimestampError::Untrusted)
}

/// Whether `cert`'s key signed `msg` (ECDSA with the signer's `hash`).
fn key_signed(cert: &Certificate, msg: &[u8], hash: Hash, sig: &[u8]) -> bool {
    let Ok((curve, point)) = ec_key_of_spki_info(cert) else {
        return false;
    };
    let alg: &EcdsaVerificationAlgorithm = match (curve, hash) {
        (Curve::P256, Hash::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (Curve::P256, Hash::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
        (Curve::P384, Hash::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
        (Curve::P384, Hash::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
        _ => return false,
    };
    UnparsedPublicKey::new(alg, &point).verify(msg, sig).is_ok()
}

/// Whether the certificate's extended key usage allows timestamping.
fn is_timestamping(cert: &Certificate) -> bool {
    ext_bytes(extensions(cert), OID_EKU)
        .and_then(|b| ExtendedKeyUsage::from_der(b).ok())
        .is_some_and(|eku| eku.0.contains(&OID_TIME_STAMPING))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_der_is_refused_without_panicking() {
        for bad in [
            &b""[..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x05, 0x30],
            &[0x30, 0x00, 0x00],
            &[0x1f, 0x00],
        ] {
            assert!(parse(bad).is_err());
        }
    }
}
