//! Versions as npm's `semver` reads them: `clean` for what callers pass in, precedence (build
//! metadata ignored) for every comparison.

use semver::Version;
use std::cmp::Ordering;

/// npm's `semver.clean`: surrounding spaces and leading `=` or `v` are dropped, so `v1.2.3`,
/// `=1.2.3` and ` 1.2.3 ` all mean `1.2.3`. `None` when what remains is not semver.
pub fn clean(input: &str) -> Option<Version> {
    let trimmed = input.trim().trim_start_matches(['=', 'v']).trim_start();
    Version::parse(trimmed).ok()
}

/// Semver precedence: as `Ord` but with build metadata ignored (`2.0.0+build.5` == `2.0.0`), as
/// npm compares.
pub(crate) fn compare(a: &Version, b: &Version) -> Ordering {
    a.cmp_precedence(b)
}

/// Whether version string `a` is newer than `b`; strings that are not semver are never newer.
pub(crate) fn is_newer(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(a), Ok(b)) => compare(&a, &b) == Ordering::Greater,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_accepts_what_npm_accepts() {
        for s in [
            "1.2.3",
            "v1.2.3",
            "=1.2.3",
            "  1.2.3  ",
            "=v1.2.3",
            " v1.2.3",
        ] {
            assert_eq!(clean(s), Some(Version::new(1, 2, 3)), "{s:?}");
        }
        for s in ["", "dev", "1.2", "v", "1.2.3.4", "x1.2.3"] {
            assert_eq!(clean(s), None, "{s:?}");
        }
    }

    #[test]
    fn build_metadata_is_ignored_in_comparisons() {
        let plain = Version::parse("2.0.0").unwrap();
        let built = Version::parse("2.0.0+build.5").unwrap();
        assert_eq!(compare(&built, &plain), Ordering::Equal);
        assert!(!is_newer("2.0.0+build.5", "2.0.0"));
        assert!(is_newer("2.0.1", "2.0.0+build.9"));
        assert!(!is_newer("2.0.0-rc.1", "2.0.0"));
        assert!(!is_newer("nonsense", "1.0.0"));
    }
}
