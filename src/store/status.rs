//! The store as a person debugging it wants to see it.

use super::heal::Misplaced;
use super::layout::dir_entries;
use super::layout::is_trash;
use super::layout::tree_size;
use super::layout::Store;
use super::pointer::Pointer;
use super::rollout::RolloutRecord;
use crate::shared::error::Result;
use std::fs;
use std::path::PathBuf;

/// One folder under `versions/`, for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionOnDisk {
    pub version: String,
    pub bytes: u64,
    pub whole: bool,
}

/// A folder on its way out, in `staging/`, that could not be deleted yet (on Windows, a file in
/// it is still open in another process); later sweeps try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashOnDisk {
    pub name: String,
    pub bytes: u64,
}

/// Everything a person debugging a user's store wants to see.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreStatus {
    pub pointer: Option<Pointer>,
    pub runnable: Option<PathBuf>,
    pub versions: Vec<VersionOnDisk>,
    pub bad: Vec<String>,
    /// Leftovers of interrupted runs (removed by the next staging run) and runs in flight.
    pub partials: Vec<String>,
    pub locked: bool,
    /// Bytes of everything under `versions/`.
    pub total_bytes: u64,
    /// Entries of the wrong type at the store's own names, which the next staging run or
    /// `cleanupPartials` moves aside.
    pub misplaced: Vec<Misplaced>,
    /// What was moved aside from them, kept for a person to look at.
    pub moved_aside: Vec<String>,
    /// Folders on their way out that could not be deleted yet.
    pub trash: Vec<TrashOnDisk>,
    /// The store's rollout bucket, and what the last check held back or withdrew.
    pub rollout: RolloutRecord,
}

impl Store {
    /// The store as a person debugging it wants to see it.
    pub fn status(&self) -> Result<StoreStatus> {
        let mut versions = Vec::new();
        let mut partials = Vec::new();
        let dir = self.versions_dir();
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir && semver::Version::parse(&name).is_ok() {
                    versions.push(VersionOnDisk {
                        bytes: tree_size(&entry.path()),
                        whole: self.is_runnable(&name),
                        version: name,
                    });
                } else {
                    partials.push(name);
                }
            }
        }
        let staging = dir_entries(&self.staging_dir()).unwrap_or_default();
        let mut trash = Vec::new();
        for (name, path, is_dir) in staging {
            if is_dir && is_trash(&name) {
                trash.push(TrashOnDisk {
                    bytes: tree_size(&path),
                    name,
                });
            } else {
                partials.push(name);
            }
        }
        trash.sort_by(|a, b| a.name.cmp(&b.name));
        versions.sort_by(|a, b| {
            semver::Version::parse(&a.version)
                .ok()
                .cmp(&semver::Version::parse(&b.version).ok())
        });
        partials.sort();
        Ok(StoreStatus {
            pointer: self.read_pointer(),
            runnable: self.resolve_cli_entry(),
            versions,
            bad: self.bad_versions(),
            partials,
            locked: self.is_locked()?,
            total_bytes: self.staged_bytes(),
            misplaced: self.misplaced(),
            moved_aside: self.moved_aside(),
            trash,
            rollout: self.read_rollout(),
        })
    }
}
