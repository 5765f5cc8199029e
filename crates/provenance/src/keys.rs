//! Public keys: the curves Sigstore signs with, and the key a certificate or an SPKI holds.

use super::oids::{OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, OID_P384};
use ring::signature;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

/// Why a key is not one the verifier can use.
#[derive(Debug, thiserror::Error)]
pub(super) enum KeyError {
    #[error("not a public key: {0}")]
    NotPublicKey(x509_cert::der::Error),
    #[error("unsupported key algorithm {0}")]
    Unsupported(ObjectIdentifier),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    P256,
    P384,
    /// Rekor v2 logs sign their checkpoints with Ed25519.
    Ed25519,
}

impl Curve {
    /// Returns the key's own signature scheme (ECDSA with the curve's hash): how Sigstore's
    /// keys sign.
    pub(super) fn ecdsa(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
            Curve::Ed25519 => &signature::ED25519,
        }
    }
}

/// Returns the curve and point of the certificate's EC key.
pub(super) fn ec_key_of_spki_info(cert: &Certificate) -> Result<(Curve, Vec<u8>), KeyError> {
    ec_key(&cert.tbs_certificate.subject_public_key_info)
}

/// Returns the curve and point of the EC key a DER `SubjectPublicKeyInfo` holds.
pub(super) fn ec_key_of_spki(der: &[u8]) -> Result<(Curve, Vec<u8>), KeyError> {
    let spki = SubjectPublicKeyInfoOwned::from_der(der).map_err(KeyError::NotPublicKey)?;
    ec_key(&spki)
}

/// Returns the curve and uncompressed point of an EC public key.
fn ec_key(spki: &SubjectPublicKeyInfoOwned) -> Result<(Curve, Vec<u8>), KeyError> {
    curve_of(
        spki.algorithm.oid,
        spki.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok()),
    )
    .map(|c| (c, spki.subject_public_key.raw_bytes().to_vec()))
}

fn curve_of(alg: ObjectIdentifier, param: Option<ObjectIdentifier>) -> Result<Curve, KeyError> {
    match (alg, param) {
        (a, None) if a == OID_ED25519 => Ok(Curve::Ed25519),
        (a, Some(p)) if a == OID_EC_PUBLIC_KEY && p == OID_P256 => Ok(Curve::P256),
        (a, Some(p)) if a == OID_EC_PUBLIC_KEY && p == OID_P384 => Ok(Curve::P384),
        _ => Err(KeyError::Unsupported(alg)),
    }
}
