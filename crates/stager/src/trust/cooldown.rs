//! The release-age cool-down, the phased rollout, and the fallbacks they leave: which of the
//! document's releases may be staged, by age, deprecation and precedence.

use crate::registry::Document;
use crate::shared::version;

/// How long after its publication (the document's `time`) a release may be staged by this
/// store: the cool-down, then this store's share of the phased rollout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Delay {
    /// The release-age cool-down: a release without a `time` never passes it.
    pub min_age_ms: Option<i64>,
    /// The bucket's share of the rollout: a release without a `time` passes it, as it was
    /// staged before rollouts existed.
    pub rollout_ms: Option<i64>,
}

/// When a release may be staged by this store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eligibility {
    Now,
    /// Not before this instant, in ms since the Unix epoch.
    At(i64),
    /// Not while the document gives it no `time` (under a cool-down).
    Never,
}

impl Delay {
    /// No delay: every release is eligible at once.
    pub(crate) fn is_off(&self) -> bool {
        self.min_age_ms.is_none() && self.rollout_ms.is_none()
    }

    /// When the release `key` of `doc` is eligible: at its publication plus the cool-down plus
    /// the rollout's share.
    pub(crate) fn eligibility(&self, doc: &Document, key: &str, now_ms: i64) -> Eligibility {
        // No delay asks nothing of the clock: a release published "in the future" by the
        // registry's clock against a desktop's that runs behind is eligible all the same.
        if self.is_off() {
            return Eligibility::Now;
        }
        let Some(published) = doc.published_ms(key) else {
            return match self.min_age_ms {
                Some(_) => Eligibility::Never,
                None => Eligibility::Now,
            };
        };
        let delay = self
            .min_age_ms
            .unwrap_or(0)
            .saturating_add(self.rollout_ms.unwrap_or(0));
        match published.saturating_add(delay) {
            at if at <= now_ms => Eligibility::Now,
            at => Eligibility::At(at),
        }
    }
}

/// A store's share of a rollout over `hours`: `bucket` (in [0, 1)) of it, in ms. Bucket 0 gets
/// a release with the cool-down alone, a bucket just below 1 nearly `hours` later.
pub(crate) fn rollout_ms(bucket: f64, hours: u64) -> i64 {
    let ms = (bucket.clamp(0.0, 1.0) * hours as f64 * 3_600_000.0).floor();
    // At most a year of hours in ms, far inside i64; the cast saturates on anything else.
    ms as i64
}

/// The version to stage under a delay: the newest version that is eligible by the document's
/// `time`, not deprecated, not newer than the tag's version and not a prerelease unless the
/// tag's version is one. `None` when no version qualifies.
pub(crate) fn cooled_candidate(
    doc: &Document,
    tag: &semver::Version,
    now_ms: i64,
    delay: &Delay,
) -> Option<String> {
    candidate_below(doc, tag, None, now_ms, delay)
}

/// The newest release older than `below` (when given) that the tag's choice could fall back to:
/// not newer than the tag's version, not a prerelease unless the tag's version is one, not
/// deprecated and eligible now under `delay`. `None` when none is.
pub(crate) fn candidate_below(
    doc: &Document,
    tag: &semver::Version,
    below: Option<&semver::Version>,
    now_ms: i64,
    delay: &Delay,
) -> Option<String> {
    releases_up_to(doc, tag)
        .filter(|(v, _)| below.is_none_or(|b| version::compare(v, b) == std::cmp::Ordering::Less))
        .filter(|(_, key)| !doc.is_deprecated(key))
        .filter(|(_, key)| delay.eligibility(doc, key, now_ms) == Eligibility::Now)
        .max_by(|(a, _), (b, _)| version::compare(a, b))
        .map(|(_, key)| key.to_string())
}

/// The newest release newer than `above` (every one when `None`) that the tag's choice would
/// take but `delay` holds back, with the instant it becomes eligible: what the outcome's
/// `pending` names.
pub(crate) fn held_back(
    doc: &Document,
    tag: &semver::Version,
    above: Option<&semver::Version>,
    now_ms: i64,
    delay: &Delay,
) -> Option<(String, i64)> {
    releases_up_to(doc, tag)
        .filter(|(v, _)| above.is_none_or(|a| version::compare(v, a).is_gt()))
        .filter(|(_, key)| !doc.is_deprecated(key))
        .filter_map(|(v, key)| match delay.eligibility(doc, key, now_ms) {
            Eligibility::At(at) => Some((v, key, at)),
            _ => None,
        })
        .max_by(|(a, ..), (b, ..)| version::compare(a, b))
        .map(|(_, key, at)| (key.to_string(), at))
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
    use crate::shared::dates::iso_utc;

    fn doc(json: serde_json::Value) -> Document {
        Document::parse("http://r/kanban", json.to_string().as_bytes()).unwrap()
    }

    fn age(ms: i64) -> Delay {
        Delay {
            min_age_ms: Some(ms),
            rollout_ms: None,
        }
    }

    #[test]
    fn cool_down_picks_the_newest_old_enough_version() {
        let day = 86_400_000i64;
        let now = 100 * day;
        let iso = iso_utc;
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
            cooled_candidate(&d, &tag("2.0.0"), now, &age(7 * day)).as_deref(),
            Some("1.2.0")
        );
        // Old enough: the tag's own version.
        assert_eq!(
            cooled_candidate(&d, &tag("2.0.0"), now, &age(day)).as_deref(),
            Some("2.0.0")
        );
        // A prerelease tag admits prereleases, never newer than itself.
        assert_eq!(
            cooled_candidate(&d, &tag("3.0.0-rc.2"), now, &age(7 * day)).as_deref(),
            Some("3.0.0-rc.1")
        );
        assert_eq!(
            cooled_candidate(&d, &tag("2.0.0"), now, &age(95 * day)),
            None
        );
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
        let below = |b: &str| candidate_below(&d, &v("2.0.0"), Some(&v(b)), 0, &Delay::default());
        assert_eq!(below("2.0.0").as_deref(), Some("1.5.0"));
        // Neither the deprecated 1.4.0 nor the prerelease: 1.0.0.
        assert_eq!(below("1.5.0").as_deref(), Some("1.0.0"));
        assert_eq!(below("1.0.0"), None);
        // Without `time`, no release is old enough for a cool-down.
        assert_eq!(
            candidate_below(&d, &v("2.0.0"), Some(&v("2.0.0")), 0, &age(1)),
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

    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_rollout_spreads_a_release_over_its_hours_by_bucket() {
        assert_eq!(rollout_ms(0.0, 48), 0);
        assert_eq!(rollout_ms(0.5, 48), 24 * HOUR);
        assert_eq!(rollout_ms(0.99, 48), (47.52 * HOUR as f64) as i64);
        assert_eq!(rollout_ms(0.999_999, 0), 0);
        assert!(rollout_ms(0.999_999_999, 8760) < 8760 * HOUR);
        // Out of range never escapes the rollout's hours.
        assert_eq!(rollout_ms(f64::NAN, 48), 0);
        assert_eq!(rollout_ms(7.0, 48), 48 * HOUR);
    }

    #[test]
    fn without_a_delay_a_release_published_ahead_of_this_clock_is_eligible() {
        let now = 1_000 * HOUR;
        // The registry's clock is an hour ahead of this desktop's.
        let d = doc(serde_json::json!({
            "dist-tags": {"latest": "2.0.0"},
            "time": {"2.0.0": iso_utc(now + HOUR)},
            "versions": {"2.0.0": {}}
        }));
        let tag = semver::Version::parse("2.0.0").unwrap();
        let off = Delay::default();
        assert_eq!(off.eligibility(&d, "2.0.0", now), Eligibility::Now);
        assert_eq!(
            cooled_candidate(&d, &tag, now, &off).as_deref(),
            Some("2.0.0")
        );
    }

    #[test]
    fn eligibility_is_publication_plus_cool_down_plus_the_buckets_share() {
        let now = 1_000 * HOUR;
        let d = doc(serde_json::json!({
            "dist-tags": {"latest": "2.0.0"},
            "time": {"1.0.0": iso_utc(now - 49 * HOUR), "1.5.0": iso_utc(now - 25 * HOUR),
                     "2.0.0": iso_utc(now - HOUR)},
            "versions": {"1.0.0": {}, "1.5.0": {}, "2.0.0": {}, "2.1.0": {}}
        }));
        let v = |s: &str| semver::Version::parse(s).unwrap();
        let delay = |bucket: f64, cool_down_h: Option<i64>| Delay {
            min_age_ms: cool_down_h.map(|h| h * HOUR),
            rollout_ms: Some(rollout_ms(bucket, 48)),
        };
        let tag = v("2.0.0");
        // Bucket 0 takes the release at once; 0.5 a day later; 0.99 nearly two days later.
        assert_eq!(
            cooled_candidate(&d, &tag, now, &delay(0.0, None)).as_deref(),
            Some("2.0.0")
        );
        assert_eq!(
            cooled_candidate(&d, &tag, now, &delay(0.5, None)).as_deref(),
            Some("1.5.0")
        );
        assert_eq!(
            cooled_candidate(&d, &tag, now, &delay(0.99, None)).as_deref(),
            Some("1.0.0")
        );
        assert_eq!(
            delay(0.5, None).eligibility(&d, "2.0.0", now),
            Eligibility::At(now + 23 * HOUR)
        );
        // The cool-down comes first: bucket 0 under a 2 h cool-down waits an hour more.
        assert_eq!(
            delay(0.0, Some(2)).eligibility(&d, "2.0.0", now),
            Eligibility::At(now + HOUR)
        );
        assert_eq!(
            held_back(&d, &tag, Some(&v("1.0.0")), now, &delay(0.99, None)),
            Some(("2.0.0".to_string(), now - HOUR + rollout_ms(0.99, 48)))
        );
        // Nothing newer than what is taken is held back.
        assert_eq!(
            held_back(&d, &tag, Some(&v("2.0.0")), now, &delay(0.0, None)),
            None
        );
        // Without a `time`, the rollout alone lets a release through; a cool-down never does.
        let untimed = Delay {
            min_age_ms: None,
            rollout_ms: Some(rollout_ms(0.9, 48)),
        };
        assert_eq!(untimed.eligibility(&d, "2.1.0", now), Eligibility::Now);
        assert_eq!(
            delay(0.9, Some(1)).eligibility(&d, "2.1.0", now),
            Eligibility::Never
        );
        // A time at the edge of the range saturates instead of overflowing.
        let edge = Delay {
            min_age_ms: Some(i64::MAX),
            rollout_ms: Some(i64::MAX),
        };
        assert_eq!(
            edge.eligibility(&d, "1.0.0", now),
            Eligibility::At(i64::MAX)
        );
    }
}
