//! What a bundle carries: the certificate or key that signed it, and what it signs (a DSSE
//! envelope or a message signature).

use super::certificate::{check_unique_extensions, parse_der_certificate};
use super::dsse::Envelope;
use super::encoding::{b64, b64_field, str_at};
use super::keys::{ec_key_of_spki, ec_key_of_spki_info, Curve, KeyError};
use super::refusal::{as_check, refuse, Check, Refusal};
use serde_json::Value;
use x509_cert::Certificate;

/// What signed the bundle: a certificate, or the managed key the caller gave.
pub(super) enum Material {
    Cert(Vec<u8>, Box<Certificate>),
    /// The key's SPKI DER.
    Key(Vec<u8>),
}

impl Material {
    /// The DER a log entry must name: the certificate's, or the key's SPKI.
    pub(super) fn der(&self) -> &[u8] {
        match self {
            Material::Cert(der, _) => der,
            Material::Key(der) => der,
        }
    }

    pub(super) fn key(&self) -> Result<(Curve, Vec<u8>), KeyError> {
        match self {
            Material::Cert(_, cert) => ec_key_of_spki_info(cert),
            Material::Key(der) => ec_key_of_spki(der),
        }
    }
}

/// What a bundle signs: a DSSE envelope or a message (the artifact's digest).
pub(super) enum Content<'a> {
    Dsse(Envelope<'a>),
    Message {
        /// The digest the bundle says it signed: a hint, checked against the artifact's.
        digest: Option<Vec<u8>>,
        sig: Vec<u8>,
    },
}

impl Content<'_> {
    /// The signature bytes: what the log entry and every timestamp must be over.
    pub(super) fn sig(&self) -> &[u8] {
        match self {
            Content::Dsse(e) => &e.sig,
            Content::Message { sig, .. } => sig,
        }
    }
}

/// Returns the bundle's signing certificate, as DER and parsed. A chain (v0.1/v0.2) may hold
/// intermediates after it, never a root: the trust root alone says which roots are trusted. No
/// certificate of the bundle may repeat an extension.
pub(super) fn signing_certificate(vm: &Value) -> Result<(Vec<u8>, Certificate), Refusal> {
    let chain = vm.pointer("/x509CertificateChain/certificates");
    if let Some(chain) = chain {
        let list = chain
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| refuse(Check::Attestation, "the certificate chain is empty"))?;
        for c in &list[1..] {
            let raw = c
                .get("rawBytes")
                .and_then(Value::as_str)
                .ok_or_else(|| refuse(Check::Attestation, "a chain certificate has no bytes"))?;
            let (_, cert) = certificate_of(raw, "a chain certificate")?;
            if cert.tbs_certificate.issuer == cert.tbs_certificate.subject {
                return Err(refuse(
                    Check::Certificate,
                    "the bundle's certificate chain holds a root certificate",
                ));
            }
        }
    }
    let leaf_b64 = vm
        .pointer("/certificate/rawBytes")
        .or_else(|| chain.and_then(|c| c.pointer("/0/rawBytes")))
        .and_then(Value::as_str)
        .ok_or_else(|| refuse(Check::Attestation, "bundle has no signing certificate"))?;
    // Before the identity check reads the Fulcio extensions, so it never reads a repeated one.
    certificate_of(leaf_b64, "the signing certificate")
}

/// The certificate whose base64 DER is `raw`, as DER and parsed, with no repeated extension.
/// Bytes that are not one are the certificate's failure, not the bundle form's.
fn certificate_of(raw: &str, what: &'static str) -> Result<(Vec<u8>, Certificate), Refusal> {
    let der = b64(raw, what).map_err(as_check(Check::Certificate))?;
    let cert = parse_der_certificate(&der, what).map_err(as_check(Check::Certificate))?;
    check_unique_extensions(&cert).map_err(as_check(Check::Certificate))?;
    Ok((der, cert))
}

/// Returns what the bundle signs: its DSSE envelope (payload type, payload, one signature) or
/// its message signature.
pub(super) fn content_of(bundle: &Value) -> Result<Content<'_>, Refusal> {
    if let Some(m) = bundle.get("messageSignature") {
        let sig = b64_field(m, "signature", "the message signature")
            .map_err(as_check(Check::Attestation))?;
        let digest = match m.get("messageDigest") {
            Some(d) => {
                if d.get("algorithm").and_then(Value::as_str) != Some("SHA2_256") {
                    return Err(refuse(
                        Check::Attestation,
                        "the message digest is not SHA-256",
                    ));
                }
                Some(
                    b64_field(d, "digest", "the message digest")
                        .map_err(as_check(Check::Attestation))?,
                )
            }
            None => None,
        };
        return Ok(Content::Message { digest, sig });
    }
    let envelope = bundle
        .get("dsseEnvelope")
        .ok_or_else(|| refuse(Check::Attestation, "bundle has no DSSE envelope"))?;
    let payload_type = str_at(envelope, "payloadType").map_err(as_check(Check::Attestation))?;
    let payload =
        b64_field(envelope, "payload", "the DSSE payload").map_err(as_check(Check::Attestation))?;
    let sigs = envelope
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or_else(|| refuse(Check::Attestation, "DSSE envelope has no signatures"))?;
    // One signature, as Sigstore bundles have: it is the one the log entry must name.
    let [sig] = sigs.as_slice() else {
        return Err(refuse(
            Check::Attestation,
            format!("DSSE envelope has {} signatures, expected 1", sigs.len()),
        ));
    };
    let sig = b64_field(sig, "sig", "the DSSE signature").map_err(as_check(Check::Attestation))?;
    Ok(Content::Dsse(Envelope {
        payload_type,
        payload,
        sig,
    }))
}
