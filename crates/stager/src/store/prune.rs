//! What leaves the store: leftovers of interrupted runs, stale temporaries, versions pruned, and
//! the trash they pass through.

use super::heal::MovedAside;
use super::kept::kept_version;
use super::kept::now_secs;
use super::kept::read_sidecar;
use super::layout::dir_entries;
use super::layout::is_temp_name;
use super::layout::is_trash;
use super::layout::tree_size;
use super::layout::Store;
use super::layout::PARTIAL_SUFFIX;
use super::layout::STORE_LOCK_FILE;
use super::locks::LockWait;
use super::locks::StagingLock;
use super::locks::StoreLock;
use super::locks::LOCK_RETRY;
use crate::shared::error::Op;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil;
use crate::shared::log::Level;
use crate::shared::log::LogEntry;
use std::fs;
use std::io;

/// Age past which the document cache's temp file (written without a lock) is a crashed writer's.
pub(super) const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// A leftover on its way out that could not be deleted yet: on Windows, a file in it is still
/// open in another process (a runtime running from it, a scanner) or loaded as a module. It
/// stays where it is, and every later sweep tries again: deletion is housekeeping, never a reason
/// for a call to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undeleted {
    /// Its name in `staging/` (or `versions/`, for the TypeScript stager's partials).
    pub name: String,
    /// Why it could not be deleted, as the OS said it.
    pub reason: String,
}

impl Undeleted {
    /// The warning an `onLog` gets for it.
    pub fn log_entry(&self) -> LogEntry {
        LogEntry {
            level: Level::Warn,
            message: format!(
                "could not delete {} yet ({}); it is kept as trash and deleted by a later sweep",
                crate::shared::text::clip(&self.name),
                crate::shared::text::clip(&self.reason)
            ),
            fields: vec![("name", (&self.name).into())],
        }
    }
}

/// What a sweep did: the names it removed, and what it could not delete yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    pub removed: Vec<String>,
    pub undeleted: Vec<Undeleted>,
}

impl Swept {
    /// Removes `path`, named `name`, noting it as removed or as not deleted yet.
    fn remove(&mut self, store: &Store, name: String, path: &std::path::Path) {
        match store.discard_leftover(path) {
            None => self.removed.push(name),
            Some(u) => self.undeleted.push(u),
        }
    }

    fn extend(&mut self, other: Swept) {
        self.removed.extend(other.removed);
        self.undeleted.extend(other.undeleted);
    }
}

/// What `cleanup_partials` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Entries of the wrong type moved aside.
    pub moved: Vec<MovedAside>,
    /// Leftovers that could not be deleted yet.
    pub undeleted: Vec<Undeleted>,
}

/// What `prune_now` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Names removed from `versions/`: versions, partials, stray files.
    pub removed: Vec<String>,
    pub freed_bytes: u64,
    /// A staging run held the store, so nothing was pruned.
    pub busy: bool,
}

impl Store {
    /// Deletes a leftover (a partial, a folder on its way out, a stray file); `None` once it is
    /// gone. One that cannot be deleted yet is renamed to a trash name when it is not one
    /// already, so that the name it held (a version's partial, which the next attempt needs) is
    /// free, and later sweeps delete it: what it is called now, and why it stayed.
    pub(crate) fn discard_leftover(&self, path: &std::path::Path) -> Option<Undeleted> {
        let err = fsutil::remove_tree(path).err()?;
        let name = path.file_name()?.to_string_lossy().into_owned();
        let mut left = Undeleted {
            name,
            reason: err.to_string(),
        };
        if !is_trash(&left.name) {
            let trash = self.trash_path(&left.name);
            if self.renamer().rename(path, &trash).is_ok() {
                // Some of it may go now that nothing else is held; the rest waits.
                if fsutil::remove_tree(&trash).is_ok() {
                    return None;
                }
                left.name = trash.file_name()?.to_string_lossy().into_owned();
            }
        }
        Some(left)
    }

    /// Removes `versions/<version>`: renamed aside under the store lock, so that it vanishes from
    /// its name in one step, then deleted with no lock held. A version that is not semver, or a
    /// folder that is not there, is nothing to do. Once the folder is gone from its name this
    /// succeeds: what cannot be deleted yet (a file held open on Windows) stays in `staging/` as
    /// trash for a later sweep. A folder another process keeps from being renamed at all is
    /// `EBUSY`, and stays (one try: the store lock is held, which others wait for).
    pub fn remove_version(&self, version: &str) -> Result<()> {
        if semver::Version::parse(version).is_err() {
            return Ok(());
        }
        let dir = self.version_dir(version);
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        let trash = self.with_store_lock(&LockWait::Bounded, |_| {
            fsutil::create_dir_all(&self.staging_dir())?;
            let trash = self.trash_path(version);
            match self.renamer().rename(&dir, &trash) {
                Ok(()) => Ok(Some(trash)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) if fsutil::is_held(&e) => Err(StageError::Busy {
                    path: dir.clone(),
                    reason: e.to_string(),
                }),
                Err(e) => Err(StageError::io(Op::MovingAside, &dir, e)),
            }
        })?;
        if let Some(trash) = trash {
            // Housekeeping: the version is gone from its name, which is what the caller asked.
            let _ = fsutil::remove_tree(&trash);
        }
        Ok(())
    }

    /// Removes the leftovers of interrupted runs: the TypeScript stager's `versions/<v>.partial/`
    /// folders, and this stager's partials unless a staging run (in any process) holds the staging
    /// lock, whose partials are then in flight. Moves aside what has the wrong type at a store
    /// name (see `heal`) and removes crashed writers' temp files. A missing store is nothing to
    /// do. What cannot be deleted yet is kept and reported, never a failure.
    pub fn cleanup_partials(&self) -> Result<Cleanup> {
        let mut done = Cleanup::default();
        if !self.root.is_dir() {
            return Ok(done);
        }
        done.moved = self.heal_staging_lock(&LockWait::Bounded)?;
        done.undeleted = self.sweep_legacy_partials()?.undeleted;
        // A store the app cannot lock (read-only, say) has no run in flight to spare, but no
        // partial of ours can have been written there either.
        let Ok(mut file) = self.staging_lock_file() else {
            return Ok(done);
        };
        let staging = file.try_lock()?;
        done.moved
            .extend(self.heal_locked(staging.as_deref(), &LockWait::Bounded)?);
        if staging.is_some() {
            let mut swept = Swept::default();
            for (name, path, is_dir) in dir_entries(&self.staging_dir())? {
                if is_dir && (name.ends_with(PARTIAL_SUFFIX) || is_trash(&name)) {
                    swept.remove(self, name, &path);
                }
            }
            done.undeleted.extend(swept.undeleted);
        }
        Ok(done)
    }

    /// Removes the TypeScript stager's partial folders from `versions/`: a folder named
    /// `<v>.partial` that is not itself a whole version (`2.0.0-rc.partial` is valid semver).
    /// Nothing of ours is ever in flight there.
    pub(crate) fn sweep_legacy_partials(&self) -> Result<Swept> {
        let mut swept = Swept::default();
        for (name, path, is_dir) in dir_entries(&self.versions_dir())? {
            if is_dir && name.ends_with(PARTIAL_SUFFIX) && !self.is_runnable(&name) {
                swept.remove(self, name, &path);
            }
        }
        Ok(swept)
    }

    /// Removes every partial folder, folder on its way out and temp file, the TypeScript stager's
    /// partials, and any stray regular file in `versions/` (a file named like a version would
    /// block the rename of a staged folder). Kept download bytes survive only for `resuming`, the
    /// version this run stages, and only while it is not staged, not bad and under a week old:
    /// every other version's are superseded. The staging lock makes this safe: while it is held no
    /// staging run is in flight, so every partial is a crashed run's leftover. What cannot be
    /// deleted yet is kept for a later sweep and reported, never a failure.
    pub fn sweep_stale(
        &self,
        _: &StagingLock,
        wait: &LockWait<'_>,
        resuming: Option<&str>,
    ) -> Result<Swept> {
        let keep_download = resuming.is_some_and(|v| {
            !self.is_whole(v)
                && !self.is_bad(v)
                && read_sidecar(&self.sidecar_path(v)).is_some_and(|s| !s.is_stale(now_secs()))
        });
        let mut swept = Swept::default();
        for (name, path, is_dir) in dir_entries(&self.staging_dir())? {
            let kept = kept_version(&name);
            if keep_download && !is_dir && kept.is_some() && kept == resuming {
                continue;
            }
            swept.remove(self, name, &path);
        }
        swept.extend(self.sweep_legacy_partials()?);
        for (name, path, is_dir) in dir_entries(&self.versions_dir())? {
            if !is_dir {
                swept.remove(self, name, &path);
            }
        }
        self.with_store_lock(wait, |lock| {
            self.sweep_temp_files(lock);
            Ok(())
        })?;
        Ok(swept)
    }

    /// Removes the temp files crashed writers left in the store's root. The pointer's and the bad
    /// list's writers hold the store lock, so under it any temp file of theirs is a crashed
    /// writer's. The document cache is written with no lock: its temp file is a crashed writer's
    /// only once it has been left for minutes.
    pub(crate) fn sweep_temp_files(&self, _: &StoreLock) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_temp_name(&name) {
                continue;
            }
            let unlocked_writer = name.starts_with(&format!(".{}", crate::store::CACHE_FILE));
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TEMP_AGE));
            if !unlocked_writer || stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// What a staging run would prune, now: leftovers of interrupted runs, and every staged
    /// version but the pointed one, its fallback and `running`. Skipped (`busy`) while a staging
    /// run holds the store: it prunes when it finishes. Call from a blocking thread.
    pub fn prune_now(&self, running: Option<&semver::Version>) -> Result<PruneReport> {
        let before = self.staged_bytes();
        let mut file = self.staging_lock_file()?;
        let started = std::time::Instant::now();
        loop {
            // The store lock is probed before the staging lock is taken: while a frozen holder
            // keeps it, the staging lock is never held, not even for one try.
            match self.with_store_lock(&LockWait::Now, |_| Ok(())) {
                Err(StageError::Locked { .. }) => {
                    LockWait::Bounded.check(&self.root.join(STORE_LOCK_FILE), started)?;
                    std::thread::sleep(LOCK_RETRY);
                    continue;
                }
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            let Some(staging) = file.try_lock()? else {
                return Ok(PruneReport {
                    busy: true,
                    ..PruneReport::default()
                });
            };
            match self.prune_locked(&staging, running) {
                Ok(removed) => {
                    self.empty_trash(&staging);
                    return Ok(PruneReport {
                        removed,
                        freed_bytes: before.saturating_sub(self.staged_bytes()),
                        busy: false,
                    });
                }
                // The store lock is held: the staging lock is released before waiting, so that
                // a staging run is never held up behind this wait.
                Err(StageError::Locked { .. }) => drop(staging),
                Err(e) => return Err(e),
            }
            LockWait::Bounded.check(&self.root.join(STORE_LOCK_FILE), started)?;
            std::thread::sleep(LOCK_RETRY);
        }
    }

    /// One try of `prune_now` with the staging lock held: `ELOCKED` at once when the store lock
    /// is held.
    pub(crate) fn prune_locked(
        &self,
        staging: &StagingLock,
        running: Option<&semver::Version>,
    ) -> Result<Vec<String>> {
        let mut removed = self.sweep_stale(staging, &LockWait::Now, None)?.removed;
        removed.extend(self.with_store_lock(&LockWait::Now, |lock| {
            let pointed = self.read_pointer().map(|p| p.version);
            let fallback = self.fallback_for(pointed.as_deref().unwrap_or(""));
            let keep: Vec<&str> = pointed
                .iter()
                .chain(fallback.iter())
                .map(String::as_str)
                .collect();
            self.prune(staging, lock, &keep, running)
        })?);
        Ok(removed)
    }

    /// Bytes of the version folders and of what staging runs left.
    pub(crate) fn staged_bytes(&self) -> u64 {
        tree_size(&self.versions_dir()) + tree_size(&self.staging_dir())
    }

    /// Takes a damaged or superseded `versions/<v>` out of the way: renamed aside first so that
    /// it vanishes from its name in one step, then deleted. A folder another process holds so
    /// that it cannot be renamed (on Windows, a runtime running from it) is `EBUSY`, with nothing
    /// changed; one that moved but cannot be deleted yet stays in `staging/` as trash.
    pub fn discard_version(&self, _: &StagingLock, version: &str) -> Result<()> {
        let dir = self.version_dir(version);
        if !dir.exists() {
            return Ok(());
        }
        let trash = self.trash_path(version);
        match fsutil::rename_retrying(self.renamer(), &dir, &trash) {
            Ok(()) => {}
            Err(StageError::Io { source, .. }) if fsutil::is_held(&source) => {
                return Err(StageError::Busy {
                    path: dir,
                    reason: source.to_string(),
                })
            }
            Err(e) => return Err(e),
        }
        // Housekeeping: the name is free for the new folder, which is what this run needs.
        let _ = fsutil::remove_tree(&trash);
        Ok(())
    }

    /// Removes staged versions other than `keep` (the pointed one and its fallback) and the
    /// version the app runs now, `running` (compared by precedence, as npm does).
    pub fn prune(
        &self,
        _: &StagingLock,
        _: &StoreLock,
        keep: &[&str],
        running: Option<&semver::Version>,
    ) -> Result<Vec<String>> {
        let dir = self.versions_dir();
        let mut removed = Vec::new();
        // A link in its place is never followed: what it names is outside the store.
        if fs::symlink_metadata(&dir).is_ok_and(|m| !m.is_dir()) {
            return Ok(removed);
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(removed);
        };
        // Pruned folders are moved aside into `staging/`.
        fsutil::create_dir_all(&self.staging_dir())?;
        // The newest version the app confirmed healthy is always kept: it is where a rollback
        // goes when a newer one never comes up.
        let confirmed = self.newest_confirmed(&[], None);
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(v) = semver::Version::parse(&name) else {
                continue;
            };
            let is_running = running.is_some_and(|r| {
                crate::shared::version::compare(&v, r) == std::cmp::Ordering::Equal
            });
            if keep.contains(&name.as_str()) || is_running || confirmed.as_deref() == Some(&name) {
                continue;
            }
            // Under the store lock only a rename, tried once: `markBadVersion` waits for this
            // section, so neither a tree deletion nor Windows' retries on a held folder belong
            // here. A folder that cannot move now is pruned by a later run; `empty_trash`
            // deletes the rest once the store lock is released.
            let trash = self.trash_path(&name);
            if !trash.exists() && self.renamer().rename(&entry.path(), &trash).is_ok() {
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Deletes the folders pruning renamed aside. Under the staging lock no other run is in
    /// flight, so every `.trash-` folder is a leftover. Call after releasing the store lock.
    pub fn empty_trash(&self, _: &StagingLock) {
        let Ok(entries) = dir_entries(&self.staging_dir()) else {
            return;
        };
        for (name, path, _) in entries {
            if is_trash(&name) {
                // Housekeeping: what cannot be deleted now is swept by the next run.
                let _ = fsutil::remove_tree(&path);
            }
        }
    }
}
