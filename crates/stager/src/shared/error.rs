//! One error type for the whole stager. Each variant has its message (on the variant), one arm of
//! `kind` giving the stable `code` JS sees as `err.code` with a hint a person can act on, and one
//! arm of `fields` giving its structured fields; messages name the operation and the path or URL
//! involved. A field with a closed set of values is an enum spelling the string JS sees.

use super::phase::Phase;
use super::text::clip;
pub use runtime_stager_provenance::Check;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub type Result<T, E = StageError> = std::result::Result<T, E>;

/// Cloneable so that concurrent callers sharing one staging run can each receive its result.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    #[error("invalid option `{name}`: {}", clip(.reason))]
    InvalidOption { name: &'static str, reason: String },

    /// The HTTP client could not be set up with valid options: its TLS backend or the system's
    /// certificate store failed.
    #[error("cannot build the HTTP client: {}", clip(.reason))]
    HttpClient { reason: String },

    #[error("GET {} answered HTTP {status}", clip(.url))]
    Http {
        url: String,
        status: u16,
        /// The server's `Retry-After`, already capped, for the retry loop.
        retry_after: Option<Duration>,
    },

    #[error("{} timed out while {phase} ({budget} of {ms} ms)", clip(.url))]
    Timeout {
        url: String,
        /// What the call was doing: for the call's own deadline, the phase it had reached.
        phase: Phase,
        /// Which timeout ran out.
        budget: Budget,
        ms: u64,
    },

    #[error("network error while {phase} {}: {}", clip(.url), clip(.message))]
    Network {
        url: String,
        phase: Phase,
        message: String,
    },

    /// A redirect from an https URL to a plain http one, refused before it is followed: what
    /// it served could be read and changed by anyone on the path.
    #[error(
        "refusing the redirect of {} to {}: it leaves https for plain http",
        clip(.url),
        clip(.location)
    )]
    InsecureRedirect {
        /// The URL requested.
        url: String,
        /// The http URL the redirect named.
        location: String,
    },

    #[error("package document from {} is unusable: {}", clip(.url), clip(.reason))]
    BadManifest { url: String, reason: String },

    #[error(
        "dist-tag `{}` of {} names `{}`, which is not a valid semver version",
        clip(.tag),
        clip(.package),
        clip(.version)
    )]
    InvalidVersion {
        package: String,
        tag: String,
        version: String,
    },

    #[error(
        "integrity check failed for {}: expected {}, got {}",
        clip(.url),
        clip(.expected),
        clip(.actual)
    )]
    Integrity {
        url: String,
        expected: String,
        actual: String,
    },

    #[error(
        "refusing tarball entry `{}` from {}: {}",
        clip(.entry),
        clip(.url),
        clip(.reason)
    )]
    UnsafeEntry {
        url: String,
        entry: String,
        reason: String,
    },

    #[error("{} exceeds a limit ({limit}): {}", clip(.url), clip(.reason))]
    TooLarge {
        url: String,
        limit: Limit,
        reason: String,
    },

    #[error("tarball from {} is corrupt: {}", clip(.url), clip(.reason))]
    BadArchive { url: String, reason: String },

    #[error("the runtime package from {} has no {missing}", clip(.url))]
    MissingCli { url: String, missing: String },

    #[error("native modules folder {} has no node-pty", clip_path(.path))]
    NativeDeps { path: PathBuf },

    #[error("no space left on device while {op} {}", clip_path(.path))]
    NoSpace { op: Op, path: PathBuf },

    #[error("{op} {} failed: {}", clip_path(.path), clip(&.source.to_string()))]
    Io {
        op: Op,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },

    #[error(
        "registry signature check failed for version {} ({reason}{})",
        clip(.version),
        .keyid.as_deref().map(|k| format!(", key {}", clip(k))).unwrap_or_default()
    )]
    Signature {
        version: String,
        /// The key the failing signature names, when it names one.
        keyid: Option<String>,
        reason: SignatureReason,
    },

    #[error(
        "version {} cannot run here: its {guard} range `{}` excludes {}",
        clip(.version),
        clip(.range),
        clip(.provided)
    )]
    Incompatible {
        version: String,
        guard: CompatGuard,
        range: String,
        /// The host's Node version or the bundled node-pty's version.
        provided: String,
    },

    #[error(
        "{}@{} has no valid provenance ({}): {}",
        clip(.package),
        clip(.version),
        .check.as_str(),
        clip(.reason)
    )]
    Provenance {
        package: String,
        version: String,
        /// Which check failed, as the verifier names it.
        check: Check,
        reason: String,
    },

    /// A Sigstore bundle checked by hand (`verifyBundle`) that does not verify.
    #[error("the bundle does not verify ({}): {}", .check.as_str(), clip(.reason))]
    BundleRefused { check: Check, reason: String },
    /// The store lock stayed held past a store function's bounded wait: its holder is frozen.
    #[error("the store lock {} stayed held for {ms} ms", clip_path(.path))]
    Locked { path: PathBuf, ms: u64 },

    /// A folder the run must replace could not be moved out of its name: another process holds
    /// it (on Windows, a runtime still running from it, or a scanner with a file open).
    #[error(
        "{} is held by another process and cannot be replaced now: {}",
        clip_path(.path),
        clip(.reason)
    )]
    Busy { path: PathBuf, reason: String },

    #[error("staging was aborted")]
    Aborted,

    /// A bug of ours, never the network's or the disk's: a task or thread that panicked.
    #[error("internal error: {what}")]
    Internal { what: String },
}

/// Which timeout ran out (`err.timeout` in JS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The call's own deadline (`timeoutMs`).
    Call,
    /// Opening a connection (`connectTimeoutMs`).
    Connect,
    /// Waiting for the next bytes of an answer (`idleTimeoutMs`).
    Idle,
}

impl Budget {
    pub fn as_str(self) -> &'static str {
        match self {
            Budget::Call => "call",
            Budget::Connect => "connect",
            Budget::Idle => "idle",
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Budget::Call => "the call's timeout",
            Budget::Connect => "the connect timeout",
            Budget::Idle => "the idle timeout",
        })
    }
}

/// Declares an enum of a field's closed set of values, each with the one string JS sees (and
/// messages show) for it, and `ALL` listing them in order.
macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in the order the README and `error-types.d.ts` list them.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value spelled `text`, as [`Self::as_str`] spells it.
            pub fn parse(text: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// Which cap an `ETOO_LARGE` hit (`err.limit` in JS).
    Limit {
        /// The package document's size (`maxDocumentBytes`).
        Document = "document",
        /// The tarball body, far beyond what its unpacked cap allows.
        TarballBytes = "tarballBytes",
        /// The number of tarball entries (`maxEntries`).
        Entries = "entries",
        /// The unpacked size (`maxUnpackedBytes`).
        UnpackedBytes = "unpackedBytes",
        /// The inflated stream, beyond what the unpacked cap allows.
        InflatedBytes = "inflatedBytes",
        /// An entry's path depth or length.
        Path = "path",
        /// A GNU long-name or PAX header.
        ExtensionHeader = "extensionHeader",
    }
}

names! {
    /// Why a registry signature check failed (`err.reason` of `ESIGNATURE` in JS).
    SignatureReason {
        /// The signature does not verify with the key it names.
        Invalid = "invalid",
        /// The key it names is not one of the registry's keys.
        UnknownKey = "unknown-key",
        /// The key it names expired before the version was published.
        ExpiredKey = "expired-key",
        /// There is none, and `requireSignatures` is set.
        Missing = "missing",
        /// `dist.signatures` is not a list of `{ keyid, sig }`.
        Malformed = "malformed",
        /// There is no integrity for a signature to vouch for.
        NoIntegrity = "no-integrity",
    }
}

names! {
    /// Which compatibility guard refused a version (`err.guard` of `EINCOMPATIBLE` in JS); a
    /// refusal remembered in the store names its guard the same way.
    CompatGuard {
        /// The runtime's `engines.node` range against the host's Node.
        EnginesNode = "engines.node",
        /// The runtime's `node-pty` range against the bundled node-pty.
        NodePty = "node-pty",
    }
}

names! {
    /// What a failed file operation was doing, as its message says it: "`<op>` `<path>` failed".
    Op {
        Copying = "copying",
        CopyingTo = "copying to",
        Creating = "creating",
        Flushing = "flushing",
        FlushingFolder = "flushing folder",
        Locking = "locking",
        MovingAside = "moving aside",
        Opening = "opening",
        OpeningLock = "opening lock",
        Reading = "reading",
        ReadingFolder = "reading folder",
        Removing = "removing",
        Renaming = "renaming",
        SettingModeOf = "setting mode of",
        Writing = "writing",
    }
}

/// A stable code JS sees as `err.code`, and the one-line hint a person can act on that comes
/// with it as `err.hint` (it names the option an app sets, with the CLI's flag beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub code: &'static str,
    pub hint: &'static str,
}

/// Declares each kind once, as `Kind::<CODE>`, and lists them all in `Kind::ALL`.
macro_rules! kinds {
    ($($code:ident: $hint:expr,)*) => {
        impl Kind {
            $(pub const $code: Kind = Kind { code: stringify!($code), hint: $hint };)*
            /// Every kind. Part of the public API: never rename a code. The TypeScript
            /// `StageErrorCode` union (`error-types.d.ts`) and the README's error table are
            /// tested against this list, so the three cannot drift.
            pub const ALL: &'static [Kind] = &[$(Kind::$code),*];
        }
    };
}

kinds! {
    EINVALID_OPTION: "check the option named in the message",
    EHTTP_CLIENT: "the HTTP client could not be set up, most often because the system's \
        certificate store holds no usable certificate; the message says why",
    ENETWORK: "the registry could not be reached; check the network, `registry` and `proxy` \
        (--registry, --proxy)",
    ETIMEDOUT: "the registry did not answer in time; check the network, or raise the timeout \
        `err.timeout` names (`timeoutMs`, --timeout-ms; `connectTimeoutMs`; `idleTimeoutMs`)",
    EHTTP: "the registry refused the request; check `registry`, `packageName` and `authToken` \
        (--registry, --package)",
    EBADMANIFEST: "the package document lacks the tag, version or dist fields needed",
    EINVALID_VERSION: "the dist-tag names something that is not a semver version",
    EINTEGRITY: "the tarball did not match the registry integrity; a mirror or proxy may be \
        corrupting it",
    EPROVENANCE: "the version has no valid provenance from the expected repository (the message \
        says which check failed); it may have been published with a stolen token, or a mirror \
        strips attestations",
    EUNSAFE_ENTRY: "the tarball holds a link, a path outside its folder, a name Windows cannot \
        hold, or ambiguous headers; it was refused",
    ETOO_LARGE: "the package document or the tarball exceeds a size limit (the message names \
        which)",
    EBADARCHIVE: "the tarball is truncated or corrupt",
    EMISSING_CLI: "the package has no dist/cli.js, so it cannot be run",
    ENATIVE_DEPS: "`nativeDepsSource` (--native-deps) must be a folder that contains node-pty/",
    ENOSPC: "the disk is full; free space under the userData folder and retry",
    EIO: "a file operation failed; the message names the path",
    EABORTED: "the run was aborted",
    EINTERNAL: "a bug in kanban-runtime-stager; please report it with the message above",
    ESIGNATURE: "a registry signature did not verify (or is missing with `requireSignatures`); \
        the document may be tampered with, or pass the registry's keys as `registryKeys` \
        (--require-signatures, --registry-keys)",
    EINCOMPATIBLE: "this runtime needs another Node (engines.node) or node-pty than the app \
        has; update the app first, or check `hostNodeVersion` (--host-node-version)",
    ELOCKED: "another process held the store lock for seconds (it may be frozen); retry, or end \
        that process",
    EBUSY: "a staged folder the run had to replace is held by another process (most likely a \
        runtime still running from it, or an antivirus scanner); nothing was changed, and the next \
        check tries again once it is released",
    EINSECURE_REDIRECT: "an https request was redirected to plain http, where anyone on the path \
        could change what is staged, and was refused; the registry, mirror or proxy must redirect \
        to https (check `registry`, --registry)",
}

/// The structured fields of an error, built up one by one.
#[derive(Default)]
struct Fields(Vec<(&'static str, Field)>);

impl Fields {
    /// Adds a string from outside, clipped (which masks the credentials of a URL).
    fn str(mut self, name: &'static str, value: &str) -> Fields {
        self.0.push((name, Field::Str(clip(value))));
        self
    }

    /// Adds one of our own names (a closed set's value, an option's name): nothing to clip.
    fn name(mut self, name: &'static str, value: &'static str) -> Fields {
        self.0.push((name, Field::Str(value.to_string())));
        self
    }

    /// Adds a string field when there is a value.
    fn opt(self, name: &'static str, value: Option<&str>) -> Fields {
        match value {
            Some(v) => self.str(name, v),
            None => self,
        }
    }

    fn num(mut self, name: &'static str, value: f64) -> Fields {
        self.0.push((name, Field::Num(value)));
        self
    }

    fn path(self, path: &Path) -> Fields {
        self.str("path", &path.display().to_string())
    }
}

impl StageError {
    /// Every code `code()` returns, in the order of `Kind::ALL`.
    pub const CODES: [&'static str; Kind::ALL.len()] = {
        let mut codes = [""; Kind::ALL.len()];
        let mut i = 0;
        while i < codes.len() {
            codes[i] = Kind::ALL[i].code;
            i += 1;
        }
        codes
    };

    /// Each variant's kind: its code and hint (laid out as a table, so kept from rustfmt).
    #[rustfmt::skip]
    pub fn kind(&self) -> Kind {
        use StageError::*;
        match self {
            InvalidOption { .. } => Kind::EINVALID_OPTION,
            HttpClient { .. } => Kind::EHTTP_CLIENT,
            Http { .. } => Kind::EHTTP,
            Timeout { .. } => Kind::ETIMEDOUT,
            Network { .. } => Kind::ENETWORK,
            InsecureRedirect { .. } => Kind::EINSECURE_REDIRECT,
            BadManifest { .. } => Kind::EBADMANIFEST,
            InvalidVersion { .. } => Kind::EINVALID_VERSION,
            Integrity { .. } => Kind::EINTEGRITY,
            UnsafeEntry { .. } => Kind::EUNSAFE_ENTRY,
            TooLarge { .. } => Kind::ETOO_LARGE,
            BadArchive { .. } => Kind::EBADARCHIVE,
            MissingCli { .. } => Kind::EMISSING_CLI,
            NativeDeps { .. } => Kind::ENATIVE_DEPS,
            NoSpace { .. } => Kind::ENOSPC,
            Io { .. } => Kind::EIO,
            Signature { .. } => Kind::ESIGNATURE,
            Incompatible { .. } => Kind::EINCOMPATIBLE,
            Provenance { .. } | BundleRefused { .. } => Kind::EPROVENANCE,
            Busy { .. } => Kind::EBUSY,
            Locked { .. } => Kind::ELOCKED,
            Aborted => Kind::EABORTED,
            Internal { .. } => Kind::EINTERNAL,
        }
    }

    /// The stable code JS sees as `err.code`.
    pub fn code(&self) -> &'static str {
        self.kind().code
    }

    /// What a person can do about it, as `err.hint`.
    pub fn hint(&self) -> &'static str {
        self.kind().hint
    }

    /// Structured fields for JS, beside `code`, `message` and `hint`, one arm per variant (laid
    /// out as a table, so kept from rustfmt); every string from outside is clipped.
    #[rustfmt::skip]
    pub fn fields(&self) -> Vec<(&'static str, Field)> {
        use StageError::*;
        let f = Fields::default();
        let f = match self {
            InvalidOption { name, .. } => f.name("option", name),
            HttpClient { .. } | Aborted => f,
            Http { url, status, .. } => f.str("url", url).num("status", f64::from(*status)),
            Timeout { url, phase, budget, ms } => f
                .str("url", url).num("timeoutMs", *ms as f64)
                .name("phase", phase.as_str()).name("timeout", budget.as_str()),
            Network { url, phase, .. } => f.str("url", url).name("phase", phase.as_str()),
            InsecureRedirect { url, location } => f.str("url", url).str("location", location),
            BadManifest { url, .. } | BadArchive { url, .. } | MissingCli { url, .. } => {
                f.str("url", url)
            }
            InvalidVersion { version, tag, .. } => f.str("version", version).str("tag", tag),
            Integrity { url, expected, actual } => f
                .str("url", url).str("expected", expected).str("actual", actual),
            UnsafeEntry { url, entry, .. } => f.str("url", url).str("entry", entry),
            TooLarge { url, limit, .. } => f.str("url", url).name("limit", limit.as_str()),
            NativeDeps { path } | NoSpace { path, .. } | Io { path, .. } | Busy { path, .. } => {
                f.path(path)
            }
            Signature { version, keyid, reason } => f
                .str("version", version).name("reason", reason.as_str())
                .opt("keyid", keyid.as_deref()),
            Incompatible { version, guard, range, provided } => f
                .str("version", version).name("guard", guard.as_str())
                .str("range", range).str("provided", provided),
            Provenance { version, check, .. } => {
                f.str("version", version).name("check", check.as_str())
            }
            BundleRefused { check, .. } => f.name("check", check.as_str()),
            Locked { path, ms } => f.path(path).num("timeoutMs", *ms as f64)
                .name("phase", Phase::WaitingForLock.as_str()),
            Internal { what } => f.str("what", what),
        };
        f.0
    }

    /// Wraps an I/O error on `path`, singling out a full disk (or quota) so callers can tell it apart.
    pub fn io(op: Op, path: &Path, source: io::Error) -> Self {
        if is_no_space(&source) {
            StageError::NoSpace {
                op,
                path: path.to_path_buf(),
            }
        } else {
            StageError::Io {
                op,
                path: path.to_path_buf(),
                source: Arc::new(source),
            }
        }
    }

    /// A failure of our own machinery, reported as `EINTERNAL`.
    pub fn internal(what: impl Into<String>) -> Self {
        StageError::Internal { what: what.into() }
    }

    /// `what` panicked, with the panic's message when it has one.
    pub fn panicked(what: &str, payload: &(dyn Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        StageError::internal(match message {
            Some(m) => format!("{what} panicked: {m}"),
            None => format!("{what} panicked"),
        })
    }

    /// A blocking task (`spawn_blocking`) that did not return: it panicked, or the runtime
    /// shutting down cancelled it.
    pub fn joined(what: &str, e: tokio::task::JoinError) -> Self {
        match e.try_into_panic() {
            Ok(payload) => StageError::panicked(what, &*payload),
            Err(e) => StageError::internal(format!("{what} did not finish: {e}")),
        }
    }

    /// Whether a fresh attempt may succeed: transient network trouble, 408, 429 and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            StageError::Network { .. } | StageError::Timeout { .. } => true,
            StageError::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
}

/// A path for a message, clipped like any other outside string.
fn clip_path(p: &Path) -> String {
    clip(&p.display().to_string())
}

/// Runs `fut`, turning a panic inside it into `EINTERNAL` so the caller gets a coded error rather
/// than a panic crossing into the host (napi would reject with an uncoded "Panic in async
/// function").
pub async fn catching_panics<T>(what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    use futures_util::FutureExt;
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(StageError::panicked(what, &*payload)))
}

/// A structured field value attached to the JS error.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Str(String),
    Num(f64),
}

pub(crate) fn is_no_space(e: &io::Error) -> bool {
    // ENOSPC (28) and EDQUOT (122 on Linux, 69 on macOS) both mean "the disk will take no more".
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(28))
        || (cfg!(target_os = "linux") && e.raw_os_error() == Some(122))
        || (cfg!(target_os = "macos") && e.raw_os_error() == Some(69))
        || (cfg!(windows) && matches!(e.raw_os_error(), Some(39) | Some(112)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::text::MAX_SHOWN_CHARS;

    #[test]
    fn codes_are_stable_and_distinct() {
        let errs = [
            StageError::Http {
                url: "u".into(),
                status: 404,
                retry_after: None,
            },
            StageError::Integrity {
                url: "u".into(),
                expected: "a".into(),
                actual: "b".into(),
            },
            StageError::Aborted,
            StageError::io(
                Op::Writing,
                Path::new("/x"),
                io::Error::from_raw_os_error(28),
            ),
            StageError::io(Op::Writing, Path::new("/x"), io::Error::other("boom")),
        ];
        let codes: Vec<_> = errs.iter().map(|e| e.code()).collect();
        assert_eq!(codes, ["EHTTP", "EINTEGRITY", "EABORTED", "ENOSPC", "EIO"]);
    }

    #[test]
    fn retry_classes() {
        let http = |status| StageError::Http {
            url: "u".into(),
            status,
            retry_after: None,
        };
        assert!(http(500).is_retryable());
        assert!(http(503).is_retryable());
        assert!(http(429).is_retryable());
        assert!(http(408).is_retryable());
        assert!(!http(404).is_retryable());
        assert!(!http(401).is_retryable());
        assert!(!StageError::Aborted.is_retryable());
    }

    fn internal_what(e: &StageError) -> String {
        assert_eq!(e.code(), "EINTERNAL");
        match e.fields().as_slice() {
            [("what", Field::Str(what))] => what.clone(),
            other => panic!("unexpected fields {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_panicking_future_is_einternal() {
        let r: Result<()> = catching_panics("staging", async { panic!("boom {}", 42) }).await;
        let what = internal_what(&r.unwrap_err());
        assert!(
            what.contains("staging") && what.contains("boom 42"),
            "{what}"
        );
        let ok = catching_panics("staging", async { Ok(7) }).await;
        assert_eq!(ok.unwrap(), 7);
        // A coded error passes through untouched.
        let aborted: Result<()> =
            catching_panics("staging", async { Err(StageError::Aborted) }).await;
        assert_eq!(aborted.unwrap_err().code(), "EABORTED");
    }

    #[tokio::test]
    async fn a_panicking_blocking_task_is_einternal() {
        let e = tokio::task::spawn_blocking(|| -> u8 { panic!("in the pool") })
            .await
            .map_err(|e| StageError::joined("a file task", e))
            .unwrap_err();
        let what = internal_what(&e);
        assert!(
            what.contains("a file task") && what.contains("in the pool"),
            "{what}"
        );
        // A payload that is not a string still maps.
        let e = StageError::panicked("x", &5u8);
        assert_eq!(internal_what(&e), "x panicked");
    }

    #[test]
    fn integrity_fields_carry_expected_and_actual() {
        let e = StageError::Integrity {
            url: "http://r/x.tgz".into(),
            expected: "sha512-a".into(),
            actual: "sha512-b".into(),
        };
        let f = e.fields();
        assert!(f.contains(&("expected", Field::Str("sha512-a".into()))));
        assert!(f.contains(&("actual", Field::Str("sha512-b".into()))));
    }

    #[test]
    fn messages_and_fields_carry_clipped_outside_strings() {
        let huge = "x".repeat(1 << 20);
        let errs = [
            StageError::Provenance {
                package: huge.clone(),
                version: huge.clone(),
                check: Check::Subject,
                reason: huge.clone(),
            },
            StageError::UnsafeEntry {
                url: huge.clone(),
                entry: huge.clone(),
                reason: huge.clone(),
            },
            StageError::InvalidVersion {
                package: huge.clone(),
                tag: huge.clone(),
                version: huge.clone(),
            },
            StageError::BadManifest {
                url: huge.clone(),
                reason: huge.clone(),
            },
            StageError::Integrity {
                url: huge.clone(),
                expected: huge.clone(),
                actual: huge.clone(),
            },
            StageError::Network {
                url: huge.clone(),
                phase: Phase::Resolving,
                message: huge.clone(),
            },
            StageError::InvalidOption {
                name: "proxy",
                reason: huge.clone(),
            },
            StageError::io(
                Op::Writing,
                Path::new(&huge),
                io::Error::other(huge.clone()),
            ),
        ];
        for e in errs {
            assert!(e.to_string().chars().count() < 2000, "{}", e.code());
            for (name, f) in e.fields() {
                if let Field::Str(v) = f {
                    assert!(v.chars().count() <= MAX_SHOWN_CHARS + 1, "{name}");
                }
            }
        }
    }

    #[test]
    fn messages_and_fields_never_show_the_credentials_of_a_url() {
        let url = "https://user:secret@r/kanban?token=secret".to_string();
        let errs = [
            StageError::Http {
                url: url.clone(),
                status: 404,
                retry_after: None,
            },
            StageError::Network {
                url: url.clone(),
                phase: Phase::Resolving,
                message: format!("error sending request for url ({url})"),
            },
            StageError::InsecureRedirect {
                url: url.clone(),
                location: "http://u:secret@m/x.tgz?X-Amz-Signature=secret".into(),
            },
            StageError::InvalidOption {
                name: "registry",
                reason: format!("`{url}`: invalid port number"),
            },
        ];
        for e in errs {
            let m = e.to_string();
            assert!(
                !m.contains("secret") && m.contains("https://***@r/kanban?token=***"),
                "{m}"
            );
            for (name, f) in e.fields() {
                if let Field::Str(v) = f {
                    assert!(!v.contains("secret"), "{} {name}: {v}", e.code());
                }
            }
        }
    }

    /// `E…` codes in the order they appear in `text` (each once).
    fn codes_in(text: &str, open: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for part in text.split(open).skip(1) {
            let code: String = part
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            if code.len() > 1 && code.starts_with('E') && !out.contains(&code) {
                out.push(code);
            }
        }
        out
    }

    #[test]
    fn every_variant_has_a_listed_code() {
        let p = PathBuf::from("/x");
        let url = String::from("u");
        let each = [
            StageError::InvalidOption {
                name: "x",
                reason: url.clone(),
            },
            StageError::Http {
                url: url.clone(),
                status: 500,
                retry_after: None,
            },
            StageError::HttpClient {
                reason: url.clone(),
            },
            StageError::Timeout {
                url: url.clone(),
                phase: Phase::Resolving,
                budget: Budget::Call,
                ms: 1,
            },
            StageError::Network {
                url: url.clone(),
                phase: Phase::Resolving,
                message: url.clone(),
            },
            StageError::BadManifest {
                url: url.clone(),
                reason: url.clone(),
            },
            StageError::InsecureRedirect {
                url: url.clone(),
                location: url.clone(),
            },
            StageError::InvalidVersion {
                package: url.clone(),
                tag: url.clone(),
                version: url.clone(),
            },
            StageError::Integrity {
                url: url.clone(),
                expected: url.clone(),
                actual: url.clone(),
            },
            StageError::UnsafeEntry {
                url: url.clone(),
                entry: url.clone(),
                reason: url.clone(),
            },
            StageError::TooLarge {
                url: url.clone(),
                limit: Limit::Entries,
                reason: url.clone(),
            },
            StageError::BadArchive {
                url: url.clone(),
                reason: url.clone(),
            },
            StageError::MissingCli {
                url: url.clone(),
                missing: url.clone(),
            },
            StageError::Provenance {
                package: url.clone(),
                version: url.clone(),
                check: Check::Identity,
                reason: url.clone(),
            },
            StageError::NativeDeps { path: p.clone() },
            StageError::NoSpace {
                op: Op::Writing,
                path: p.clone(),
            },
            StageError::io(Op::Writing, &p, io::Error::other("x")),
            StageError::Aborted,
            StageError::internal("x"),
            StageError::Signature {
                version: url.clone(),
                keyid: Some(url.clone()),
                reason: SignatureReason::Invalid,
            },
            StageError::Incompatible {
                version: url.clone(),
                guard: CompatGuard::NodePty,
                range: url.clone(),
                provided: url.clone(),
            },
            StageError::Locked {
                path: PathBuf::from("/p"),
                ms: 5000,
            },
            StageError::Busy {
                path: PathBuf::from("/p"),
                reason: "sharing violation".into(),
            },
        ];
        for e in &each {
            assert!(StageError::CODES.contains(&e.code()), "{}", e.code());
        }
        // And every listed code has a variant.
        for code in StageError::CODES {
            assert!(each.iter().any(|e| e.code() == code), "{code}");
        }
    }

    #[test]
    fn every_code_is_listed_once_with_a_hint() {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(StageError::CODES[i], kind.code);
            // One line, as the CLI prints it after `hint: `.
            assert!(!kind.hint.contains(['\n', '\r']), "{}", kind.code);
            assert!(!kind.hint.contains("  "), "{}: {}", kind.code, kind.hint);
            let again = Kind::ALL.iter().filter(|k| k.code == kind.code).count();
            assert_eq!(again, 1, "{}", kind.code);
        }
    }

    #[test]
    fn an_http_client_that_cannot_be_built_is_its_own_code() {
        let e = StageError::HttpClient {
            reason: "no certificate store".into(),
        };
        assert_eq!(e.code(), "EHTTP_CLIENT");
        assert_eq!(e.hint(), Kind::EHTTP_CLIENT.hint);
        assert!(e.fields().is_empty(), "{:?}", e.fields());
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("no certificate store"), "{e}");
    }

    #[test]
    fn a_timeout_names_its_budget_and_phase() {
        let timeout = |phase, budget| StageError::Timeout {
            url: "http://r/kanban".into(),
            phase,
            budget,
            ms: 400,
        };
        let cases = [
            (Phase::Resolving, Budget::Connect, "resolving", "connect"),
            (Phase::Downloading, Budget::Idle, "downloading", "idle"),
            (
                Phase::WaitingForLock,
                Budget::Call,
                "waiting-for-lock",
                "call",
            ),
            (Phase::Finishing, Budget::Call, "finishing", "call"),
        ];
        for (phase, budget, phase_str, budget_str) in cases {
            let e = timeout(phase, budget);
            assert_eq!(e.code(), "ETIMEDOUT");
            assert_eq!(
                e.fields(),
                [
                    ("url", Field::Str("http://r/kanban".into())),
                    ("timeoutMs", Field::Num(400.0)),
                    ("phase", Field::Str(phase_str.into())),
                    ("timeout", Field::Str(budget_str.into())),
                ]
            );
            let m = e.to_string();
            assert!(m.contains(phase_str) && m.contains("400 ms"), "{m}");
        }
        assert!(timeout(Phase::Resolving, Budget::Call).is_retryable());
    }

    /// The quoted strings of the TypeScript union that follows `start` in `error-types.d.ts`.
    fn ts_union(start: &str) -> Vec<&'static str> {
        let dts = include_str!("../../../../error-types.d.ts");
        let union = &dts[dts.find(start).unwrap() + start.len()..];
        let union = &union[..union.find('\n').unwrap()];
        union.split('\'').skip(1).step_by(2).collect()
    }

    #[test]
    fn the_typescript_phase_and_timeout_unions_match_the_enums() {
        let phases: Vec<_> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(ts_union("export type StagePhase ="), phases);
        let budgets: Vec<_> = [Budget::Call, Budget::Connect, Budget::Idle]
            .iter()
            .map(|b| b.as_str())
            .collect();
        assert_eq!(ts_union("timeout?:"), budgets);
    }

    /// Every check the verifier names, in the README's order. The match stops compiling when the
    /// verifier gains a check, so that it is listed here (and in the README and the union) too.
    fn every_check() -> Vec<&'static str> {
        use Check::*;
        let all = [
            Attestation,
            Certificate,
            Identity,
            TransparencyLog,
            Timestamp,
            Signature,
            Subject,
        ];
        for check in all {
            match check {
                Attestation | Certificate | Identity | TransparencyLog | Timestamp | Signature
                | Subject => {}
            }
        }
        all.iter().map(|c| c.as_str()).collect()
    }

    /// The values the README's error table gives for `field` of `code`: "`field` (`a`, `b`)".
    fn readme_values(code: &str, field: &str) -> Vec<&'static str> {
        let readme = include_str!("../../../../README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{code}` |")))
            .unwrap_or_else(|| panic!("no README row for {code}"));
        let open = format!("`{field}` (");
        let list = &row[row.find(&open).expect(field) + open.len()..];
        let list = &list[..list.find(')').unwrap()];
        list.split('`').skip(1).step_by(2).collect()
    }

    fn strings<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| as_str(*v)).collect()
    }

    #[test]
    fn the_closed_fields_are_the_strings_the_typescript_and_the_readme_list() {
        let limits = strings(Limit::ALL, Limit::as_str);
        assert_eq!(readme_values("ETOO_LARGE", "limit"), limits);
        let reasons = strings(SignatureReason::ALL, SignatureReason::as_str);
        assert_eq!(ts_union("reason?:"), reasons);
        assert_eq!(readme_values("ESIGNATURE", "reason"), reasons);
        let guards = strings(CompatGuard::ALL, CompatGuard::as_str);
        assert_eq!(ts_union("guard?:"), guards);
        assert_eq!(readme_values("EINCOMPATIBLE", "guard"), guards);
        assert_eq!(ts_union("check?:"), every_check());
        assert_eq!(readme_values("EPROVENANCE", "check"), every_check());
        // Each reads back as itself, and as nothing else.
        for guard in CompatGuard::ALL {
            assert_eq!(CompatGuard::parse(guard.as_str()), Some(*guard));
        }
        assert_eq!(CompatGuard::parse("engines"), None);
    }

    #[test]
    fn the_closed_fields_reach_js_and_the_message_as_their_strings() {
        let cases = [
            (
                StageError::TooLarge {
                    url: "http://r/x.tgz".into(),
                    limit: Limit::UnpackedBytes,
                    reason: "unpacked size exceeds 10 bytes".into(),
                },
                ("limit", "unpackedBytes"),
                "http://r/x.tgz exceeds a limit (unpackedBytes): unpacked size exceeds 10 bytes",
            ),
            (
                StageError::Signature {
                    version: "2.0.0".into(),
                    keyid: Some("SHA256:k".into()),
                    reason: SignatureReason::UnknownKey,
                },
                ("reason", "unknown-key"),
                "registry signature check failed for version 2.0.0 (unknown-key, key SHA256:k)",
            ),
            (
                StageError::Incompatible {
                    version: "2.0.0".into(),
                    guard: CompatGuard::EnginesNode,
                    range: ">=99".into(),
                    provided: "22.12.0".into(),
                },
                ("guard", "engines.node"),
                "version 2.0.0 cannot run here: its engines.node range `>=99` excludes 22.12.0",
            ),
            (
                StageError::Provenance {
                    package: "kanban".into(),
                    version: "2.0.0".into(),
                    check: Check::TransparencyLog,
                    reason: "no entry".into(),
                },
                ("check", "transparencyLog"),
                "kanban@2.0.0 has no valid provenance (transparencyLog): no entry",
            ),
            (
                StageError::BundleRefused {
                    check: Check::Timestamp,
                    reason: "bad token".into(),
                },
                ("check", "timestamp"),
                "the bundle does not verify (timestamp): bad token",
            ),
        ];
        for (e, (name, value), message) in cases {
            assert!(
                e.fields().contains(&(name, Field::Str(value.into()))),
                "{:?}",
                e.fields()
            );
            assert_eq!(e.to_string(), message);
        }
        let io = StageError::io(
            Op::SettingModeOf,
            Path::new("/x"),
            io::Error::other("denied"),
        );
        assert_eq!(io.to_string(), "setting mode of /x failed: denied");
        let full = StageError::io(
            Op::FlushingFolder,
            Path::new("/x"),
            io::Error::from_raw_os_error(28),
        );
        assert_eq!(full.code(), "ENOSPC");
        assert_eq!(
            full.to_string(),
            "no space left on device while flushing folder /x"
        );
    }

    #[test]
    fn a_network_error_names_its_phase_in_the_progress_vocabulary() {
        let e = StageError::Network {
            url: "http://r/x.tgz".into(),
            phase: Phase::Downloading,
            message: "connection reset".into(),
        };
        assert_eq!(e.code(), "ENETWORK");
        assert!(e
            .fields()
            .contains(&("phase", Field::Str("downloading".into()))));
        assert_eq!(
            e.to_string(),
            "network error while downloading http://r/x.tgz: connection reset"
        );
    }

    #[test]
    fn the_typescript_union_and_the_readme_table_list_every_code() {
        let codes: Vec<String> = StageError::CODES.iter().map(|c| c.to_string()).collect();
        let dts = include_str!("../../../../error-types.d.ts");
        let union = &dts[dts.find("StageErrorCode =").unwrap()..];
        let union = &union[..union.find("\n\n").unwrap()];
        let mut in_union = codes_in(union, "'");
        let readme = include_str!("../../../../README.md");
        let table = &readme[readme.find("### Error codes").unwrap()..];
        let table = &table[..table.find("\n## ").unwrap()];
        let mut in_table = codes_in(table, "| `");
        let mut expected = codes.clone();
        expected.sort();
        in_union.sort();
        in_table.sort();
        assert_eq!(in_union, expected, "error-types.d.ts");
        assert_eq!(in_table, expected, "README.md error table");
        for kind in Kind::ALL {
            assert!(!kind.hint.trim().is_empty(), "{} has no hint", kind.code);
        }
    }
}
