//! When a version folder is whole: its completion record (ours), or the TypeScript stager's rule
//! for a folder it left, and the native module beside the CLI.

use super::layout::tree_stats;
use super::layout::Store;
use super::layout::COMPLETE_FILE;
use super::locks::StagingLock;
use crate::shared::error::Result;
use crate::shared::fsutil;
use crate::shared::fsutil::OsRenamer;
use serde::Deserialize;
use serde::Serialize;
use std::fs;
use std::path::Path;

/// A completion record is four short fields.
pub(super) const MAX_RECORD_BYTES: u64 = 16 * 1024;

/// The completion record of a staged folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CompletionRecord {
    pub version: String,
    pub integrity: String,
    pub files: u64,
    pub bytes: u64,
}

pub(crate) fn read_record(dir: &Path) -> Option<CompletionRecord> {
    match fsutil::read_small(&dir.join(COMPLETE_FILE), MAX_RECORD_BYTES) {
        fsutil::SmallFile::Read(bytes) => serde_json::from_slice(&bytes).ok(),
        _ => None,
    }
}

/// Writes the completion record into a folder about to be renamed into place, flushed.
/// Written atomically (temp file, flush, rename, flush folder): an adopted folder gets its record
/// while the pointer names it, and a torn record would make it look damaged after a crash.
pub(crate) fn write_record(dir: &Path, record: &CompletionRecord) -> Result<()> {
    let json = serde_json::to_vec(record).expect("record serialises");
    fsutil::write_atomic(&OsRenamer, &dir.join(COMPLETE_FILE), &json)
}

impl Store {
    /// Whole by our completion record, or a folder the original TypeScript stager left whole.
    pub fn is_runnable(&self, version: &str) -> bool {
        self.is_whole(version) || self.is_legacy_whole(version)
    }

    /// A folder staged by the original TypeScript implementation, which wrote no completion
    /// record: whole by that implementation's own rule (its CLI and `node_modules/node-pty` are
    /// there and its `package.json` names this very version). A folder with a record is judged by
    /// the record alone: this rule only adopts stores from before records existed.
    pub fn is_legacy_whole(&self, version: &str) -> bool {
        let dir = self.version_dir(version);
        if fs::symlink_metadata(dir.join(COMPLETE_FILE)).is_ok()
            || !self.cli_entry(version).is_file()
            || !self.native_module(version).is_dir()
        {
            return false;
        }
        // Read like the store's own files: a regular file only, no link followed, no FIFO waited
        // on, and capped.
        match fsutil::read_small(&dir.join("package.json"), fsutil::MAX_MANIFEST_BYTES) {
            fsutil::SmallFile::Read(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .is_some_and(|v| v.get("version").and_then(|v| v.as_str()) == Some(version)),
            _ => false,
        }
    }

    /// Writes the completion record into a legacy-whole version folder, so that it is judged by
    /// the record from now on.
    pub fn adopt_legacy(&self, _: &StagingLock, version: &str, integrity: &str) -> Result<()> {
        let dir = self.version_dir(version);
        let (files, bytes) = tree_stats(&dir);
        let record = CompletionRecord {
            version: version.to_string(),
            integrity: integrity.to_string(),
            files,
            bytes,
        };
        write_record(&dir, &record)?;
        fsutil::sync_dir(&dir)
    }

    /// A staged folder is whole when its CLI, its native module and its completion record for
    /// this very version are all there: a half-deleted folder fails at least one of these.
    pub fn is_whole(&self, version: &str) -> bool {
        self.cli_entry(version).is_file()
            && self.native_module(version).is_dir()
            && read_record(&self.version_dir(version)).is_some_and(|r| r.version == version)
    }
}
