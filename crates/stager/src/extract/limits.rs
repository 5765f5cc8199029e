//! The extractor's caps, and the errors it reports when a tarball breaks one or is malformed.

use crate::shared::error::{Limit, StageError};
use std::io;

/// Hard ceilings whatever the registry claims: the runtime is ~60 MB in ~20 files today.
pub(crate) const HARD_MAX_UNPACKED_BYTES: u64 = 1024 * 1024 * 1024;
pub(crate) const HARD_MAX_ENTRIES: u64 = 100_000;
/// Deepest path we accept; real packages stay under 20, and deep trees exhaust Windows' MAX_PATH.
pub(super) const MAX_PATH_DEPTH: usize = 32;
/// Longest entry path in bytes; leaves room under Windows' 260-char MAX_PATH for userData.
pub(super) const MAX_PATH_BYTES: usize = 200;
/// Largest PAX or GNU extension record read: real ones hold a path and a few times, well under
/// 1 KiB; the cap is checked against the header before a byte of the body is buffered.
pub(super) const MAX_EXTENSION_BYTES: u64 = 64 * 1024;
/// Longest path an extension may name, far past any real one (the sanitiser allows much less);
/// only a bound on what is held in memory and quoted, the real path caps come after.
pub(super) const MAX_EXTENDED_PATH_BYTES: usize = 4096;

/// Caps for one tarball.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extracted {
    pub files: u64,
    pub bytes: u64,
}

/// Marks the inflated stream growing past its cap, so the error can be told apart from I/O.
#[derive(Debug)]
pub(super) struct LimitExceeded(pub(super) u64);
impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "inflated stream exceeds {} bytes", self.0)
    }
}
impl std::error::Error for LimitExceeded {}

/// An `ETOO_LARGE` error for the cap named `limit`.
pub(super) fn too_large(url: &str, limit: Limit, reason: String) -> StageError {
    StageError::TooLarge {
        url: url.into(),
        limit,
        reason,
    }
}

/// An `EUNSAFE_ENTRY` error quoting `entry` (already clipped).
pub(super) fn unsafe_entry(url: &str, entry: &str, reason: &str) -> StageError {
    StageError::UnsafeEntry {
        url: url.into(),
        entry: entry.into(),
        reason: reason.into(),
    }
}

/// An `EBADARCHIVE` error for a failed read of the stream, or `ETOO_LARGE` when the inflated
/// stream passed its cap.
pub(super) fn archive_error(url: &str, e: io::Error) -> StageError {
    if let Some(limit) = e.get_ref().and_then(|i| i.downcast_ref::<LimitExceeded>()) {
        return too_large(url, Limit::InflatedBytes, limit.to_string());
    }
    let reason = match e.kind() {
        io::ErrorKind::UnexpectedEof => "the stream ends early (truncated)".to_string(),
        _ => e.to_string(),
    };
    StageError::BadArchive {
        url: url.into(),
        reason,
    }
}
