//! DSSE envelopes and in-toto statements: what the envelope's signature covers, and which
//! subjects the statement names.

use super::encoding::hex;
use super::refusal::{refuse, Check, Refusal};
use serde_json::Value;

pub(super) const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

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

pub(super) fn check_statement(payload: &[u8], subject: &Subject) -> Result<(), String> {
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

/// The statement names a subject whose `sha256` is `artifact`.
pub(super) fn check_subject_sha256(payload: &[u8], artifact: &[u8; 32]) -> Result<(), String> {
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
    use super::super::encoding::rfc3339_seconds;
    use super::super::root::TrustRoot;
    use super::*;
    use crate::testkit::INTEGRATED;

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
