//! The tarball bytes a staging run keeps between attempts (`staging/<v>.download`) and the
//! sidecar that names them (`staging/<v>.download.json`): the URL, the integrity the document
//! promised, the server's validator, the full size and when they were last written. `net`
//! resumes downloads from them; the store sweeps and reports them.

use super::layout::KEPT_SUFFIX;
use super::layout::SIDECAR_SUFFIX;
use crate::shared::fsutil;
use serde::Deserialize;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;
use std::time::SystemTime;
use std::time::UNIX_EPOCH;

/// Kept bytes older than this are swept: a download abandoned for a week is not worth resuming,
/// and the version it was for has most likely been superseded.
pub(crate) const MAX_KEPT_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// A sidecar is a few hundred bytes; a larger file is not ours and is not read.
pub(super) const MAX_SIDECAR_BYTES: u64 = 64 * 1024;

/// Longest validator we keep: real ETags and HTTP dates are well under 100 characters.
pub(super) const MAX_VALIDATOR_CHARS: usize = 256;

/// What lets a server tell whether the bytes we hold are still a prefix of what it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Validator {
    /// A strong `ETag`, quotes included, as sent back in `If-Range`.
    Etag(String),
    /// `Last-Modified`, used only when there is no strong ETag.
    LastModified(String),
}

impl Validator {
    /// The response's validator: its strong ETag, else its Last-Modified. A weak ETag (`W/"…"`)
    /// may not guard a range (RFC 9110 §13.1.5), so it does not count.
    pub(crate) fn from_headers(
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Option<Validator> {
        let usable = |v: &str| {
            !v.is_empty()
                && v.len() <= MAX_VALIDATOR_CHARS
                && v.bytes().all(|b| (0x20..0x7f).contains(&b))
        };
        if let Some(e) = etag
            .map(str::trim)
            .filter(|e| usable(e) && !e.starts_with("W/"))
        {
            return Some(Validator::Etag(e.to_string()));
        }
        last_modified
            .map(str::trim)
            .filter(|l| usable(l))
            .map(|l| Validator::LastModified(l.to_string()))
    }

    /// The value of the `If-Range` header.
    pub(crate) fn header_value(&self) -> &str {
        match self {
            Validator::Etag(v) | Validator::LastModified(v) => v,
        }
    }
}

/// The sidecar `staging/<v>.download.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Sidecar {
    pub url: String,
    /// The document's integrity the bytes were downloaded for.
    pub integrity: String,
    pub validator: Validator,
    /// The tarball's full size, when the server said.
    pub size: Option<u64>,
    /// Seconds since the Unix epoch when the download began or was last resumed.
    pub time: u64,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sidecar {
    /// Whether kept bytes described by this sidecar, `len` of them, may be resumed for `url` and
    /// `integrity` at `now`: same tarball, same promise, fresh, and not already complete (a
    /// complete file that failed to stage is suspect, and a range past its end is unanswerable).
    pub(crate) fn usable_for(&self, url: &str, integrity: &str, len: u64, now: u64) -> bool {
        self.url == url
            && self.integrity == integrity
            && len > 0
            && self.size.is_none_or(|s| len < s)
            && self.time <= now
            && now - self.time < MAX_KEPT_AGE.as_secs()
    }

    pub(crate) fn is_stale(&self, now: u64) -> bool {
        self.time > now || now - self.time >= MAX_KEPT_AGE.as_secs()
    }
}

/// The sidecar at `path`, read as the store's other small files are: a regular file only, capped,
/// so a FIFO put in its place never holds the staging lock's holder.
pub(crate) fn read_sidecar(path: &Path) -> Option<Sidecar> {
    match fsutil::read_small(path, MAX_SIDECAR_BYTES) {
        fsutil::SmallFile::Read(bytes) => serde_json::from_slice(&bytes).ok(),
        _ => None,
    }
}

/// The version a kept file or sidecar is for, from its name in `versions/`.
pub(crate) fn kept_version(name: &str) -> Option<&str> {
    let v = name
        .strip_suffix(SIDECAR_SUFFIX)
        .or_else(|| name.strip_suffix(KEPT_SUFFIX))?;
    semver::Version::parse(v).ok().map(|_| v)
}
