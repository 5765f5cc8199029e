//! The release-age cool-down and the fallbacks it leaves: which of the document's releases may be
//! staged, by age, deprecation and precedence.

use crate::registry::Document;
use crate::shared::version;

/// The version to stage under a release-age cool-down: the newest version that is at least
/// `min_age_ms` old by the document's `time`, not deprecated, not newer than the tag's version
/// and not a prerelease unless the tag's version is one. A version without a `time` counts as too
/// young. `None` when no version qualifies.
pub(crate) fn cooled_candidate(
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
pub(crate) fn candidate_below(
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
pub(crate) fn all_newer_deprecated(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::provenance::testkit::civil_from_days;

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
}
