//! DSSE envelopes and in-toto statements: what the envelope's signature covers, and which
//! subjects the statement names.

use super::encoding::hex;
use super::refusal::{refuse, Check, Refusal};
use serde::Deserialize;
use std::collections::BTreeMap;

pub(super) const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Why a statement does not describe the artifact.
#[derive(Debug, thiserror::Error)]
pub(super) enum StatementError {
    #[error("the statement is malformed: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("statement is not an in-toto v1 statement")]
    NotInToto,
    #[error("statement is not SLSA provenance v1")]
    NotSlsaProvenance,
    #[error("statement has no subject")]
    NoSubject,
    #[error("statement has no subject `{0}`")]
    NotNamed(String),
    #[error("statement's sha512 for `{0}` is not the registry integrity's")]
    OtherSha512(String),
    #[error("no subject of the statement has the artifact's sha256")]
    OtherSha256,
}

/// What the attestation must describe: the version and the sha512 the registry's integrity names.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub sha512: &'a [u8],
}

/// What a bundle's DSSE envelope carries.
pub(super) struct Envelope<'a> {
    pub(super) payload_type: &'a str,
    pub(super) payload: Vec<u8>,
    /// The envelope's one signature.
    pub(super) sig: Vec<u8>,
}

/// DSSE's pre-authentication encoding: what the envelope's signature covers.
pub(super) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
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
pub(super) fn purl(name: &str, version: &str) -> String {
    let name = match name.strip_prefix('@') {
        Some(rest) => format!("%40{rest}"),
        None => name.to_string(),
    };
    format!("pkg:npm/{name}@{version}")
}

/// An in-toto statement: its type, its predicate's type and its subjects (the predicate itself
/// is not read).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    statement_type: Option<String>,
    predicate_type: Option<String>,
    subject: Option<Vec<StatementSubject>>,
}

#[derive(Deserialize)]
struct StatementSubject {
    name: Option<String>,
    /// Hex digests by algorithm name.
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

impl StatementSubject {
    /// Whether the subject's digest `algorithm` is `hex` (compared without case).
    fn has_digest(&self, algorithm: &str, hex: &str) -> bool {
        self.digest
            .get(algorithm)
            .is_some_and(|d| d.eq_ignore_ascii_case(hex))
    }
}

pub(super) fn check_statement(payload: &[u8], subject: &Subject) -> Result<(), StatementError> {
    let statement: Statement = serde_json::from_slice(payload)?;
    if statement.statement_type.as_deref() != Some(IN_TOTO_STATEMENT_V1) {
        return Err(StatementError::NotInToto);
    }
    if statement.predicate_type.as_deref() != Some(SLSA_PROVENANCE_V1) {
        return Err(StatementError::NotSlsaProvenance);
    }
    let want_name = purl(subject.name, subject.version);
    let want_digest = hex(subject.sha512);
    let subjects = statement.subject.ok_or(StatementError::NoSubject)?;
    let named: Vec<&StatementSubject> = subjects
        .iter()
        .filter(|s| s.name.as_deref() == Some(want_name.as_str()))
        .collect();
    if named.is_empty() {
        return Err(StatementError::NotNamed(want_name));
    }
    if !named.iter().any(|s| s.has_digest("sha512", &want_digest)) {
        return Err(StatementError::OtherSha512(want_name));
    }
    Ok(())
}

/// The statement names a subject whose `sha256` is `artifact`.
pub(super) fn check_subject_sha256(
    payload: &[u8],
    artifact: &[u8; 32],
) -> Result<(), StatementError> {
    let statement: Statement = serde_json::from_slice(payload)?;
    let want = hex(artifact);
    let subjects = statement.subject.ok_or(StatementError::NoSubject)?;
    if !subjects.iter().any(|s| s.has_digest("sha256", &want)) {
        return Err(StatementError::OtherSha256);
    }
    Ok(())
}

/// The envelope's statement, when it is an in-toto one.
pub(super) fn in_toto_payload(envelope: Envelope) -> Result<Vec<u8>, Refusal> {
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(refuse(
            Check::Subject,
            format!("DSSE payload type is `{}`", envelope.payload_type),
        ));
    }
    Ok(envelope.payload)
}

#[cfg(test)]
mod tests {
    use super::super::root::TrustRoot;
    use super::*;

    #[test]
    fn helpers_follow_their_specs() {
        assert_eq!(purl("@scope/pkg", "1.0.0"), "pkg:npm/%40scope/pkg@1.0.0");
        assert_eq!(purl("kanban", "2.0.0-rc.1"), "pkg:npm/kanban@2.0.0-rc.1");
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
        assert!(TrustRoot::from_json("{}").is_err());
    }
}
