//! The core's settings: what the caller passed ([`Options`]), checked and completed with their
//! defaults into a [`Config`]. The process environment is read here and only here.

use crate::shared::error::StageError;
use crate::shared::fsutil;
use crate::trust::provenance::{Policy, PolicyError, TrustRoot, MAX_TRUST_ROOT_BYTES};
use crate::trust::{key_from_json, RegistryKey};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const PUBLIC_REGISTRY: &str = "https://registry.npmjs.org/";
pub(crate) const DEFAULT_PACKAGE: &str = "kanban";
pub(crate) const DEFAULT_TAG: &str = "latest";

/// Everything one staging run needs. Built by [`Config::resolve`] from what the caller passed,
/// or directly by a test.
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
    pub rollout: Rollout,
}

/// The phased rollout and the publisher's kill switch. The default changes nothing: every
/// eligible release is staged at once and a deprecation withdraws nothing.
#[derive(Debug, Clone, Default)]
pub struct Rollout {
    /// Hours over which a release reaches every store, each store at its bucket's share of them;
    /// 0 is off.
    pub hours: u64,
    /// This store's place in the rollout, in [0, 1); `None` uses the store's own random bucket.
    pub bucket: Option<f64>,
    /// Withdraw the pointed version when the registry's document deprecates it.
    pub honor_deprecation: bool,
    /// The app's bundled runtime: a withdrawal never points at a version not newer than it.
    pub bundled_version: Option<semver::Version>,
}

/// Longest phased rollout an option may ask for: a year, as for the cool-down.
pub(crate) const MAX_ROLLOUT_HOURS: u64 = 365 * 24;

/// The provenance requirement and the Sigstore trust root its attestations are checked against.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub policy: crate::trust::provenance::Policy,
    pub trust_root: crate::trust::provenance::TrustRoot,
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
pub(crate) const MAX_RELEASE_AGE_MINUTES: u64 = 366 * 24 * 60;

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
    pub auth_token: Option<Secret>,
    pub user_agent: String,
    /// Most tarball bytes read per second; `None` reads as fast as the network allows.
    pub max_bytes_per_second: Option<u64>,
}

/// A credential: its `Debug` shows `***`, so no log line, error message or panic that prints
/// the settings can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
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
pub(crate) const DEFAULT_MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;
pub(crate) const DEFAULT_MAX_ENTRIES: u64 = 20_000;
/// The package document is held in memory whole to be parsed: `kanban`'s abbreviated document is
/// ~10 KB, and one of the largest on npm (`typescript`, ~3,500 versions) is ~9.4 MiB, so 8 MiB
/// leaves room for years of releases while a hostile registry cannot exhaust memory.
pub(crate) const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Longest timeout an option may ask for: a background update check has no use for more than a
/// day, and a bound keeps deadline arithmetic far from overflow.
pub(crate) const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;
/// Most retries an option may ask for: with exponential backoff ten already span minutes, and
/// more would only hammer a registry that is down.
pub(crate) const MAX_RETRIES: u64 = 10;
/// Largest count or size an option may give: beyond 2^53 - 1 a JS number is no longer an exact
/// integer. The extractor's hard caps still apply to what the core uses.
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The whole numbers an option takes, both ends included: what the option checks refuse past,
/// and what `optionLimits` tells the command line and the app, so neither copies a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionRange {
    pub min: u64,
    pub max: u64,
}

impl OptionRange {
    /// `v` when it is a whole number in the range, else `EINVALID_OPTION` naming `name`.
    pub fn check(self, name: &'static str, v: f64) -> Result<u64, StageError> {
        whole_number(name, v, self.min, self.max)
    }
}

/// `timeoutMs`, `connectTimeoutMs`, `idleTimeoutMs`. Zero is refused: it would fail every call.
pub const TIMEOUT_MS: OptionRange = OptionRange {
    min: 1,
    max: MAX_TIMEOUT_MS,
};
/// `retries`.
pub const RETRIES: OptionRange = OptionRange {
    min: 0,
    max: MAX_RETRIES,
};
/// `minReleaseAgeMinutes`; 0 is off.
pub const MIN_RELEASE_AGE_MINUTES: OptionRange = OptionRange {
    min: 0,
    max: MAX_RELEASE_AGE_MINUTES,
};
/// `maxBytesPerSecond`, `maxUnpackedBytes`, `maxEntries`, `maxDocumentBytes`: a cap of 0 would
/// refuse everything.
pub const POSITIVE_CAP: OptionRange = OptionRange {
    min: 1,
    max: MAX_SAFE_INTEGER,
};
/// `beginLaunch`'s `maxUnconfirmedLaunches`: at least one trial, or a staged runtime could never
/// run; a thousand is already "never roll back".
pub const UNCONFIRMED_LAUNCHES: OptionRange = OptionRange { min: 1, max: 1000 };
/// `rolloutHours`; 0 is off.
pub const ROLLOUT_HOURS: OptionRange = OptionRange {
    min: 0,
    max: MAX_ROLLOUT_HOURS,
};

/// A whole number from `min` to `max` given as a JS number, else `EINVALID_OPTION` naming
/// `name`: NaN, infinities, fractions and out-of-range values are refused, never wrapped.
pub(crate) fn whole_number(
    name: &'static str,
    v: f64,
    min: u64,
    max: u64,
) -> Result<u64, StageError> {
    if v.is_finite() && v.fract() == 0.0 && v >= min as f64 && v <= max as f64 {
        // In range and integral, so the cast is exact.
        Ok(v as u64)
    } else {
        Err(invalid(
            name,
            format!("must be a whole number from {min} to {max}, got {v}"),
        ))
    }
}

/// A timeout option in ms: 1 ms to [`MAX_TIMEOUT_MS`]. Zero is refused: it would fail every call.
pub(crate) fn timeout_ms(name: &'static str, v: f64) -> Result<Duration, StageError> {
    TIMEOUT_MS.check(name, v).map(Duration::from_millis)
}

/// The `userData` folder as given to the stager or a store function: non-empty and absolute, so
/// that nothing is ever read or written relative to the process's working directory.
pub fn user_data_dir(raw: &str) -> Result<PathBuf, StageError> {
    if raw.trim().is_empty() {
        return Err(invalid("userData", "must be a non-empty path"));
    }
    // No OS path can hold NUL: the OS would cut the path there, and read or write elsewhere.
    if raw.contains('\0') {
        return Err(invalid("userData", "must not contain a NUL character"));
    }
    if !Path::new(raw).is_absolute() {
        return Err(invalid("userData", "must be an absolute path"));
    }
    Ok(fsutil::canonical_dir(&normalize(Path::new(raw))))
}

/// `path` with `.` and repeated separators dropped and each `..` taken with the name before it,
/// as Node's `path.resolve` spells it, so that every spelling of a folder derives the same paths.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in absolute(&path.to_string_lossy()).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
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

/// Defaults taken from the environment: the registry and the proxies, and the host's Node
/// version. The only place the core looks at environment variables.
#[derive(Debug, Clone, Default)]
pub struct EnvDefaults {
    pub registry: Option<String>,
    pub proxy: EnvProxy,
    /// The Node version this process runs on, which the runtime will run on too (Electron's own
    /// Node in Electron). The environment variables cannot tell it: the binding asks Node, and
    /// without it `engines.node` is not checked.
    pub host_node_version: Option<nodejs_semver::Version>,
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
            host_node_version: None,
        }
    }
}

/// Normalises a registry URL to end with exactly one `/`, so package paths join cleanly.
pub(crate) fn normalize_registry(url: &str) -> Result<String, String> {
    let trimmed = url.trim();
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| format!("`{trimmed}`: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{trimmed}` is not an http(s) URL"));
    }
    Ok(format!("{}/", trimmed.trim_end_matches('/')))
}

/// The options of a staging run as the caller passed them, plain data: `None` for an option not
/// given, numbers as the `f64` JS gave. [`Config::resolve`] checks them and fills in the defaults,
/// so a `-1`, a `NaN` or a `2**32 + 5` is refused there rather than wrapped by a conversion. The
/// meaning and default of each is documented on the binding's `StageOptions`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub user_data: Option<String>,
    pub current_version: Option<String>,
    pub native_deps_source: Option<String>,
    pub registry: Option<String>,
    pub package_name: Option<String>,
    pub dist_tag: Option<String>,
    pub timeout_ms: Option<f64>,
    pub connect_timeout_ms: Option<f64>,
    pub idle_timeout_ms: Option<f64>,
    pub retries: Option<f64>,
    pub proxy: Option<String>,
    pub ca: Option<Vec<String>>,
    pub auth_token: Option<Secret>,
    pub max_bytes_per_second: Option<f64>,
    pub max_unpacked_bytes: Option<f64>,
    pub max_entries: Option<f64>,
    pub max_document_bytes: Option<f64>,
    pub min_release_age_minutes: Option<f64>,
    pub registry_keys: Option<Vec<RegistryKeyInput>>,
    pub require_signatures: Option<bool>,
    pub host_node_version: Option<String>,
    pub provenance: Option<ProvenanceInput>,
    pub sigstore_trust_root: Option<String>,
    pub rollout_hours: Option<f64>,
    pub rollout_bucket: Option<f64>,
    pub honor_deprecation: Option<bool>,
    pub bundled_version: Option<String>,
}

/// One registry signing key as given, shaped like an entry of the registry's `/-/npm/v1/keys`.
#[derive(Debug, Clone, Default)]
pub struct RegistryKeyInput {
    pub keyid: Option<String>,
    pub keytype: Option<String>,
    pub scheme: Option<String>,
    pub key: Option<String>,
    pub expires: Option<String>,
}

/// The `provenance` option as given: `{ repository, workflowPath?, ref? }`.
#[derive(Debug, Clone, Default)]
pub struct ProvenanceInput {
    pub repository: Option<String>,
    pub workflow_path: Option<String>,
    pub git_ref: Option<String>,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> StageError {
    StageError::InvalidOption {
        name,
        reason: reason.into(),
    }
}

fn required(name: &'static str, value: &Option<String>) -> Result<String, StageError> {
    value
        .clone()
        .ok_or_else(|| invalid(name, "is required (a string)"))
}

fn optional_whole(
    name: &'static str,
    value: Option<f64>,
    range: OptionRange,
) -> Result<Option<u64>, StageError> {
    value.map(|v| range.check(name, v)).transpose()
}

/// An empty string stands for "not given", as it always has for these options.
fn non_empty_or(value: &Option<String>, default: &str) -> String {
    value
        .clone()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.into())
}

/// The store's paths are absolute so the pointer's `cliEntry` is too, whatever the cwd.
pub(crate) fn absolute(p: &str) -> PathBuf {
    std::path::absolute(Path::new(p)).unwrap_or_else(|_| PathBuf::from(p))
}

impl Config {
    /// Checks every option and fills in every default. The first option at fault, in the order
    /// of [`Options`]' fields, is refused with `EINVALID_OPTION` naming it. Nothing of the
    /// process environment is used but what `env` carries.
    pub fn resolve(options: Options, env: &EnvDefaults) -> Result<Config, StageError> {
        let o = &options;
        let user_data = user_data_dir(&required("userData", &o.user_data)?)?;
        let current_version = required("currentVersion", &o.current_version)?;
        let native_deps_source = required("nativeDepsSource", &o.native_deps_source)?;
        if native_deps_source.trim().is_empty() {
            return Err(invalid("nativeDepsSource", "must be a non-empty path"));
        }
        // Fields are evaluated in the order written, which keeps the order of the checks.
        Ok(Config {
            user_data,
            current_version,
            native_deps_source: absolute(&native_deps_source),
            registry: resolve_registry(o.registry.as_deref(), env)?,
            package_name: non_empty_or(&o.package_name, DEFAULT_PACKAGE),
            dist_tag: non_empty_or(&o.dist_tag, DEFAULT_TAG),
            net: NetConfig::resolve(o, env)?,
            limits: Limits::resolve(o)?,
            trust: Trust::resolve(o, env)?,
            provenance: Provenance::resolve(o)?,
            rollout: Rollout::resolve(o)?,
        })
    }
}

impl Rollout {
    /// The rollout's length, the bucket that overrides the store's, the kill switch and the
    /// bundled runtime's version.
    fn resolve(o: &Options) -> Result<Rollout, StageError> {
        let hours = optional_whole("rolloutHours", o.rollout_hours, ROLLOUT_HOURS)?;
        let bucket = match o.rollout_bucket {
            None => None,
            Some(b) if b.is_finite() && (0.0..1.0).contains(&b) => Some(b),
            Some(b) => {
                return Err(invalid(
                    "rolloutBucket",
                    format!("must be a number from 0 up to (not including) 1, got {b}"),
                ))
            }
        };
        let bundled_version = match &o.bundled_version {
            None => None,
            Some(v) => Some(
                crate::shared::version::clean(v)
                    .ok_or_else(|| invalid("bundledVersion", "must be a semver version"))?,
            ),
        };
        Ok(Rollout {
            hours: hours.unwrap_or(0),
            bucket,
            honor_deprecation: o.honor_deprecation.unwrap_or(false),
            bundled_version,
        })
    }
}

/// The `registry` option, else the environment's, else the public registry; an empty or
/// whitespace-only value counts as not given.
fn resolve_registry(given: Option<&str>, env: &EnvDefaults) -> Result<String, StageError> {
    let raw = given
        .filter(|r| !r.trim().is_empty())
        .or(env.registry.as_deref())
        .unwrap_or(PUBLIC_REGISTRY);
    normalize_registry(raw).map_err(|reason| invalid("registry", reason))
}

impl NetConfig {
    /// Timeouts, retries, proxy, CAs, token and bandwidth cap. The proxy and the CAs are checked
    /// when the client is built from them.
    fn resolve(o: &Options, env: &EnvDefaults) -> Result<NetConfig, StageError> {
        let defaults = NetConfig::default();
        let timeout = |name, value: Option<f64>, default| match value {
            Some(v) => timeout_ms(name, v),
            None => Ok(default),
        };
        Ok(NetConfig {
            total_timeout: timeout("timeoutMs", o.timeout_ms, defaults.total_timeout)?,
            connect_timeout: timeout(
                "connectTimeoutMs",
                o.connect_timeout_ms,
                defaults.connect_timeout,
            )?,
            idle_timeout: timeout("idleTimeoutMs", o.idle_timeout_ms, defaults.idle_timeout)?,
            retries: match optional_whole("retries", o.retries, RETRIES)? {
                // At most MAX_RETRIES, so it fits.
                Some(n) => n as u32,
                None => defaults.retries,
            },
            proxy: o.proxy.clone(),
            env_proxy: env.proxy.clone(),
            ca: o.ca.clone().unwrap_or_default(),
            auth_token: o.auth_token.clone().filter(|t| !t.expose().is_empty()),
            max_bytes_per_second: optional_whole(
                "maxBytesPerSecond",
                o.max_bytes_per_second,
                POSITIVE_CAP,
            )?,
            ..defaults
        })
    }
}

impl Limits {
    /// The caps given, each a positive whole number; the unpacked size and entry count are
    /// otherwise derived from the registry's hints when the tarball is known.
    fn resolve(o: &Options) -> Result<Limits, StageError> {
        let cap = |name, value| optional_whole(name, value, POSITIVE_CAP);
        Ok(Limits {
            max_unpacked_bytes: cap("maxUnpackedBytes", o.max_unpacked_bytes)?,
            max_entries: cap("maxEntries", o.max_entries)?,
            max_document_bytes: cap("maxDocumentBytes", o.max_document_bytes)?
                .unwrap_or(DEFAULT_MAX_DOCUMENT_BYTES),
        })
    }
}

impl Trust {
    /// Cool-down, registry keys, signature requirement and the host's Node version, which
    /// defaults to the one `env` carries.
    fn resolve(o: &Options, env: &EnvDefaults) -> Result<Trust, StageError> {
        let minutes = optional_whole(
            "minReleaseAgeMinutes",
            o.min_release_age_minutes,
            MIN_RELEASE_AGE_MINUTES,
        )?;
        Ok(Trust {
            min_release_age: minutes
                .filter(|m| *m > 0)
                .map(|m| Duration::from_secs(m * 60)),
            registry_keys: o.registry_keys.as_deref().map(registry_keys).transpose()?,
            require_signatures: o.require_signatures.unwrap_or(false),
            host_node_version: match &o.host_node_version {
                Some(v) => Some(node_version(v)?),
                None => env.host_node_version.clone(),
            },
        })
    }
}

/// Each key checked as the registry's own key list is (a usable P-256 key, a date).
fn registry_keys(keys: &[RegistryKeyInput]) -> Result<Vec<RegistryKey>, StageError> {
    let text = |v: &Option<String>| match v {
        Some(s) => serde_json::Value::String(s.clone()),
        None => serde_json::Value::Null,
    };
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let json = serde_json::json!({
                "keyid": text(&k.keyid),
                "keytype": text(&k.keytype),
                "scheme": text(&k.scheme),
                "key": text(&k.key),
                "expires": text(&k.expires),
            });
            key_from_json(&json)
                .map_err(|reason| invalid("registryKeys", format!("entry {i}: {reason}")))
        })
        .collect()
}

/// `hostNodeVersion`, with the `v` of `process.version` or a leading `=` allowed.
fn node_version(raw: &str) -> Result<nodejs_semver::Version, StageError> {
    nodejs_semver::Version::parse(raw.trim().trim_start_matches(['v', '=']))
        .map_err(|_| invalid("hostNodeVersion", "must be a semver version"))
}

impl Provenance {
    /// The policy, and the trust root its attestations are checked against. A given trust root is
    /// checked even without a policy, so a bad one is refused whatever else is passed.
    fn resolve(o: &Options) -> Result<Option<Provenance>, StageError> {
        let policy = o.provenance.as_ref().map(policy).transpose()?;
        let custom_root = o
            .sigstore_trust_root
            .as_deref()
            .map(trust_root)
            .transpose()?;
        let Some(policy) = policy else {
            return Ok(None);
        };
        let trust_root = match custom_root {
            Some(root) => root,
            // Parsed only when provenance is asked for: the default path pays nothing.
            None => TrustRoot::public_good().map_err(|e| {
                StageError::internal(format!("the embedded Sigstore trust root: {e}"))
            })?,
        };
        Ok(Some(Provenance { policy, trust_root }))
    }
}

/// `provenance`, checked as `Policy::new` checks it, the error naming the field at fault.
fn policy(given: &ProvenanceInput) -> Result<Policy, StageError> {
    let repository = given
        .repository
        .as_deref()
        .ok_or_else(|| invalid("provenance.repository", "is required (a string)"))?;
    Policy::new(
        repository,
        given.workflow_path.as_deref(),
        given.git_ref.as_deref(),
    )
    .map_err(|e| {
        let full = match e {
            PolicyError::Repository(_) => "provenance.repository",
            PolicyError::Ref => "provenance.ref",
            PolicyError::WorkflowPath => "provenance.workflowPath",
        };
        invalid(full, e.to_string())
    })
}

/// `sigstoreTrustRoot`: a `trusted_root.json`'s text, parsed now so a bad one is an option error.
fn trust_root(text: &str) -> Result<TrustRoot, StageError> {
    if text.len() > MAX_TRUST_ROOT_BYTES {
        return Err(invalid(
            "sigstoreTrustRoot",
            format!("is over {MAX_TRUST_ROOT_BYTES} bytes"),
        ));
    }
    TrustRoot::from_json(text).map_err(|e| invalid("sigstoreTrustRoot", e.to_string()))
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

    /// The three options without a default.
    fn given() -> Options {
        Options {
            user_data: Some(
                std::env::temp_dir()
                    .join("ud")
                    .to_string_lossy()
                    .into_owned(),
            ),
            current_version: Some("1.0.0".into()),
            native_deps_source: Some("native".into()),
            ..Options::default()
        }
    }

    /// The three options without a default, with `change` made.
    fn with(change: impl FnOnce(&mut Options)) -> Options {
        let mut options = given();
        change(&mut options);
        options
    }

    /// The option `resolve` refuses and why.
    fn refusal(options: Options) -> (&'static str, String) {
        match Config::resolve(options, &EnvDefaults::default()) {
            Err(StageError::InvalidOption { name, reason }) => (name, reason),
            other => panic!("expected EINVALID_OPTION, got {other:?}"),
        }
    }

    /// A P-256 public key, base64 of its SPKI DER.
    const KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g==";

    fn key(keyid: &str) -> RegistryKeyInput {
        RegistryKeyInput {
            keyid: Some(keyid.into()),
            keytype: Some("ecdsa-sha2-nistp256".into()),
            scheme: Some("ecdsa-sha2-nistp256".into()),
            key: Some(KEY.into()),
            expires: None,
        }
    }

    /// A good key with one field changed.
    fn key_with(change: fn(&mut RegistryKeyInput)) -> RegistryKeyInput {
        let mut k = key("k");
        change(&mut k);
        k
    }

    fn provenance(repository: &str, workflow_path: Option<&str>) -> ProvenanceInput {
        ProvenanceInput {
            git_ref: None,
            repository: Some(repository.into()),
            workflow_path: workflow_path.map(Into::into),
        }
    }

    #[test]
    fn resolve_fills_in_every_default() {
        let c = Config::resolve(given(), &EnvDefaults::default()).unwrap();
        assert_eq!(c.user_data, std::env::temp_dir().join("ud"));
        assert_eq!(c.current_version, "1.0.0");
        assert_eq!(c.native_deps_source, absolute("native"));
        assert!(c.native_deps_source.is_absolute());
        assert_eq!(c.registry, PUBLIC_REGISTRY);
        assert_eq!(c.package_name, DEFAULT_PACKAGE);
        assert_eq!(c.dist_tag, DEFAULT_TAG);
        let net = NetConfig::default();
        assert_eq!(c.net.total_timeout, Duration::from_secs(600));
        assert_eq!(c.net.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.net.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.net.retries, 3);
        assert_eq!(c.net.proxy, None);
        assert!(c.net.ca.is_empty());
        assert_eq!(c.net.auth_token, None);
        assert_eq!(c.net.user_agent, net.user_agent);
        assert_eq!(c.net.max_bytes_per_second, None);
        assert_eq!(c.limits.max_unpacked_bytes, None);
        assert_eq!(c.limits.max_entries, None);
        assert_eq!(c.limits.max_document_bytes, DEFAULT_MAX_DOCUMENT_BYTES);
        assert_eq!(c.trust.min_release_age, None);
        assert!(c.trust.registry_keys.is_none());
        assert!(!c.trust.require_signatures);
        assert_eq!(c.trust.host_node_version, None);
        assert!(c.provenance.is_none());
    }

    #[test]
    fn resolve_takes_what_is_given() {
        let options = Options {
            registry: Some(" http://127.0.0.1:4873// ".into()),
            package_name: Some("other".into()),
            dist_tag: Some("next".into()),
            timeout_ms: Some(1.0),
            connect_timeout_ms: Some(2.0),
            idle_timeout_ms: Some(MAX_TIMEOUT_MS as f64),
            retries: Some(0.0),
            proxy: Some("http://proxy:8080".into()),
            ca: Some(vec!["PEM".into()]),
            auth_token: Some("t".into()),
            max_bytes_per_second: Some(1.0),
            max_unpacked_bytes: Some(MAX_SAFE_INTEGER as f64),
            max_entries: Some(7.0),
            max_document_bytes: Some(1024.0),
            min_release_age_minutes: Some(90.0),
            registry_keys: Some(vec![RegistryKeyInput {
                expires: Some("2030-01-01T00:00:00Z".into()),
                ..key("k1")
            }]),
            require_signatures: Some(true),
            host_node_version: Some(" v20.11.1".into()),
            ..given()
        };
        let c = Config::resolve(options, &EnvDefaults::default()).unwrap();
        assert_eq!(c.registry, "http://127.0.0.1:4873/");
        assert_eq!(
            (c.package_name.as_str(), c.dist_tag.as_str()),
            ("other", "next")
        );
        assert_eq!(c.net.total_timeout, Duration::from_millis(1));
        assert_eq!(c.net.connect_timeout, Duration::from_millis(2));
        assert_eq!(c.net.idle_timeout, Duration::from_millis(MAX_TIMEOUT_MS));
        assert_eq!(c.net.retries, 0);
        assert_eq!(c.net.proxy.as_deref(), Some("http://proxy:8080"));
        assert_eq!(c.net.ca, ["PEM"]);
        assert_eq!(c.net.auth_token.as_ref().map(Secret::expose), Some("t"));
        assert_eq!(c.net.max_bytes_per_second, Some(1));
        assert_eq!(c.limits.max_unpacked_bytes, Some(MAX_SAFE_INTEGER));
        assert_eq!(c.limits.max_entries, Some(7));
        assert_eq!(c.limits.max_document_bytes, 1024);
        assert_eq!(c.trust.min_release_age, Some(Duration::from_secs(90 * 60)));
        let keys = c.trust.registry_keys.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].keyid, "k1");
        assert_eq!(
            keys[0].expires,
            crate::shared::dates::rfc3339_ms("2030-01-01T00:00:00Z")
        );
        assert!(c.trust.require_signatures);
        assert_eq!(
            c.trust.host_node_version,
            Some(nodejs_semver::Version::parse("20.11.1").unwrap())
        );
    }

    #[test]
    fn empty_strings_and_zero_mean_not_given() {
        let options = Options {
            registry: Some("  ".into()),
            package_name: Some(String::new()),
            dist_tag: Some(String::new()),
            auth_token: Some("".into()),
            min_release_age_minutes: Some(0.0),
            host_node_version: Some("=22.0.0".into()),
            ..given()
        };
        let c = Config::resolve(options, &EnvDefaults::default()).unwrap();
        assert_eq!(c.registry, PUBLIC_REGISTRY);
        assert_eq!(c.package_name, DEFAULT_PACKAGE);
        assert_eq!(c.dist_tag, DEFAULT_TAG);
        assert_eq!(c.net.auth_token, None);
        assert_eq!(c.trust.min_release_age, None);
        assert_eq!(
            c.trust.host_node_version,
            Some(nodejs_semver::Version::parse("22.0.0").unwrap())
        );
    }

    #[test]
    fn the_environment_fills_in_what_is_not_given() {
        let env = EnvDefaults {
            registry: Some("https://mirror.example.com/npm".into()),
            proxy: EnvProxy {
                https: Some("http://p:1".into()),
                http: None,
                no_proxy: Some("localhost".into()),
            },
            host_node_version: Some(nodejs_semver::Version::parse("20.0.0").unwrap()),
        };
        let c = Config::resolve(given(), &env).unwrap();
        assert_eq!(c.registry, "https://mirror.example.com/npm/");
        assert_eq!(c.net.env_proxy.https.as_deref(), Some("http://p:1"));
        assert_eq!(c.net.env_proxy.no_proxy.as_deref(), Some("localhost"));
        assert_eq!(c.net.proxy, None);
        assert_eq!(c.trust.host_node_version, env.host_node_version);
        // What the caller gives wins over the environment.
        let options = Options {
            registry: Some("http://127.0.0.1:4873".into()),
            host_node_version: Some("22.1.0".into()),
            ..given()
        };
        let c = Config::resolve(options, &env).unwrap();
        assert_eq!(c.registry, "http://127.0.0.1:4873/");
        assert_eq!(
            c.trust.host_node_version,
            Some(nodejs_semver::Version::parse("22.1.0").unwrap())
        );
        // A bad registry from the environment is refused as the option would be.
        let env = EnvDefaults {
            registry: Some("ftp://mirror".into()),
            ..EnvDefaults::default()
        };
        assert_eq!(refused(Config::resolve(given(), &env)), "registry");
    }

    #[test]
    fn the_rollout_is_off_by_default_and_read_as_given() {
        let c = Config::resolve(given(), &EnvDefaults::default()).unwrap();
        assert_eq!(c.rollout.hours, 0);
        assert_eq!(c.rollout.bucket, None);
        assert!(!c.rollout.honor_deprecation);
        assert_eq!(c.rollout.bundled_version, None);
        let options = Options {
            rollout_hours: Some(8760.0),
            rollout_bucket: Some(0.0),
            honor_deprecation: Some(true),
            bundled_version: Some("v1.2.3".into()),
            ..given()
        };
        let c = Config::resolve(options, &EnvDefaults::default()).unwrap();
        assert_eq!(c.rollout.hours, MAX_ROLLOUT_HOURS);
        assert_eq!(c.rollout.bucket, Some(0.0));
        assert!(c.rollout.honor_deprecation);
        assert_eq!(
            c.rollout.bundled_version,
            Some(semver::Version::new(1, 2, 3))
        );
    }

    #[test]
    fn resolve_refuses_each_bad_option_by_name() {
        type Change = fn(&mut Options);
        let cases: [(Change, &str); 35] = [
            (|o| o.user_data = None, "userData"),
            (|o| o.user_data = Some("rel/dir".into()), "userData"),
            (|o| o.current_version = None, "currentVersion"),
            (|o| o.native_deps_source = None, "nativeDepsSource"),
            (
                |o| o.native_deps_source = Some(" ".into()),
                "nativeDepsSource",
            ),
            (|o| o.registry = Some("ftp://x".into()), "registry"),
            (|o| o.registry = Some("not a url".into()), "registry"),
            (|o| o.timeout_ms = Some(0.0), "timeoutMs"),
            (
                |o| o.connect_timeout_ms = Some(f64::NAN),
                "connectTimeoutMs",
            ),
            (|o| o.idle_timeout_ms = Some(1.5), "idleTimeoutMs"),
            (|o| o.retries = Some(11.0), "retries"),
            (|o| o.retries = Some(-1.0), "retries"),
            (|o| o.max_bytes_per_second = Some(0.0), "maxBytesPerSecond"),
            (
                |o| o.max_unpacked_bytes = Some(2f64.powi(53)),
                "maxUnpackedBytes",
            ),
            (|o| o.max_entries = Some(0.0), "maxEntries"),
            (|o| o.max_document_bytes = Some(-5.0), "maxDocumentBytes"),
            (
                |o| o.min_release_age_minutes = Some((MAX_RELEASE_AGE_MINUTES + 1) as f64),
                "minReleaseAgeMinutes",
            ),
            (
                |o| o.registry_keys = Some(vec![key("k"), RegistryKeyInput::default()]),
                "registryKeys",
            ),
            (
                |o| o.registry_keys = Some(vec![key_with(|k| k.key = Some("AAAA".into()))]),
                "registryKeys",
            ),
            (
                |o| {
                    o.registry_keys =
                        Some(vec![key_with(|k| k.keytype = Some("ssh-ed25519".into()))])
                },
                "registryKeys",
            ),
            (
                |o| o.registry_keys = Some(vec![key_with(|k| k.expires = Some("tomorrow".into()))]),
                "registryKeys",
            ),
            (
                |o| o.host_node_version = Some("twenty".into()),
                "hostNodeVersion",
            ),
            (
                |o| o.provenance = Some(ProvenanceInput::default()),
                "provenance.repository",
            ),
            (
                |o| o.provenance = Some(provenance("https://github.com/kanban-org/kanban", None)),
                "provenance.repository",
            ),
            (
                |o| o.provenance = Some(provenance("kanban-org/kanban", Some("publish.yml@main"))),
                "provenance.workflowPath",
            ),
            (
                |o| {
                    o.provenance = Some(ProvenanceInput {
                        git_ref: Some("v*".into()),
                        ..provenance("kanban-org/kanban", None)
                    })
                },
                "provenance.ref",
            ),
            (
                |o| o.sigstore_trust_root = Some("not json".into()),
                "sigstoreTrustRoot",
            ),
            (
                |o| o.sigstore_trust_root = Some(" ".repeat(MAX_TRUST_ROOT_BYTES + 1)),
                "sigstoreTrustRoot",
            ),
            (|o| o.rollout_hours = Some(8761.0), "rolloutHours"),
            (|o| o.rollout_hours = Some(1.5), "rolloutHours"),
            (|o| o.rollout_hours = Some(-1.0), "rolloutHours"),
            (|o| o.rollout_bucket = Some(1.0), "rolloutBucket"),
            (|o| o.rollout_bucket = Some(-0.01), "rolloutBucket"),
            (|o| o.rollout_bucket = Some(f64::NAN), "rolloutBucket"),
            (|o| o.bundled_version = Some("one".into()), "bundledVersion"),
        ];
        for (i, (change, name)) in cases.into_iter().enumerate() {
            assert_eq!(refusal(with(change)).0, name, "case {i}");
        }
    }

    #[test]
    fn refusals_say_why() {
        type Change = fn(&mut Options);
        let cases: [(Change, &str); 6] = [
            (|o| o.current_version = None, "is required (a string)"),
            (
                |o| o.native_deps_source = Some(String::new()),
                "must be a non-empty path",
            ),
            (
                |o| o.retries = Some(11.0),
                "must be a whole number from 0 to 10, got 11",
            ),
            (
                |o| o.host_node_version = Some("x".into()),
                "must be a semver version",
            ),
            (
                |o| o.provenance = Some(ProvenanceInput::default()),
                "is required (a string)",
            ),
            (
                |o| o.sigstore_trust_root = Some(" ".repeat(MAX_TRUST_ROOT_BYTES + 1)),
                "is over 1048576 bytes",
            ),
        ];
        for (i, (change, reason)) in cases.into_iter().enumerate() {
            assert_eq!(refusal(with(change)).1, reason, "case {i}");
        }
        let bad_second = with(|o| {
            o.registry_keys = Some(vec![key("a"), key_with(|k| k.key = Some("%%%".into()))])
        });
        assert!(refusal(bad_second).1.starts_with("entry 1: "));
    }

    #[test]
    fn the_first_option_at_fault_is_named() {
        let first = |change: fn(&mut Options)| refusal(with(change)).0;
        let relative_user_data = first(|o| {
            o.user_data = Some("relative".into());
            o.timeout_ms = Some(-1.0);
            o.sigstore_trust_root = Some("{}".into());
        });
        assert_eq!(relative_user_data, "userData");
        let retries = first(|o| {
            o.retries = Some(99.0);
            o.max_entries = Some(0.0);
            o.host_node_version = Some("x".into());
        });
        assert_eq!(retries, "retries");
        let no_repository = first(|o| {
            o.provenance = Some(ProvenanceInput::default());
            o.sigstore_trust_root = Some("{}".into());
        });
        assert_eq!(no_repository, "provenance.repository");
    }

    #[test]
    fn provenance_takes_the_embedded_or_the_given_trust_root() {
        let workflow = "./.github/workflows/publish.yml";
        let policy = provenance("kanban-org/kanban", Some(workflow));
        let c = Config::resolve(
            Options {
                provenance: Some(policy.clone()),
                ..given()
            },
            &EnvDefaults::default(),
        );
        let p = c.unwrap().provenance.unwrap();
        assert_eq!(p.policy.repository, "kanban-org/kanban");
        assert_eq!(
            p.policy.workflow_path.as_deref(),
            Some(".github/workflows/publish.yml")
        );
        let root = runtime_stager_provenance::PUBLIC_GOOD_TRUST_ROOT.to_string();
        let options = Options {
            provenance: Some(policy),
            sigstore_trust_root: Some(root.clone()),
            ..given()
        };
        let c = Config::resolve(options, &EnvDefaults::default()).unwrap();
        assert!(c.provenance.is_some());
        // A trust root alone is checked, and asks for nothing.
        let options = Options {
            sigstore_trust_root: Some(root),
            ..given()
        };
        let c = Config::resolve(options, &EnvDefaults::default()).unwrap();
        assert!(c.provenance.is_none());
        let empty_root = with(|o| o.sigstore_trust_root = Some("{\"tlogs\":[]}".into()));
        assert_eq!(refusal(empty_root).0, "sigstoreTrustRoot");
    }
}
