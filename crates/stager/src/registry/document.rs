//! The npm registry's package document: which version a dist-tag names, and where its tarball is.

use super::integrity::Expected;
use crate::shared::error::{Result, StageError};
use crate::shared::text::clip;
use serde_json::Value;

/// The abbreviated ("corgi") document is a fraction of the full one's size and has all we read.
pub(crate) const ACCEPT_CORGI: &str =
    "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";
/// The full document: the only one with `time` (publish dates) and `deprecated` messages kept.
pub(crate) const ACCEPT_FULL: &str = "application/json";

const PUBLIC_HOSTS: [&str; 2] = ["registry.npmjs.org", "registry.yarnpkg.com"];

/// The URL of a package's document: scoped names keep their `@` and escape the `/`.
pub(crate) fn document_url(registry: &str, package: &str) -> String {
    format!("{registry}{}", package.replace('/', "%2f"))
}

/// What the dist-tag resolves to. `dist` is read lazily: the up-to-date path must not fail on it.
#[derive(Debug)]
pub(crate) struct Document {
    url: String,
    body: Value,
}

/// The parts of one version's entry that staging needs.
#[derive(Debug, Clone)]
pub(crate) struct Dist {
    pub tarball: String,
    pub integrity: Expected,
    pub unpacked_size: Option<u64>,
    pub file_count: Option<u64>,
    /// Relative paths of the package's `bin` entries, which get the executable bit.
    pub bins: Vec<String>,
    /// Where the registry serves the version's attestations (`dist.attestations.url`).
    pub attestations_url: Option<String>,
}

/// A version's `dist.signatures`, as the document gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signatures {
    Absent,
    /// (`keyid`, `sig`) pairs.
    Present(Vec<(String, String)>),
    /// Not an array of objects with string `keyid` and `sig`.
    Malformed,
}

impl Document {
    pub(crate) fn parse(url: &str, bytes: &[u8]) -> Result<Document> {
        let body: Value = serde_json::from_slice(bytes).map_err(|e| StageError::BadManifest {
            url: url.into(),
            reason: format!("not JSON: {e}"),
        })?;
        if !body.is_object() {
            return Err(bad(url, "not a JSON object"));
        }
        Ok(Document {
            url: url.into(),
            body,
        })
    }

    /// The version string the tag names, not yet checked as semver.
    pub(crate) fn tag_version(&self, tag: &str) -> Result<String> {
        match self.body.get("dist-tags").and_then(|t| t.get(tag)) {
            Some(Value::String(v)) => Ok(v.clone()),
            Some(_) => Err(bad(&self.url, &format!("dist-tag `{tag}` is not a string"))),
            None => Err(bad(&self.url, &format!("no dist-tag `{tag}`"))),
        }
    }

    /// A version's entry (its manifest as the registry keeps it), if the document has one.
    pub(crate) fn entry(&self, version: &str) -> Option<&Value> {
        self.body.get("versions").and_then(|v| v.get(version))
    }

    /// Every version the document lists.
    pub(crate) fn version_keys(&self) -> impl Iterator<Item = &str> {
        self.body
            .get("versions")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys().map(String::as_str))
    }

    /// When a version was published (ms since the epoch), from the full document's `time`.
    pub(crate) fn published_ms(&self, version: &str) -> Option<i64> {
        self.body
            .get("time")
            .and_then(|t| t.get(version))
            .and_then(Value::as_str)
            .and_then(crate::shared::dates::rfc3339_ms)
    }

    /// Whether the version is deprecated: npm keeps the message in `deprecated` (and clears the
    /// field, or leaves it empty, when the deprecation is withdrawn).
    pub(crate) fn is_deprecated(&self, version: &str) -> bool {
        self.deprecation(version).is_some()
    }

    /// The publisher's deprecation message of a deprecated version, as the registry serves it
    /// (`"deprecated"` for a bare `true`); `None` when the version is not deprecated.
    pub(crate) fn deprecation(&self, version: &str) -> Option<&str> {
        match self.entry(version).and_then(|e| e.get("deprecated")) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::Bool(true)) => Some("deprecated"),
            _ => None,
        }
    }

    /// The `dist.integrity` string exactly as the document has it: what the registry signs.
    pub(crate) fn raw_integrity(&self, version: &str) -> Option<&str> {
        self.entry(version)?.get("dist")?.get("integrity")?.as_str()
    }

    pub(crate) fn signatures(&self, version: &str) -> Signatures {
        let Some(sigs) = self
            .entry(version)
            .and_then(|e| e.get("dist"))
            .and_then(|d| d.get("signatures"))
        else {
            return Signatures::Absent;
        };
        let Some(list) = sigs.as_array() else {
            return if sigs.is_null() {
                Signatures::Absent
            } else {
                Signatures::Malformed
            };
        };
        let pairs: Option<Vec<(String, String)>> = list
            .iter()
            .map(|s| {
                Some((
                    s.get("keyid")?.as_str()?.to_string(),
                    s.get("sig")?.as_str()?.to_string(),
                ))
            })
            .collect();
        pairs.map_or(Signatures::Malformed, Signatures::Present)
    }

    pub(crate) fn dist(&self, version: &str) -> Result<Dist> {
        let entry = self
            .entry(version)
            .ok_or_else(|| bad(&self.url, &format!("no entry for version {version}")))?;
        let dist = entry
            .get("dist")
            .ok_or_else(|| self.bad_version(version, "has no `dist`"))?;
        let tarball = dist
            .get("tarball")
            .and_then(Value::as_str)
            .ok_or_else(|| self.bad_version(version, "has no `dist.tarball`"))?
            .to_string();
        Ok(Dist {
            tarball,
            integrity: self.expected_integrity(version, dist)?,
            unpacked_size: dist.get("unpackedSize").and_then(Value::as_u64),
            file_count: dist.get("fileCount").and_then(Value::as_u64),
            bins: bins(entry),
            attestations_url: dist
                .pointer("/attestations/url")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Returns the digest a version's `dist` promises for its tarball.
    fn expected_integrity(&self, version: &str, dist: &Value) -> Result<Expected> {
        // As npm: the SRI when present (a non-string one is a broken document, never a reason
        // to fall back to the weaker sha1), the legacy `shasum` only when there is none.
        match dist.get("integrity") {
            Some(Value::String(sri)) => Expected::from_sri(sri).ok_or_else(|| {
                self.bad_version(version, "has no usable digest in `dist.integrity`")
            }),
            Some(_) => {
                Err(self.bad_version(version, "has a `dist.integrity` that is not a string"))
            }
            None => dist
                .get("shasum")
                .and_then(Value::as_str)
                .and_then(Expected::from_shasum)
                .ok_or_else(|| {
                    self.bad_version(
                        version,
                        "has neither `dist.integrity` nor a usable `dist.shasum`",
                    )
                }),
        }
    }

    /// Returns the BadManifest error for a fault in `version`'s entry, `what` saying which.
    fn bad_version(&self, version: &str, what: &str) -> StageError {
        bad(&self.url, &format!("version {version} {what}"))
    }
}

fn bad(url: &str, reason: &str) -> StageError {
    // Reasons quote the document's tags and versions, which may be any length.
    StageError::BadManifest {
        url: clip(url),
        reason: clip(reason),
    }
}

fn bins(entry: &Value) -> Vec<String> {
    let clean = |s: &str| s.trim_start_matches("./").to_string();
    match entry.get("bin") {
        Some(Value::String(s)) => vec![clean(s)],
        Some(Value::Object(map)) => map.values().filter_map(Value::as_str).map(clean).collect(),
        _ => Vec::new(),
    }
}

/// Mirrors often serve documents whose tarball URLs still name the public registry; fetch those
/// from the configured registry instead, so a locked-down network never needs the public host.
pub(crate) fn rewrite_tarball_url(tarball: &str, registry: &str) -> String {
    let (Ok(t), Ok(r)) = (reqwest::Url::parse(tarball), reqwest::Url::parse(registry)) else {
        return tarball.to_string();
    };
    let public = t.host_str().is_some_and(|h| PUBLIC_HOSTS.contains(&h));
    if !public || t.host_str() == r.host_str() {
        return tarball.to_string();
    }
    let path = t.path().trim_start_matches('/');
    let query = t.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{registry}{path}{query}")
}

/// Whether `url` is served by the registry's own host (and port), the only one that gets the token.
pub(crate) fn same_origin(url: &str, registry: &str) -> bool {
    match (reqwest::Url::parse(url), reqwest::Url::parse(registry)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::integrity::sri_of;

    fn doc(json: &str) -> Document {
        Document::parse("http://r/kanban", json.as_bytes()).unwrap()
    }

    #[test]
    fn resolves_tag_and_dist() {
        let sri = sri_of(b"tgz");
        let d = doc(&format!(
            r#"{{"dist-tags":{{"latest":"1.2.3"}},"versions":{{"1.2.3":{{"bin":{{"kanban":"./dist/cli.js"}},
            "dist":{{"tarball":"http://r/kanban/-/kanban-1.2.3.tgz","integrity":"{sri}","unpackedSize":100,"fileCount":3}}}}}}}}"#
        ));
        assert_eq!(d.tag_version("latest").unwrap(), "1.2.3");
        let dist = d.dist("1.2.3").unwrap();
        assert_eq!(dist.tarball, "http://r/kanban/-/kanban-1.2.3.tgz");
        assert_eq!(dist.integrity, Expected::from_sri(&sri).unwrap());
        assert_eq!(dist.unpacked_size, Some(100));
        assert_eq!(dist.file_count, Some(3));
        assert_eq!(dist.bins, vec!["dist/cli.js".to_string()]);
    }

    #[test]
    fn missing_pieces_are_bad_manifest() {
        let d = doc(
            r#"{"dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"dist":{"tarball":"t"}}}}"#,
        );
        assert_eq!(d.tag_version("next").unwrap_err().code(), "EBADMANIFEST");
        assert_eq!(d.dist("1.0.0").unwrap_err().code(), "EBADMANIFEST");
        assert_eq!(d.dist("2.0.0").unwrap_err().code(), "EBADMANIFEST");
        let e = Document::parse("u", b"<html>").unwrap_err();
        assert_eq!(e.code(), "EBADMANIFEST");
    }

    #[test]
    fn shasum_used_only_without_integrity() {
        let d = doc(
            r#"{"dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"dist":{"tarball":"t","shasum":"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"}}}}"#,
        );
        assert_eq!(
            d.dist("1.0.0").unwrap().integrity.algo(),
            crate::registry::integrity::Algo::Sha1
        );
    }

    #[test]
    fn integrity_that_is_not_a_string_is_bad_manifest() {
        for value in ["null", "42", "[\"sha512-x\"]", "{}", "true"] {
            let d = doc(&format!(
                r#"{{"dist-tags":{{"latest":"1.0.0"}},"versions":{{"1.0.0":{{"dist":{{"tarball":"t",
                "integrity":{value},"shasum":"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"}}}}}}}}"#
            ));
            assert_eq!(
                d.dist("1.0.0").unwrap_err().code(),
                "EBADMANIFEST",
                "{value}"
            );
        }
    }

    #[test]
    fn shasum_is_ignored_when_integrity_is_present() {
        // An SRI with nothing usable is an error, not a fallback to the weaker sha1.
        let d = doc(
            r#"{"dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"dist":{"tarball":"t",
            "integrity":"md5-AAAA","shasum":"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"}}}}"#,
        );
        assert_eq!(d.dist("1.0.0").unwrap_err().code(), "EBADMANIFEST");
    }

    #[test]
    fn malformed_shasum_is_bad_manifest_not_a_panic() {
        let shasum = format!("a{}a", "é".repeat(19));
        let d = doc(&format!(
            r#"{{"dist-tags":{{"latest":"1.0.0"}},"versions":{{"1.0.0":{{"dist":{{"tarball":"t","shasum":"{shasum}"}}}}}}}}"#
        ));
        assert_eq!(d.dist("1.0.0").unwrap_err().code(), "EBADMANIFEST");
    }

    #[test]
    fn document_url_escapes_scope() {
        assert_eq!(document_url("http://r/", "kanban"), "http://r/kanban");
        assert_eq!(document_url("http://r/", "@k/rt"), "http://r/@k%2frt");
    }

    #[test]
    fn public_tarball_urls_follow_the_mirror() {
        let t = "https://registry.npmjs.org/kanban/-/kanban-1.0.0.tgz";
        assert_eq!(
            rewrite_tarball_url(t, "https://mirror.example/npm/"),
            "https://mirror.example/npm/kanban/-/kanban-1.0.0.tgz"
        );
        assert_eq!(rewrite_tarball_url(t, "https://registry.npmjs.org/"), t);
        let other = "https://cdn.example/kanban-1.0.0.tgz";
        assert_eq!(rewrite_tarball_url(other, "https://mirror.example/"), other);
    }

    #[test]
    fn origin_check_includes_port() {
        assert!(same_origin("http://127.0.0.1:1/a", "http://127.0.0.1:1/"));
        assert!(!same_origin("http://127.0.0.1:2/a", "http://127.0.0.1:1/"));
        assert!(!same_origin("https://evil/a", "https://reg/"));
    }
}
