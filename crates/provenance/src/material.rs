//! What a bundle carries: the certificate or key that signed it, and what it signs (a DSSE
//! envelope or a message signature).

use super::certificate::{check_unique_extensions, parse_der_certificate};
use super::dsse::Envelope;
use super::encoding::b64;
use super::keys::{ec_key_of_spki, ec_key_of_spki_info, Curve, KeyError};
use super::refusal::{as_check, refuse, Check, Refusal};
use serde::de::IgnoredAny;
use serde::Deserialize;
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

/// A Sigstore bundle (v0.1 to v0.3) as protobuf's JSON writes it. The log entries and the
/// timestamps stay JSON here: each is read by its own check, so that a malformed one is that
/// check's refusal (`transparencyLog`, `timestamp`) rather than the bundle form's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Bundle {
    pub(super) media_type: Option<String>,
    pub(super) verification_material: Option<VerificationMaterial>,
    dsse_envelope: Option<EnvelopeJson>,
    message_signature: Option<MessageSignatureJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VerificationMaterial {
    /// A managed key's hint; the key itself is the caller's.
    pub(super) public_key: Option<IgnoredAny>,
    certificate: Option<RawBytes>,
    x509_certificate_chain: Option<CertificateChain>,
    pub(super) tlog_entries: Option<Value>,
    pub(super) timestamp_verification_data: Option<TimestampData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TimestampData {
    pub(super) rfc3161_timestamps: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct CertificateChain {
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeJson {
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignatureJson {
    message_digest: Option<MessageDigest>,
    signature: String,
}

#[derive(Deserialize)]
struct MessageDigest {
    algorithm: String,
    digest: String,
}

impl Bundle {
    /// Reads a bundle; a malformed one is the attestation's refusal.
    pub(super) fn from_value(v: &Value) -> Result<Bundle, Refusal> {
        Bundle::deserialize(v)
            .map_err(|e| refuse(Check::Attestation, format!("the bundle is malformed: {e}")))
    }
}

/// Returns the bundle's signing certificate, as DER and parsed. A chain (v0.1/v0.2) may hold
/// intermediates after it, never a root: the trust root alone says which roots are trusted. No
/// certificate of the bundle may repeat an extension.
pub(super) fn signing_certificate(
    vm: &VerificationMaterial,
) -> Result<(Vec<u8>, Certificate), Refusal> {
    let chain = vm.x509_certificate_chain.as_ref().map(|c| &c.certificates);
    if let Some(chain) = chain {
        let Some((_, rest)) = chain.split_first() else {
            return Err(refuse(Check::Attestation, "the certificate chain is empty"));
        };
        for c in rest {
            let (_, cert) = certificate_of(&c.raw_bytes, "a chain certificate")?;
            if cert.tbs_certificate.issuer == cert.tbs_certificate.subject {
                return Err(refuse(
                    Check::Certificate,
                    "the bundle's certificate chain holds a root certificate",
                ));
            }
        }
    }
    let leaf = vm
        .certificate
        .as_ref()
        .or_else(|| chain.and_then(|c| c.first()))
        .ok_or_else(|| refuse(Check::Attestation, "bundle has no signing certificate"))?;
    // Before the identity check reads the Fulcio extensions, so it never reads a repeated one.
    certificate_of(&leaf.raw_bytes, "the signing certificate")
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
pub(super) fn content_of(bundle: &Bundle) -> Result<Content<'_>, Refusal> {
    let attestation = as_check(Check::Attestation);
    if let Some(m) = &bundle.message_signature {
        let sig = b64(&m.signature, "the message signature").map_err(&attestation)?;
        let digest = match &m.message_digest {
            Some(d) if d.algorithm != "SHA2_256" => {
                return Err(refuse(
                    Check::Attestation,
                    "the message digest is not SHA-256",
                ));
            }
            Some(d) => Some(b64(&d.digest, "the message digest").map_err(&attestation)?),
            None => None,
        };
        return Ok(Content::Message { digest, sig });
    }
    let envelope = bundle
        .dsse_envelope
        .as_ref()
        .ok_or_else(|| refuse(Check::Attestation, "bundle has no DSSE envelope"))?;
    let payload = b64(&envelope.payload, "the DSSE payload").map_err(&attestation)?;
    // One signature, as Sigstore bundles have: it is the one the log entry must name.
    let [sig] = envelope.signatures.as_slice() else {
        return Err(refuse(
            Check::Attestation,
            format!(
                "DSSE envelope has {} signatures, expected 1",
                envelope.signatures.len()
            ),
        ));
    };
    let sig = b64(&sig.sig, "the DSSE signature").map_err(&attestation)?;
    Ok(Content::Dsse(Envelope {
        payload_type: &envelope.payload_type,
        payload,
        sig,
    }))
}
