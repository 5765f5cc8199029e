//! Certificates: chains to a trusted CA, validity at a time, signatures, and the extensions a
//! signing certificate must carry.

use super::keys::{ec_key_of_spki_info, Curve};
use super::oids::{
    OID_BASIC_CONSTRAINTS, OID_CODE_SIGNING, OID_ECDSA_SHA256, OID_ECDSA_SHA384, OID_EKU,
    OID_KEY_USAGE, OID_RSA_ENCRYPTION, OID_RSA_SHA256, OID_RSA_SHA384, OID_RSA_SHA512, OID_SAN,
};
use super::root::{CertAuthority, TrustRoot};
use ring::signature::{self, UnparsedPublicKey};
use std::collections::BTreeSet;
use x509_cert::der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::Certificate;

/// Parses a certificate of the bundle, `what` naming it in the error. It must be DER, as X.509
/// requires: the parser also reads some BER (a default value spelled out, an unsorted SET OF)
/// and the SCT check re-encodes what it read; in DER alone are the bytes the CA signed the
/// certificate every check reads.
pub(super) fn parse_der_certificate(der: &[u8], what: &str) -> Result<Certificate, String> {
    // `from_der` already refuses bytes after the certificate.
    let cert = Certificate::from_der(der).map_err(|e| format!("{what} does not parse: {e}"))?;
    if cert.to_der().ok().as_deref() != Some(der) {
        return Err(format!("{what} is not DER"));
    }
    Ok(cert)
}

/// Returns the certificate's extensions; none when it has none.
pub(super) fn extensions(cert: &Certificate) -> &[Extension] {
    cert.tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default()
}

/// Returns the value of the extension `oid`, if the certificate has one.
pub(super) fn ext_bytes(exts: &[Extension], oid: ObjectIdentifier) -> Option<&[u8]> {
    exts.iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

/// Returns the UTF8String the extension `oid` holds, as Fulcio's extensions do.
pub(super) fn ext_utf8(exts: &[Extension], oid: ObjectIdentifier) -> Option<String> {
    Utf8StringRef::from_der(ext_bytes(exts, oid)?)
        .ok()
        .map(|s| s.as_str().to_string())
}

/// Returns the extension `oid`'s value as the text it is, as Fulcio's first extensions hold it.
pub(super) fn ext_raw(exts: &[Extension], oid: ObjectIdentifier) -> Option<String> {
    std::str::from_utf8(ext_bytes(exts, oid)?)
        .ok()
        .map(str::to_string)
}

/// Returns an error naming an extension the certificate carries twice. RFC 5280 §4.2 forbids
/// it, and every check reads an extension's first value: a second could say otherwise (another
/// repository or trigger) and pass unseen.
pub(super) fn check_unique_extensions(cert: &Certificate) -> Result<(), String> {
    // A set, not a scan per extension: a certificate from the network may list thousands.
    let mut seen = BTreeSet::new();
    for ext in extensions(cert) {
        if !seen.insert(ext.extn_id) {
            return Err(format!(
                "the certificate repeats the extension {}",
                ext.extn_id
            ));
        }
    }
    Ok(())
}

/// Returns an error naming the first critical extension the verifier does not understand.
pub(super) fn check_critical_extensions(exts: &[Extension]) -> Result<(), String> {
    for ext in exts {
        // As RFC 5280 asks: an extension we do not understand may not be critical.
        let known = [OID_KEY_USAGE, OID_EKU, OID_SAN, OID_BASIC_CONSTRAINTS];
        if ext.critical && !known.contains(&ext.extn_id) {
            return Err(format!(
                "the certificate has an unknown critical extension {}",
                ext.extn_id
            ));
        }
    }
    Ok(())
}

/// Returns an error unless the certificate is a code-signing end-entity certificate.
pub(super) fn check_code_signing(exts: &[Extension]) -> Result<(), String> {
    let eku = ext_bytes(exts, OID_EKU)
        .and_then(|b| ExtendedKeyUsage::from_der(b).ok())
        .ok_or("the certificate has no extended key usage")?;
    if !eku.0.contains(&OID_CODE_SIGNING) {
        return Err("the certificate is not for code signing".into());
    }
    if let Some(bc) = ext_bytes(exts, OID_BASIC_CONSTRAINTS) {
        let bc = BasicConstraints::from_der(bc).map_err(|_| "bad basic constraints")?;
        if bc.ca {
            return Err("the signing certificate is a CA certificate".into());
        }
    }
    Ok(())
}

/// Returns the first URI of the certificate's subject alternative names.
pub(super) fn san_uri(exts: &[Extension]) -> Option<String> {
    let san = SubjectAltName::from_der(ext_bytes(exts, OID_SAN)?).ok()?;
    san.0.into_iter().find_map(|n| match n {
        GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
        _ => None,
    })
}

/// The leaf chains to a trusted CA's chain, each certificate valid at `t`, within the CA's window.
/// Returns the leaf's issuer.
pub(super) fn check_chain<'r>(
    leaf_der: &[u8],
    leaf: &Certificate,
    root: &'r TrustRoot,
    t: i64,
) -> Result<&'r Certificate, String> {
    if !valid_at(leaf, t) {
        return Err("the signing certificate was not valid when the log recorded the entry".into());
    }
    let chains_to = |ca: &CertAuthority| chain_valid(leaf_der, leaf, &ca.chain, t);
    root.cas
        .iter()
        .find(|ca| ca.window.covers(t) && chains_to(ca))
        .map(|ca| &ca.chain[0].1)
        .ok_or_else(|| "the signing certificate does not chain to a trusted Fulcio CA".into())
}

/// Whether `cert` is signed by `parents[0]`, each by the next, all valid at `t`, none
/// repeating an extension.
pub(super) fn chain_valid(
    cert_der: &[u8],
    cert: &Certificate,
    parents: &[(Vec<u8>, Certificate)],
    t: i64,
) -> bool {
    let (mut child_der, mut child) = (cert_der, cert);
    if !valid_at(child, t) || check_unique_extensions(child).is_err() {
        return false;
    }
    for (parent_der, parent) in parents {
        if child.tbs_certificate.issuer != parent.tbs_certificate.subject
            || !valid_at(parent, t)
            || check_unique_extensions(parent).is_err()
            || signed_by(child_der, child, parent).is_err()
        {
            return false;
        }
        (child_der, child) = (parent_der, parent);
    }
    true
}

fn valid_at(cert: &Certificate, t: i64) -> bool {
    let v = &cert.tbs_certificate.validity;
    let secs = |x: x509_cert::time::Time| x.to_unix_duration().as_secs() as i64;
    secs(v.not_before) <= t && t <= secs(v.not_after)
}

/// `child`'s signature verifies with `parent`'s key over `child`'s TBS bytes as encoded.
fn signed_by(child_der: &[u8], child: &Certificate, parent: &Certificate) -> Result<(), String> {
    let oid = child.signature_algorithm.oid;
    let spki = &parent.tbs_certificate.subject_public_key_info;
    let (alg, point): (&dyn signature::VerificationAlgorithm, Vec<u8>) =
        if spki.algorithm.oid == OID_RSA_ENCRYPTION {
            // A private Sigstore's CA may be RSA (PKCS #1 v1.5, 2048 bits or more).
            let alg: &signature::RsaParameters = match oid {
                o if o == OID_RSA_SHA256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                o if o == OID_RSA_SHA384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                o if o == OID_RSA_SHA512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                _ => return Err(format!("unsupported certificate signature algorithm {oid}")),
            };
            (alg, spki.subject_public_key.raw_bytes().to_vec())
        } else {
            let (curve, point) = ec_key_of_spki_info(parent)?;
            (ecdsa_for(curve, oid)?, point)
        };
    let tbs = raw_tbs(child_der).map_err(|e| format!("certificate: {e}"))?;
    let sig = child
        .signature
        .as_bytes()
        .ok_or("certificate signature has unused bits")?;
    UnparsedPublicKey::new(alg, &point)
        .verify(tbs, sig)
        .map_err(|_| "certificate signature does not verify".to_string())
}

/// ECDSA on `curve` with the hash the signature algorithm `oid` names.
fn ecdsa_for(
    curve: Curve,
    oid: ObjectIdentifier,
) -> Result<&'static dyn signature::VerificationAlgorithm, String> {
    Ok(match (curve, oid) {
        (Curve::P256, o) if o == OID_ECDSA_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
        (Curve::P256, o) if o == OID_ECDSA_SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
        (Curve::P384, o) if o == OID_ECDSA_SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
        (Curve::P384, o) if o == OID_ECDSA_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
        _ => return Err(format!("unsupported certificate signature algorithm {oid}")),
    })
}

/// The TBS certificate exactly as signed (not re-encoded).
fn raw_tbs(der: &[u8]) -> Result<&[u8], x509_cert::der::Error> {
    let mut r = SliceReader::new(der)?;
    Header::decode(&mut r)?;
    r.tlv_bytes()
}
