//! The store as a person debugging it wants to see it.

use super::heal::Misplaced;
use super::launches::FailureNote;
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
    /// Whether the pointer (as `read_pointer` gives it) names it.
    pub pointed: bool,
    /// Whether it is the pointer's `previous`.
    pub fallback: bool,
    pub bad: bool,
    /// Launches of it begun and never confirmed.
    pub attempts: u32,
    /// Whether the app confirmed a launch of it healthy.
    pub confirmed: bool,
    /// Why pruning keeps it, by the rule `prune_now` applies; empty: the next prune removes it.
    pub kept_because: Vec<KeptBecause>,
}

/// Why pruning keeps a staged version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptBecause {
    /// The pointer names it.
    Pointed,
    /// It is the pointed version's fallback: its `previous`, else the newest other runnable
    /// version that is not bad.
    Fallback,
    /// It is the newest version the app confirmed healthy: where a rollback goes.
    Confirmed,
    /// It is the version the app runs now.
    Running,
}

impl KeptBecause {
    pub fn as_str(self) -> &'static str {
        match self {
            KeptBecause::Pointed => "pointed",
            KeptBecause::Fallback => "fallback",
            KeptBecause::Confirmed => "confirmed",
            KeptBecause::Running => "running",
        }
    }
}

/// Why and when a launch of a version still marked bad failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchFailure {
    pub version: String,
    pub note: FailureNote,
}

/// What pruning now keeps, by the rule `prune_now` applies: the pointed version, its fallback,
/// the newest confirmed version and the one the app runs.
struct Keep {
    pointed: Option<String>,
    fallback: Option<String>,
    confirmed: Option<String>,
    running: Option<semver::Version>,
}

impl Keep {
    fn reasons(&self, version: &str) -> Vec<KeptBecause> {
        let is = |v: &Option<String>| v.as_deref() == Some(version);
        let running = self.running.as_ref().is_some_and(|r| {
            semver::Version::parse(version)
                .is_ok_and(|v| crate::shared::version::compare(&v, r).is_eq())
        });
        [
            (is(&self.pointed), KeptBecause::Pointed),
            (is(&self.fallback), KeptBecause::Fallback),
            (is(&self.confirmed), KeptBecause::Confirmed),
            (running, KeptBecause::Running),
        ]
        .into_iter()
        .filter_map(|(kept, why)| kept.then_some(why))
        .collect()
    }
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
    /// Why and when the newest bad versions failed to launch, newest first.
    pub launch_failures: Vec<LaunchFailure>,
    /// The store's rollout bucket, and what the last check held back or withdrew.
    pub rollout: RolloutRecord,
}

impl Store {
    /// The store as a person debugging it wants to see it.
    pub fn status(&self) -> Result<StoreStatus> {
        self.status_running(None)
    }

    /// The store as a person debugging it wants to see it, each version saying why pruning keeps
    /// it while the app runs `running`.
    pub fn status_running(&self, running: Option<&semver::Version>) -> Result<StoreStatus> {
        let pointer = self.read_pointer();
        let bad = self.bad_versions();
        let launches = self.launch_record();
        let keep = Keep {
            pointed: pointer.as_ref().map(|p| p.version.clone()),
            fallback: self.fallback_for(pointer.as_ref().map_or("", |p| p.version.as_str())),
            confirmed: self.newest_confirmed(&[], None),
            running: running.cloned(),
        };
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
                        pointed: pointer.as_ref().is_some_and(|p| p.version == name),
                        fallback: pointer
                            .as_ref()
                            .is_some_and(|p| p.previous.as_deref() == Some(name.as_str())),
                        bad: bad.contains(&name),
                        attempts: launches.attempts.get(&name).copied().unwrap_or(0),
                        confirmed: launches.confirmed.contains(&name),
                        kept_because: keep.reasons(&name),
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
        let mut launch_failures: Vec<LaunchFailure> = launches
            .failures
            .into_iter()
            .filter(|(v, _)| bad.contains(v))
            .map(|(version, note)| LaunchFailure { version, note })
            .collect();
        // Equal times only in a hand-edited record: the order then still does not depend on the
        // map.
        launch_failures.sort_by(|a, b| {
            b.note
                .at
                .cmp(&a.note.at)
                .then_with(|| b.version.cmp(&a.version))
        });
        Ok(StoreStatus {
            pointer,
            runnable: self.resolve_cli_entry(),
            versions,
            bad,
            partials,
            locked: self.is_locked()?,
            total_bytes: self.staged_bytes(),
            misplaced: self.misplaced(),
            moved_aside: self.moved_aside(),
            trash,
            launch_failures,
            rollout: self.read_rollout(),
        })
    }
}
