//! One error type for the whole stager. Every variant maps to a stable `code` that JS sees as
//! `err.code`; messages name the operation and the path or URL involved.

use std::any::Any;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub type Result<T, E = StageError> = std::result::Result<T, E>;

/// Cloneable so that concurrent callers sharing one staging run can each receive its result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StageError {
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption { name: &'static str, reason: String },

    #[error("GET {url} answered HTTP {status}")]
    Http {
        url: String,
        status: u16,
        /// The server's `Retry-After`, already capped, for the retry loop.
        retry_after: Option<Duration>,
    },

    #[error("{phase} {url} timed out after {ms} ms")]
    Timeout {
        url: String,
        phase: &'static str,
        ms: u64,
    },

    #[error("network error during {phase} {url}: {message}")]
    Network {
        url: String,
        phase: &'static str,
        message: String,
    },

    #[error("package document from {url} is unusable: {reason}")]
    BadManifest { url: String, reason: String },

    #[error(
        "dist-tag `{tag}` of {package} names `{version}`, which is not a valid semver version"
    )]
    InvalidVersion {
        package: String,
        tag: String,
        version: String,
    },

    #[error("integrity check failed for {url}: expected {expected}, got {actual}")]
    Integrity {
        url: String,
        expected: String,
        actual: String,
    },

    #[error("refusing tarball entry `{entry}` from {url}: {reason}")]
    UnsafeEntry {
        url: String,
        entry: String,
        reason: String,
    },

    #[error("tarball from {url} exceeds a limit: {reason}")]
    TooLarge { url: String, reason: String },

    #[error("tarball from {url} is corrupt: {reason}")]
    BadArchive { url: String, reason: String },

    #[error("the runtime package from {url} has no {missing}")]
    MissingCli { url: String, missing: String },

    #[error("native modules folder {} has no node-pty", path.display())]
    NativeDeps { path: PathBuf },

    #[error("no space left on device while {op} {}", path.display())]
    NoSpace { op: &'static str, path: PathBuf },

    #[error("{op} {} failed: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },

    #[error("staging was aborted")]
    Aborted,

    /// A bug of ours, never the network's or the disk's: a task or thread that panicked.
    #[error("internal error: {what}")]
    Internal { what: String },
}

impl StageError {
    /// The stable code JS sees as `err.code`. Part of the public API: never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            StageError::InvalidOption { .. } => "EINVALID_OPTION",
            StageError::Http { .. } => "EHTTP",
            StageError::Timeout { .. } => "ETIMEDOUT",
            StageError::Network { .. } => "ENETWORK",
            StageError::BadManifest { .. } => "EBADMANIFEST",
            StageError::InvalidVersion { .. } => "EINVALID_VERSION",
            StageError::Integrity { .. } => "EINTEGRITY",
            StageError::UnsafeEntry { .. } => "EUNSAFE_ENTRY",
            StageError::TooLarge { .. } => "ETOO_LARGE",
            StageError::BadArchive { .. } => "EBADARCHIVE",
            StageError::MissingCli { .. } => "EMISSING_CLI",
            StageError::NativeDeps { .. } => "ENATIVE_DEPS",
            StageError::NoSpace { .. } => "ENOSPC",
            StageError::Io { .. } => "EIO",
            StageError::Aborted => "EABORTED",
            StageError::Internal { .. } => "EINTERNAL",
        }
    }

    /// Wraps an I/O error on `path`, singling out a full disk (or quota) so callers can tell it apart.
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
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

    /// Structured fields for JS, beside `code` and `message`.
    pub fn fields(&self) -> Vec<(&'static str, Field)> {
        use Field::*;
        match self {
            StageError::Http { url, status, .. } => {
                vec![("url", Str(url.clone())), ("status", Num(*status as f64))]
            }
            StageError::Timeout { url, ms, phase } => vec![
                ("url", Str(url.clone())),
                ("timeoutMs", Num(*ms as f64)),
                ("phase", Str((*phase).into())),
            ],
            StageError::Network { url, phase, .. } => {
                vec![("url", Str(url.clone())), ("phase", Str((*phase).into()))]
            }
            StageError::BadManifest { url, .. } | StageError::BadArchive { url, .. } => {
                vec![("url", Str(url.clone()))]
            }
            StageError::TooLarge { url, .. } | StageError::MissingCli { url, .. } => {
                vec![("url", Str(url.clone()))]
            }
            StageError::InvalidVersion { version, tag, .. } => {
                vec![("version", Str(version.clone())), ("tag", Str(tag.clone()))]
            }
            StageError::Integrity {
                url,
                expected,
                actual,
            } => vec![
                ("url", Str(url.clone())),
                ("expected", Str(expected.clone())),
                ("actual", Str(actual.clone())),
            ],
            StageError::UnsafeEntry { url, entry, .. } => {
                vec![("url", Str(url.clone())), ("entry", Str(entry.clone()))]
            }
            StageError::NativeDeps { path }
            | StageError::NoSpace { path, .. }
            | StageError::Io { path, .. } => {
                vec![("path", Str(path.display().to_string()))]
            }
            StageError::InvalidOption { name, .. } => vec![("option", Str((*name).into()))],
            StageError::Internal { what } => vec![("what", Str(what.clone()))],
            StageError::Aborted => vec![],
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

pub fn is_no_space(e: &io::Error) -> bool {
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
            StageError::io("writing", Path::new("/x"), io::Error::from_raw_os_error(28)),
            StageError::io("writing", Path::new("/x"), io::Error::other("boom")),
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
}
