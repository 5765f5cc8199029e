//! The runtime store under `<userData>/runtime-store/`: layout, pointer, bad versions, locks.
//!
//! The layout is the one the app's first, TypeScript stager wrote (the pointer, the bad list and
//! `versions/`), so a store it left on a user's disk is adopted as it is; everything else is ours.
//!
//! ```text
//! current.json        {"version","cliEntry","previous"}: what the app runs next
//! bad-versions.json   ["0.1.69", ...]: versions that failed to start, sorted by precedence
//! incompatible-versions.json  {"0.2.0": {"guard": "engines.node", "range": ">=24"}}: versions
//!                     whose own package.json refused this app; re-checked, never re-downloaded
//! stage.lock          held by a staging run from its first store step to its last, download
//!                     included: one staging run per store at a time
//! store.lock          held for short critical sections only (pointer, bad list, promotion,
//!                     pruning), so `markBadVersion` never waits for a download
//! versions/<v>/       a whole staged runtime; never modified once it has this name
//! versions/<v>.partial/  the TypeScript stager's in-flight folder: only ever a leftover here
//! staging/            what a staging run works on, apart from `versions/` so that no version
//!                     (`2.0.0-rc.partial` is valid semver) can be named like a leftover:
//!   <v>.partial/, <v>.native.partial/  a staging run in flight; only the lock holder touches it
//!   <v>.download      the tarball bytes received so far, resumed by the next attempt
//!   <v>.download.json what they are: URL, integrity, validator, size, time
//!   <v>.trash-<pid>/  a folder on its way out (pruned or removed)
//! package-document.cache  the package document with its ETag / Last-Modified
//! ```

use crate::error::{Result, StageError};
use crate::fsutil::{self, OsRenamer, Renamer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const STORE_DIR: &str = "runtime-store";
pub const POINTER_FILE: &str = "current.json";
pub const BAD_FILE: &str = "bad-versions.json";
pub const INCOMPATIBLE_FILE: &str = "incompatible-versions.json";
/// The incompatible list holds one short entry per refused release: far below this, and a file
/// above it is not ours, so it is ignored rather than read into memory.
const MAX_INCOMPATIBLE_FILE_BYTES: u64 = 1024 * 1024;
/// The pointer is two short fields and a path: a file above this is not ours and is not read.
pub const MAX_POINTER_BYTES: u64 = 16 * 1024;
/// A completion record is four short fields.
const MAX_RECORD_BYTES: u64 = 16 * 1024;
/// The bad list gains one version for each release that failed to start: 1 MiB holds tens of
/// thousands. A larger file is not read (a version it names is then not known to be bad), and
/// never rewritten, since that would lose what it holds.
pub const MAX_BAD_LIST_BYTES: u64 = 1024 * 1024;
/// How long a store function (`markBadVersion`, `writePointer`, ...) waits for the store lock.
/// The lock is held only for short sections, so a longer wait means a frozen holder: the function
/// then fails with `ELOCKED` instead of freezing the app's main process with it.
pub const STORE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Between two tries of a held lock: short against sections that last milliseconds.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(5);
pub const LOCK_FILE: &str = "stage.lock";
pub const STORE_LOCK_FILE: &str = "store.lock";
/// Age past which the document cache's temp file (written without a lock) is a crashed writer's.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(10 * 60);
pub const VERSIONS_DIR: &str = "versions";
pub const STAGING_DIR: &str = "staging";
pub const PARTIAL_SUFFIX: &str = ".partial";
/// In the name of a folder on its way out, in `staging/`.
const TRASH_MARK: &str = ".trash-";
/// Written last into a staged folder, before its rename: its presence means the folder is whole.
pub const COMPLETE_FILE: &str = ".kanban-runtime-complete.json";
pub const CLI_ENTRY: [&str; 2] = ["dist", "cli.js"];
pub const NATIVE_MODULE: [&str; 2] = ["node_modules", "node-pty"];

/// What `current.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pointer {
    pub version: String,
    pub cli_entry: String,
    /// The version pointed to before this one, kept as the known-good fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// The completion record of a staged folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionRecord {
    pub version: String,
    pub integrity: String,
    pub files: u64,
    pub bytes: u64,
}

/// One folder under `versions/`, for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionOnDisk {
    pub version: String,
    pub bytes: u64,
    pub whole: bool,
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

/// Everything a person debugging a user's store wants to see.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    renamer: Arc<dyn Renamer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

/// The store lock, held. Only `Store::with_store_lock` makes one, and lends it to the closure it
/// runs, so a method that takes `&StoreLock` can only run inside such a section.
pub struct StoreLock<'a> {
    _guard: fd_lock::RwLockWriteGuard<'a, File>,
}

/// The staging lock file, opened but not locked: `try_lock` takes the lock.
pub struct StagingLockFile {
    lock: fd_lock::RwLock<File>,
    path: PathBuf,
}

impl StagingLockFile {
    /// The staging lock, or `None` while another run holds it. Never waits.
    pub fn try_lock(&mut self) -> Result<Option<StagingGuard<'_>>> {
        match self.lock.try_write() {
            Ok(guard) => Ok(Some(StagingGuard {
                _guard: guard,
                held: StagingLock { _private: () },
            })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(StageError::io("locking", &self.path, e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The staging lock, held until this is dropped. It dereferences to the `StagingLock` proof that
/// the methods touching what only the holder may touch (partials, version folders, kept
/// downloads, the trash) take.
pub struct StagingGuard<'f> {
    _guard: fd_lock::RwLockWriteGuard<'f, File>,
    held: StagingLock,
}

impl StagingGuard<'_> {
    /// `f`'s result, run on a blocking thread with the proof that the staging lock is held. The
    /// guard stays borrowed while this is awaited; like any blocking task, `f` still runs to its
    /// end when the caller drops this future, and the lock is then released under it.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StagingLock) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        fsutil::blocking(move || f(&StagingLock { _private: () })).await
    }
}

impl std::ops::Deref for StagingGuard<'_> {
    type Target = StagingLock;
    fn deref(&self) -> &StagingLock {
        &self.held
    }
}

/// Proof that the staging lock is held: made only here, lent by a `StagingGuard` for no longer
/// than it is borrowed.
pub struct StagingLock {
    _private: (),
}

/// How long a wait for the store lock may last.
pub enum LockWait<'a> {
    /// A store function's: `STORE_LOCK_WAIT`, then `ELOCKED`.
    Bounded,
    /// A staging call's: until its deadline (`ETIMEDOUT`) or abort (`EABORTED`).
    Call(&'a crate::call::Control),
    /// No wait: `ELOCKED` at once when the lock is held.
    Now,
}

impl LockWait<'_> {
    /// `Err` once a wait that began at `started` must end.
    fn check(&self, path: &Path, started: std::time::Instant) -> Result<()> {
        match self {
            LockWait::Bounded if started.elapsed() >= STORE_LOCK_WAIT => Err(StageError::Locked {
                path: path.to_path_buf(),
                ms: STORE_LOCK_WAIT.as_millis() as u64,
            }),
            LockWait::Bounded => Ok(()),
            LockWait::Now => Err(StageError::Locked {
                path: path.to_path_buf(),
                ms: 0,
            }),
            // The call's deadline ends the wait, named for what the call was doing: waiting.
            LockWait::Call(ctl) => ctl.check(&path.display().to_string()).map_err(|e| match e {
                StageError::Timeout {
                    url, budget, ms, ..
                } => StageError::Timeout {
                    url,
                    phase: crate::call::Phase::WaitingForLock,
                    budget,
                    ms,
                },
                e => e,
            }),
        }
    }
}

/// Why a downloaded version was refused by the compatibility guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompatibleEntry {
    /// `engines.node` or `node-pty`.
    pub guard: String,
    pub range: String,
}

/// Accepts only valid semver, which also guarantees a version can never name a path outside
/// `versions/` (no `/`, `\` or `..` can appear in one).
pub fn check_version(version: &str) -> Result<semver::Version> {
    semver::Version::parse(version).map_err(|e| StageError::InvalidOption {
        name: "version",
        reason: format!("invalid semver: {version} ({e})"),
    })
}

impl Store {
    pub fn new(user_data: &Path) -> Store {
        Store {
            root: user_data.join(STORE_DIR),
            renamer: Arc::new(OsRenamer),
        }
    }

    /// A store whose renames go through `renamer`; tests inject failures with it.
    pub fn with_renamer(user_data: &Path, renamer: Arc<dyn Renamer>) -> Store {
        Store {
            root: user_data.join(STORE_DIR),
            renamer,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn renamer(&self) -> &dyn Renamer {
        &*self.renamer
    }
    pub fn versions_dir(&self) -> PathBuf {
        self.root.join(VERSIONS_DIR)
    }
    pub fn version_dir(&self, version: &str) -> PathBuf {
        self.versions_dir().join(version)
    }
    /// Where a staging run works: partials, kept download bytes, folders on their way out.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join(STAGING_DIR)
    }
    /// The in-flight folder of a staging run of `version`.
    pub fn partial_dir(&self, version: &str) -> PathBuf {
        self.staging_dir()
            .join(format!("{version}{PARTIAL_SUFFIX}"))
    }
    /// The TypeScript stager's in-flight folder for `version`, beside the version folders: here
    /// only ever a leftover of an interrupted run of that stager.
    pub fn legacy_partial_dir(&self, version: &str) -> PathBuf {
        self.versions_dir()
            .join(format!("{version}{PARTIAL_SUFFIX}"))
    }
    /// Where a staging run copies the native modules while the tarball extracts; a `.partial`
    /// like the version's own, so a crashed run's copy is swept the same way.
    pub fn native_partial_dir(&self, version: &str) -> PathBuf {
        self.staging_dir()
            .join(format!("{version}.native{PARTIAL_SUFFIX}"))
    }
    /// The tarball bytes received so far for `version` (see `resume`).
    pub fn kept_path(&self, version: &str) -> PathBuf {
        self.staging_dir()
            .join(format!("{version}{}", crate::resume::KEPT_SUFFIX))
    }
    pub fn sidecar_path(&self, version: &str) -> PathBuf {
        self.staging_dir()
            .join(format!("{version}{}", crate::resume::SIDECAR_SUFFIX))
    }
    pub fn pointer_path(&self) -> PathBuf {
        self.root.join(POINTER_FILE)
    }
    pub fn cli_entry(&self, version: &str) -> PathBuf {
        let mut p = self.version_dir(version);
        p.extend(CLI_ENTRY);
        p
    }

    /// The pointer as the app should see it: the pointer file's, unless its version is marked
    /// bad; then its `previous` when that one is runnable and not bad, else none. A `previous`
    /// that is bad is left out. A bad version is never returned.
    pub fn read_pointer(&self) -> Option<Pointer> {
        let p = self.read_pointer_file()?;
        let bad = self.bad_versions();
        if !bad.contains(&p.version) {
            let previous = p.previous.filter(|v| !bad.contains(v));
            return Some(Pointer { previous, ..p });
        }
        let fallback = p
            .previous
            .filter(|v| !bad.contains(v) && self.is_runnable(v))?;
        Some(Pointer {
            cli_entry: self.cli_entry(&fallback).to_string_lossy().into_owned(),
            version: fallback,
            previous: None,
        })
    }

    /// The pointer file, if it parses and is canonical: a semver version and exactly this store's
    /// `versions/<version>/dist/cli.js` as `cliEntry`. Anything else is treated as no pointer.
    pub fn read_pointer_file(&self) -> Option<Pointer> {
        let fsutil::SmallFile::Read(bytes) =
            fsutil::read_small(&self.pointer_path(), MAX_POINTER_BYTES)
        else {
            return None;
        };
        let mut p: Pointer = serde_json::from_slice(&bytes).ok()?;
        semver::Version::parse(&p.version).ok()?;
        let canonical = self.cli_entry(&p.version);
        if Path::new(&p.cli_entry) != canonical && !self.is_other_spelling(&p.cli_entry, &canonical)
        {
            return None;
        }
        p.cli_entry = canonical.to_string_lossy().into_owned();
        if let Some(prev) = &p.previous {
            semver::Version::parse(prev).ok()?;
        }
        Some(p)
    }

    /// Whether `cli_entry` is `canonical` spelled through another path to `userData` (a link to
    /// it, say), as a pointer written by a stager given that path holds it: the same
    /// `runtime-store/versions/<v>/dist/cli.js` tail, no `.` or `..`, and a `userData` part whose
    /// real path is this store's. Links inside the store are never resolved.
    fn is_other_spelling(&self, cli_entry: &str, canonical: &Path) -> bool {
        use std::path::Component;
        let spelled = Path::new(cli_entry);
        let Some(user_data) = self.root.parent() else {
            return false;
        };
        let Ok(tail) = canonical.strip_prefix(user_data) else {
            return false;
        };
        let plain = spelled
            .components()
            .all(|c| !matches!(c, Component::CurDir | Component::ParentDir));
        let spelled_user_data = spelled.ancestors().nth(tail.components().count());
        plain
            && spelled.is_absolute()
            && spelled.ends_with(tail)
            && spelled_user_data
                .and_then(|u| fs::canonicalize(u).ok())
                .is_some_and(|u| u == user_data)
    }

    /// The CLI to run: the (never bad) pointer's `cliEntry` when its folder is runnable.
    pub fn resolve_cli_entry(&self) -> Option<PathBuf> {
        let p = self.read_pointer()?;
        self.is_runnable(&p.version)
            .then(|| PathBuf::from(p.cli_entry))
    }

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
        // A package.json is a few KB; a larger one is not the runtime's.
        let manifest = dir.join("package.json");
        let small = fs::metadata(&manifest).is_ok_and(|m| m.len() <= 1 << 20);
        small
            && fs::read(&manifest)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v.get("version").and_then(|v| v.as_str()) == Some(version))
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

    fn native_module(&self, version: &str) -> PathBuf {
        let mut p = self.version_dir(version);
        p.extend(NATIVE_MODULE);
        p
    }

    /// Writes the pointer atomically (temp file, flush, rename, flush folder). A `previous` that
    /// is marked bad is left out: the fallback must be runnable.
    pub fn write_pointer(
        &self,
        _: &StoreLock,
        version: &str,
        previous: Option<&str>,
    ) -> Result<()> {
        let bad = self.bad_versions();
        let p = Pointer {
            version: version.into(),
            cli_entry: self.cli_entry(version).to_string_lossy().into_owned(),
            previous: previous
                .filter(|v| !bad.iter().any(|b| b == v))
                .map(str::to_string),
        };
        fsutil::write_atomic(self.renamer(), &self.pointer_path(), &json_line(&p))
    }

    pub fn remove_pointer(&self, _: &StoreLock) -> Result<()> {
        let path = self.pointer_path();
        match fs::remove_file(&path) {
            Ok(()) => fsutil::sync_dir(&self.root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StageError::io("removing", &path, e)),
        }
    }

    /// Versions marked bad: every valid version the list holds, also when other entries of it
    /// are damaged. A missing list, or one that cannot be read, means none: a damaged list must
    /// not stop updates, and the app re-marks a version that fails again.
    pub fn bad_versions(&self) -> Vec<String> {
        self.read_bad_list().unwrap_or_default()
    }

    /// The bad list, for a writer: `Err` when a file is there but cannot be read whole (too
    /// large, a folder, a link), since a list rewritten from it would forget what it holds.
    fn read_bad_list(&self) -> Result<Vec<String>> {
        let path = self.root.join(BAD_FILE);
        match fsutil::read_small(&path, MAX_BAD_LIST_BYTES) {
            fsutil::SmallFile::Missing => Ok(Vec::new()),
            fsutil::SmallFile::Read(bytes) => Ok(salvage_versions(&bytes)),
            fsutil::SmallFile::Refused => Err(StageError::io(
                "reading",
                &path,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a regular file of at most 1 MiB, so it is not rewritten",
                ),
            )),
        }
    }

    pub fn is_bad(&self, version: &str) -> bool {
        self.bad_versions().iter().any(|v| v == version)
    }

    /// Versions refused by the compatibility guard after their download, with the guard and the
    /// range that refused them. A missing, oversized or damaged file means none: the guard then
    /// runs again on the next download.
    pub fn incompatible_versions(&self) -> BTreeMap<String, IncompatibleEntry> {
        let path = self.root.join(INCOMPATIBLE_FILE);
        match fsutil::read_small(&path, MAX_INCOMPATIBLE_FILE_BYTES) {
            fsutil::SmallFile::Read(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => BTreeMap::new(),
        }
    }

    /// Remembers that `version`'s own package.json refused this app.
    pub fn add_incompatible(
        &self,
        _: &StoreLock,
        version: &str,
        entry: IncompatibleEntry,
    ) -> Result<()> {
        let mut map = self.incompatible_versions();
        map.insert(version.to_string(), entry);
        self.write_list(INCOMPATIBLE_FILE, &map)
    }

    /// Adds `version` to the bad list, kept as the TypeScript stager wrote it: de-duplicated and
    /// sorted by precedence. Refuses to rewrite a list it cannot read whole.
    pub fn add_bad(&self, _: &StoreLock, version: &str) -> Result<()> {
        let mut list = self.read_bad_list()?;
        list.push(version.into());
        let mut parsed: Vec<semver::Version> = list
            .iter()
            .filter_map(|v| semver::Version::parse(v).ok())
            .collect();
        parsed.sort_by(crate::version::compare);
        parsed.dedup_by(|a, b| a == b);
        let list: Vec<String> = parsed.iter().map(|v| v.to_string()).collect();
        self.write_list(BAD_FILE, &list)
    }

    /// Writes one of the store's lists (bad, incompatible) atomically, creating the store.
    fn write_list(&self, name: &str, list: &impl Serialize) -> Result<()> {
        fsutil::create_dir_all(&self.root)?;
        fsutil::write_atomic(self.renamer(), &self.root.join(name), &json_line(list))
    }

    /// Takes the store lock (held only for short sections, never for a download: this answers at
    /// once while another process downloads), then marks `version` bad as
    /// `mark_bad_and_roll_back` does. Call from a blocking thread.
    pub fn mark_bad(&self, version: &str) -> Result<Option<String>> {
        check_version(version)?;
        self.with_store_lock(&LockWait::Bounded, |lock| {
            self.mark_bad_and_roll_back(lock, version)
        })
    }

    /// Whether a `current.json` is there, whatever it holds (not a folder): what the app checks
    /// to remove a pointer that `read_pointer` refuses.
    pub fn pointer_file_exists(&self) -> bool {
        // Followed through a link and a regular file only, as the first stager's check was: a
        // FIFO or a device is not a pointer file an app could remove and rewrite.
        fs::metadata(self.pointer_path()).is_ok_and(|m| m.is_file())
    }

    /// Points at `version`, whose `cli_entry` must be exactly its canonical path; the version
    /// pointed so far (or its fallback) is kept as `previous` when it is runnable and not bad.
    pub fn write_pointer_checked(&self, version: &str, cli_entry: &str) -> Result<()> {
        check_version(version)?;
        let canonical = self.cli_entry(version);
        if Path::new(cli_entry) != canonical || cli_entry != canonical.to_string_lossy() {
            return Err(StageError::InvalidOption {
                name: "cliEntry",
                reason: format!(
                    "cliEntry for {version} must be {}, got {cli_entry}",
                    canonical.display()
                ),
            });
        }
        self.with_store_lock(&LockWait::Bounded, |lock| {
            let previous = self.fallback_for(version);
            self.write_pointer(lock, version, previous.as_deref())
        })
    }

    /// Removes the pointer, so the app runs its bundled runtime. A missing pointer (or store) is
    /// fine, and nothing is created.
    pub fn clear_pointer(&self) -> Result<()> {
        if fs::symlink_metadata(self.pointer_path()).is_err() {
            return Ok(());
        }
        self.with_store_lock(&LockWait::Bounded, |lock| self.remove_pointer(lock))
    }

    /// Removes `versions/<version>`: renamed aside under the store lock, so that it vanishes from
    /// its name in one step, then deleted with no lock held. A version that is not semver, or a
    /// folder that is not there, is nothing to do.
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
                Err(e) => Err(StageError::io("moving aside", &dir, e)),
            }
        })?;
        match trash {
            Some(trash) => fsutil::remove_tree(&trash),
            None => Ok(()),
        }
    }

    /// Removes the leftovers of interrupted runs: the TypeScript stager's `versions/<v>.partial/`
    /// folders, and this stager's partials unless a staging run (in any process) holds the staging
    /// lock, whose partials are then in flight. A missing store is nothing to do.
    pub fn cleanup_partials(&self) -> Result<()> {
        if !self.root.is_dir() {
            return Ok(());
        }
        self.sweep_legacy_partials()?;
        // A store the app cannot lock (read-only, say) has no run in flight to spare, but no
        // partial of ours can have been written there either.
        let Ok(mut file) = self.staging_lock_file() else {
            return Ok(());
        };
        if let Some(_staging) = file.try_lock()? {
            for (name, path, is_dir) in dir_entries(&self.staging_dir())? {
                if is_dir && (name.ends_with(PARTIAL_SUFFIX) || is_trash(&name)) {
                    fsutil::remove_tree(&path)?;
                }
            }
        }
        Ok(())
    }

    /// Removes the TypeScript stager's partial folders from `versions/`: a folder named
    /// `<v>.partial` that is not itself a whole version (`2.0.0-rc.partial` is valid semver).
    /// Nothing of ours is ever in flight there. Returns the names removed.
    fn sweep_legacy_partials(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (name, path, is_dir) in dir_entries(&self.versions_dir())? {
            if is_dir && name.ends_with(PARTIAL_SUFFIX) && !self.is_runnable(&name) {
                fsutil::remove_tree(&path)?;
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// The version a CLI path was staged for, when it is exactly this store's canonical
    /// `versions/<v>/dist/cli.js` for a semver `<v>`; anything else is `None`, so a stray path
    /// never names a real version.
    pub fn version_from_cli_entry(&self, cli_entry: &str) -> Option<String> {
        let path = Path::new(cli_entry);
        if !path.is_absolute() {
            return None;
        }
        let version = path.parent()?.parent()?.file_name()?.to_str()?;
        semver::Version::parse(version).ok()?;
        (self.cli_entry(version).to_string_lossy() == cli_entry).then(|| version.to_string())
    }

    /// Runs `f` with the store lock held, waiting for the holder of a short section for as long
    /// as `wait` allows (call from a blocking thread). The lock is released when `f` returns.
    pub fn with_store_lock<T>(
        &self,
        wait: &LockWait<'_>,
        f: impl FnOnce(&StoreLock<'_>) -> Result<T>,
    ) -> Result<T> {
        let path = self.root.join(STORE_LOCK_FILE);
        let mut lock = self.open_lock(STORE_LOCK_FILE)?;
        let started = std::time::Instant::now();
        loop {
            match lock.try_write() {
                Ok(guard) => return f(&StoreLock { _guard: guard }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(StageError::io("locking", &path, e)),
            }
            wait.check(&path, started)?;
            std::thread::sleep(LOCK_RETRY);
        }
    }

    /// Marks `version` bad and, when it is the pointed version, rolls the pointer back to the
    /// newest confirmed version (see `launch`), else to the previous known-good version if that
    /// folder is whole and not bad, else removes the pointer so the app falls back to its
    /// bundled runtime. Returns the version the pointer now names.
    pub fn mark_bad_and_roll_back(
        &self,
        lock: &StoreLock,
        version: &str,
    ) -> Result<Option<String>> {
        self.add_bad(lock, version)?;
        let Some(p) = self.read_pointer_file() else {
            return Ok(None);
        };
        if p.version != version {
            // The fallback must never be a bad version either.
            if p.previous.as_deref() == Some(version) {
                self.write_pointer(lock, &p.version, None)?;
            }
            return Ok(Some(p.version));
        }
        self.roll_back_from(lock, version, None)
    }

    /// Opens (creating) the staging lock file, held by a staging run for its whole run.
    pub fn staging_lock_file(&self) -> Result<StagingLockFile> {
        Ok(StagingLockFile {
            lock: self.open_lock(LOCK_FILE)?,
            path: self.root.join(LOCK_FILE),
        })
    }

    /// Opens (creating) a lock file. The lock is the OS's advisory lock on it, released by the
    /// OS when the holder dies; its contents mean nothing.
    fn open_lock(&self, name: &str) -> Result<fd_lock::RwLock<File>> {
        fsutil::create_dir_all(&self.root)?;
        let path = self.root.join(name);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StageError::io("opening lock", &path, e))?;
        Ok(fd_lock::RwLock::new(f))
    }

    /// Whether another stager holds the lock right now (a staging run is changing the store).
    /// Opens the lock file for reading only, so that it answers on a read-only store too.
    pub fn is_locked(&self) -> Result<bool> {
        let path = self.root.join(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StageError::io("opening lock", &path, e)),
        };
        let mut lock = fd_lock::RwLock::new(file);
        let held = match lock.try_write() {
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => return Err(StageError::io("locking", &path, e)),
        };
        Ok(held)
    }

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
        partials.extend(staging.into_iter().map(|(name, ..)| name));
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
        })
    }

    /// Removes every partial folder, folder on its way out and temp file, the TypeScript stager's
    /// partials, and any stray regular file in `versions/` (a file named like a version would
    /// block the rename of a staged folder). Kept download bytes survive only for `resuming`, the
    /// version this run stages, and only while it is not staged, not bad and under a week old:
    /// every other version's are superseded. The staging lock makes this safe: while it is held no
    /// staging run is in flight, so every partial is a crashed run's leftover. Returns the names
    /// removed.
    pub fn sweep_stale(
        &self,
        _: &StagingLock,
        wait: &LockWait<'_>,
        resuming: Option<&str>,
    ) -> Result<Vec<String>> {
        let keep_download = resuming.is_some_and(|v| {
            !self.is_whole(v)
                && !self.is_bad(v)
                && crate::resume::read_sidecar(&self.sidecar_path(v))
                    .is_some_and(|s| !s.is_stale(crate::resume::now_secs()))
        });
        let mut removed = Vec::new();
        for (name, path, is_dir) in dir_entries(&self.staging_dir())? {
            let kept = crate::resume::kept_version(&name);
            if keep_download && !is_dir && kept.is_some() && kept == resuming {
                continue;
            }
            fsutil::remove_tree(&path)?;
            removed.push(name);
        }
        removed.extend(self.sweep_legacy_partials()?);
        for (name, path, is_dir) in dir_entries(&self.versions_dir())? {
            if !is_dir {
                fsutil::remove_tree(&path)?;
                removed.push(name);
            }
        }
        self.with_store_lock(wait, |lock| {
            self.sweep_temp_files(lock);
            Ok(())
        })?;
        Ok(removed)
    }

    /// Removes the temp files crashed writers left in the store's root. The pointer's and the bad
    /// list's writers hold the store lock, so under it any temp file of theirs is a crashed
    /// writer's. The document cache is written with no lock: its temp file is a crashed writer's
    /// only once it has been left for minutes.
    fn sweep_temp_files(&self, _: &StoreLock) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with('.') && name.contains(".tmp-")) {
                continue;
            }
            let unlocked_writer = name.starts_with(&format!(".{}", crate::doccache::CACHE_FILE));
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TEMP_AGE));
            if !unlocked_writer || stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The fallback kept beside a newly pointed `latest`: the version pointed so far, else its own
    /// fallback, else the newest other staged version; in each case runnable and not bad. Pruning
    /// keeps it, so the store never loses its last good runtime.
    pub fn fallback_for(&self, latest: &str) -> Option<String> {
        let pointer = self.read_pointer_file();
        let mut on_disk: Vec<semver::Version> = fs::read_dir(self.versions_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| semver::Version::parse(&e.file_name().to_string_lossy()).ok())
            .collect();
        on_disk.sort_by(|a, b| crate::version::compare(b, a));
        let bad = self.bad_versions();
        pointer
            .iter()
            .flat_map(|p| std::iter::once(p.version.clone()).chain(p.previous.clone()))
            .chain(on_disk.iter().map(|v| v.to_string()))
            .find(|v| v != latest && !bad.contains(v) && self.is_runnable(v))
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
    fn prune_locked(
        &self,
        staging: &StagingLock,
        running: Option<&semver::Version>,
    ) -> Result<Vec<String>> {
        let mut removed = self.sweep_stale(staging, &LockWait::Now, None)?;
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
    fn staged_bytes(&self) -> u64 {
        tree_size(&self.versions_dir()) + tree_size(&self.staging_dir())
    }

    /// Takes a damaged `versions/<v>` out of the way: renamed aside first so that it vanishes from
    /// its name in one step, then deleted.
    pub fn discard_version(&self, _: &StagingLock, version: &str) -> Result<()> {
        let dir = self.version_dir(version);
        if !dir.exists() {
            return Ok(());
        }
        let trash = self.trash_path(version);
        fsutil::remove_tree(&trash)?;
        fsutil::rename_retrying(self.renamer(), &dir, &trash)?;
        fsutil::remove_tree(&trash)
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
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(removed);
        };
        // Pruned folders are moved aside into `staging/`.
        fsutil::create_dir_all(&self.staging_dir())?;
        // The newest version the app confirmed healthy is always kept: it is where a rollback
        // goes when a newer one never comes up.
        let confirmed = self.newest_confirmed(None, None);
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(v) = semver::Version::parse(&name) else {
                continue;
            };
            let is_running = running
                .is_some_and(|r| crate::version::compare(&v, r) == std::cmp::Ordering::Equal);
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

    /// A name no other folder has: pruning, a damaged folder's discard and `removeVersionDir`
    /// may each move one aside in this process at once.
    fn trash_path(&self, version: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.staging_dir()
            .join(format!("{version}{TRASH_MARK}{}-{n}", std::process::id()))
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

/// Regular files and their bytes below `dir` (links not followed), for an adopted folder's record.
fn tree_stats(dir: &Path) -> (u64, u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_stats(&e.path()),
            Ok(t) if t.is_file() => (1, e.metadata().map(|m| m.len()).unwrap_or(0)),
            _ => (0, 0),
        })
        .fold((0, 0), |(f, b), (f2, b2)| (f + f2, b + b2))
}

/// Bytes of the regular files below `dir` (links not followed); unreadable entries count as 0.
fn tree_size(dir: &Path) -> u64 {
    tree_stats(dir).1
}

pub fn read_record(dir: &Path) -> Option<CompletionRecord> {
    match fsutil::read_small(&dir.join(COMPLETE_FILE), MAX_RECORD_BYTES) {
        fsutil::SmallFile::Read(bytes) => serde_json::from_slice(&bytes).ok(),
        _ => None,
    }
}

/// One line of compact JSON, as the TypeScript stager wrote the pointer and the bad list.
fn json_line(value: &impl Serialize) -> Vec<u8> {
    let mut json = serde_json::to_vec(value).expect("store files serialise");
    json.push(b'\n');
    json
}

/// Every valid version a bad list names. A list that parses keeps its valid string entries; one
/// that does not (torn, hand-edited) keeps every quoted valid version in it: a damaged entry must
/// never make the list forget the others.
fn salvage_versions(bytes: &[u8]) -> Vec<String> {
    let valid = |v: &str| semver::Version::parse(v).is_ok();
    if let Ok(values) = serde_json::from_slice::<Vec<serde_json::Value>>(bytes) {
        return values
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|v| valid(v))
            .map(str::to_string)
            .collect();
    }
    String::from_utf8_lossy(bytes)
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|v| valid(v))
        .map(str::to_string)
        .collect()
}

fn is_trash(name: &str) -> bool {
    name.contains(TRASH_MARK)
}

/// The entries of `dir` (name, path, whether a folder, links not followed); none when it is
/// missing.
fn dir_entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StageError::io("reading folder", dir, e)),
    };
    Ok(entries
        .flatten()
        .map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path(),
                is_dir,
            )
        })
        .collect())
}

/// Writes the completion record into a folder about to be renamed into place, flushed.
/// Written atomically (temp file, flush, rename, flush folder): an adopted folder gets its record
/// while the pointer names it, and a torn record would make it look damaged after a crash.
pub fn write_record(dir: &Path, record: &CompletionRecord) -> Result<()> {
    let json = serde_json::to_vec(record).expect("record serialises");
    fsutil::write_atomic(&OsRenamer, &dir.join(COMPLETE_FILE), &json)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A store in a fresh temp folder, which lives as long as the returned `TempDir`.
    fn temp_store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        (tmp, store)
    }

    /// `f`'s result, with the store lock held.
    fn locked<T>(store: &Store, f: impl FnOnce(&StoreLock) -> Result<T>) -> T {
        store.with_store_lock(&LockWait::Bounded, f).unwrap()
    }

    /// `f`'s result, with the staging lock held.
    fn staged<T>(store: &Store, f: impl FnOnce(&StagingLock) -> Result<T>) -> T {
        let mut file = store.staging_lock_file().unwrap();
        let guard = file.try_lock().unwrap().unwrap();
        f(&guard).unwrap()
    }

    /// What pruning all but `keep` and `running` removes, with both locks held.
    fn prune(store: &Store, keep: &[&str], running: Option<&semver::Version>) -> Vec<String> {
        staged(store, |staging| {
            store.with_store_lock(&LockWait::Bounded, |lock| {
                store.prune(staging, lock, keep, running)
            })
        })
    }

    /// Lays out a whole staged version as a staging run would leave it.
    pub(crate) fn stage_fake(store: &Store, version: &str) {
        let dir = store.version_dir(version);
        fs::create_dir_all(dir.join("dist")).unwrap();
        fs::create_dir_all(dir.join("node_modules/node-pty")).unwrap();
        fs::write(dir.join("dist/cli.js"), "cli").unwrap();
        write_record(
            &dir,
            &CompletionRecord {
                version: version.into(),
                integrity: "sha512-x".into(),
                files: 1,
                bytes: 3,
            },
        )
        .unwrap();
    }

    #[test]
    fn pointer_round_trip_and_trust_rules() {
        let (_tmp, store) = temp_store();
        assert_eq!(store.read_pointer(), None);
        fs::create_dir_all(store.root()).unwrap();
        locked(&store, |l| store.write_pointer(l, "1.0.0", Some("0.9.0")));
        let p = store.read_pointer().unwrap();
        assert_eq!(p.version, "1.0.0");
        assert_eq!(Path::new(&p.cli_entry), store.cli_entry("1.0.0"));
        assert_eq!(p.previous.as_deref(), Some("0.9.0"));
        // Not whole yet: no CLI to run.
        assert_eq!(store.resolve_cli_entry(), None);
        stage_fake(&store, "1.0.0");
        assert_eq!(store.resolve_cli_entry(), Some(store.cli_entry("1.0.0")));

        // A cliEntry pointing anywhere else is not trusted.
        let evil = serde_json::json!({"version":"1.0.0","cliEntry":"/tmp/evil.js"});
        fs::write(store.pointer_path(), evil.to_string()).unwrap();
        assert_eq!(store.read_pointer(), None);
        let dotted = format!(
            "{}/../1.0.0/dist/cli.js",
            store.version_dir("1.0.0").display()
        );
        let evil = serde_json::json!({"version":"1.0.0","cliEntry":dotted});
        fs::write(store.pointer_path(), evil.to_string()).unwrap();
        assert_eq!(store.read_pointer(), None);
        fs::write(store.pointer_path(), "{").unwrap();
        assert_eq!(store.read_pointer(), None);
    }

    #[test]
    fn whole_requires_cli_native_and_record() {
        let (_tmp, store) = temp_store();
        stage_fake(&store, "1.0.0");
        assert!(store.is_whole("1.0.0"));
        fs::remove_dir_all(store.version_dir("1.0.0").join("node_modules/node-pty")).unwrap();
        assert!(!store.is_whole("1.0.0"));
        stage_fake(&store, "1.0.0");
        fs::remove_file(store.version_dir("1.0.0").join(COMPLETE_FILE)).unwrap();
        assert!(!store.is_whole("1.0.0"));
        stage_fake(&store, "1.0.0");
        fs::remove_file(store.cli_entry("1.0.0")).unwrap();
        assert!(!store.is_whole("1.0.0"));
    }

    #[test]
    fn mark_bad_rolls_back_to_previous_or_clears() {
        let (_tmp, store) = temp_store();
        stage_fake(&store, "1.0.0");
        stage_fake(&store, "1.1.0");
        locked(&store, |l| store.write_pointer(l, "1.1.0", Some("1.0.0")));
        // Not the pointed version: only marked.
        assert_eq!(
            locked(&store, |l| store.mark_bad_and_roll_back(l, "0.5.0")).as_deref(),
            Some("1.1.0")
        );
        assert!(store.is_bad("0.5.0"));
        assert_eq!(
            locked(&store, |l| store.mark_bad_and_roll_back(l, "1.1.0")).as_deref(),
            Some("1.0.0")
        );
        assert_eq!(store.read_pointer().unwrap().version, "1.0.0");
        assert_eq!(
            locked(&store, |l| store.mark_bad_and_roll_back(l, "1.0.0")),
            None
        );
        assert_eq!(store.read_pointer(), None);
        assert_eq!(store.bad_versions(), ["0.5.0", "1.0.0", "1.1.0"]);
    }

    #[test]
    fn sweep_removes_partials_and_temps_only() {
        let (_tmp, store) = temp_store();
        stage_fake(&store, "1.0.0");
        fs::create_dir_all(store.partial_dir("2.0.0").join("x")).unwrap();
        // A crashed pointer writer's temp file (its writers hold the store lock, which the sweep
        // takes); the document cache's, old (crashed) and fresh (being written, without a lock).
        fs::write(store.root().join(".current.json.tmp-1"), "x").unwrap();
        let old = store.root().join(".package-document.cache.tmp-1-1");
        fs::write(&old, "x").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let f = File::options().write(true).open(&old).unwrap();
        f.set_modified(an_hour_ago).unwrap();
        let fresh = store.root().join(".package-document.cache.tmp-2-1");
        fs::write(&fresh, "x").unwrap();
        staged(&store, |s| store.sweep_stale(s, &LockWait::Bounded, None));
        assert!(!store.partial_dir("2.0.0").exists());
        assert!(!store.root().join(".current.json.tmp-1").exists());
        assert!(!old.exists());
        assert!(fresh.exists());
        assert!(store.is_whole("1.0.0"));
    }

    #[test]
    fn prune_keeps_named_versions() {
        let (_tmp, store) = temp_store();
        for v in ["1.0.0", "1.1.0", "1.2.0"] {
            stage_fake(&store, v);
        }
        let removed = prune(&store, &["1.2.0", "1.1.0"], None);
        assert_eq!(removed, ["1.0.0"]);
        // Under the store lock the folder is only renamed aside; it is deleted after.
        let trash = |store: &Store| {
            fs::read_dir(store.staging_dir())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .contains(".trash-")
                })
                .count()
        };
        assert_eq!(trash(&store), 1);
        staged(&store, |s| {
            store.empty_trash(s);
            Ok(())
        });
        assert_eq!(trash(&store), 0);
        assert!(store.is_whole("1.1.0") && store.is_whole("1.2.0"));
        assert!(!store.version_dir("1.0.0").exists());
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let (_tmp, store) = temp_store();
        let mut a = store.staging_lock_file().unwrap();
        let mut b = store.staging_lock_file().unwrap();
        assert!(!store.is_locked().unwrap());
        let g = a.try_lock().unwrap().unwrap();
        assert!(b.try_lock().unwrap().is_none());
        assert!(store.is_locked().unwrap());
        drop(g);
        assert!(b.try_lock().unwrap().is_some());
    }

    #[test]
    fn status_lists_versions_partials_and_bad() {
        let (_tmp, store) = temp_store();
        stage_fake(&store, "1.10.0");
        stage_fake(&store, "1.9.0");
        fs::remove_file(store.cli_entry("1.9.0")).unwrap();
        fs::create_dir_all(store.partial_dir("2.0.0")).unwrap();
        locked(&store, |l| store.write_pointer(l, "1.10.0", Some("1.9.0")));
        locked(&store, |l| store.add_bad(l, "1.8.0"));
        let st = store.status().unwrap();
        assert_eq!(st.pointer.unwrap().version, "1.10.0");
        assert_eq!(st.runnable, Some(store.cli_entry("1.10.0")));
        let v: Vec<_> = st
            .versions
            .iter()
            .map(|v| (v.version.as_str(), v.whole))
            .collect();
        assert_eq!(v, [("1.9.0", false), ("1.10.0", true)]);
        assert!(st.versions[1].bytes > 0);
        assert_eq!(st.partials, ["2.0.0.partial"]);
        assert_eq!(st.bad, ["1.8.0"]);
        assert!(!st.locked);
    }

    #[test]
    fn a_bad_version_is_never_returned_as_the_pointer() {
        let (_tmp, store) = temp_store();
        stage_fake(&store, "1.0.0");
        stage_fake(&store, "2.0.0");
        locked(&store, |l| store.write_pointer(l, "2.0.0", Some("1.0.0")));
        // Marked bad behind the pointer's back (as by a process that died before the rollback).
        fs::write(store.root().join(BAD_FILE), r#"["2.0.0"]"#).unwrap();
        let p = store.read_pointer().unwrap();
        assert_eq!((p.version.as_str(), p.previous), ("1.0.0", None));
        assert_eq!(store.resolve_cli_entry(), Some(store.cli_entry("1.0.0")));
        // Fallback bad too, or not runnable: nothing.
        fs::write(store.root().join(BAD_FILE), r#"["2.0.0","1.0.0"]"#).unwrap();
        assert_eq!(store.read_pointer(), None);
        assert_eq!(store.resolve_cli_entry(), None);
        // A bad previous is hidden, and never written.
        fs::write(store.root().join(BAD_FILE), r#"["1.0.0"]"#).unwrap();
        assert_eq!(store.read_pointer().unwrap().previous, None);
        locked(&store, |l| store.write_pointer(l, "2.0.0", Some("1.0.0")));
        assert_eq!(store.read_pointer_file().unwrap().previous, None);
    }

    #[test]
    fn marking_the_fallback_bad_drops_it_from_the_pointer() {
        let (_tmp, store) = temp_store();
        stage_fake(&store, "1.0.0");
        stage_fake(&store, "2.0.0");
        locked(&store, |l| store.write_pointer(l, "2.0.0", Some("1.0.0")));
        assert_eq!(store.mark_bad("1.0.0").unwrap().as_deref(), Some("2.0.0"));
        let p = store.read_pointer_file().unwrap();
        assert_eq!((p.version.as_str(), p.previous), ("2.0.0", None));
    }

    #[test]
    fn mark_bad_does_not_wait_for_a_staging_run() {
        let (_tmp, store) = temp_store();
        stage_fake(&store, "1.0.0");
        locked(&store, |l| store.write_pointer(l, "1.0.0", None));
        let mut staging = store.staging_lock_file().unwrap();
        let _held = staging.try_lock().unwrap().unwrap();
        // Would deadlock (same thread) if marking took the staging lock.
        assert_eq!(store.mark_bad("1.0.0").unwrap(), None);
        assert!(store.is_bad("1.0.0"));
        assert!(store.is_locked().unwrap());
    }

    #[test]
    fn stray_files_in_versions_are_swept_and_pruned() {
        let (_tmp, store) = temp_store();
        stage_fake(&store, "1.0.0");
        for name in ["notes.partial", "0.9.0", "2.0.0.partial", "README"] {
            fs::write(store.versions_dir().join(name), "x").unwrap();
        }
        let st = store.status().unwrap();
        assert_eq!(st.versions.len(), 1);
        assert_eq!(
            st.partials,
            ["0.9.0", "2.0.0.partial", "README", "notes.partial"]
        );
        staged(&store, |s| store.sweep_stale(s, &LockWait::Bounded, None));
        let left: Vec<_> = fs::read_dir(store.versions_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["1.0.0"]);
        // A file named like a version is pruned as a file.
        fs::write(store.versions_dir().join("0.8.0"), "x").unwrap();
        assert_eq!(prune(&store, &["1.0.0"], None), ["0.8.0"]);
    }

    #[test]
    fn prune_keeps_the_running_version_by_precedence() {
        let (_tmp, store) = temp_store();
        for v in ["1.0.0+build.7", "1.1.0", "1.2.0"] {
            stage_fake(&store, v);
        }
        let running = crate::version::clean("v1.0.0");
        let removed = prune(&store, &["1.2.0"], running.as_ref());
        assert_eq!(removed, ["1.1.0"]);
        assert!(store.is_whole("1.0.0+build.7"));
    }

    /// A version folder as the original TypeScript stager left it: no completion record.
    pub(crate) fn stage_legacy(store: &Store, version: &str) {
        let dir = store.version_dir(version);
        fs::create_dir_all(dir.join("dist")).unwrap();
        fs::create_dir_all(dir.join("node_modules/node-pty")).unwrap();
        fs::write(dir.join("dist/cli.js"), "cli").unwrap();
        let manifest = serde_json::json!({ "name": "kanban", "version": version });
        fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
    }

    #[test]
    fn folders_of_the_original_implementation_are_adopted() {
        let (_tmp, store) = temp_store();
        stage_legacy(&store, "1.0.0");
        fs::create_dir_all(store.root()).unwrap();
        let legacy = serde_json::json!({
            "version": "1.0.0",
            "cliEntry": store.cli_entry("1.0.0"),
        });
        fs::write(store.pointer_path(), legacy.to_string()).unwrap();
        assert!(!store.is_whole("1.0.0") && store.is_legacy_whole("1.0.0"));
        assert_eq!(store.resolve_cli_entry(), Some(store.cli_entry("1.0.0")));
        staged(&store, |s| store.adopt_legacy(s, "1.0.0", "sha512-x"));
        assert!(store.is_whole("1.0.0"));
        let record = read_record(&store.version_dir("1.0.0")).unwrap();
        assert_eq!((record.files, record.integrity.as_str()), (2, "sha512-x"));

        // Not the original's rule: wrong version in package.json, no node-pty, or a record of
        // ours that does not match (a half-written folder of ours is never adopted).
        stage_legacy(&store, "2.0.0");
        fs::write(
            store.version_dir("2.0.0").join("package.json"),
            r#"{"version":"2.0.1"}"#,
        )
        .unwrap();
        assert!(!store.is_runnable("2.0.0"));
        stage_legacy(&store, "3.0.0");
        fs::remove_dir_all(store.version_dir("3.0.0").join("node_modules")).unwrap();
        assert!(!store.is_runnable("3.0.0"));
        stage_legacy(&store, "4.0.0");
        fs::write(store.version_dir("4.0.0").join(COMPLETE_FILE), "{}").unwrap();
        assert!(!store.is_runnable("4.0.0"));
    }

    #[test]
    fn prune_now_keeps_pointed_fallback_and_running_and_waits_for_no_one() {
        let (_tmp, store) = temp_store();
        for v in ["1.0.0", "1.1.0", "1.2.0", "2.0.0"] {
            stage_fake(&store, v);
        }
        fs::create_dir_all(store.partial_dir("3.0.0")).unwrap();
        locked(&store, |l| store.write_pointer(l, "2.0.0", Some("1.2.0")));
        let running = crate::version::clean("1.0.0");
        {
            let mut staging = store.staging_lock_file().unwrap();
            let _held = staging.try_lock().unwrap().unwrap();
            let busy = store.prune_now(running.as_ref()).unwrap();
            assert!(busy.busy && busy.removed.is_empty());
        }
        let report = store.prune_now(running.as_ref()).unwrap();
        let mut removed = report.removed.clone();
        removed.sort();
        assert_eq!(removed, ["1.1.0", "3.0.0.partial"]);
        assert!(report.freed_bytes > 0 && !report.busy);
        for v in ["1.0.0", "1.2.0", "2.0.0"] {
            assert!(store.is_whole(v), "{v}");
        }
    }

    #[test]
    fn sweep_keeps_only_the_fresh_download_of_the_version_being_staged() {
        use crate::resume::{begin, now_secs, Sidecar, Validator, MAX_KEPT_AGE};
        let (_tmp, store) = temp_store();
        fs::create_dir_all(store.staging_dir()).unwrap();
        let keep = |version: &str, age: u64| {
            let sidecar = Sidecar {
                url: "http://r/k.tgz".into(),
                integrity: "sha512-x".into(),
                validator: Validator::Etag("\"1\"".into()),
                size: Some(10),
                time: now_secs() - age,
            };
            begin(&store, version, &sidecar).unwrap();
            fs::write(store.kept_path(version), "12345").unwrap();
        };
        let kept = |version: &str| {
            store.kept_path(version).exists() && store.sidecar_path(version).exists()
        };
        keep("2.0.0", 0);
        keep("1.5.0", 0);
        staged(&store, |s| {
            store.sweep_stale(s, &LockWait::Bounded, Some("2.0.0"))
        });
        // Superseded: another version's bytes go; the version being staged keeps its own.
        assert!(kept("2.0.0"));
        assert!(!store.kept_path("1.5.0").exists() && !store.sidecar_path("1.5.0").exists());
        // Older than a week.
        keep("2.0.0", MAX_KEPT_AGE.as_secs());
        staged(&store, |s| {
            store.sweep_stale(s, &LockWait::Bounded, Some("2.0.0"))
        });
        assert!(!kept("2.0.0"));
        // Marked bad.
        keep("2.0.0", 0);
        locked(&store, |l| store.add_bad(l, "2.0.0"));
        staged(&store, |s| {
            store.sweep_stale(s, &LockWait::Bounded, Some("2.0.0"))
        });
        assert!(!kept("2.0.0"));
        // Already staged.
        stage_fake(&store, "3.0.0");
        keep("3.0.0", 0);
        staged(&store, |s| {
            store.sweep_stale(s, &LockWait::Bounded, Some("3.0.0"))
        });
        assert!(!kept("3.0.0") && store.is_whole("3.0.0"));
        // A kept file without its sidecar is never resumed, so never kept.
        keep("4.0.0", 0);
        fs::remove_file(store.sidecar_path("4.0.0")).unwrap();
        staged(&store, |s| {
            store.sweep_stale(s, &LockWait::Bounded, Some("4.0.0"))
        });
        assert!(!store.kept_path("4.0.0").exists());
    }

    #[test]
    fn versions_must_be_semver() {
        assert!(check_version("1.2.3-beta.1").is_ok());
        assert!(check_version("../../etc").is_err());
        assert!(check_version("1.0").is_err());
    }
}
