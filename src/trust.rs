//! Supply-chain protections decided from the registry's document alone: the release-age
//! cool-down, the registry's signatures and the compatibility guard.

use crate::error::{clip, StageError};
use crate::registry::{Document, Signatures};
use crate::version;
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
pub const KEY_TYPE: &str = "ecdsa-sha2-nistp256";

/// The public npm registry's keys, as https://registry.npmjs.org/-/npm/v1/keys served them
/// (checked against real `dist.signatures`, see the tests). The first was retired on 2025-01-29;
/// it still verifies versions published before then. Replace with `registryKeys` when the
/// registry rotates its key before this list is updated.
const PUBLIC_KEYS_JSON: &str = r#"[
  {"expires":"2025-01-29T00:00:00.000Z","keyid":"SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Olb3zMAFFxXKHiIkQO5cJ3Yhl5i6UPp+IhuteBJbuHcA5UogKo0EWtlWwW6KSaKoTNEYL7JlCQiVnkhBktUgg=="},
  {"expires":null,"keyid":"SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g=="}
]"#;

/// The embedded public registry keys.
pub fn public_keys() -> Vec<RegistryKey> {
    static KEYS: LazyLock<Vec<RegistryKey>> = LazyLock::new(|| {
        let raw: Vec<Value> = serde_json::from_str(PUBLIC_KEYS_JSON).expect("embedded keys");
        raw.iter()
            .map(|k| key_from_json(k).expect("embedded key"))
            .collect()
    });
    KEYS.clone()
}

/// A key from an object shaped like one of `/-/npm/v1/keys`' entries; the reason when unusable.
pub fn key_from_json(v: &Value) -> Result<RegistryKey, String> {
    let text = |name: &str| match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("`{name}` must be a string")),
    };
    let keyid = text("keyid")?
        .filter(|k| !k.is_empty())
        .ok_or("each key needs a non-empty `keyid`")?;
    for name in ["keytype", "scheme"] {
        if let Some(t) = text(name)? {
            if t != KEY_TYPE {
                return Err(format!("`{name}` must be `{KEY_TYPE}`, got `{}`", clip(t)));
            }
        }
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(text("key")?.ok_or("each key needs `key` (base64 SPKI DER)")?)
        .map_err(|_| "`key` is not base64".to_string())?;
    let key = VerifyingKey::from_public_key_der(&der)
        .map_err(|_| "`key` is not a P-256 public key (SPKI DER)".to_string())?;
    let expires = match text("expires")? {
        None => None,
        Some(t) => Some(rfc3339_ms(t).ok_or("`expires` is not an RFC 3339 date")?),
    };
    Ok(RegistryKey {
        keyid: keyid.to_string(),
        key,
        expires,
    })
}

/// What the registry signs for a version: `${name}@${version}:${integrity}`.
pub fn signature_message(name: &str, version: &str, integrity: &str) -> String {
    format!("{name}@{version}:{integrity}")
}

/// What a version's signatures proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// Every signature verified; the first one's key.
    Verified(String),
    /// The document carries no signature.
    Missing,
}

/// Whether checking `signatures` needs the version's publish time: a key they name expires.
pub fn needs_publish_time(signatures: &Signatures, keys: &[RegistryKey]) -> bool {
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
pub fn verify_signatures(
    name: &str,
    version: &str,
    integrity: Option<&str>,
    signatures: &Signatures,
    keys: &[RegistryKey],
    published: Option<i64>,
) -> Result<Signed, StageError> {
    let fail = |reason: &'static str, keyid: Option<&str>| StageError::Signature {
        version: version.to_string(),
        keyid: keyid.map(str::to_string),
        reason,
    };
    let list = match signatures {
        Signatures::Absent => return Ok(Signed::Missing),
        Signatures::Malformed => return Err(fail("malformed", None)),
        Signatures::Present(list) if list.is_empty() => return Ok(Signed::Missing),
        Signatures::Present(list) => list,
    };
    // The signature covers the integrity string; without one there is nothing it could vouch for.
    let integrity = integrity.ok_or_else(|| fail("no-integrity", None))?;
    let message = signature_message(name, version, integrity);
    for (keyid, sig) in list {
        let key = keys
            .iter()
            .find(|k| k.keyid == *keyid)
            .ok_or_else(|| fail("unknown-key", Some(keyid)))?;
        if let Some(expires) = key.expires {
            // A version with no publish time cannot be shown to predate the key's retirement.
            if published.is_none_or(|p| p >= expires) {
                return Err(fail("expired-key", Some(keyid)));
            }
        }
        let valid = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .ok()
            .and_then(|der| Signature::from_der(&der).ok())
            .is_some_and(|s| key.key.verify(message.as_bytes(), &s).is_ok());
        if !valid {
            return Err(fail("invalid", Some(keyid)));
        }
    }
    Ok(Signed::Verified(list[0].0.clone()))
}

/// The version to stage under a release-age cool-down: the newest version that is at least
/// `min_age_ms` old by the document's `time`, not deprecated, not newer than the tag's version
/// and not a prerelease unless the tag's version is one. A version without a `time` counts as too
/// young. `None` when no version qualifies.
pub fn cooled_candidate(
    doc: &Document,
    tag: &semver::Version,
    now_ms: i64,
    min_age_ms: i64,
) -> Option<String> {
    candidate_below(doc, tag, None, now_ms, Some(min_age_ms))
}

/// The newest release older than `below` (when given) that the tag's choice could fall back to:
/// not newer than the tag's version, not a prerelease unless the tag's version is one, not
/// deprecated and, under a cool-down (`min_age_ms`), at least that old. `None` when none is.
pub fn candidate_below(
    doc: &Document,
    tag: &semver::Version,
    below: Option<&semver::Version>,
    now_ms: i64,
    min_age_ms: Option<i64>,
) -> Option<String> {
    releases_up_to(doc, tag)
        .filter(|(v, _)| below.is_none_or(|b| version::compare(v, b) == std::cmp::Ordering::Less))
        .filter(|(_, key)| !doc.is_deprecated(key))
        .filter(|(_, key)| {
            min_age_ms.is_none_or(|age| {
                doc.published_ms(key)
                    .is_some_and(|t| now_ms.saturating_sub(t) >= age)
            })
        })
        .max_by(|(a, _), (b, _)| version::compare(a, b))
        .map(|(_, key)| key.to_string())
}

/// The releases newer than `current` (every one when unknown) and not newer than the tag's
/// version, newest first, when there are some and each is deprecated; else empty. Those are why
/// a check answers `up-to-date` although the registry has newer versions.
pub fn all_newer_deprecated(
    doc: &Document,
    tag: &semver::Version,
    current: Option<&semver::Version>,
) -> Vec<String> {
    let mut newer: Vec<(semver::Version, &str)> = releases_up_to(doc, tag)
        .filter(|(v, _)| {
            current.is_none_or(|c| version::compare(v, c) == std::cmp::Ordering::Greater)
        })
        .collect();
    if newer.iter().any(|(_, key)| !doc.is_deprecated(key)) {
        return Vec::new();
    }
    newer.sort_by(|(a, _), (b, _)| version::compare(b, a));
    newer.into_iter().map(|(_, key)| key.to_string()).collect()
}

/// The document's semver versions not newer than the tag's, prereleases only when the tag's
/// version is one.
fn releases_up_to<'d>(
    doc: &'d Document,
    tag: &semver::Version,
) -> impl Iterator<Item = (semver::Version, &'d str)> + 'd {
    let (tag, allow_pre) = (tag.clone(), !tag.pre.is_empty());
    doc.version_keys()
        .filter_map(|key| Some((semver::Version::parse(key).ok()?, key)))
        .filter(move |(v, _)| version::compare(v, &tag) != std::cmp::Ordering::Greater)
        .filter(move |(v, _)| allow_pre || v.pre.is_empty())
}

/// What the compatibility guard checks a runtime against; an unknown version is not checked.
#[derive(Debug, Clone, Default)]
pub struct Compat {
    pub host_node: Option<nodejs_semver::Version>,
    pub node_pty: Option<nodejs_semver::Version>,
}

/// The guard and range of a runtime the host cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `engines.node` or `node-pty`.
    pub guard: &'static str,
    pub range: String,
    /// The host's Node version or the bundled node-pty's version, which the range excludes.
    pub provided: String,
}

impl Refusal {
    pub fn into_error(self, version: &str) -> StageError {
        StageError::Incompatible {
            version: version.to_string(),
            guard: self.guard,
            range: self.range,
            provided: self.provided,
        }
    }
}

pub const GUARD_ENGINES: &str = "engines.node";
pub const GUARD_NODE_PTY: &str = "node-pty";

/// Whether `range` (npm syntax) admits `provided`. Prereleases count, as npm's own engines check
/// counts them: the question is whether the runtime can run, not which version npm would pick.
/// A range that does not parse admits nothing: a runtime whose needs cannot be read is not staged.
pub fn admits(range: &str, provided: &nodejs_semver::Version) -> bool {
    let range = range.trim();
    let range = if range.is_empty() { "*" } else { range };
    nodejs_semver::Range::parse(range).is_ok_and(|r| r.satisfies_with_prerelease(provided, true))
}

/// Checks a version's manifest (its document entry or its own package.json) against the host's
/// Node version and the bundled node-pty's version; either may be unknown, and is then not checked.
pub fn check_compat(
    manifest: &Value,
    host_node: Option<&nodejs_semver::Version>,
    node_pty: Option<&nodejs_semver::Version>,
) -> Result<(), Refusal> {
    if let (Some(host), Some(Value::String(range))) = (
        host_node,
        manifest.get("engines").and_then(|e| e.get("node")),
    ) {
        check_range(GUARD_ENGINES, range, host)?;
    }
    if let Some(pty) = node_pty {
        for field in ["dependencies", "optionalDependencies", "peerDependencies"] {
            if let Some(Value::String(range)) =
                manifest.get(field).and_then(|d| d.get(GUARD_NODE_PTY))
            {
                check_range(GUARD_NODE_PTY, range, pty)?;
            }
        }
    }
    Ok(())
}

/// Re-checks a refusal remembered in the store against today's versions: the app may have been
/// updated since (a newer Electron, a newer node-pty), and then the runtime is no longer refused.
pub fn still_refused(
    guard: &str,
    range: &str,
    host_node: Option<&nodejs_semver::Version>,
    node_pty: Option<&nodejs_semver::Version>,
) -> Option<Refusal> {
    let (guard, provided) = match guard {
        GUARD_ENGINES => (GUARD_ENGINES, host_node?),
        GUARD_NODE_PTY => (GUARD_NODE_PTY, node_pty?),
        _ => return None,
    };
    check_range(guard, range, provided).err()
}

fn check_range(
    guard: &'static str,
    range: &str,
    provided: &nodejs_semver::Version,
) -> Result<(), Refusal> {
    if admits(range, provided) {
        Ok(())
    } else {
        Err(Refusal {
            guard,
            range: range.to_string(),
            provided: provided.to_string(),
        })
    }
}

/// An RFC 3339 timestamp (`2025-01-29T00:00:00.000Z`, any offset, optional fraction) in ms since
/// the Unix epoch. `None` for anything else: the registry's dates are always of this form.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(b, 0..4)?, digits(b, 5..7)?, digits(b, 8..10)?);
    let (hour, minute, second) = (digits(b, 11..13)?, digits(b, 14..16)?, digits(b, 17..19)?);
    let (millis, end) = fraction_ms(b, 19)?;
    let offset_min = offset_minutes(b, end)?;
    let days_in_month = days_in_month(year, month)?;
    // Second 60 is a leap second; it is folded into the next minute's first.
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Returns the number the ASCII digits at `r` spell; `None` when anything else is there.
fn digits(b: &[u8], r: std::ops::Range<usize>) -> Option<i64> {
    let part = b.get(r)?;
    if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(part).ok()?.parse().ok()
}

/// Returns the milliseconds of the `.fff…` fraction at `i` (0 when there is none) and the index
/// after it.
fn fraction_ms(b: &[u8], i: usize) -> Option<(i64, usize)> {
    if b.get(i) != Some(&b'.') {
        return Some((0, i));
    }
    let start = i + 1;
    let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    if end == start {
        return None;
    }
    // Milliseconds: the first three digits, right-padded.
    let digits = std::str::from_utf8(&b[start..end.min(start + 3)]).ok()?;
    Some((format!("{digits:0<3}").parse().ok()?, end))
}

/// Returns the UTC offset in minutes of the `Z` or `±hh:mm` that is all of `b` from `i` on.
fn offset_minutes(b: &[u8], i: usize) -> Option<i64> {
    match b.get(i..)? {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let h = digits(b, i + 1..i + 3)?;
            let m = digits(b, i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return None;
            }
            Some(if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            })
        }
        _ => None,
    }
}

/// Returns how many days `month` has in `year`; `None` when `month` is not one.
fn days_in_month(year: i64, month: i64) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if leap => Some(29),
        2 => Some(28),
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_ms("2025-01-29T00:00:00.000Z"),
            Some(1_738_108_800_000)
        );
        assert_eq!(
            rfc3339_ms("2026-08-14T15:52:32.013Z"),
            Some(1_786_722_752_013)
        );
        assert_eq!(
            rfc3339_ms("2024-02-29T12:00:00.5+02:00"),
            rfc3339_ms("2024-02-29T10:00:00.500Z")
        );
        assert_eq!(rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        for bad in [
            "",
            "2025-01-29",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-29T24:00:00Z",
            "2025-01-29T00:00:00",
            "2025-01-29T00:00:00.Z",
            "2025-01-29T00:00:00+0200",
            "2025-01-29T00:00:00Zjunk",
            "２０２５-01-29T00:00:00Z",
            "+025-01-29T00:00:00Z",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }

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
            Err(StageError::Signature { reason, .. }) => reason,
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
                        reason: "expired-key",
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

    fn doc(json: serde_json::Value) -> Document {
        Document::parse("http://r/kanban", json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn cool_down_picks_the_newest_old_enough_version() {
        let day = 86_400_000i64;
        let now = 100 * day;
        let iso = |ms: i64| {
            // Days only: every test time is a whole number of days after the epoch.
            let (y, m, d) = civil_from_days(ms / day);
            format!("{y:04}-{m:02}-{d:02}T00:00:00.000Z")
        };
        let d = doc(serde_json::json!({
            "dist-tags": {"latest": "2.0.0", "next": "3.0.0-rc.2"},
            "time": {
                "1.0.0": iso(10 * day), "1.1.0": iso(20 * day), "1.2.0": iso(30 * day),
                "1.3.0-rc.1": iso(40 * day), "1.4.0": iso(50 * day), "2.0.0": iso(99 * day),
                "3.0.0-rc.1": iso(60 * day), "3.0.0-rc.2": iso(99 * day), "junk": iso(0)
            },
            "versions": {
                "1.0.0": {}, "1.1.0": {}, "1.2.0": {}, "1.3.0-rc.1": {},
                "1.4.0": {"deprecated": "broken"}, "1.5.0": {}, "2.0.0": {},
                "3.0.0-rc.1": {}, "3.0.0-rc.2": {}, "junk": {}
            }
        }));
        let tag = |v: &str| semver::Version::parse(v).unwrap();
        // 2.0.0 is a day old; 1.5.0 has no time; 1.4.0 is deprecated; 1.3.0-rc.1 a prerelease.
        assert_eq!(
            cooled_candidate(&d, &tag("2.0.0"), now, 7 * day).as_deref(),
            Some("1.2.0")
        );
        // Old enough: the tag's own version.
        assert_eq!(
            cooled_candidate(&d, &tag("2.0.0"), now, day).as_deref(),
            Some("2.0.0")
        );
        // A prerelease tag admits prereleases, never newer than itself.
        assert_eq!(
            cooled_candidate(&d, &tag("3.0.0-rc.2"), now, 7 * day).as_deref(),
            Some("3.0.0-rc.1")
        );
        assert_eq!(cooled_candidate(&d, &tag("2.0.0"), now, 95 * day), None);
    }

    #[test]
    fn fallbacks_are_older_releases_that_would_qualify() {
        let d = doc(serde_json::json!({
            "dist-tags": {"latest": "2.0.0"},
            "versions": {
                "1.0.0": {}, "1.4.0": {"deprecated": "broken"}, "1.5.0-rc.1": {}, "1.5.0": {},
                "2.0.0": {}, "2.1.0": {}
            }
        }));
        let v = |s: &str| semver::Version::parse(s).unwrap();
        let below = |b: &str| candidate_below(&d, &v("2.0.0"), Some(&v(b)), 0, None);
        assert_eq!(below("2.0.0").as_deref(), Some("1.5.0"));
        // Neither the deprecated 1.4.0 nor the prerelease: 1.0.0.
        assert_eq!(below("1.5.0").as_deref(), Some("1.0.0"));
        assert_eq!(below("1.0.0"), None);
        // Without `time`, no release is old enough for a cool-down.
        assert_eq!(
            candidate_below(&d, &v("2.0.0"), Some(&v("2.0.0")), 0, Some(1)),
            None
        );
    }

    #[test]
    fn newer_releases_all_deprecated() {
        let d = doc(serde_json::json!({
            "dist-tags": {"latest": "2.0.0"},
            "versions": {
                "1.0.0": {}, "1.5.0": {"deprecated": "broken"}, "2.0.0": {"deprecated": "too"},
                "2.1.0": {}, "2.0.0-rc.1": {}
            }
        }));
        let v = |s: &str| semver::Version::parse(s).unwrap();
        let tag = v("2.0.0");
        assert_eq!(
            all_newer_deprecated(&d, &tag, Some(&v("1.0.0"))),
            ["2.0.0", "1.5.0"]
        );
        assert_eq!(
            all_newer_deprecated(&d, &tag, Some(&v("2.0.0"))),
            Vec::<String>::new()
        );
        // 1.0.0 is newer than an unknown running version, and not deprecated.
        assert_eq!(all_newer_deprecated(&d, &tag, None), Vec::<String>::new());
    }

    /// The inverse of `days_from_civil`, for the tests' dates.
    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    #[test]
    fn compat_ranges_use_npm_syntax() {
        let v = |s: &str| nodejs_semver::Version::parse(s).unwrap();
        let node = v("22.12.0");
        let pty = v("1.2.0-beta.11");
        let ok = serde_json::json!({"engines": {"node": ">=20 <23 || ^24"},
            "dependencies": {"node-pty": "^1.2.0-beta.10"},
            "peerDependencies": {"node-pty": "1.x || >=1.2.0-beta.1"}});
        assert_eq!(check_compat(&ok, Some(&node), Some(&pty)), Ok(()));
        // Unknown versions are not checked.
        let strict = serde_json::json!({"engines": {"node": ">=99"},
            "optionalDependencies": {"node-pty": "^2"}});
        assert_eq!(check_compat(&strict, None, None), Ok(()));
        assert_eq!(
            check_compat(&strict, Some(&node), Some(&pty)),
            Err(Refusal {
                guard: GUARD_ENGINES,
                range: ">=99".into(),
                provided: "22.12.0".into()
            })
        );
        let r = check_compat(&strict, None, Some(&pty)).unwrap_err();
        assert_eq!((r.guard, r.range.as_str()), (GUARD_NODE_PTY, "^2"));
        // A range that cannot be read admits nothing; an empty one admits anything.
        assert!(!admits("github:microsoft/node-pty", &pty));
        assert!(admits("", &pty));
        assert!(admits("~22.12", &node));
        assert!(!admits("^22.13.0", &node));
        assert!(still_refused(GUARD_ENGINES, ">=99", Some(&node), None).is_some());
        assert!(still_refused(GUARD_ENGINES, ">=99", Some(&v("99.0.0")), None).is_none());
        assert!(still_refused(GUARD_NODE_PTY, "^2", None, None).is_none());
    }
}
