//! The trust root: which Fulcio CAs, Rekor and CT logs and timestamp authorities are trusted, when.

use super::encoding::{b64, rfc3339_ms, NotBase64};
use super::keys::{ec_key_of_spki, Curve};
use serde::Deserialize;
use sha2::Digest;
use x509_cert::der::Decode;
use x509_cert::Certificate;

/// Sigstore's public-good trust root (Fulcio CAs, Rekor keys), as distributed by its TUF
/// repository in `trusted_root.json`.
pub const PUBLIC_GOOD: &str = include_str!("trusted_root.json");

/// A `sigstoreTrustRoot` larger than this is refused: the public-good one is ~5 KB.
pub const MAX_TRUST_ROOT_BYTES: usize = 1024 * 1024;

/// Trusted Fulcio CAs and Rekor keys.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    pub(super) cas: Vec<CertAuthority>,
    pub(super) logs: Vec<LogKey>,
    /// Certificate transparency logs whose SCTs a certificate must carry; none checks none.
    pub(super) ct_logs: Vec<LogKey>,
    /// RFC 3161 timestamp authorities: each one's chain (signing certificate first) and window.
    pub(super) tsas: Vec<CertAuthority>,
    /// SHA-256 of the `trusted_root.json` text it was read from.
    digest: [u8; 32],
}

/// Why a `trusted_root.json` is refused.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("not a trusted root: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("a trusted root needs a certificate authority and an ECDSA log key")]
    Incomplete,
    #[error("a `validFor` has no `start`")]
    NoStart,
    #[error("`{0}` is not an RFC 3339 time")]
    BadTime(String),
    #[error("a CA certificate does not parse: {0}")]
    BadCertificate(x509_cert::der::Error),
    #[error("a certificate authority has no certificates")]
    EmptyAuthority,
    #[error(transparent)]
    Base64(#[from] NotBase64),
}

#[derive(Debug, Clone)]
pub(super) struct CertAuthority {
    /// Issuing certificate first, the root last.
    pub(super) chain: Vec<(Vec<u8>, Certificate)>,
    pub(super) window: Window,
}

#[derive(Debug, Clone)]
pub(super) struct LogKey {
    pub(super) key_id: Vec<u8>,
    /// The uncompressed EC point of the key, or the Ed25519 key.
    pub(super) point: Vec<u8>,
    pub(super) curve: Curve,
    pub(super) window: Window,
    /// The host of the log's `baseUrl`: the name its checkpoints are signed under.
    pub(super) origin: String,
}

/// A `validFor` period in Unix seconds; open ends are unbounded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    start: Option<i64>,
    end: Option<i64>,
}

impl Window {
    pub(super) fn covers(&self, t: i64) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    #[serde(default)]
    tlogs: Vec<TlogJson>,
    #[serde(default)]
    ctlogs: Vec<TlogJson>,
    #[serde(default)]
    certificate_authorities: Vec<CaJson>,
    #[serde(default)]
    timestamp_authorities: Vec<CaJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogJson {
    #[serde(default)]
    base_url: String,
    public_key: PublicKeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: String,
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaJson {
    cert_chain: CertChainJson,
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
struct CertChainJson {
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct ValidForJson {
    start: Option<String>,
    end: Option<String>,
}

impl TrustRoot {
    /// Sigstore's public-good instance: the Fulcio at fulcio.sigstore.dev, the Rekor at
    /// rekor.sigstore.dev.
    pub fn public_good() -> Result<TrustRoot, RootError> {
        TrustRoot::from_json(PUBLIC_GOOD)
    }

    /// Reads a Sigstore `trusted_root.json` (its `certificateAuthorities` and `tlogs`; CT logs
    /// and timestamp authorities are not used). Log keys other than ECDSA P-256/P-384 are skipped.
    pub fn from_json(text: &str) -> Result<TrustRoot, RootError> {
        let json: RootJson = serde_json::from_str(text)?;
        let cas = json
            .certificate_authorities
            .iter()
            .map(authority_of)
            .collect::<Result<Vec<_>, RootError>>()?;
        let (logs, ct_logs) = (log_keys(&json.tlogs)?, log_keys(&json.ctlogs)?);
        if cas.is_empty() || logs.is_empty() {
            return Err(RootError::Incomplete);
        }
        let tsas = json
            .timestamp_authorities
            .iter()
            .map(authority_of)
            .collect::<Result<Vec<_>, RootError>>()?;
        Ok(TrustRoot {
            cas,
            logs,
            ct_logs,
            tsas,
            digest: sha2::Sha256::digest(text.as_bytes()).into(),
        })
    }

    /// SHA-256 of the text this root was read from: two roots read from the same text trust the
    /// same authorities and logs.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
}

/// Returns the period a `validFor` names (its end inclusive); unbounded when there is none. A
/// `validFor` without its start is refused: the format requires one, and reading it as "since
/// ever" would trust a key for times before it existed.
fn window_of(v: &Option<ValidForJson>) -> Result<Window, RootError> {
    let seconds = |s: &str| {
        rfc3339_ms(s)
            .map(|ms| ms.div_euclid(1000))
            .ok_or_else(|| RootError::BadTime(s.to_string()))
    };
    let time = |s: &Option<String>| s.as_deref().map(seconds).transpose();
    Ok(match v {
        Some(v) => Window {
            start: Some(time(&v.start)?.ok_or(RootError::NoStart)?),
            end: time(&v.end)?,
        },
        None => Window {
            start: None,
            end: None,
        },
    })
}

/// Returns the CA a trusted root's entry describes: its parsed chain and its window.
fn authority_of(ca: &CaJson) -> Result<CertAuthority, RootError> {
    let chain = ca
        .cert_chain
        .certificates
        .iter()
        .map(|c| {
            let der = b64(&c.raw_bytes, "a CA certificate")?;
            let cert = Certificate::from_der(&der).map_err(RootError::BadCertificate)?;
            Ok((der, cert))
        })
        .collect::<Result<Vec<_>, RootError>>()?;
    if chain.is_empty() {
        return Err(RootError::EmptyAuthority);
    }
    Ok(CertAuthority {
        chain,
        window: window_of(&ca.valid_for)?,
    })
}

/// Returns the ECDSA keys of a trusted root's logs, skipping keys of other types.
fn log_keys(list: &[TlogJson]) -> Result<Vec<LogKey>, RootError> {
    let mut keys = Vec::new();
    for log in list {
        let spki = b64(&log.public_key.raw_bytes, "a log key")?;
        if let Ok((curve, point)) = ec_key_of_spki(&spki) {
            keys.push(LogKey {
                key_id: b64(&log.log_id.key_id, "a log id")?,
                point,
                curve,
                window: window_of(&log.public_key.valid_for)?,
                origin: host_of(&log.base_url),
            });
        }
    }
    Ok(keys)
}

/// The host of `https://host[:port]/path`: what a log names its checkpoints by.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or_default().to_string()
}
