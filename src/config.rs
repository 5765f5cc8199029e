//! The core's settings, with their defaults. The process environment is read here and only here.

use crate::error::StageError;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const PUBLIC_REGISTRY: &str = "https://registry.npmjs.org/";
pub const DEFAULT_PACKAGE: &str = "kanban";
pub const DEFAULT_TAG: &str = "latest";

/// Everything one staging run needs. Built by the binding (or a test) from user options.
#[derive(Debug, Clone)]
pub struct Config {
    pub user_data: PathBuf,
    pub current_version: String,
    pub native_deps_source: PathBuf,
    /// Registry base URL, always ending in `/`.
    pub registry: String,
    pub package_name: String,
    pub dist_tag: String,
    pub net: NetConfig,
    pub limits: Limits,
    pub trust: Trust,
    /// Who must have built a version, proved by its npm provenance; `None` checks nothing.
    pub provenance: Option<Provenance>,
}

/// The provenance requirement and the Sigstore trust root its attestations are checked against.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub policy: crate::provenance::Policy,
    pub trust_root: crate::provenance::TrustRoot,
}

/// The supply-chain protections. The default adds no request and refuses nothing the original
/// stager staged, except a version whose registry signature is present and wrong.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Release-age cool-down: versions published less than this long ago are not staged.
    pub min_release_age: Option<Duration>,
    /// The registry's signing keys; `None` means the public registry's embedded keys.
    pub registry_keys: Option<Vec<crate::trust::RegistryKey>>,
    /// Refuse a version without a valid registry signature (mirrors often strip them).
    pub require_signatures: bool,
    /// The Node version the runtime will run on; `None` skips the `engines.node` check.
    pub host_node_version: Option<nodejs_semver::Version>,
}

/// Longest cool-down an option may ask for: a year. Longer would stop updates altogether, which
/// is what not calling the stager is for.
pub const MAX_RELEASE_AGE_MINUTES: u64 = 366 * 24 * 60;

/// How we talk to the registry.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// TCP + TLS handshake budget per connection attempt.
    pub connect_timeout: Duration,
    /// Longest wait for the next byte of a response before the attempt counts as stalled.
    pub idle_timeout: Duration,
    /// Budget for the whole call, retries and lock wait included.
    pub total_timeout: Duration,
    /// Attempts after the first for transient failures.
    pub retries: u32,
    /// Explicit proxy URL for every request; overrides the environment's proxies.
    pub proxy: Option<String>,
    /// Proxies from `HTTPS_PROXY` / `HTTP_PROXY`, used when `proxy` is not given.
    pub env_proxy: EnvProxy,
    /// Extra PEM certificates to trust beside the operating system's store.
    pub ca: Vec<String>,
    /// Bearer token sent to the registry's host only.
    pub auth_token: Option<String>,
    pub user_agent: String,
    /// Most tarball bytes read per second; `None` reads as fast as the network allows.
    pub max_bytes_per_second: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct EnvProxy {
    pub https: Option<String>,
    pub http: Option<String>,
    pub no_proxy: Option<String>,
}

/// Caps on what a tarball may unpack to.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Total bytes of file contents; `None` derives it from `dist.unpackedSize`.
    pub max_unpacked_bytes: Option<u64>,
    /// Number of tar entries; `None` derives it from `dist.fileCount`.
    pub max_entries: Option<u64>,
    /// Bytes of the package document read before it is refused.
    pub max_document_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unpacked_bytes: None,
            max_entries: None,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
        }
    }
}

/// Without a registry hint: generous for a CLI package, far below a zip bomb's payload.
pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;
pub const DEFAULT_MAX_ENTRIES: u64 = 20_000;
/// The package document is held in memory whole to be parsed: `kanban`'s abbreviated document is
/// ~10 KB, and one of the largest on npm (`typescript`, ~3,500 versions) is ~9.4 MiB, so 8 MiB
/// leaves room for years of releases while a hostile registry cannot exhaust memory.
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Longest timeout an option may ask for: a background update check has no use for more than a
/// day, and a bound keeps deadline arithmetic far from overflow.
pub const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;
/// Most retries an option may ask for: with exponential backoff ten already span minutes, and
/// more would only hammer a registry that is down.
pub const MAX_RETRIES: u64 = 10;
/// Largest count or size an option may give: beyond 2^53 - 1 a JS number is no longer an exact
/// integer. The extractor's hard caps still apply to what the core uses.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A whole number from `min` to `max` given as a JS number, else `EINVALID_OPTION` naming
/// `name`: NaN, infinities, fractions and out-of-range values are refused, never wrapped.
pub fn whole_number(name: &'static str, v: f64, min: u64, max: u64) -> Result<u64, StageError> {
    if v.is_finite() && v.fract() == 0.0 && v >= min as f64 && v <= max as f64 {
        // In range and integral, so the cast is exact.
        Ok(v as u64)
    } else {
        Err(StageError::InvalidOption {
            name,
            reason: format!("must be a whole number from {min} to {max}, got {v}"),
        })
    }
}

/// A timeout option in ms: 1 ms to [`MAX_TIMEOUT_MS`]. Zero is refused: it would fail every call.
pub fn timeout_ms(name: &'static str, v: f64) -> Result<Duration, StageError> {
    whole_number(name, v, 1, MAX_TIMEOUT_MS).map(Duration::from_millis)
}

/// The `userData` folder as given to the stager or a store function: non-empty and absolute, so
/// that nothing is ever read or written relative to the process's working directory.
pub fn user_data_dir(raw: &str) -> Result<PathBuf, StageError> {
    let invalid = |reason: &str| StageError::InvalidOption {
        name: "userData",
        reason: reason.into(),
    };
    if raw.trim().is_empty() {
        return Err(invalid("must be a non-empty path"));
    }
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err(invalid("must be an absolute path"));
    }
    // Normalised (`.` and repeated separators dropped) so the pointer's paths are canonical.
    Ok(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            // A registry that cannot finish a handshake in 10 s is unreachable, not slow.
            connect_timeout: Duration::from_secs(10),
            // 30 s without a single byte is a stall even on poor Wi-Fi.
            idle_timeout: Duration::from_secs(30),
            // A background update may be slow, but never hold the app for more than 10 minutes.
            total_timeout: Duration::from_secs(600),
            // Three retries ride out a registry blip without hammering it.
            retries: 3,
            proxy: None,
            env_proxy: EnvProxy::default(),
            ca: Vec::new(),
            auth_token: None,
            user_agent: format!(
                "kanban-runtime-stager/{} ({}; {})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
            max_bytes_per_second: None,
        }
    }
}

/// Defaults taken from the environment: the registry and the proxies. The only place the core
/// looks at environment variables.
#[derive(Debug, Clone, Default)]
pub struct EnvDefaults {
    pub registry: Option<String>,
    pub proxy: EnvProxy,
}

impl EnvDefaults {
    pub fn from_process() -> Self {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        };
        EnvDefaults {
            registry: var(&["npm_config_registry", "NPM_CONFIG_REGISTRY"]),
            proxy: EnvProxy {
                https: var(&["HTTPS_PROXY", "https_proxy", "npm_config_https_proxy"]),
                http: var(&["HTTP_PROXY", "http_proxy", "npm_config_proxy"]),
                no_proxy: var(&["NO_PROXY", "no_proxy", "npm_config_noproxy"]),
            },
        }
    }
}

/// Normalises a registry URL to end with exactly one `/`, so package paths join cleanly.
pub fn normalize_registry(url: &str) -> Result<String, String> {
    let trimmed = url.trim();
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| format!("`{trimmed}`: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{trimmed}` is not an http(s) URL"));
    }
    Ok(format!("{}/", trimmed.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_gets_one_trailing_slash() {
        assert_eq!(
            normalize_registry("http://127.0.0.1:4873").unwrap(),
            "http://127.0.0.1:4873/"
        );
        assert_eq!(
            normalize_registry("https://npm.example.com/repo//").unwrap(),
            "https://npm.example.com/repo/"
        );
        assert!(normalize_registry("ftp://x").is_err());
        assert!(normalize_registry("not a url").is_err());
    }

    fn refused(r: Result<impl std::fmt::Debug, StageError>) -> &'static str {
        match r {
            Err(StageError::InvalidOption { name, .. }) => name,
            other => panic!("expected EINVALID_OPTION, got {other:?}"),
        }
    }

    #[test]
    fn numbers_are_refused_not_wrapped() {
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            1.5,
            (MAX_TIMEOUT_MS + 1) as f64,
            4_294_967_296.0 + 5000.0,
        ] {
            assert_eq!(refused(timeout_ms("timeoutMs", bad)), "timeoutMs", "{bad}");
        }
        assert_eq!(timeout_ms("t", 1.0).unwrap(), Duration::from_millis(1));
        assert_eq!(
            timeout_ms("t", MAX_TIMEOUT_MS as f64).unwrap(),
            Duration::from_millis(MAX_TIMEOUT_MS)
        );
        assert_eq!(whole_number("retries", 0.0, 0, MAX_RETRIES).unwrap(), 0);
        assert_eq!(
            refused(whole_number("retries", 11.0, 0, MAX_RETRIES)),
            "retries"
        );
        assert_eq!(
            refused(whole_number(
                "maxEntries",
                2f64.powi(53),
                1,
                MAX_SAFE_INTEGER
            )),
            "maxEntries"
        );
    }

    #[test]
    fn user_data_must_be_absolute() {
        assert_eq!(refused(user_data_dir("")), "userData");
        assert_eq!(refused(user_data_dir("  ")), "userData");
        assert_eq!(refused(user_data_dir("relative/dir")), "userData");
        let abs = std::env::temp_dir().join("ud");
        assert_eq!(user_data_dir(abs.to_str().unwrap()).unwrap(), abs);
    }
}
