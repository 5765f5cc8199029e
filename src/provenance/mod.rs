//! npm provenance: a version is trusted only when its SLSA provenance attestation (a Sigstore
//! bundle) proves that a GitHub Actions run of the expected repository built exactly this
//! tarball, with a certificate from a trusted Fulcio CA and an entry in a trusted Rekor log.
//!
//! Everything is checked offline against a trust root (Sigstore's public-good one is embedded):
//! - the leaf certificate chains to a trusted Fulcio CA, every certificate of the chain (and the
//!   CA's own `validFor`) valid at the log's integrated time;
//! - the DSSE envelope's signature verifies with the leaf certificate's key over the PAE of the
//!   in-toto statement;
//! - the statement is in-toto v1 with SLSA provenance v1, and a subject is
//!   `pkg:npm/<name>@<version>` with the tarball's sha512;
//! - the certificate's Fulcio extensions: issuer (`1.3.6.1.4.1.57264.1.8`) is GitHub Actions,
//!   source repository (`…1.12`) is `repository`, and the build config URI (`…1.18`, else the
//!   SAN URI) names `workflowPath` when given; its EKU is code signing;
//! - the Rekor entry's signed entry timestamp verifies with the log's key, and the entry's body
//!   names this envelope's signature, payload hash and certificate; when the bundle carries an
//!   inclusion proof (npm's do), it leads from the entry to the root hash of a checkpoint the
//!   log's key signed.
//!
//! - when the trust root lists CT logs (the public-good one does), one of the certificate's
//!   embedded SCTs verifies with a trusted CT log's key over the precertificate.
//!
//! Nothing is checked online (no consistency proof against the log's current tree).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{self, EcdsaVerificationAlgorithm, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

mod timestamp;

/// npm's attestations response for one version is ~10 KB; 1 MiB is ample and bounds memory.
pub const MAX_ATTESTATIONS_BYTES: u64 = 1024 * 1024;

/// Sigstore's public-good trust root (Fulcio CAs, Rekor keys), as distributed by its TUF
/// repository in `trusted_root.json`.
const PUBLIC_GOOD: &str = include_str!("trusted_root.json");

pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Fulcio's first issuer extension, a raw string; certificates before `1.8` carry only it.
const OID_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
const OID_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
const OID_SOURCE_REPOSITORY_URI: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.12");
const OID_BUILD_CONFIG_URI: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.18");
const OID_SOURCE_REPOSITORY_REF: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.14");
const OID_BUILD_TRIGGER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.20");
/// Fulcio's first extensions for the same facts, raw strings rather than DER: certificates issued
/// before the `1.14` / `1.20` ones existed carry only these.
const OID_GITHUB_WORKFLOW_TRIGGER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.2");
const OID_GITHUB_WORKFLOW_REF_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.6");
const OID_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
const OID_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// Who must have built the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `owner/name` on GitHub.
    pub repository: String,
    /// The workflow file, e.g. `.github/workflows/publish.yml`; any workflow when `None`.
    pub workflow_path: Option<String>,
    /// A glob (`*` for any run of characters) the run's git ref must match, e.g.
    /// `refs/tags/v*`; when `None`, [`DEFAULT_REFS`].
    pub git_ref: Option<String>,
}

/// Longest `workflowPath` and `ref`: GitHub workflow paths and refs are short; a bound keeps
/// messages small and the glob match cheap.
const MAX_WORKFLOW_PATH: usize = 300;

/// The refs a release is built from when the policy names none: a branch (a push to `main`, a
/// manual run) or a tag (a push of `v1.2.3`, a published release). A pull request's run has
/// `refs/pull/<n>/merge`, which neither matches.
pub const DEFAULT_REFS: [&str; 2] = ["refs/heads/*", "refs/tags/*"];

/// Triggers whose runs build code nobody with write access has reviewed: a pull request's (its
/// author's code) and `pull_request_target`'s (the base branch's workflow, run for any fork).
const REFUSED_TRIGGERS: [&str; 2] = ["pull_request", "pull_request_target"];

impl Policy {
    /// Checks the options: `repository` is `owner/name` as GitHub spells names, `workflow_path` a
    /// relative path (a leading `./` dropped). The error names the field at fault and why.
    pub fn new(
        repository: &str,
        workflow_path: Option<&str>,
        git_ref: Option<&str>,
    ) -> Result<Policy, (&'static str, String)> {
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        match repository.split_once('/') {
            Some((owner, name)) if segment_ok(owner) && segment_ok(name) => {}
            _ => {
                return Err((
                    "repository",
                    format!("must be a GitHub `owner/name`, got `{repository}`"),
                ))
            }
        }
        let workflow_path = match workflow_path {
            None => None,
            Some(w) => {
                let w = w.trim_start_matches("./");
                // `@` separates the path from the ref in the certificate's URI.
                if w.is_empty()
                    || w.len() > MAX_WORKFLOW_PATH
                    || w.starts_with('/')
                    || w.contains(['@', '\\'])
                    || w.chars().any(char::is_whitespace)
                {
                    return Err((
                        "workflowPath",
                        "must be a relative path such as `.github/workflows/publish.yml`".into(),
                    ));
                }
                Some(w.to_string())
            }
        };
        let git_ref = match git_ref {
            None => None,
            Some(r) => {
                if !r.starts_with("refs/")
                    || r.len() > MAX_WORKFLOW_PATH
                    || r.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err((
                        "ref",
                        "must be a git ref or a glob of one, such as `refs/tags/v*`".into(),
                    ));
                }
                Some(r.to_string())
            }
        };
        Ok(Policy {
            repository: repository.to_string(),
            workflow_path,
            git_ref,
        })
    }
}

/// A `sigstoreTrustRoot` larger than this is refused: the public-good one is ~5 KB.
pub const MAX_TRUST_ROOT_BYTES: usize = 1024 * 1024;

/// What the attestation must describe: the version and the sha512 the registry's integrity names.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub sha512: &'a [u8],
}

/// Which check an attestation failed: `EPROVENANCE`'s `check` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// No SLSA provenance attestation, or one that is not a well-formed Sigstore bundle.
    Attestation,
    /// The certificate does not chain to a trusted Fulcio CA, or was not valid at log time.
    Certificate,
    /// The certificate was issued to another CI, repository or workflow.
    Identity,
    /// The transparency-log entry is missing, unsigned by a trusted log, or for another envelope.
    TransparencyLog,
    /// The DSSE signature does not verify with the certificate's key.
    Signature,
    /// The statement does not name this package, version and sha512.
    Subject,
    /// An RFC 3161 timestamp does not verify with a trusted timestamp authority.
    Timestamp,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Attestation => "attestation",
            Check::Certificate => "certificate",
            Check::Identity => "identity",
            Check::TransparencyLog => "transparencyLog",
            Check::Signature => "signature",
            Check::Subject => "subject",
            Check::Timestamp => "timestamp",
        }
    }
}

/// Why a version's provenance was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub check: Check,
    pub reason: String,
}

fn refuse(check: Check, reason: impl Into<String>) -> Refusal {
    Refusal {
        check,
        reason: reason.into(),
    }
}

fn as_check(check: Check) -> impl Fn(String) -> Refusal {
    move |reason| Refusal { check, reason }
}

/// Trusted Fulcio CAs and Rekor keys.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    cas: Vec<CertAuthority>,
    logs: Vec<LogKey>,
    /// Certificate transparency logs whose SCTs a certificate must carry; none checks none.
    ct_logs: Vec<LogKey>,
    /// RFC 3161 timestamp authorities: each one's chain (signing certificate first) and window.
    tsas: Vec<CertAuthority>,
}

#[derive(Debug, Clone)]
struct CertAuthority {
    /// Issuing certificate first, the root last.
    chain: Vec<(Vec<u8>, Certificate)>,
    window: Window,
}

#[derive(Debug, Clone)]
struct LogKey {
    key_id: Vec<u8>,
    /// The uncompressed EC point of the key, or the Ed25519 key.
    point: Vec<u8>,
    curve: Curve,
    window: Window,
    /// The host of the log's `baseUrl`: the name its checkpoints are signed under.
    origin: String,
}

/// A `validFor` period in Unix seconds; open ends are unbounded.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Option<i64>,
    end: Option<i64>,
}

impl Window {
    fn covers(&self, t: i64) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    /// Rekor v2 logs sign their checkpoints with Ed25519.
    Ed25519,
}

impl Curve {
    /// Returns the key's own signature scheme (ECDSA with the curve's hash): how Sigstore's
    /// keys sign.
    fn ecdsa(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
            Curve::Ed25519 => &signature::ED25519,
        }
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
    pub fn public_good() -> Result<TrustRoot, String> {
        TrustRoot::from_json(PUBLIC_GOOD)
    }

    /// Reads a Sigstore `trusted_root.json` (its `certificateAuthorities` and `tlogs`; CT logs
    /// and timestamp authorities are not used). Log keys other than ECDSA P-256/P-384 are skipped.
    pub fn from_json(text: &str) -> Result<TrustRoot, String> {
        let json: RootJson =
            serde_json::from_str(text).map_err(|e| format!("not a trusted root: {e}"))?;
        let cas = json
            .certificate_authorities
            .iter()
            .map(authority_of)
            .collect::<Result<Vec<_>, String>>()?;
        let (logs, ct_logs) = (log_keys(&json.tlogs)?, log_keys(&json.ctlogs)?);
        if cas.is_empty() || logs.is_empty() {
            return Err("a trusted root needs a certificate authority and an ECDSA log key".into());
        }
        let tsas = json
            .timestamp_authorities
            .iter()
            .map(authority_of)
            .collect::<Result<Vec<_>, String>>()?;
        Ok(TrustRoot {
            cas,
            logs,
            ct_logs,
            tsas,
        })
    }
}

/// Returns the period a `validFor` names (its end inclusive); unbounded when there is none. A
/// `validFor` without its start is refused: the format requires one, and reading it as "since
/// ever" would trust a key for times before it existed.
fn window_of(v: &Option<ValidForJson>) -> Result<Window, String> {
    let time = |s: &Option<String>| s.as_deref().map(rfc3339_seconds).transpose();
    Ok(match v {
        Some(v) => Window {
            start: Some(time(&v.start)?.ok_or("a `validFor` has no `start`")?),
            end: time(&v.end)?,
        },
        None => Window {
            start: None,
            end: None,
        },
    })
}

/// Returns the CA a trusted root's entry describes: its parsed chain and its window.
fn authority_of(ca: &CaJson) -> Result<CertAuthority, String> {
    let chain = ca
        .cert_chain
        .certificates
        .iter()
        .map(|c| {
            let der = b64(&c.raw_bytes, "a CA certificate")?;
            let cert = Certificate::from_der(&der)
                .map_err(|e| format!("a CA certificate does not parse: {e}"))?;
            Ok((der, cert))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if chain.is_empty() {
        return Err("a certificate authority has no certificates".into());
    }
    Ok(CertAuthority {
        chain,
        window: window_of(&ca.valid_for)?,
    })
}

/// Returns the ECDSA keys of a trusted root's logs, skipping keys of other types.
fn log_keys(list: &[TlogJson]) -> Result<Vec<LogKey>, String> {
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

/// Verifies npm's attestations response (`{ attestations: [{ predicateType, bundle }] }`) for
/// `subject` under `policy`.
pub fn verify(
    attestations: &[u8],
    subject: &Subject,
    policy: &Policy,
    root: &TrustRoot,
) -> Result<(), Refusal> {
    let doc: Value = serde_json::from_slice(attestations)
        .map_err(|e| refuse(Check::Attestation, format!("attestations: not JSON: {e}")))?;
    let list = doc
        .get("attestations")
        .and_then(Value::as_array)
        .ok_or_else(|| refuse(Check::Attestation, "no `attestations` array"))?;
    let mut first_error = None;
    for att in list {
        if att.get("predicateType").and_then(Value::as_str) != Some(SLSA_PROVENANCE_V1) {
            continue;
        }
        let Some(bundle) = att.get("bundle") else {
            continue;
        };
        match verify_bundle(bundle, subject, policy, root) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error
        .unwrap_or_else(|| refuse(Check::Attestation, "no SLSA provenance v1 attestation")))
}

fn verify_bundle(
    bundle: &Value,
    subject: &Subject,
    policy: &Policy,
    root: &TrustRoot,
) -> Result<(), Refusal> {
    let payload = verify_signed(bundle, policy, root)?;
    check_statement(&payload, subject).map_err(as_check(Check::Subject))
}

/// Everything but the statement's content: certificate, identity, log entry, timestamps, DSSE
/// signature. Returns the in-toto statement the envelope carries.
fn verify_signed(bundle: &Value, policy: &Policy, root: &TrustRoot) -> Result<Vec<u8>, Refusal> {
    let identity = |leaf: &Certificate| check_identity(leaf, policy);
    match verify_core(bundle, root, None, None, &identity)? {
        Content::Dsse(envelope) => in_toto_payload(envelope),
        Content::Message { .. } => Err(refuse(
            Check::Attestation,
            "the bundle signs a message, not an attestation",
        )),
    }
}

/// The envelope's statement, when it is an in-toto one.
fn in_toto_payload(envelope: Envelope) -> Result<Vec<u8>, Refusal> {
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(refuse(
            Check::Subject,
            format!("DSSE payload type is `{}`", envelope.payload_type),
        ));
    }
    Ok(envelope.payload)
}

/// Who must have signed a bundle checked by [`verify_sigstore_bundle`].
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// A Fulcio certificate whose SAN (URI or email) is `identity`, issued on a token of
    /// `issuer`.
    Identity { identity: &'a str, issuer: &'a str },
    /// A managed key: the PEM `PUBLIC KEY` the signature must verify with.
    Key(&'a str),
}

/// Verifies a Sigstore bundle (v0.1 to v0.3) for an artifact whose SHA-256 is `artifact`: a
/// message signature over it, or a DSSE envelope whose in-toto statement names it as a subject.
/// The same checks as the staging path's, with the identity given as Sigstore's clients take
/// it.
pub fn verify_sigstore_bundle(
    bundle: &[u8],
    artifact: &[u8; 32],
    signer: &Signer,
    root: &TrustRoot,
) -> Result<(), Refusal> {
    let bundle: Value = serde_json::from_slice(bundle)
        .map_err(|e| refuse(Check::Attestation, format!("the bundle is not JSON: {e}")))?;
    let key = match signer {
        Signer::Key(pem) => Some(
            pem_der(pem.as_bytes())
                .filter(|der| ec_key_of_spki(der).is_ok())
                .ok_or_else(|| {
                    refuse(Check::Signature, "the key is not a usable PEM public key")
                })?,
        ),
        Signer::Identity { .. } => None,
    };
    let identity = |leaf: &Certificate| match signer {
        Signer::Identity { identity, issuer } => check_san_identity(leaf, identity, issuer),
        Signer::Key(_) => Err("a key was given, but the bundle is signed by a certificate".into()),
    };
    match verify_core(&bundle, root, key.as_deref(), Some(artifact), &identity)? {
        Content::Message { .. } => Ok(()),
        Content::Dsse(envelope) => {
            let payload = in_toto_payload(envelope)?;
            check_subject_sha256(&payload, artifact).map_err(as_check(Check::Subject))
        }
    }
}

/// The statement names a subject whose `sha256` is `artifact`.
fn check_subject_sha256(payload: &[u8], artifact: &[u8; 32]) -> Result<(), String> {
    let statement: Value =
        serde_json::from_slice(payload).map_err(|e| format!("statement is not JSON: {e}"))?;
    let want = hex(artifact);
    let named = statement
        .get("subject")
        .and_then(Value::as_array)
        .ok_or("statement has no subject")?
        .iter()
        .any(|s| {
            s.pointer("/digest/sha256")
                .and_then(Value::as_str)
                .is_some_and(|d| d.eq_ignore_ascii_case(&want))
        });
    if !named {
        return Err("no subject of the statement has the artifact's sha256".into());
    }
    Ok(())
}

/// The certificate's SAN is exactly `identity` and its Fulcio issuer `issuer`, as Sigstore's
/// clients compare them.
fn check_san_identity(leaf: &Certificate, identity: &str, issuer: &str) -> Result<(), String> {
    let exts = extensions(leaf);
    check_critical_extensions(exts)?;
    check_code_signing(exts)?;
    let got_issuer = ext_utf8(exts, OID_ISSUER_V2)
        .or_else(|| ext_raw(exts, OID_ISSUER_V1))
        .ok_or("the certificate names no OIDC issuer")?;
    if got_issuer != issuer {
        return Err(format!("the certificate was issued for `{got_issuer}`"));
    }
    let san = ext_bytes(exts, OID_SAN)
        .and_then(|b| SubjectAltName::from_der(b).ok())
        .ok_or("the certificate has no subject alternative name")?;
    let matches = san.0.iter().any(|n| match n {
        GeneralName::UniformResourceIdentifier(u) => u.as_str() == identity,
        GeneralName::Rfc822Name(e) => e.as_str() == identity,
        _ => false,
    });
    if !matches {
        return Err("the certificate was issued to another identity".into());
    }
    Ok(())
}

/// A bundle's media type names its version: 1 to 3.
fn bundle_version(bundle: &Value) -> Result<u8, Refusal> {
    let media = bundle
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse(Check::Attestation, "the bundle has no media type"))?;
    match media {
        "application/vnd.dev.sigstore.bundle+json;version=0.1" => Ok(1),
        "application/vnd.dev.sigstore.bundle+json;version=0.2" => Ok(2),
        "application/vnd.dev.sigstore.bundle+json;version=0.3"
        | "application/vnd.dev.sigstore.bundle.v0.3+json" => Ok(3),
        _ => Err(refuse(
            Check::Attestation,
            format!("unsupported bundle media type `{media}`"),
        )),
    }
}

/// What signed the bundle: a certificate, or the managed key the caller gave.
enum Material {
    Cert(Vec<u8>, Box<Certificate>),
    /// The key's SPKI DER.
    Key(Vec<u8>),
}

impl Material {
    /// The DER a log entry must name: the certificate's, or the key's SPKI.
    fn der(&self) -> &[u8] {
        match self {
            Material::Cert(der, _) => der,
            Material::Key(der) => der,
        }
    }

    fn key(&self) -> Result<(Curve, Vec<u8>), String> {
        match self {
            Material::Cert(_, cert) => ec_key_of_spki_info(cert),
            Material::Key(der) => ec_key_of_spki(der),
        }
    }
}

/// What a bundle signs: a DSSE envelope or a message (the artifact's digest).
enum Content<'a> {
    Dsse(Envelope<'a>),
    Message {
        /// The digest the bundle says it signed: a hint, checked against the artifact's.
        digest: Option<Vec<u8>>,
        sig: Vec<u8>,
    },
}

impl Content<'_> {
    /// The signature bytes: what the log entry and every timestamp must be over.
    fn sig(&self) -> &[u8] {
        match self {
            Content::Dsse(e) => &e.sig,
            Content::Message { sig, .. } => sig,
        }
    }
}

/// Every check but what the signed content says: the bundle's form, the signer (`identity` on
/// the certificate, or the managed `key`), a log entry that records this signature, the times
/// the log and the timestamp authorities vouch for, the certificate chain and its SCT at those
/// times, and the signature itself (over `artifact` for a message).
fn verify_core<'b>(
    bundle: &'b Value,
    root: &TrustRoot,
    key: Option<&[u8]>,
    artifact: Option<&[u8; 32]>,
    identity: &dyn Fn(&Certificate) -> Result<(), String>,
) -> Result<Content<'b>, Refusal> {
    let version = bundle_version(bundle)?;
    let vm = bundle
        .get("verificationMaterial")
        .ok_or_else(|| refuse(Check::Attestation, "bundle has no verificationMaterial"))?;
    let material = match (vm.get("publicKey"), key) {
        (Some(_), Some(key)) => Material::Key(key.to_vec()),
        (Some(_), None) => {
            return Err(refuse(
                Check::Identity,
                "the bundle is signed by a key, not a certificate",
            ))
        }
        (None, _) => {
            let (der, leaf) = signing_certificate(vm)?;
            identity(&leaf).map_err(as_check(Check::Identity))?;
            Material::Cert(der, Box::new(leaf))
        }
    };
    let content = content_of(bundle)?;
    if matches!(content, Content::Message { .. }) && artifact.is_none() {
        return Err(refuse(
            Check::Attestation,
            "the bundle signs a message, not an attestation",
        ));
    }
    if let (
        Content::Message {
            digest: Some(d), ..
        },
        Some(a),
    ) = (&content, artifact)
    {
        if d.as_slice() != a.as_slice() {
            return Err(refuse(
                Check::Subject,
                "the bundle's message digest is not the artifact's",
            ));
        }
    }
    let logged = logged_times(vm, version, &material, &content, artifact, root)?;
    let mut times: Vec<i64> = logged.integrated.into_iter().collect();
    times.extend(timestamp_times(vm, content.sig(), root)?);
    if times.is_empty() {
        return Err(refuse(
            Check::TransparencyLog,
            "no verified time: neither a signed entry timestamp nor a timestamp authority's",
        ));
    }
    if !times.iter().all(|&t| logged.key.window.covers(t)) {
        return Err(refuse(
            Check::TransparencyLog,
            "the log's key was not trusted at the time of the entry",
        ));
    }
    if let Material::Cert(der, leaf) = &material {
        let mut issuer = None;
        for &t in &times {
            issuer = Some(check_chain(der, leaf, root, t).map_err(as_check(Check::Certificate))?);
        }
        if let (Some(issuer), false) = (issuer, root.ct_logs.is_empty()) {
            check_sct(leaf, issuer, root).map_err(as_check(Check::Certificate))?;
        }
    }
    check_signature(&material, &content, artifact)?;
    Ok(content)
}

/// The envelope's or the message's signature verifies with the signer's key.
fn check_signature(
    material: &Material,
    content: &Content,
    artifact: Option<&[u8; 32]>,
) -> Result<(), Refusal> {
    let (curve, point) = material.key().map_err(as_check(Check::Certificate))?;
    let bad = || {
        refuse(
            Check::Signature,
            "the signature does not verify with the signer's key",
        )
    };
    match content {
        Content::Dsse(envelope) => UnparsedPublicKey::new(curve.ecdsa(), &point)
            .verify(
                &pae(envelope.payload_type, &envelope.payload),
                &envelope.sig,
            )
            .map_err(|_| bad()),
        Content::Message { sig, .. } => {
            let digest = artifact.ok_or_else(|| refuse(Check::Subject, "no artifact to check"))?;
            verify_prehashed(curve, &point, digest, sig).map_err(|()| bad())
        }
    }
}

/// ECDSA P-256 over a SHA-256 digest the caller computed: a message signature may be checked
/// from the artifact's digest alone, which `ring` cannot do.
fn verify_prehashed(curve: Curve, point: &[u8], digest: &[u8; 32], sig: &[u8]) -> Result<(), ()> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    if curve != Curve::P256 {
        return Err(());
    }
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| ())?;
    let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| ())?;
    key.verify_prehash(digest, &sig).map_err(|_| ())
}

/// What a bundle's DSSE envelope carries.
struct Envelope<'a> {
    payload_type: &'a str,
    payload: Vec<u8>,
    /// The envelope's one signature.
    sig: Vec<u8>,
}

/// Returns the bundle's signing certificate, as DER and parsed. A chain (v0.1/v0.2) may hold
/// intermediates after it, never a root: the trust root alone says which roots are trusted.
fn signing_certificate(vm: &Value) -> Result<(Vec<u8>, Certificate), Refusal> {
    let chain = vm.pointer("/x509CertificateChain/certificates");
    if let Some(chain) = chain {
        let list = chain
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| refuse(Check::Attestation, "the certificate chain is empty"))?;
        for c in &list[1..] {
            let der = c
                .get("rawBytes")
                .and_then(Value::as_str)
                .ok_or_else(|| refuse(Check::Attestation, "a chain certificate has no bytes"))
                .and_then(|s| {
                    b64(s, "a chain certificate").map_err(as_check(Check::Attestation))
                })?;
            let cert = Certificate::from_der(&der).map_err(|e| {
                refuse(
                    Check::Certificate,
                    format!("a chain certificate does not parse: {e}"),
                )
            })?;
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
    let leaf_der =
        b64(leaf_b64, "the signing certificate").map_err(as_check(Check::Attestation))?;
    let leaf = Certificate::from_der(&leaf_der).map_err(|e| {
        refuse(
            Check::Certificate,
            format!("the signing certificate does not parse: {e}"),
        )
    })?;
    Ok((leaf_der, leaf))
}

/// Returns what the bundle signs: its DSSE envelope (payload type, payload, one signature) or
/// its message signature.
fn content_of(bundle: &Value) -> Result<Content<'_>, Refusal> {
    if let Some(m) = bundle.get("messageSignature") {
        let sig = str_at(m, "signature")
            .and_then(|s| b64(s, "the message signature"))
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
                    str_at(d, "digest")
                        .and_then(|s| b64(s, "the message digest"))
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
    let payload = str_at(envelope, "payload")
        .and_then(|p| b64(p, "the DSSE payload"))
        .map_err(as_check(Check::Attestation))?;
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
    let sig = str_at(sig, "sig")
        .and_then(|s| b64(s, "the DSSE signature"))
        .map_err(as_check(Check::Attestation))?;
    Ok(Content::Dsse(Envelope {
        payload_type,
        payload,
        sig,
    }))
}

/// What a verified log entry vouches for.
struct Logged<'r> {
    /// The integrated time its SET signs; none for a Rekor v2 entry, which has no SET.
    integrated: Option<i64>,
    key: &'r LogKey,
}

/// Returns what the first log entry that verifies and records this signature vouches for.
fn logged_times<'r>(
    vm: &Value,
    version: u8,
    material: &Material,
    content: &Content,
    artifact: Option<&[u8; 32]>,
    root: &'r TrustRoot,
) -> Result<Logged<'r>, Refusal> {
    let entries = vm
        .get("tlogEntries")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            refuse(
                Check::TransparencyLog,
                "bundle has no transparency log entry",
            )
        })?;
    let mut log_error = None;
    for entry in entries {
        match check_log_entry(entry, version, material, content, artifact, root) {
            Ok(t) => return Ok(t),
            Err(e) => {
                log_error.get_or_insert(e);
            }
        }
    }
    Err(refuse(
        Check::TransparencyLog,
        log_error.unwrap_or_default(),
    ))
}

/// Verifies a Rekor entry: it records this signature, its SET (a v0.1 bundle needs one) and
/// its inclusion proof with its checkpoint (v0.2 on needs one) verify with a trusted log key.
fn check_log_entry<'r>(
    entry: &Value,
    version: u8,
    material: &Material,
    content: &Content,
    artifact: Option<&[u8; 32]>,
    root: &'r TrustRoot,
) -> Result<Logged<'r>, String> {
    let log_id = b64_at(
        entry,
        "/logId/keyId",
        "log entry has no logId",
        "the log id",
    )?;
    let log_index = int_at(entry, "logIndex")?;
    if log_index < 0 {
        return Err("the log entry has a negative index".into());
    }
    let body = b64(str_at(entry, "canonicalizedBody")?, "the log entry body")?;
    let key = root
        .logs
        .iter()
        .find(|k| k.key_id == log_id)
        .ok_or("log entry is from an unknown transparency log")?;
    check_entry_body(&body, material, content, artifact)?;
    let integrated = match entry.pointer("/inclusionPromise/signedEntryTimestamp") {
        Some(set) => {
            let set = b64(set.as_str().ok_or("bad signed entry timestamp")?, "the SET")?;
            let integrated = int_at(entry, "integratedTime")?;
            // Rekor signs the canonical JSON (sorted keys, no spaces) of these four fields.
            let signed = format!(
                "{{\"body\":\"{}\",\"integratedTime\":{integrated},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
                B64.encode(&body),
                hex(&log_id)
            );
            UnparsedPublicKey::new(key.curve.ecdsa(), &key.point)
                .verify(signed.as_bytes(), &set)
                .map_err(|_| "the log's signed entry timestamp does not verify")?;
            Some(integrated)
        }
        None if version == 1 => return Err("log entry has no signed entry timestamp".into()),
        None => None,
    };
    match entry.get("inclusionProof") {
        Some(proof) => check_inclusion(proof, &body, key, version >= 2)?,
        None if version >= 2 || integrated.is_none() => {
            return Err("the log entry has no inclusion proof".into())
        }
        None => {}
    }
    Ok(Logged { integrated, key })
}

/// The log entry must be this signature's: same signature, same signer, same artifact (or
/// payload). Otherwise a valid entry of another artifact would do. Kinds: `dsse` 0.0.1,
/// `intoto` 0.0.2, `hashedrekord` 0.0.1 and Rekor v2's `hashedrekord` 0.0.2.
fn check_entry_body(
    body: &[u8],
    material: &Material,
    content: &Content,
    artifact: Option<&[u8; 32]>,
) -> Result<(), String> {
    let body: Value = serde_json::from_slice(body).map_err(|_| "the log entry body is not JSON")?;
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let spec = body.get("spec").ok_or("the log entry body has no spec")?;
    let (digest, sig, signer) = match (kind, version) {
        ("hashedrekord", "0.0.1") => {
            if spec.pointer("/data/hash/algorithm").and_then(Value::as_str) != Some("sha256") {
                return Err("the log entry's hash is not SHA-256".into());
            }
            let value = spec
                .pointer("/data/hash/value")
                .and_then(Value::as_str)
                .ok_or("the log entry has no hash")?;
            let pem = logged_b64(
                spec.pointer("/signature/publicKey/content"),
                "the log entry has no key",
                "the log entry's key",
            )?;
            (
                value.to_ascii_lowercase(),
                logged_b64(
                    spec.pointer("/signature/content"),
                    "the log entry has no signature",
                    "the log entry's signature",
                )?,
                pem_der(&pem).ok_or("the log entry's key is not PEM")?,
            )
        }
        ("hashedrekord", "0.0.2") => {
            let v = spec
                .get("hashedRekordV002")
                .ok_or("the log entry has no hashedRekordV002")?;
            if v.pointer("/data/algorithm").and_then(Value::as_str) != Some("SHA2_256") {
                return Err("the log entry's hash is not SHA-256".into());
            }
            let digest = logged_b64(
                v.pointer("/data/digest"),
                "the log entry has no digest",
                "the log entry's digest",
            )?;
            let verifier = v
                .pointer("/signature/verifier/x509Certificate/rawBytes")
                .or_else(|| v.pointer("/signature/verifier/publicKey/rawBytes"));
            (
                hex(&digest),
                logged_b64(
                    v.pointer("/signature/content"),
                    "the log entry has no signature",
                    "the log entry's signature",
                )?,
                logged_b64(verifier, "the log entry has no verifier", "the verifier")?,
            )
        }
        _ => {
            let Content::Dsse(envelope) = content else {
                return Err(format!(
                    "a `{kind}` entry cannot record a message signature"
                ));
            };
            let logged = logged_envelope(&body)?;
            check_payload_hash(logged.payload_hash, &envelope.payload)?;
            let pem = logged_b64(
                logged.cert,
                "the log entry has no certificate",
                "the log entry's certificate",
            )?;
            if logged_signature(&logged)? != envelope.sig {
                return Err("the log entry is for another signature".into());
            }
            if pem_der(&pem).as_deref() != Some(material.der()) {
                return Err("the log entry is for another certificate".into());
            }
            return Ok(());
        }
    };
    // A hashedrekord of a DSSE envelope records the hash of its PAE (Rekor v2).
    let want = match content {
        Content::Message { .. } => hex(artifact.ok_or("no artifact to check the entry with")?),
        Content::Dsse(e) => hex(&Sha256::digest(pae(e.payload_type, &e.payload))),
    };
    if digest != want {
        return Err("the log entry is for another artifact".into());
    }
    if sig != content.sig() {
        return Err("the log entry is for another signature".into());
    }
    if signer != material.der() {
        return Err("the log entry is for another signer".into());
    }
    Ok(())
}

/// A signed note (`<origin>\n<size>\n<base64 root>\n[extensions]\n\n— <name> <base64 sig>\n`)
/// naming `size` and `root`, with a signature by the log's key over the text before the blank
/// line: a line under the log's name whose key hint is the log id's first four bytes. Other
/// lines (a witness's cosignature) are not checked.
fn check_checkpoint(note: &str, size: u64, root: &[u8], key: &LogKey) -> Result<(), String> {
    let (text, sigs) = note
        .split_once("\n\n")
        .ok_or("the checkpoint is not a signed note")?;
    let text = format!("{text}\n");
    let mut lines = text.lines();
    let (origin, tree_size, tree_root) = (lines.next(), lines.next(), lines.next());
    // Rekor v1 names its tree after the host (`rekor.sigstore.dev - <tree id>`), v2 the host.
    let origin_ok = origin.is_some_and(|o| {
        !o.is_empty()
            && (key.origin.is_empty()
                || o == key.origin
                || o.strip_prefix(key.origin.as_str())
                    .is_some_and(|r| r.starts_with(" - ")))
    });
    if !origin_ok {
        return Err("the checkpoint is not for this log".into());
    }
    if tree_size.and_then(|s| s.parse::<u64>().ok()) != Some(size)
        || tree_root.and_then(|r| B64.decode(r).ok()).as_deref() != Some(root)
    {
        return Err("the checkpoint is for another tree than the inclusion proof".into());
    }
    let signed = sigs.lines().any(|line| {
        let Some((name, sig)) = line
            .strip_prefix("\u{2014} ")
            .and_then(|rest| rest.rsplit_once(' '))
        else {
            return false;
        };
        if !key.origin.is_empty() && name != key.origin {
            return false;
        }
        let Ok(sig) = B64.decode(sig) else {
            return false;
        };
        sig.len() > 4
            && key.key_id.get(..4) == Some(&sig[..4])
            && UnparsedPublicKey::new(key.curve.ecdsa(), &key.point)
                .verify(text.as_bytes(), &sig[4..])
                .is_ok()
    });
    if signed {
        Ok(())
    } else {
        Err("the checkpoint is not signed by the log".into())
    }
}

/// Bundles carry a handful of timestamps; more is malformed.
const MAX_TIMESTAMPS: usize = 16;

/// Returns the time of each RFC 3161 timestamp of the bundle: each one must be over `sig` and
/// verify with a certificate that chains to a trusted timestamp authority, valid (chain and
/// authority) at the time it states.
fn timestamp_times(vm: &Value, sig: &[u8], root: &TrustRoot) -> Result<Vec<i64>, Refusal> {
    let Some(list) = vm.pointer("/timestampVerificationData/rfc3161Timestamps") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .filter(|l| l.len() <= MAX_TIMESTAMPS)
        .ok_or_else(|| refuse(Check::Timestamp, "malformed timestamps"))?;
    list.iter()
        .map(|ts| {
            let der = str_at(ts, "signedTimestamp")
                .and_then(|s| b64(s, "a timestamp"))
                .map_err(as_check(Check::Timestamp))?;
            check_timestamp(&der, sig, root).map_err(as_check(Check::Timestamp))
        })
        .collect()
}

/// Verifies one timestamp (see [`timestamp_times`]) and returns its time.
fn check_timestamp(der: &[u8], sig: &[u8], root: &TrustRoot) -> Result<i64, String> {
    let token = timestamp::parse(der)?;
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
            let parents = if tsa.chain[0].0 == *cand_der {
                &tsa.chain[1..]
            } else {
                &tsa.chain[..]
            };
            if chain_valid(cand_der, cand, parents, t) && is_timestamping(cand) {
                return Ok(t);
            }
        }
    }
    Err("the timestamp does not verify with a trusted timestamp authority at its time".into())
}

/// Whether `cert`'s key signed `msg` (ECDSA with the signer's `hash`).
fn key_signed(cert: &Certificate, msg: &[u8], hash: timestamp::Hash, sig: &[u8]) -> bool {
    use timestamp::Hash;
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

/// Whether `cert` is signed by `parents[0]`, each by the next, all valid at `t`.
fn chain_valid(
    cert_der: &[u8],
    cert: &Certificate,
    parents: &[(Vec<u8>, Certificate)],
    t: i64,
) -> bool {
    let (mut child_der, mut child) = (cert_der, cert);
    if !valid_at(child, t) {
        return false;
    }
    for (parent_der, parent) in parents {
        if child.tbs_certificate.issuer != parent.tbs_certificate.subject
            || !valid_at(parent, t)
            || signed_by(child_der, child, parent).is_err()
        {
            return false;
        }
        (child_der, child) = (parent_der, parent);
    }
    true
}

/// Whether the certificate's extended key usage allows timestamping.
fn is_timestamping(cert: &Certificate) -> bool {
    ext_bytes(extensions(cert), OID_EKU)
        .and_then(|b| ExtendedKeyUsage::from_der(b).ok())
        .is_some_and(|eku| eku.0.contains(&timestamp::OID_TIME_STAMPING))
}

/// DSSE's pre-authentication encoding: what the envelope's signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The package URL npm puts in the statement's subject: a scope's `@` is percent-encoded.
pub fn purl(name: &str, version: &str) -> String {
    let name = match name.strip_prefix('@') {
        Some(rest) => format!("%40{rest}"),
        None => name.to_string(),
    };
    format!("pkg:npm/{name}@{version}")
}

fn check_statement(payload: &[u8], subject: &Subject) -> Result<(), String> {
    let statement: Value =
        serde_json::from_slice(payload).map_err(|e| format!("statement is not JSON: {e}"))?;
    if statement.get("_type").and_then(Value::as_str) != Some(IN_TOTO_STATEMENT_V1) {
        return Err("statement is not an in-toto v1 statement".into());
    }
    if statement.get("predicateType").and_then(Value::as_str) != Some(SLSA_PROVENANCE_V1) {
        return Err("statement is not SLSA provenance v1".into());
    }
    let want_name = purl(subject.name, subject.version);
    let want_digest = hex(subject.sha512);
    let subjects = statement
        .get("subject")
        .and_then(Value::as_array)
        .ok_or("statement has no subject")?;
    let named: Vec<&Value> = subjects
        .iter()
        .filter(|s| s.get("name").and_then(Value::as_str) == Some(want_name.as_str()))
        .collect();
    if named.is_empty() {
        return Err(format!("statement has no subject `{want_name}`"));
    }
    let digest_matches = named.iter().any(|s| {
        s.pointer("/digest/sha512")
            .and_then(Value::as_str)
            .is_some_and(|d| d.eq_ignore_ascii_case(&want_digest))
    });
    if !digest_matches {
        return Err(format!(
            "statement's sha512 for `{want_name}` is not the registry integrity's"
        ));
    }
    Ok(())
}

/// The Fulcio extensions say which CI run the certificate was issued to.
fn check_identity(leaf: &Certificate, policy: &Policy) -> Result<(), String> {
    let exts = extensions(leaf);
    check_critical_extensions(exts)?;
    check_code_signing(exts)?;
    let issuer = ext_utf8(exts, OID_ISSUER_V2).ok_or("the certificate names no OIDC issuer")?;
    if issuer != GITHUB_ACTIONS_ISSUER {
        return Err(format!(
            "the certificate was issued for `{issuer}`, not GitHub Actions"
        ));
    }
    let repository = policy.repository.trim_matches('/');
    let want_repo = format!("https://github.com/{repository}");
    let repo =
        ext_utf8(exts, OID_SOURCE_REPOSITORY_URI).ok_or("the certificate names no repository")?;
    // GitHub's owner and repository names are case-insensitive.
    if !repo.eq_ignore_ascii_case(&want_repo) {
        return Err(format!("built from `{repo}`, not `{want_repo}`"));
    }
    if let Some(workflow) = &policy.workflow_path {
        check_workflow(exts, &want_repo, workflow)?;
    }
    check_run(exts, policy)
}

/// Returns an error unless the run was triggered by something other than a pull request and
/// built a ref the policy accepts.
fn check_run(exts: &[Extension], policy: &Policy) -> Result<(), String> {
    let trigger = ext_utf8(exts, OID_BUILD_TRIGGER)
        .or_else(|| ext_raw(exts, OID_GITHUB_WORKFLOW_TRIGGER_V1))
        .ok_or("the certificate names no build trigger")?;
    if REFUSED_TRIGGERS.contains(&trigger.as_str()) {
        return Err(format!("the run was triggered by `{trigger}`"));
    }
    let git_ref = ext_utf8(exts, OID_SOURCE_REPOSITORY_REF)
        .or_else(|| ext_raw(exts, OID_GITHUB_WORKFLOW_REF_V1))
        .ok_or("the certificate names no git ref")?;
    let accepted = match &policy.git_ref {
        Some(glob) => glob_matches(glob, &git_ref),
        None => DEFAULT_REFS.iter().any(|g| glob_matches(g, &git_ref)),
    };
    if !accepted {
        return Err(format!(
            "the run built `{git_ref}`, which the policy does not accept"
        ));
    }
    Ok(())
}

/// Whether `text` matches `glob`, where `*` stands for any run of characters (`/` included) and
/// every other character for itself.
pub(crate) fn glob_matches(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else {
        return rest.is_empty();
    };
    // Leftmost match of each middle piece is optimal for a `*`-only glob: linear, no backtracking.
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Returns the certificate's extensions; none when it has none.
fn extensions(cert: &Certificate) -> &[Extension] {
    cert.tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default()
}

/// Returns the value of the extension `oid`, if the certificate has one.
fn ext_bytes(exts: &[Extension], oid: ObjectIdentifier) -> Option<&[u8]> {
    exts.iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

/// Returns the UTF8String the extension `oid` holds, as Fulcio's extensions do.
fn ext_utf8(exts: &[Extension], oid: ObjectIdentifier) -> Option<String> {
    Utf8StringRef::from_der(ext_bytes(exts, oid)?)
        .ok()
        .map(|s| s.as_str().to_string())
}

/// Returns the extension `oid`'s value as the text it is, as Fulcio's first extensions hold it.
fn ext_raw(exts: &[Extension], oid: ObjectIdentifier) -> Option<String> {
    std::str::from_utf8(ext_bytes(exts, oid)?)
        .ok()
        .map(str::to_string)
}

/// Returns an error naming the first critical extension the verifier does not understand.
fn check_critical_extensions(exts: &[Extension]) -> Result<(), String> {
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
fn check_code_signing(exts: &[Extension]) -> Result<(), String> {
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

/// Returns an error unless the certificate's workflow URI is `workflow` of `want_repo`.
fn check_workflow(exts: &[Extension], want_repo: &str, workflow: &str) -> Result<(), String> {
    // The build config URI names the workflow the run started from (the SAN names a
    // reusable workflow's file when one signs); older certificates have only the SAN.
    let uri = ext_utf8(exts, OID_BUILD_CONFIG_URI)
        .or_else(|| san_uri(exts))
        .ok_or("the certificate names no workflow")?;
    let workflow = workflow.trim_start_matches("./").trim_start_matches('/');
    // Owner and repository compare without case, as GitHub names them; the path exactly, as
    // `publish.yml` and `PUBLISH.yml` are two files of the repository.
    let repo_part = format!("{want_repo}/");
    let matches = uri.len() > repo_part.len()
        && uri.is_char_boundary(repo_part.len())
        && uri[..repo_part.len()].eq_ignore_ascii_case(&repo_part)
        && uri[repo_part.len()..]
            .strip_prefix(workflow)
            .is_some_and(|at| at.starts_with('@') && at.len() > 1);
    if !matches {
        return Err(format!(
            "built by workflow `{uri}`, not `{repo_part}{workflow}@…`"
        ));
    }
    Ok(())
}

/// Returns the first URI of the certificate's subject alternative names.
fn san_uri(exts: &[Extension]) -> Option<String> {
    let san = SubjectAltName::from_der(ext_bytes(exts, OID_SAN)?).ok()?;
    san.0.into_iter().find_map(|n| match n {
        GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
        _ => None,
    })
}

/// The leaf chains to a trusted CA's chain, each certificate valid at `t`, within the CA's window.
/// Returns the leaf's issuer.
fn check_chain<'r>(
    leaf_der: &[u8],
    leaf: &Certificate,
    root: &'r TrustRoot,
    t: i64,
) -> Result<&'r Certificate, String> {
    if !valid_at(leaf, t) {
        return Err("the signing certificate was not valid when the log recorded the entry".into());
    }
    let chains_to = |ca: &CertAuthority| -> bool {
        let (mut child_der, mut child) = (leaf_der, leaf);
        for (parent_der, parent) in &ca.chain {
            if child.tbs_certificate.issuer != parent.tbs_certificate.subject
                || !valid_at(parent, t)
                || signed_by(child_der, child, parent).is_err()
            {
                return false;
            }
            (child_der, child) = (parent_der, parent);
        }
        true
    };
    root.cas
        .iter()
        .find(|ca| ca.window.covers(t) && chains_to(ca))
        .map(|ca| &ca.chain[0].1)
        .ok_or_else(|| "the signing certificate does not chain to a trusted Fulcio CA".into())
}

/// An SCT list holds a handful of timestamps; more is malformed.
const MAX_SCTS: usize = 16;

/// RFC 6962 §3.2: one of the certificate's embedded SCTs is a trusted CT log's signature over
/// the precertificate (the TBS without the SCT list) and the issuer's key hash.
fn check_sct(leaf: &Certificate, issuer: &Certificate, root: &TrustRoot) -> Result<(), String> {
    let ext =
        ext_bytes(extensions(leaf), OID_SCT_LIST).ok_or("the signing certificate has no SCT")?;
    let list = x509_cert::der::asn1::OctetStringRef::from_der(ext)
        .map_err(|_| "the SCT list is not an OCTET STRING")?;
    let tbs = precertificate_tbs(leaf)?;
    let issuer_key = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("issuer key: {e}"))?;
    let issuer_key_hash = Sha256::digest(issuer_key);
    let scts = parse_sct_list(list.as_bytes()).ok_or("the SCT list is malformed")?;
    if scts
        .iter()
        .any(|sct| sct_verifies(sct, &issuer_key_hash, &tbs, root))
    {
        return Ok(());
    }
    Err("no SCT of the signing certificate verifies with a trusted CT log".into())
}

/// Returns the DER of the leaf's TBS without its SCT list: what the CT log signed.
fn precertificate_tbs(leaf: &Certificate) -> Result<Vec<u8>, String> {
    let mut tbs = leaf.tbs_certificate.clone();
    if let Some(exts) = tbs.extensions.as_mut() {
        exts.retain(|e| e.extn_id != OID_SCT_LIST);
    }
    tbs.to_der().map_err(|e| format!("precertificate: {e}"))
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

/// Returns the curve and point of the certificate's EC key.
fn ec_key_of_spki_info(cert: &Certificate) -> Result<(Curve, Vec<u8>), String> {
    ec_key(&cert.tbs_certificate.subject_public_key_info)
}

/// Returns the curve and point of the EC key a DER `SubjectPublicKeyInfo` holds.
fn ec_key_of_spki(der: &[u8]) -> Result<(Curve, Vec<u8>), String> {
    let spki =
        SubjectPublicKeyInfoOwned::from_der(der).map_err(|e| format!("not a public key: {e}"))?;
    ec_key(&spki)
}

/// Returns the curve and uncompressed point of an EC public key.
fn ec_key(spki: &SubjectPublicKeyInfoOwned) -> Result<(Curve, Vec<u8>), String> {
    curve_of(
        spki.algorithm.oid,
        spki.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok()),
    )
    .map(|c| (c, spki.subject_public_key.raw_bytes().to_vec()))
}

fn curve_of(alg: ObjectIdentifier, param: Option<ObjectIdentifier>) -> Result<Curve, String> {
    match (alg, param) {
        (a, None) if a == OID_ED25519 => Ok(Curve::Ed25519),
        (a, Some(p)) if a == OID_EC_PUBLIC_KEY && p == OID_P256 => Ok(Curve::P256),
        (a, Some(p)) if a == OID_EC_PUBLIC_KEY && p == OID_P384 => Ok(Curve::P384),
        _ => Err(format!("unsupported key algorithm {alg}")),
    }
}

/// A Merkle tree over 2^64 leaves is 64 levels deep: a longer proof is malformed.
const MAX_PROOF_HASHES: usize = 64;

/// The inclusion proof leads from the entry to the root hash of a checkpoint the log signed.
/// A v0.1 bundle's proof may come without a checkpoint (`need_checkpoint` false); its SET is
/// then what binds the entry to the log.
fn check_inclusion(
    proof: &Value,
    body: &[u8],
    key: &LogKey,
    need_checkpoint: bool,
) -> Result<(), String> {
    let index = u64::try_from(int_at(proof, "logIndex")?).map_err(|_| "negative log index")?;
    let size = u64::try_from(int_at(proof, "treeSize")?).map_err(|_| "negative tree size")?;
    let root = b64(str_at(proof, "rootHash")?, "the root hash")?;
    let hashes = proof
        .get("hashes")
        .and_then(Value::as_array)
        .filter(|h| h.len() <= MAX_PROOF_HASHES)
        .ok_or("the inclusion proof has no usable hashes")?
        .iter()
        .map(|h| {
            h.as_str()
                .ok_or_else(|| "an inclusion proof hash is not a string".to_string())
                .and_then(|h| b64(h, "an inclusion proof hash"))
                .and_then(|h| {
                    <[u8; 32]>::try_from(h)
                        .map_err(|_| "an inclusion proof hash is not 32 bytes".into())
                })
        })
        .collect::<Result<Vec<[u8; 32]>, String>>()?;
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(body);
    if !merkle_inclusion(index, size, leaf.finalize().into(), &hashes, &root) {
        return Err("the inclusion proof does not lead to its root hash".into());
    }
    match proof
        .pointer("/checkpoint/envelope")
        .and_then(Value::as_str)
    {
        Some(note) => check_checkpoint(note, size, &root, key),
        None if !need_checkpoint => Ok(()),
        None => Err("the inclusion proof has no checkpoint".into()),
    }
}

/// RFC 9162 §2.1.3.2: the audit path from leaf `index` of a tree of `size` leaves to `root`.
pub(crate) fn merkle_inclusion(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[[u8; 32]],
    root: &[u8],
) -> bool {
    if index >= size {
        return false;
    }
    let node = |left: &[u8], right: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(left);
        h.update(right);
        h.finalize().into()
    };
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r.as_slice() == root
}

/// What a log entry's body records of an envelope, each field where its kind keeps it.
struct LoggedEnvelope<'a> {
    payload_hash: Option<&'a Value>,
    sig: Option<&'a Value>,
    cert: Option<&'a Value>,
    /// intoto 0.0.2 stores the envelope's base64 signature base64-encoded once more.
    sig_is_b64_twice: bool,
}

/// Returns what a `dsse` 0.0.1 or `intoto` 0.0.2 entry body records of its envelope.
fn logged_envelope(body: &Value) -> Result<LoggedEnvelope<'_>, String> {
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let spec = body.get("spec").ok_or("the log entry body has no spec")?;
    match (kind, version) {
        ("dsse", "0.0.1") => {
            let s = only_signature(spec.get("signatures"))?;
            Ok(LoggedEnvelope {
                payload_hash: spec.pointer("/payloadHash"),
                sig: s.get("signature"),
                cert: s.get("verifier"),
                sig_is_b64_twice: false,
            })
        }
        ("intoto", "0.0.2") => {
            let content = spec.get("content").ok_or("the log entry has no content")?;
            let s = only_signature(content.pointer("/envelope/signatures"))?;
            Ok(LoggedEnvelope {
                payload_hash: content.get("payloadHash"),
                sig: s.get("sig"),
                cert: s.get("publicKey"),
                sig_is_b64_twice: true,
            })
        }
        _ => Err(format!("unsupported log entry kind `{kind}` {version}")),
    }
}

/// Returns the one signature of a log entry's `signatures` array.
fn only_signature(sigs: Option<&Value>) -> Result<&Value, String> {
    match sigs.and_then(Value::as_array).map(Vec::as_slice) {
        Some([s]) => Ok(s),
        _ => Err("the log entry has not one signature".into()),
    }
}

/// Returns an error unless the entry's payload hash is the SHA-256 of `payload`.
fn check_payload_hash(payload_hash: Option<&Value>, payload: &[u8]) -> Result<(), String> {
    let payload_hash = payload_hash.ok_or("the log entry has no payload hash")?;
    if payload_hash.get("algorithm").and_then(Value::as_str) != Some("sha256")
        || !payload_hash
            .get("value")
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case(&hex(&Sha256::digest(payload))))
    {
        return Err("the log entry is for another payload".into());
    }
    Ok(())
}

/// Returns the base64 string `field` decoded; `missing` when there is none.
fn logged_b64(field: Option<&Value>, missing: &str, what: &str) -> Result<Vec<u8>, String> {
    b64(field.and_then(Value::as_str).ok_or(missing)?, what)
}

/// Returns the envelope signature the entry records, decoded.
fn logged_signature(logged: &LoggedEnvelope) -> Result<Vec<u8>, String> {
    let entry_sig = logged_b64(
        logged.sig,
        "the log entry has no signature",
        "the log entry's signature",
    )?;
    if !logged.sig_is_b64_twice {
        return Ok(entry_sig);
    }
    let inner = std::str::from_utf8(&entry_sig).map_err(|_| "bad log entry signature")?;
    b64(inner, "the log entry's signature")
}

/// The DER of the first PEM block in `pem`.
fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")?;
    let after = &text[start..];
    let body_start = after.find('\n')? + 1;
    let body_end = after.find("-----END ")?;
    let b64_text: String = after
        .get(body_start..body_end)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    B64.decode(b64_text).ok()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no `{key}`"))
}

/// Protobuf's JSON writes 64-bit integers as strings; accept a number too.
fn int_at(v: &Value, key: &str) -> Result<i64, String> {
    match v.get(key) {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| format!("log entry has no integer `{key}`"))
}

/// The base64 string at `pointer` in a log entry, decoded; `missing` when it has none.
fn b64_at(entry: &Value, pointer: &str, missing: &str, what: &str) -> Result<Vec<u8>, String> {
    let s = entry
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or(missing)?;
    b64(s, what)
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    B64.decode(s.trim())
        .map_err(|_| format!("{what} is not base64"))
}

fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` in Unix seconds: the only form `trusted_root.json` uses.
fn rfc3339_seconds(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not an RFC 3339 UTC time");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let days = crate::trust::days_from_civil(y, mo, d);
    Ok(days * 86_400 + h * 3600 + mi * 60 + sec)
}

#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
pub(crate) mod tests {
    pub use super::testkit::{
        attestations, bundle, message_bundle, p256, statement, trust_root_json, Parts, Run, TestCa,
        TestTsa, INTEGRATED, REPO, WORKFLOW,
    };
    use super::*;
    use rcgen::KeyPair;
    use serde_json::json;

    struct Fixture {
        ca: TestCa,
        leaf: Vec<u8>,
        leaf_key: KeyPair,
        log_key: KeyPair,
        root: TrustRoot,
    }

    const SHA: [u8; 64] = [7; 64];
    const SUBJECT: Subject<'static> = Subject {
        name: "kanban",
        version: "2.0.0",
        sha512: &SHA,
    };

    fn fixture() -> Fixture {
        let ca = TestCa::new("test fulcio");
        let (leaf, leaf_key) = ca.leaf(REPO, WORKFLOW, GITHUB_ACTIONS_ISSUER);
        let log_key = p256();
        let root = TrustRoot::from_json(&trust_root_json(&ca, &log_key)).unwrap();
        Fixture {
            ca,
            leaf,
            leaf_key,
            log_key,
            root,
        }
    }

    impl Fixture {
        fn parts(&self) -> Parts<'_> {
            Parts {
                leaf: &self.leaf,
                leaf_key: &self.leaf_key,
                log_key: &self.log_key,
                statement: statement("kanban", "2.0.0", &SHA),
                integrated: INTEGRATED,
                kind: "dsse",
                logged_cert: None,
                rekor_v2: false,
                timestamp: None,
            }
        }

        fn check(&self, bundle: Value, policy: &Policy) -> Result<(), Refusal> {
            verify(&attestations(bundle), &SUBJECT, policy, &self.root)
        }

        /// Returns a bundle of the fixture's parts as `edit` changes them.
        fn bundle_with<'a>(&'a self, edit: impl FnOnce(&mut Parts<'a>)) -> Value {
            let mut parts = self.parts();
            edit(&mut parts);
            bundle(&parts)
        }

        /// Returns the check a bundle of the fixture's parts as `edit` changes them fails under
        /// a policy naming only the repository.
        fn refusal<'a>(&'a self, edit: impl FnOnce(&mut Parts<'a>)) -> Check {
            self.bundle_refusal(self.bundle_with(edit))
        }

        /// Returns the check `bundle` fails under a policy naming only the repository.
        fn bundle_refusal(&self, bundle: Value) -> Check {
            refused(self.check(bundle, &policy(REPO, None)))
        }
    }

    fn refused(r: Result<(), Refusal>) -> Check {
        r.expect_err("expected a refusal").check
    }

    fn policy(repo: &str, workflow: Option<&str>) -> Policy {
        Policy {
            repository: repo.into(),
            workflow_path: workflow.map(Into::into),
            git_ref: None,
        }
    }

    #[test]
    fn a_rekor_v2_entry_timed_by_a_trusted_tsa_verifies() {
        let f = fixture();
        let tsa = &f.ca.tsa;
        for embed_cert in [true, false] {
            let mut b = f.bundle_with(|p| {
                p.rekor_v2 = true;
                p.timestamp = Some((tsa, INTEGRATED));
            });
            if !embed_cert {
                // The authority's certificate then comes from the trust root.
                let sig = B64
                    .decode(b["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap())
                    .unwrap();
                b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
                    ["signedTimestamp"] = B64.encode(tsa.timestamp(&sig, INTEGRATED, false)).into();
            }
            f.check(b, &policy(REPO, Some(WORKFLOW))).unwrap();
        }
        // A Rekor v1 entry with a timestamp as well: both times must hold.
        let b = f.bundle_with(|p| p.timestamp = Some((tsa, INTEGRATED)));
        f.check(b, &policy(REPO, None)).unwrap();
    }

    #[test]
    fn timestamps_that_do_not_hold_are_refused() {
        let f = fixture();
        let other = TestTsa::new("other");
        let v2 = |ts: Option<(&TestTsa, i64)>| {
            f.bundle_with(|p| {
                p.rekor_v2 = true;
                p.timestamp = ts;
            })
        };
        // Outside the certificate's ten minutes; no time at all; an authority not trusted.
        assert_eq!(
            f.bundle_refusal(v2(Some((&f.ca.tsa, INTEGRATED + 3600)))),
            Check::Certificate
        );
        assert_eq!(f.bundle_refusal(v2(None)), Check::TransparencyLog);
        assert_eq!(
            f.bundle_refusal(v2(Some((&other, INTEGRATED)))),
            Check::Timestamp
        );
        // Outside the authority's own certificate (valid in 2025 only).
        let late = INTEGRATED + 366 * 86_400;
        let mut b = v2(Some((&f.ca.tsa, INTEGRATED)));
        b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
            ["signedTimestamp"] = B64.encode(f.ca.tsa.timestamp(b"x", late, true)).into();
        assert_eq!(f.bundle_refusal(b.clone()), Check::Timestamp);
        // A timestamp over another signature.
        b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
            ["signedTimestamp"] = B64
            .encode(f.ca.tsa.timestamp(b"x", INTEGRATED, true))
            .into();
        assert_eq!(f.bundle_refusal(b), Check::Timestamp);
        // A v2 entry without its inclusion proof.
        let mut b = v2(Some((&f.ca.tsa, INTEGRATED)));
        b["verificationMaterial"]["tlogEntries"][0]
            .as_object_mut()
            .unwrap()
            .remove("inclusionProof");
        assert_eq!(f.bundle_refusal(b), Check::TransparencyLog);
    }

    #[test]
    fn a_chain_holding_the_root_is_refused() {
        let f = fixture();
        let mut b = bundle(&f.parts());
        let [inter, root] = f.ca.chain_der();
        b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2".into();
        let material = b["verificationMaterial"].as_object_mut().unwrap();
        material.remove("certificate");
        let chain = |certs: &[&[u8]]| json!({ "certificates": certs.iter().map(|c| json!({ "rawBytes": B64.encode(c) })).collect::<Vec<_>>() });
        material.insert("x509CertificateChain".into(), chain(&[&f.leaf, &inter]));
        f.check(b.clone(), &policy(REPO, None)).unwrap();
        b["verificationMaterial"]["x509CertificateChain"] = chain(&[&f.leaf, &inter, &root]);
        assert_eq!(f.bundle_refusal(b.clone()), Check::Certificate);
        b["verificationMaterial"]["x509CertificateChain"] = chain(&[]);
        assert_eq!(f.bundle_refusal(b), Check::Attestation);
    }

    #[test]
    fn validity_windows_need_a_start_and_include_their_end() {
        let f = fixture();
        let mut root: Value = serde_json::from_str(&trust_root_json(&f.ca, &f.log_key)).unwrap();
        // The log key's window ends exactly at the entry's integrated time.
        root["tlogs"][0]["publicKey"]["validFor"]["end"] = "2025-01-01T00:05:00Z".into();
        let inclusive = TrustRoot::from_json(&root.to_string()).unwrap();
        let b = attestations(bundle(&f.parts()));
        verify(&b, &SUBJECT, &policy(REPO, None), &inclusive).unwrap();
        root["tlogs"][0]["publicKey"]["validFor"]["end"] = "2025-01-01T00:04:59Z".into();
        let ended = TrustRoot::from_json(&root.to_string()).unwrap();
        assert_eq!(
            refused(verify(&b, &SUBJECT, &policy(REPO, None), &ended)),
            Check::TransparencyLog
        );
        root["tlogs"][0]["publicKey"]["validFor"]
            .as_object_mut()
            .unwrap()
            .remove("start");
        assert!(TrustRoot::from_json(&root.to_string()).is_err());
    }

    #[test]
    fn message_signatures_verify_for_their_artifact_only() {
        let f = fixture();
        let artifact = b"kanban release notes";
        let digest: [u8; 32] = Sha256::digest(artifact).into();
        let b = message_bundle(&f.parts(), artifact).to_string();
        let signer = Signer::Identity {
            identity: &format!("https://github.com/{REPO}/{WORKFLOW}@refs/heads/main"),
            issuer: GITHUB_ACTIONS_ISSUER,
        };
        verify_sigstore_bundle(b.as_bytes(), &digest, &signer, &f.root).unwrap();
        let other: [u8; 32] = Sha256::digest(b"other").into();
        assert!(verify_sigstore_bundle(b.as_bytes(), &other, &signer, &f.root).is_err());
        let stranger = Signer::Identity {
            identity:
                "https://github.com/evil/kanban/.github/workflows/publish.yml@refs/heads/main",
            issuer: GITHUB_ACTIONS_ISSUER,
        };
        assert_eq!(
            refused(verify_sigstore_bundle(
                b.as_bytes(),
                &digest,
                &stranger,
                &f.root
            )),
            Check::Identity
        );
        // A message bundle is no npm provenance attestation.
        assert_eq!(
            refused(verify(
                &attestations(serde_json::from_str(&b).unwrap()),
                &SUBJECT,
                &policy(REPO, None),
                &f.root
            )),
            Check::Attestation
        );
    }

    #[test]
    fn the_workflow_path_compares_exactly_and_the_repository_without_case() {
        let f = fixture();
        let b = bundle(&f.parts());
        f.check(
            b.clone(),
            &policy("KANBAN-ORG/Kanban", Some(".github/workflows/publish.yml")),
        )
        .unwrap();
        for workflow in [
            ".github/workflows/PUBLISH.yml",
            ".GITHUB/workflows/publish.yml",
            ".github/workflows/publish.ym",
        ] {
            assert_eq!(
                refused(f.check(b.clone(), &policy(REPO, Some(workflow)))),
                Check::Identity,
                "{workflow}"
            );
        }
    }

    /// A bundle signed by a leaf the fixture's CA issued to `run`.
    fn bundle_for_run(f: &Fixture, run: &Run) -> Value {
        let (leaf, leaf_key) = f.ca.leaf_for(run);
        f.bundle_with(|p| (p.leaf, p.leaf_key) = (&leaf, &leaf_key))
    }

    #[test]
    fn runs_triggered_by_pull_requests_are_refused() {
        let f = fixture();
        for (trigger, git_ref) in [
            ("pull_request", "refs/pull/7/merge"),
            // Runs on the base branch's ref, so only the trigger tells it apart.
            ("pull_request_target", "refs/heads/main"),
        ] {
            let run = Run {
                trigger,
                git_ref,
                ..Run::push(REPO, WORKFLOW)
            };
            let b = bundle_for_run(&f, &run);
            let mut p = policy(REPO, Some(WORKFLOW));
            p.git_ref = Some("*".into());
            assert_eq!(refused(f.check(b, &p)), Check::Identity, "{trigger}");
        }
        for trigger in ["push", "release", "workflow_dispatch"] {
            let run = Run {
                trigger,
                ..Run::push(REPO, WORKFLOW)
            };
            f.check(bundle_for_run(&f, &run), &policy(REPO, None))
                .unwrap();
        }
    }

    #[test]
    fn the_ref_must_match_the_policy_glob_or_the_default() {
        let f = fixture();
        let on = |git_ref| {
            bundle_for_run(
                &f,
                &Run {
                    git_ref,
                    ..Run::push(REPO, WORKFLOW)
                },
            )
        };
        let with_ref = |glob: &str| Policy {
            git_ref: Some(glob.into()),
            ..policy(REPO, Some(WORKFLOW))
        };
        let (tag, main, pull) = (
            on("refs/tags/v2.0.0"),
            on("refs/heads/main"),
            on("refs/pull/7/merge"),
        );
        // The default: a branch or a tag, never a pull request's merge ref.
        f.check(tag.clone(), &policy(REPO, None)).unwrap();
        f.check(main.clone(), &policy(REPO, None)).unwrap();
        assert_eq!(refused(f.check(pull, &policy(REPO, None))), Check::Identity);
        f.check(tag.clone(), &with_ref("refs/tags/v*")).unwrap();
        f.check(main.clone(), &with_ref("refs/heads/main")).unwrap();
        assert_eq!(
            refused(f.check(main, &with_ref("refs/tags/v*"))),
            Check::Identity
        );
        assert_eq!(
            refused(f.check(tag, &with_ref("refs/tags/V*"))),
            Check::Identity
        );
    }

    #[test]
    fn globs_match_as_documented() {
        for (glob, text, want) in [
            ("refs/tags/v*", "refs/tags/v1.2.3", true),
            ("refs/tags/v*", "refs/tags/v", true),
            ("refs/tags/v*", "refs/tags/x1", false),
            ("refs/tags/v*", "refs/heads/refs/tags/v1", false),
            ("refs/heads/main", "refs/heads/main", true),
            ("refs/heads/main", "refs/heads/main2", false),
            ("refs/*/v*.0", "refs/tags/v2.0", true),
            ("refs/*/v*.0", "refs/tags/v2.1", false),
            ("refs/*a*a", "refs/xa", false),
            ("*", "anything", true),
        ] {
            assert_eq!(glob_matches(glob, text), want, "{glob} {text}");
        }
    }

    #[test]
    fn a_valid_attestation_verifies_with_either_log_entry_kind() {
        let f = fixture();
        for kind in ["dsse", "intoto"] {
            let b = f.bundle_with(|p| p.kind = kind);
            f.check(b.clone(), &policy(REPO, None)).unwrap();
            f.check(b.clone(), &policy(REPO, Some(WORKFLOW))).unwrap();
            f.check(
                b,
                &policy("Kanban-Org/Kanban", Some(&format!("./{WORKFLOW}"))),
            )
            .unwrap();
        }
    }

    #[test]
    fn another_repository_or_workflow_is_refused() {
        let f = fixture();
        let b = bundle(&f.parts());
        for p in [
            policy("evil/kanban", None),
            policy("kanban-org/kanban-fork", None),
            policy(REPO, Some(".github/workflows/other.yml")),
            policy(REPO, Some(".github/workflows/publish")),
        ] {
            assert_eq!(refused(f.check(b.clone(), &p)), Check::Identity, "{p:?}");
        }
    }

    #[test]
    fn a_certificate_for_another_issuer_is_refused() {
        let f = fixture();
        let (leaf, leaf_key) = f.ca.leaf(REPO, WORKFLOW, "https://gitlab.com");
        assert_eq!(
            f.refusal(|p| (p.leaf, p.leaf_key) = (&leaf, &leaf_key)),
            Check::Identity
        );
    }

    #[test]
    fn another_digest_name_or_version_is_refused() {
        let f = fixture();
        for statement in [
            statement("kanban", "2.0.0", &[8; 64]),
            statement("kanban-evil", "2.0.0", &SHA),
            statement("kanban", "2.0.1", &SHA),
        ] {
            assert_eq!(f.refusal(|p| p.statement = statement), Check::Subject);
        }
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused() {
        let f = fixture();
        let other = TestCa::new("other");
        let (leaf, leaf_key) = other.leaf(REPO, WORKFLOW, GITHUB_ACTIONS_ISSUER);
        assert_eq!(
            f.refusal(|p| (p.leaf, p.leaf_key) = (&leaf, &leaf_key)),
            Check::Certificate
        );
    }

    #[test]
    fn a_certificate_without_a_trusted_sct_is_refused() {
        let mut f = fixture();
        // The trust root names another CT log than the one that timestamped the leaf.
        f.ca.ct_key = p256();
        f.root = TrustRoot::from_json(&trust_root_json(&f.ca, &f.log_key)).unwrap();
        assert_eq!(f.bundle_refusal(bundle(&f.parts())), Check::Certificate);
    }

    #[test]
    fn the_fuzz_entry_point_refuses_what_it_is_given() {
        let f = fixture();
        let real = attestations(bundle(&f.parts()));
        for data in [&b""[..], b"{}", b"\x00\x10", &real, &real[..real.len() / 2]] {
            crate::fuzzing::attestations(data);
        }
    }

    #[test]
    fn malformed_sct_lists_are_refused() {
        assert!(parse_sct_list(&[]).is_none());
        assert!(parse_sct_list(&[0, 5, 0, 3, 0]).is_none());
        assert!(parse_sct_list(&[0, 0, 1]).is_none());
        assert_eq!(parse_sct_list(&[0, 0]).map(|l| l.len()), Some(0));
    }

    #[test]
    fn a_log_entry_outside_the_certificate_validity_is_refused() {
        let f = fixture();
        assert_eq!(
            f.refusal(|p| p.integrated = INTEGRATED + 3600),
            Check::Certificate
        );
    }

    #[test]
    fn a_set_from_another_log_key_is_refused() {
        let f = fixture();
        let other = p256();
        assert_eq!(f.refusal(|p| p.log_key = &other), Check::TransparencyLog);
        // The right log id with a signature by another key.
        let mut b = bundle(&f.parts());
        let forged = f.bundle_with(|p| p.log_key = &other);
        b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"] =
            forged["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"].clone();
        assert_eq!(f.bundle_refusal(b), Check::TransparencyLog);
    }

    #[test]
    fn a_log_entry_for_another_certificate_is_refused() {
        let f = fixture();
        let (other_leaf, _) = f.ca.leaf(REPO, WORKFLOW, GITHUB_ACTIONS_ISSUER);
        assert_eq!(
            f.refusal(|p| p.logged_cert = Some(&other_leaf)),
            Check::TransparencyLog
        );
    }

    #[test]
    fn a_tampered_statement_or_signature_is_refused() {
        let f = fixture();
        let mut b = bundle(&f.parts());
        b["dsseEnvelope"]["payload"] = B64.encode(statement("kanban", "2.0.0", &[9; 64])).into();
        // The log entry's payload hash catches it before the signature does.
        assert_eq!(f.bundle_refusal(b), Check::TransparencyLog);
        let mut b = bundle(&f.parts());
        let mut sig = B64
            .decode(b["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        b["dsseEnvelope"]["signatures"][0]["sig"] = B64.encode(sig).into();
        assert_eq!(f.bundle_refusal(b), Check::TransparencyLog);
        // A log entry that names the forged signature: the signature check itself refuses it.
        let leaf_key = p256();
        assert_eq!(f.refusal(|p| p.leaf_key = &leaf_key), Check::Signature);
    }

    #[test]
    fn no_slsa_attestation_is_refused() {
        let f = fixture();
        let p = policy(REPO, None);
        for doc in [
            &b"{\"attestations\":[]}"[..],
            b"{}",
            b"not json",
            br#"{"attestations":[{"predicateType":"https://github.com/npm/attestation/tree/main/specs/publish/v0.1","bundle":{}}]}"#,
        ] {
            assert_eq!(refused(verify(doc, &SUBJECT, &p, &f.root)), Check::Attestation);
        }
    }

    /// A real bundle from the public-good instance (a GitHub Actions run signing a release with
    /// a cosign predicate, not npm provenance): the certificate chain, the identity, the SET and
    /// the DSSE signature verify against the embedded trust root.
    #[test]
    fn a_public_good_bundle_verifies_against_the_embedded_trust_root() {
        let root = TrustRoot::public_good().unwrap();
        assert_eq!(
            (root.cas.len(), root.logs.len(), root.tsas.len()),
            (2, 2, 1)
        );
        let real: Value =
            serde_json::from_str(include_str!("../../testdata/public-good-dsse-bundle.json"))
                .unwrap();
        let p = policy(
            "kubewarden/kubewarden-controller",
            Some(".github/workflows/release.yml"),
        );
        let payload = verify_signed(&real, &p, &root).unwrap();
        // Not an npm provenance statement, so the whole check refuses it.
        let subject = Subject {
            name: "kanban",
            version: "1.0.0",
            sha512: &SHA,
        };
        assert!(check_statement(&payload, &subject).is_err());
        let check = |b: &Value, p: &Policy| verify_signed(b, p, &root).map(|_| ());
        assert_eq!(
            refused(check(&real, &policy("kubewarden/other", None))),
            Check::Identity
        );
        let mut tampered = real.clone();
        tampered["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1775719410".into();
        assert_eq!(refused(check(&tampered, &p)), Check::TransparencyLog);
        // Without the CT log that timestamped the certificate, its SCT cannot be verified.
        let mut without_ct: Value = serde_json::from_str(PUBLIC_GOOD).unwrap();
        without_ct["ctlogs"].as_array_mut().unwrap().remove(1);
        let without_ct = TrustRoot::from_json(&without_ct.to_string()).unwrap();
        assert_eq!(
            refused(verify_signed(&real, &p, &without_ct).map(|_| ())),
            Check::Certificate
        );
        let mut tampered = real.clone();
        tampered["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][3] =
            B64.encode([0u8; 32]).into();
        assert_eq!(refused(check(&tampered, &p)), Check::TransparencyLog);
        // Our own test CA and log are not the public-good ones.
        let f = fixture();
        assert_eq!(
            refused(check(&bundle(&f.parts()), &policy(REPO, None))),
            Check::TransparencyLog
        );
    }

    /// RFC 9162's Merkle tree hash, computed whole, to check the audit path against.
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = leaves.len().next_power_of_two() / 2;
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(mth(&leaves[..k]));
        h.update(mth(&leaves[k..]));
        h.finalize().into()
    }

    /// The audit path of leaf `m` (RFC 6962 §2.1.1).
    fn path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let k = leaves.len().next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_small_trees() {
        for size in 1..=17usize {
            let leaves: Vec<[u8; 32]> = (0..size)
                .map(|i| Sha256::digest([i as u8]).into())
                .collect();
            let root = mth(&leaves);
            for m in 0..size {
                let p = path(m, &leaves);
                assert!(
                    merkle_inclusion(m as u64, size as u64, leaves[m], &p, &root),
                    "{m}/{size}"
                );
                // Another index, another leaf, a shorter or tampered path: refused.
                let other = (m + 1) % size;
                if other != m {
                    assert!(!merkle_inclusion(
                        other as u64,
                        size as u64,
                        leaves[m],
                        &p,
                        &root
                    ));
                    assert!(!merkle_inclusion(
                        m as u64,
                        size as u64,
                        leaves[other],
                        &p,
                        &root
                    ));
                }
                if let Some((first, rest)) = p.split_first() {
                    assert!(!merkle_inclusion(
                        m as u64,
                        size as u64,
                        leaves[m],
                        rest,
                        &root
                    ));
                    let mut bad = p.clone();
                    bad[0] = Sha256::digest(first).into();
                    assert!(!merkle_inclusion(
                        m as u64,
                        size as u64,
                        leaves[m],
                        &bad,
                        &root
                    ));
                }
                assert!(!merkle_inclusion(m as u64, m as u64, leaves[m], &p, &root));
            }
        }
    }

    #[test]
    fn a_bad_inclusion_proof_or_checkpoint_is_refused() {
        let f = fixture();
        let entry = "/verificationMaterial/tlogEntries/0/inclusionProof";
        let good = bundle(&f.parts());
        f.check(good.clone(), &policy(REPO, None)).unwrap();
        let other_key = p256();
        let foreign = f.bundle_with(|p| p.log_key = &other_key);
        let tamper: [(&str, Value); 4] = [
            ("rootHash", B64.encode([0u8; 32]).into()),
            ("treeSize", "2".into()),
            ("hashes", json!([B64.encode([0u8; 32])])),
            (
                "checkpoint",
                foreign.pointer(entry).unwrap()["checkpoint"].clone(),
            ),
        ];
        for (field, value) in tamper {
            let mut b = good.clone();
            b.pointer_mut(entry).unwrap()[field] = value;
            assert_eq!(f.bundle_refusal(b), Check::TransparencyLog, "{field}");
        }
    }

    #[test]
    fn policy_options_are_checked() {
        let ok = Policy::new(
            "kanban-org/kanban.js",
            Some("./.github/workflows/publish.yml"),
            Some("refs/tags/v*"),
        )
        .unwrap();
        assert_eq!(ok.git_ref.as_deref(), Some("refs/tags/v*"));
        for bad in ["v*", "", "refs/tags/v 1", "refs/\n"] {
            assert_eq!(
                Policy::new(REPO, None, Some(bad)).unwrap_err().0,
                "ref",
                "{bad}"
            );
        }
        assert_eq!(ok.workflow_path.as_deref(), Some(WORKFLOW));
        for bad in [
            "",
            "kanban",
            "a/b/c",
            "/b",
            "a/",
            "a b/c",
            "https://github.com/a/b",
        ] {
            assert_eq!(
                Policy::new(bad, None, None).unwrap_err().0,
                "repository",
                "{bad}"
            );
        }
        for bad in ["", "/abs.yml", "a@b", "a b", &"x".repeat(301)] {
            assert_eq!(
                Policy::new(REPO, Some(bad), None).unwrap_err().0,
                "workflowPath",
                "{bad}"
            );
        }
    }

    #[test]
    fn helpers_follow_their_specs() {
        assert_eq!(purl("@scope/pkg", "1.0.0"), "pkg:npm/%40scope/pkg@1.0.0");
        assert_eq!(purl("kanban", "2.0.0-rc.1"), "pkg:npm/kanban@2.0.0-rc.1");
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
        assert_eq!(rfc3339_seconds("2025-01-01T00:05:00Z").unwrap(), INTEGRATED);
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00.000Z").unwrap(), 0);
        assert_eq!(
            rfc3339_seconds("2022-12-31T23:59:59.999Z").unwrap(),
            1_672_531_199
        );
        assert!(rfc3339_seconds("2022-13-01T00:00:00Z").is_err());
        assert!(rfc3339_seconds("yesterday").is_err());
        assert!(TrustRoot::from_json("{}").is_err());
    }
}
