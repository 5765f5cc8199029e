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
    #[error("invalid option `{name}`: {}", clip(.reason))]
    InvalidOption { name: &'static str, reason: String },

    #[error("GET {} answered HTTP {status}", clip(.url))]
    Http {
        url: String,
        status: u16,
        /// The server's `Retry-After`, already capped, for the retry loop.
        retry_after: Option<Duration>,
    },

    #[error("{phase} {} timed out after {ms} ms", clip(.url))]
    Timeout {
        url: String,
        phase: &'static str,
        ms: u64,
    },

    #[error("network error during {phase} {}: {}", clip(.url), clip(.message))]
    Network {
        url: String,
        phase: &'static str,
        message: String,
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
        /// Which cap was hit: `document`, `tarballBytes`, `entries`, `unpackedBytes`,
        /// `inflatedBytes`, `path` or `extensionHeader`.
        limit: &'static str,
        reason: String,
    },

    #[error("tarball from {} is corrupt: {}", clip(.url), clip(.reason))]
    BadArchive { url: String, reason: String },

    #[error("the runtime package from {} has no {missing}", clip(.url))]
    MissingCli { url: String, missing: String },

    #[error("native modules folder {} has no node-pty", clip_path(.path))]
    NativeDeps { path: PathBuf },

    #[error("no space left on device while {op} {}", clip_path(.path))]
    NoSpace { op: &'static str, path: PathBuf },

    #[error("{op} {} failed: {}", clip_path(.path), clip(&.source.to_string()))]
    Io {
        op: &'static str,
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
        /// `invalid`, `unknown-key`, `expired-key`, `missing`, `malformed` or `no-integrity`.
        reason: &'static str,
    },

    #[error(
        "version {} cannot run here: its {guard} range `{}` excludes {}",
        clip(.version),
        clip(.range),
        clip(.provided)
    )]
    Incompatible {
        version: String,
        /// `engines.node` or `node-pty`.
        guard: &'static str,
        range: String,
        /// The host's Node version or the bundled node-pty's version.
        provided: String,
    },

    #[error(
        "{}@{} has no valid provenance ({check}): {}",
        clip(.package),
        clip(.version),
        clip(.reason)
    )]
    Provenance {
        package: String,
        version: String,
        /// Which check failed: `attestation`, `certificate`, `identity`, `transparencyLog`,
        /// `signature` or `subject`.
        check: &'static str,
        reason: String,
    },

    #[error("staging was aborted")]
    Aborted,

    /// A bug of ours, never the network's or the disk's: a task or thread that panicked.
    #[error("internal error: {what}")]
    Internal { what: String },
}

impl StageError {
    /// The stable code JS sees as `err.code`. Part of the public API: never rename one.
    /// Every code `code()` returns. The TypeScript `StageErrorCode` union (`error-types.d.ts`)
    /// and the README's error table are tested against this list, so the three cannot drift.
    pub const CODES: &'static [&'static str] = &[
        "EINVALID_OPTION",
        "ENETWORK",
        "ETIMEDOUT",
        "EHTTP",
        "EBADMANIFEST",
        "EINVALID_VERSION",
        "EINTEGRITY",
        "EPROVENANCE",
        "EUNSAFE_ENTRY",
        "ETOO_LARGE",
        "EBADARCHIVE",
        "EMISSING_CLI",
        "ENATIVE_DEPS",
        "ENOSPC",
        "EIO",
        "EABORTED",
        "EINTERNAL",
        "ESIGNATURE",
        "EINCOMPATIBLE",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            StageError::InvalidOption { .. } => "EINVALID_OPTION",
            StageError::Http { .. } => "EHTTP",
            StageError::Timeout { .. } => "ETIMEDOUT",
            StageError::Network { .. } => "ENETWORK",
            StageError::BadManifest { .. } => "EBADMANIFEST",
            StageError::InvalidVersion { .. } => "EINVALID_VERSION",
            StageError::Integrity { .. } => "EINTEGRITY",
            StageError::Provenance { .. } => "EPROVENANCE",
            StageError::UnsafeEntry { .. } => "EUNSAFE_ENTRY",
            StageError::TooLarge { .. } => "ETOO_LARGE",
            StageError::BadArchive { .. } => "EBADARCHIVE",
            StageError::MissingCli { .. } => "EMISSING_CLI",
            StageError::NativeDeps { .. } => "ENATIVE_DEPS",
            StageError::NoSpace { .. } => "ENOSPC",
            StageError::Io { .. } => "EIO",
            StageError::Aborted => "EABORTED",
            StageError::Signature { .. } => "ESIGNATURE",
            StageError::Incompatible { .. } => "EINCOMPATIBLE",
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

    /// Structured fields for JS, beside `code` and `message`; every string is clipped.
    pub fn fields(&self) -> Vec<(&'static str, Field)> {
        use Field::*;
        let s = |v: &str| Str(clip(v));
        match self {
            StageError::Http { url, status, .. } => {
                vec![("url", s(url)), ("status", Num(*status as f64))]
            }
            StageError::Timeout { url, ms, phase } => vec![
                ("url", s(url)),
                ("timeoutMs", Num(*ms as f64)),
                ("phase", s(phase)),
            ],
            StageError::Network { url, phase, .. } => {
                vec![("url", s(url)), ("phase", s(phase))]
            }
            StageError::BadManifest { url, .. } | StageError::BadArchive { url, .. } => {
                vec![("url", s(url))]
            }
            StageError::TooLarge { url, limit, .. } => {
                vec![("url", s(url)), ("limit", s(limit))]
            }
            StageError::MissingCli { url, .. } => vec![("url", s(url))],
            StageError::InvalidVersion { version, tag, .. } => {
                vec![("version", s(version)), ("tag", s(tag))]
            }
            StageError::Integrity {
                url,
                expected,
                actual,
            } => vec![
                ("url", s(url)),
                ("expected", s(expected)),
                ("actual", s(actual)),
            ],
            StageError::UnsafeEntry { url, entry, .. } => {
                vec![("url", s(url)), ("entry", s(entry))]
            }
            StageError::Provenance { version, check, .. } => {
                vec![("version", s(version)), ("check", s(check))]
            }
            StageError::NativeDeps { path }
            | StageError::NoSpace { path, .. }
            | StageError::Io { path, .. } => {
                vec![("path", Str(clip_path(path)))]
            }
            StageError::InvalidOption { name, .. } => vec![("option", s(name))],
            StageError::Internal { what } => vec![("what", s(what))],
            StageError::Aborted => vec![],
            StageError::Signature {
                version,
                keyid,
                reason,
            } => {
                let mut f = vec![("version", s(version)), ("reason", s(reason))];
                f.extend(keyid.as_deref().map(|k| ("keyid", s(k))));
                f
            }
            StageError::Incompatible {
                version,
                guard,
                range,
                provided,
            } => vec![
                ("version", s(version)),
                ("guard", s(guard)),
                ("range", s(range)),
                ("provided", s(provided)),
            ],
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

/// Longest run of characters from outside (a registry, a tarball, the user) that an error message
/// or field carries: enough to recognise a URL or an entry name, never a megabyte of hostile text.
pub const MAX_SHOWN_CHARS: usize = 300;

/// `s` cut to at most [`MAX_SHOWN_CHARS`] characters, with `…` marking the cut. Cuts on a character
/// boundary, so any UTF-8 input is safe.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_SHOWN_CHARS) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
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

    #[test]
    fn clip_keeps_short_strings_and_cuts_long_ones_on_a_char_boundary() {
        assert_eq!(clip("short"), "short");
        let exact = "a".repeat(MAX_SHOWN_CHARS);
        assert_eq!(clip(&exact), exact);
        let long = "é".repeat(MAX_SHOWN_CHARS * 10);
        let c = clip(&long);
        assert_eq!(c.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(c.ends_with('…'));
        assert!(c.starts_with("éé"));
        // Mixed widths: the cut never lands inside a character.
        let mixed: String = "a€😀".repeat(MAX_SHOWN_CHARS);
        assert_eq!(clip(&mixed).chars().count(), MAX_SHOWN_CHARS + 1);
    }

    #[test]
    fn messages_and_fields_carry_clipped_outside_strings() {
        let huge = "x".repeat(1 << 20);
        let errs = [
            StageError::Provenance {
                package: huge.clone(),
                version: huge.clone(),
                check: "subject",
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
                phase: "fetching",
                message: huge.clone(),
            },
            StageError::InvalidOption {
                name: "proxy",
                reason: huge.clone(),
            },
            StageError::io("writing", Path::new(&huge), io::Error::other(huge.clone())),
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
            StageError::Timeout {
                url: url.clone(),
                phase: "fetching",
                ms: 1,
            },
            StageError::Network {
                url: url.clone(),
                phase: "fetching",
                message: url.clone(),
            },
            StageError::BadManifest {
                url: url.clone(),
                reason: url.clone(),
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
                limit: "entries",
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
                check: "identity",
                reason: url.clone(),
            },
            StageError::NativeDeps { path: p.clone() },
            StageError::NoSpace {
                op: "writing",
                path: p.clone(),
            },
            StageError::io("writing", &p, io::Error::other("x")),
            StageError::Aborted,
            StageError::internal("x"),
            StageError::Signature {
                version: url.clone(),
                keyid: Some(url.clone()),
                reason: "invalid",
            },
            StageError::Incompatible {
                version: url.clone(),
                guard: "node-pty",
                range: url.clone(),
                provided: url.clone(),
            },
        ];
        for e in &each {
            assert!(StageError::CODES.contains(&e.code()), "{}", e.code());
        }
    }

    #[test]
    fn the_typescript_union_and_the_readme_table_list_every_code() {
        let codes: Vec<String> = StageError::CODES.iter().map(|c| c.to_string()).collect();
        let dts = include_str!("../error-types.d.ts");
        let union =
            &dts[dts.find("StageErrorCode =").unwrap()..dts.find("export interface").unwrap()];
        let mut in_union = codes_in(union, "'");
        let readme = include_str!("../README.md");
        let table = &readme[readme.find("### Error codes").unwrap()..];
        let table = &table[..table.find("\n## ").unwrap()];
        let mut in_table = codes_in(table, "| `");
        let mut expected = codes.clone();
        expected.sort();
        in_union.sort();
        in_table.sort();
        assert_eq!(in_union, expected, "error-types.d.ts");
        assert_eq!(in_table, expected, "README.md error table");
    }
}
