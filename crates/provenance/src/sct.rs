//! Signed certificate timestamps: a trusted CT log saw the signing certificate (RFC 6962).

use super::certificate::{ext_bytes, extensions};
use super::keys::Curve;
use super::oids::OID_SCT_LIST;
use super::root::TrustRoot;
use ring::signature::{self, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

/// Why no SCT of the signing certificate is trusted.
#[derive(Debug, thiserror::Error)]
pub(super) enum SctError {
    #[error("the signing certificate has no SCT")]
    Missing,
    #[error("the SCT list is not an OCTET STRING")]
    NotOctetString,
    #[error("precertificate: {0}")]
    Precertificate(x509_cert::der::Error),
    #[error("the SCT list is malformed")]
    Malformed,
    #[error("no SCT of the signing certificate verifies with a trusted CT log")]
    Untrusted,
}

/// An SCT list holds a handful of timestamps; more is malformed.
const MAX_SCTS: usize = 16;

/// RFC 6962 §3.2: one of the certificate's embedded SCTs is a trusted CT log's signature over
/// the precertificate (the TBS without the SCT list) and the issuer's key hash.
pub(super) fn check_sct(
    leaf: &Certificate,
    issuer_spki: &[u8],
    root: &TrustRoot,
) -> Result<(), SctError> {
    let ext = ext_bytes(extensions(leaf), OID_SCT_LIST).ok_or(SctError::Missing)?;
    let list = x509_cert::der::asn1::OctetStringRef::from_der(ext)
        .map_err(|_| SctError::NotOctetString)?;
    let tbs = precertificate_tbs(leaf)?;
    let issuer_key_hash = Sha256::digest(issuer_spki);
    let scts = parse_sct_list(list.as_bytes()).ok_or(SctError::Malformed)?;
    if scts
        .iter()
        .any(|sct| sct_verifies(sct, &issuer_key_hash, &tbs, root))
    {
        return Ok(());
    }
    Err(SctError::Untrusted)
}

/// Returns the DER of the leaf's TBS without its SCT list: what the CT log signed.
fn precertificate_tbs(leaf: &Certificate) -> Result<Vec<u8>, SctError> {
    let mut tbs = leaf.tbs_certificate.clone();
    if let Some(exts) = tbs.extensions.as_mut() {
        exts.retain(|e| e.extn_id != OID_SCT_LIST);
    }
    tbs.to_der().map_err(SctError::Precertificate)
}

/// Returns whether `sct` is a trusted CT log's signature over the precertificate `tbs`.
fn sct_verifies(sct: &Sct, issuer_key_hash: &[u8], tbs: &[u8], root: &TrustRoot) -> bool {
    let Some(log) = root
        .ct_logs
        .iter()
        .find(|l| l.key_id == sct.log_id && l.window.covers((sct.timestamp / 1000) as i64))
    else {
        return false;
    };
    // Only ECDSA with SHA-256 (hash 4, signature 3): what Sigstore's CT logs use.
    if (sct.hash_alg, sct.sig_alg) != (4, 3) || tbs.len() >= 1 << 24 {
        return false;
    }
    let mut signed = vec![0u8, 0u8]; // v1, certificate_timestamp
    signed.extend_from_slice(&sct.timestamp.to_be_bytes());
    signed.extend_from_slice(&[0, 1]); // precert_entry
    signed.extend_from_slice(issuer_key_hash);
    signed.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]);
    signed.extend_from_slice(tbs);
    signed.extend_from_slice(&(sct.extensions.len() as u16).to_be_bytes());
    signed.extend_from_slice(sct.extensions);
    let alg = match log.curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
        Curve::P384 => &signature::ECDSA_P384_SHA256_ASN1,
        Curve::Ed25519 => return false,
    };
    UnparsedPublicKey::new(alg, &log.point)
        .verify(&signed, sct.signature)
        .is_ok()
}

pub(crate) struct Sct<'a> {
    log_id: &'a [u8],
    timestamp: u64,
    extensions: &'a [u8],
    hash_alg: u8,
    sig_alg: u8,
    signature: &'a [u8],
}

/// The TLS-encoded `SignedCertificateTimestampList` (RFC 6962 §3.3); v1 SCTs only.
pub(crate) fn parse_sct_list(bytes: &[u8]) -> Option<Vec<Sct<'_>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Some(head)
    }
    fn u16_len<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let n = take(b, 2)?;
        take(b, u16::from_be_bytes([n[0], n[1]]) as usize)
    }
    let mut b = bytes;
    let mut list = u16_len(&mut b)?;
    if !b.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        if out.len() == MAX_SCTS {
            return None;
        }
        let mut s = u16_len(&mut list)?;
        if take(&mut s, 1)? != [0] {
            continue; // not v1: not one we can check
        }
        let log_id = take(&mut s, 32)?;
        let timestamp = u64::from_be_bytes(take(&mut s, 8)?.try_into().ok()?);
        let extensions = u16_len(&mut s)?;
        let algs = take(&mut s, 2)?;
        let signature = u16_len(&mut s)?;
        if !s.is_empty() {
            return None;
        }
        out.push(Sct {
            log_id,
            timestamp,
            extensions,
            hash_alg: algs[0],
            sig_alg: algs[1],
            signature,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_sct_lists_are_refused() {
        assert!(parse_sct_list(&[]).is_none());
        assert!(parse_sct_list(&[0, 5, 0, 3, 0]).is_none());
        assert!(parse_sct_list(&[0, 0, 1]).is_none());
        assert_eq!(parse_sct_list(&[0, 0]).map(|l| l.len()), Some(0));
    }
}
