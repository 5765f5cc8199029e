//! The compatibility guard: a runtime whose `engines.node` or `node-pty` range the host cannot
//! satisfy is refused before it is downloaded.

use crate::shared::error::Result;
use crate::shared::error::{CompatGuard, StageError};
use serde_json::Value;

/// What the compatibility guard checks a runtime against; an unknown version is not checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compat {
    pub host_node: Option<nodejs_semver::Version>,
    pub node_pty: Option<nodejs_semver::Version>,
}

/// The guard and range of a runtime the host cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub guard: CompatGuard,
    pub range: String,
    /// The host's Node version or the bundled node-pty's version, which the range excludes.
    pub provided: String,
}

impl Refusal {
    pub(crate) fn into_error(self, version: &str) -> StageError {
        StageError::Incompatible {
            version: version.to_string(),
            guard: self.guard,
            range: self.range,
            provided: self.provided,
        }
    }
}

/// Whether `range` (npm syntax) admits `provided`. Prereleases count, as npm's own engines check
/// counts them: the question is whether the runtime can run, not which version npm would pick.
/// A range that does not parse admits nothing: a runtime whose needs cannot be read is not staged.
pub(super) fn admits(range: &str, provided: &nodejs_semver::Version) -> bool {
    let range = range.trim();
    let range = if range.is_empty() { "*" } else { range };
    nodejs_semver::Range::parse(range).is_ok_and(|r| r.satisfies_with_prerelease(provided, true))
}

/// Checks a version's manifest (its document entry or its own package.json) against the host's
/// Node version and the bundled node-pty's version; either may be unknown, and is then not checked.
pub(crate) fn check_compat(
    manifest: &Value,
    host_node: Option<&nodejs_semver::Version>,
    node_pty: Option<&nodejs_semver::Version>,
) -> Result<(), Refusal> {
    if let (Some(host), Some(Value::String(range))) = (
        host_node,
        manifest.get("engines").and_then(|e| e.get("node")),
    ) {
        check_range(CompatGuard::EnginesNode, range, host)?;
    }
    if let Some(pty) = node_pty {
        for field in ["dependencies", "optionalDependencies", "peerDependencies"] {
            if let Some(Value::String(range)) = manifest
                .get(field)
                .and_then(|d| d.get(CompatGuard::NodePty.as_str()))
            {
                check_range(CompatGuard::NodePty, range, pty)?;
            }
        }
    }
    Ok(())
}

/// Re-checks a refusal remembered in the store against today's versions: the app may have been
/// updated since (a newer Electron, a newer node-pty), and then the runtime is no longer refused.
pub(crate) fn still_refused(
    guard: &str,
    range: &str,
    host_node: Option<&nodejs_semver::Version>,
    node_pty: Option<&nodejs_semver::Version>,
) -> Option<Refusal> {
    let guard = CompatGuard::parse(guard)?;
    let provided = match guard {
        CompatGuard::EnginesNode => host_node?,
        CompatGuard::NodePty => node_pty?,
    };
    check_range(guard, range, provided).err()
}

fn check_range(
    guard: CompatGuard,
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

#[cfg(test)]
mod tests {
    use super::*;

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
                guard: CompatGuard::EnginesNode,
                range: ">=99".into(),
                provided: "22.12.0".into()
            })
        );
        let r = check_compat(&strict, None, Some(&pty)).unwrap_err();
        assert_eq!((r.guard, r.range.as_str()), (CompatGuard::NodePty, "^2"));
        // A range that cannot be read admits nothing; an empty one admits anything.
        assert!(!admits("github:microsoft/node-pty", &pty));
        assert!(admits("", &pty));
        assert!(admits("~22.12", &node));
        assert!(!admits("^22.13.0", &node));
        assert!(still_refused("engines.node", ">=99", Some(&node), None).is_some());
        assert!(still_refused("engines.node", ">=99", Some(&v("99.0.0")), None).is_none());
        assert!(still_refused("node-pty", "^2", None, None).is_none());
    }
}
