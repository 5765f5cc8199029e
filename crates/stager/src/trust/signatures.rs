//! The registry's ECDSA signatures over `name@version:integrity`, and the keys that make them.

use crate::registry::Signatures;
use crate::shared::dates::rfc3339_ms;
use crate::shared::error::Result;
use crate::shared::error::{SignatureReason, StageError};
use crate::shared::text::clip;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;
use std::sync::LazyLock;

/// One public key the registry signs with, as `/-/npm/v1/keys` serves it.
#[derive(Debug, Clone)]
pub struct RegistryKey {
    pub keyid: String,
    pub key: VerifyingKey,
    /// Signatures of versions published at or after this time (ms since the epoch) are refused:
    /// the key was retired then, and a leaked retired key must not sign new releases.
    pub expires: Option<i64>,
}

/// The only key type and scheme the npm registry uses.
pub(super) const KEY_TYPE: &str = "ecdsa-sha2-nistp256";

/// The public npm registry's keys, as https://registry.npmjs.org/-/npm/v1/keys served them
/// (checked against real `dist.signatures`, see the tests). The first was retired on 2025-01-29;
/// it still verifies versions published before then. Replace with `registryKeys` when the
/// registry rotates its key before this list is updated.
const PUBLIC_KEYS_JSON: &str = r#"[
  {"expires":"2025-01-29T00:00:00.000Z","keyid":"SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Olb3zMAFFxXKHiIkQO5cJ3Yhl5i6UPp+IhuteBJbuHcA5UogKo0EWtlWwW6KSaKoTNEYL7JlCQiVnkhBktUgg=="},
  {"expires":null,"keyid":"SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g=="}
]"#;

/// The embedded public registry keys.
pub(crate) fn public_keys() -> Vec<RegistryKey> {
    static KEYS: LazyLock<Vec<RegistryKey>> = LazyLock::new(|| {
        let raw: Vec<Value> = serde_json::from_str(PUBLIC_KEYS_JSON).expect("embedded keys");
        raw.iter()
            .map(|k| key_from_json(k).expect("embedded key"))
            .collect()
    });
    KEYS.clone()
}

/// Why a registry key is unusable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("`{0}` must be a string")]
    NotAString(&'static str),
    #[error("each key needs a non-empty `keyid`")]
    NoKeyid,
    #[error("`{field}` must be `{KEY_TYPE}`, got `{got}`")]
    OtherType { field: &'static str, got: String },
    #[error("each key needs `key` (base64 SPKI DER)")]
    NoKey,
    #[error("`key` is not base64")]
    KeyNotBase64,
    #[error("`key` is not a P-256 public key (SPKI DER)")]
    NotP256,
    #[error("`expires` is not an RFC 3339 date")]
    BadExpires,
}

/// A key from an object shaped like one of `/-/npm/v1/keys`' entries; the reason when unusable.
pub(crate) fn key_from_json(v: &Value) -> Result<RegistryKey, KeyError> {
    let text = |name: &'static str| match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(KeyError::NotAString(name)),
    };
    let keyid = text("keyid")?
        .filter(|k| !k.is_empty())
        .ok_or(KeyError::NoKeyid)?;
    for field in ["keytype", "scheme"] {
        if let Some(t) = text(field)? {
            if t != KEY_TYPE {
                return Err(KeyError::OtherType {
                    field,
                    got: clip(t),
                });
            }
        }
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(text("key")?.ok_or(KeyError::NoKey)?)
        .map_err(|_| KeyError::KeyNotBase64)?;
    let key = VerifyingKey::from_public_key_der(&der).map_err(|_| KeyError::NotP256)?;
    let expires = match text("expires")? {
        None => None,
        Some(t) => Some(rfc3339_ms(t).ok_or(KeyError::BadExpires)?),
    };
    Ok(RegistryKey {
        keyid: keyid.to_string(),
        key,
        expires,
    })
}

/// What the registry signs for a version: `${name}@${version}:${integrity}`.
pub(super) fn signature_message(name: &str, version: &str, integrity: &str) -> String {
    format!("{name}@{version}:{integrity}")
}

/// What a version's signatures proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signed {
    /// Every signature verified; the first one's key.
    Verified(String),
    /// The document carries no signature.
    Missing,
}

/// Whether checking `signatures` needs the version's publish time: a key they name expires.
pub(crate) fn needs_publish_time(signatures: &Signatures, keys: &[RegistryKey]) -> bool {
    match signatures {
        Signatures::Present(list) => list.iter().any(|(keyid, _)| {
            keys.iter()
                .any(|k| k.keyid == *keyid && k.expires.is_some())
        }),
        _ => false,
    }
}

/// Checks every signature of `name@version`: each must name a known key, unexpired when the
/// version was published, and verify over the document's integrity. Any failure is ESIGNATURE.
pub(crate) fn verify_signatures(
    name: &str,
    version: &str,
    integrity: Option<&str>,
    signatures: &Signatures,
    keys: &[RegistryKey],
    published: Option<i64>,
) -> Result<Signed, StageError> {
    let fail = |reason: SignatureReason, keyid: Option<&str>| StageError::Signature {
        version: version.to_string(),
        keyid: keyid.map(str::to_string),
        reason,
    };
    let list = match signatures {
        Signatures::Absent => return Ok(Signed::Missing),
        Signatures::Malformed => return Err(fail(SignatureReason::Malformed, None)),
        Signatures::Present(list) if list.is_empty() => return Ok(Signed::Missing),
        Signatures::Present(list) => list,
    };
    // The signature covers the integrity string; without one there is nothing it could vouch for.
    let integrity = integrity.ok_or_else(|| fail(SignatureReason::NoIntegrity, None))?;
    let message = signature_message(name, version, integrity);
    for (keyid, sig) in list {
        let key = keys
            .iter()
            .find(|k| k.keyid == *keyid)
            .ok_or_else(|| fail(SignatureReason::UnknownKey, Some(keyid)))?;
        if let Some(expires) = key.expires {
            // A version with no publish time cannot be shown to predate the key's retirement.
            if published.is_none_or(|p| p >= expires) {
                return Err(fail(SignatureReason::ExpiredKey, Some(keyid)));
            }
        }
        let valid = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .ok()
            .and_then(|der| Signature::from_der(&der).ok())
            .is_some_and(|s| key.key.verify(message.as_bytes(), &s).is_ok());
        if !valid {
            return Err(fail(SignatureReason::Invalid, Some(keyid)));
        }
    }
    Ok(Signed::Verified(list[0].0.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::dates::rfc3339_ms;

    /// A real publish of the public registry, signed with its current key.
    const REAL_NAME: &str = "@anthropic-ai/claude-code";

    const REAL_VERSION: &str = "2.1.98";

    const REAL_INTEGRITY: &str = "sha512-qecREauMWXHplkpjqsuDuUv4ww+NprMl71k9sMuLkZU7qwjLMkTPxRBjuKvZWWMrAPvZWdGZE9LljUTfCQ1lWQ==";

    const REAL_SIG: &str = "MEQCIGvolW/eLJuocfuN94cinl0Vz9arMrshmIhulXk/9JEBAiAW18CskQ+uEkWf90x4Dc0TqDoRBQ7lmCAXhpXpqbEJDA==";

    const CURRENT_KEYID: &str = "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U";

    fn sigs(keyid: &str, sig: &str) -> Signatures {
        Signatures::Present(vec![(keyid.to_string(), sig.to_string())])
    }

    #[test]
    fn the_embedded_key_verifies_a_real_registry_signature() {
        assert_eq!(
            signature_message("a", "1.0.0", "sha512-x"),
            "a@1.0.0:sha512-x"
        );
        let keys = public_keys();
        assert_eq!(keys.len(), 2);
        let verify = |name: &str, version: &str, integrity: Option<&str>, sigs: &Signatures| {
            verify_signatures(name, version, integrity, sigs, &keys, None)
        };
        let real = sigs(CURRENT_KEYID, REAL_SIG);
        let ok = verify(REAL_NAME, REAL_VERSION, Some(REAL_INTEGRITY), &real);
        assert_eq!(ok.unwrap(), Signed::Verified(CURRENT_KEYID.into()));
        assert!(!needs_publish_time(&real, &keys));

        let code = |r: Result<Signed, StageError>| match r {
            Err(StageError::Signature { reason, .. }) => reason.as_str(),
            other => panic!("{other:?}"),
        };
        // Any other version, name or integrity does not verify with the same signature.
        let tampered = REAL_INTEGRITY.replace("qec", "qed");
        for (name, version, integrity) in [
            (REAL_NAME, "2.1.97", REAL_INTEGRITY),
            ("claude-code", REAL_VERSION, REAL_INTEGRITY),
            (REAL_NAME, REAL_VERSION, tampered.as_str()),
        ] {
            let r = verify(name, version, Some(integrity), &real);
            assert_eq!(code(r), "invalid", "{name}@{version}:{integrity}");
        }
        let refusal = |integrity: Option<&str>, sigs: &Signatures| {
            code(verify(REAL_NAME, REAL_VERSION, integrity, sigs))
        };
        let other_key = sigs("SHA256:other", REAL_SIG);
        assert_eq!(refusal(Some(REAL_INTEGRITY), &other_key), "unknown-key");
        let not_base64 = sigs(CURRENT_KEYID, "not base64!");
        assert_eq!(refusal(Some(REAL_INTEGRITY), &not_base64), "invalid");
        assert_eq!(refusal(None, &real), "no-integrity");
        assert_eq!(refusal(None, &Signatures::Malformed), "malformed");
        for missing in [Signatures::Absent, Signatures::Present(vec![])] {
            let r = verify(REAL_NAME, REAL_VERSION, None, &missing);
            assert_eq!(r.unwrap(), Signed::Missing);
        }
    }

    #[test]
    fn an_expiring_key_verifies_only_what_was_published_before_it_expired() {
        let mut keys = public_keys();
        keys[1].expires = Some(1_000);
        let s = sigs(CURRENT_KEYID, REAL_SIG);
        assert!(needs_publish_time(&s, &keys));
        let at = |published| {
            verify_signatures(
                REAL_NAME,
                REAL_VERSION,
                Some(REAL_INTEGRITY),
                &s,
                &keys,
                published,
            )
        };
        assert!(at(Some(999)).is_ok());
        for late in [Some(1_000), Some(5_000), None] {
            assert!(
                matches!(
                    at(late),
                    Err(StageError::Signature {
                        reason: SignatureReason::ExpiredKey,
                        ..
                    })
                ),
                "{late:?}"
            );
        }
    }

    #[test]
    fn keys_are_checked_as_given() {
        let good = serde_json::json!({"keyid":"k","keytype":KEY_TYPE,"scheme":KEY_TYPE,
            "key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g==",
            "expires":"2030-01-01T00:00:00Z"});
        let k = key_from_json(&good).unwrap();
        assert_eq!(k.expires, rfc3339_ms("2030-01-01T00:00:00Z"));
        for (field, value) in [
            ("keyid", serde_json::json!("")),
            ("keytype", serde_json::json!("ssh-rsa")),
            ("key", serde_json::json!("AAAA")),
            ("key", serde_json::json!("%%%")),
            ("expires", serde_json::json!("soon")),
            ("expires", serde_json::json!(5)),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            assert!(key_from_json(&bad).is_err(), "{field}");
        }
    }
}
