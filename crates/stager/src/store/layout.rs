//! The store's folder and the names in it. The layout is the one the app's first, TypeScript
//! stager wrote (the pointer, the bad list and `versions/`), so a store it left on a user's disk
//! is adopted as it is; everything else is ours, beside it.
//!
//! ```text
//! current.json        {"version","cliEntry","previous"}: what the app runs next
//! bad-versions.json   ["0.1.69", ...]: versions that failed to start, sorted by precedence
//! incompatible-versions.json  {"0.2.0": {"guard": "engines.node", "range": ">=24", "integrity":
//!                     "sha512-..."}}: tarballs whose own package.json refused this app;
//!                     re-checked, never re-downloaded
//! launches.json       trial launches and confirmations per version
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
//! rollout.json        {"bucket","pending","withdrawn"}: this store's place in phased rollouts,
//!                     and what the last check held back or withdrew
//! <name>.misplaced-<pid>-<n>  what had the wrong type at one of the names above, moved aside
//!                     (see `heal`); never removed by the store
//! ```

use crate::shared::error::Op;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil::OsRenamer;
use crate::shared::fsutil::Renamer;
use serde::Serialize;
use std::fs;
use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

pub(super) const STORE_DIR: &str = "runtime-store";

pub const POINTER_FILE: &str = "current.json";

pub(super) const BAD_FILE: &str = "bad-versions.json";

pub(super) const INCOMPATIBLE_FILE: &str = "incompatible-versions.json";

pub(super) const LOCK_FILE: &str = "stage.lock";

pub(super) const STORE_LOCK_FILE: &str = "store.lock";

/// The package document with its validators (see `net::doccache`).
pub(crate) const CACHE_FILE: &str = "package-document.cache";
/// The tarball bytes received so far for a version, and their sidecar (see `kept`).
pub(super) const KEPT_SUFFIX: &str = ".download";
pub(super) const SIDECAR_SUFFIX: &str = ".download.json";
pub(super) const VERSIONS_DIR: &str = "versions";

pub(super) const STAGING_DIR: &str = "staging";

pub(super) const PARTIAL_SUFFIX: &str = ".partial";

/// In the name of a folder on its way out, in `staging/`.
pub(super) const TRASH_MARK: &str = ".trash-";

/// Written last into a staged folder, before its rename: its presence means the folder is whole.
pub(super) const COMPLETE_FILE: &str = ".kanban-runtime-complete.json";

/// What an entry the store owns must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file: never a link, a FIFO, a socket or a device.
    File,
    /// A folder, never a link to one.
    Folder,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Folder => "folder",
        }
    }
}

/// A name the store reads or writes, relative to the store, and what it must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedName {
    /// `/`-separated; `{version}` stands for a version.
    pub path: &'static str,
    pub kind: EntryKind,
}

impl OwnedName {
    /// Directly in the store: the names an entry of the wrong type is moved away from (see
    /// `heal`). The others are inside `staging/` or a version folder, which sweeps and the
    /// wholeness checks already take care of.
    pub fn is_top(&self) -> bool {
        !self.path.contains('/')
    }
}

const fn owned(path: &'static str, kind: EntryKind) -> OwnedName {
    OwnedName { path, kind }
}

/// The launch record (see `launches`).
pub(crate) const LAUNCH_FILE: &str = "launches.json";

/// The rollout record (see `rollout`).
pub(super) const ROLLOUT_FILE: &str = "rollout.json";

/// Every name the store reads or writes, with what it must be. Every read of one is bounded and
/// takes a regular file only; a test puts a FIFO, a link to `/dev/zero`, a folder and an oversized
/// file in each place and drives every call over it, so a name added here is covered at once,
/// and a file the store reads must be added here.
pub const OWNED_NAMES: [OwnedName; 14] = [
    owned(POINTER_FILE, EntryKind::File),
    owned(BAD_FILE, EntryKind::File),
    owned(INCOMPATIBLE_FILE, EntryKind::File),
    owned(LAUNCH_FILE, EntryKind::File),
    owned(LOCK_FILE, EntryKind::File),
    owned(STORE_LOCK_FILE, EntryKind::File),
    owned(CACHE_FILE, EntryKind::File),
    owned(ROLLOUT_FILE, EntryKind::File),
    owned(VERSIONS_DIR, EntryKind::Folder),
    owned(STAGING_DIR, EntryKind::Folder),
    // `Store::kept_path` and `Store::sidecar_path`; a test checks these spellings against them.
    owned("staging/{version}.download", EntryKind::File),
    owned("staging/{version}.download.json", EntryKind::File),
    // The completion record, and the package.json the first stager's rule reads.
    owned(
        "versions/{version}/.kanban-runtime-complete.json",
        EntryKind::File,
    ),
    owned("versions/{version}/package.json", EntryKind::File),
];

pub(crate) const CLI_ENTRY: [&str; 2] = ["dist", "cli.js"];

pub(crate) const NATIVE_MODULE: [&str; 2] = ["node_modules", "node-pty"];

#[derive(Clone)]
pub struct Store {
    pub(super) root: PathBuf,
    pub(super) renamer: Arc<dyn Renamer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

/// Accepts only valid semver, which also guarantees a version can never name a path outside
/// `versions/` (no `/`, `\` or `..` can appear in one).
pub fn check_version(version: &str) -> Result<semver::Version> {
    semver::Version::parse(version).map_err(|e| StageError::InvalidOption {
        name: "version",
        reason: format!("invalid semver: {version} ({e})"),
    })
}

/// Regular files and their bytes below `dir` (links not followed), for an adopted folder's record.
pub(super) fn tree_stats(dir: &Path) -> (u64, u64) {
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
pub(super) fn tree_size(dir: &Path) -> u64 {
    tree_stats(dir).1
}

/// One line of compact JSON, as the TypeScript stager wrote the pointer and the bad list.
pub(super) fn json_line(value: &impl Serialize) -> Vec<u8> {
    let mut json = serde_json::to_vec(value).expect("store files serialise");
    json.push(b'\n');
    json
}

pub(super) fn is_trash(name: &str) -> bool {
    name.contains(TRASH_MARK)
}

/// A writer's temp file in the store: `fsutil::write_atomic`'s `.<name>.tmp-<pid>`, and the
/// document cache's `.<name>.tmp-<pid>-<n>`.
pub(super) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// The entries of `dir` (name, path, whether a folder, links not followed); none when it is
/// missing or is not a folder. A link in its place is not followed: the sweeps that walk these
/// entries delete them, and must never delete outside the store.
pub(super) fn dir_entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    if fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Ok(Vec::new());
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StageError::io(Op::ReadingFolder, dir, e)),
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
        self.staging_dir().join(format!("{version}{}", KEPT_SUFFIX))
    }

    pub fn sidecar_path(&self, version: &str) -> PathBuf {
        self.staging_dir()
            .join(format!("{version}{}", SIDECAR_SUFFIX))
    }

    pub fn pointer_path(&self) -> PathBuf {
        self.root.join(POINTER_FILE)
    }

    pub fn cli_entry(&self, version: &str) -> PathBuf {
        let mut p = self.version_dir(version);
        p.extend(CLI_ENTRY);
        p
    }

    pub(crate) fn native_module(&self, version: &str) -> PathBuf {
        let mut p = self.version_dir(version);
        p.extend(NATIVE_MODULE);
        p
    }

    /// A name no other folder has: pruning, a damaged folder's discard and `removeVersionDir`
    /// may each move one aside in this process at once.
    pub(crate) fn trash_path(&self, version: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.staging_dir()
            .join(format!("{version}{TRASH_MARK}{}-{n}", std::process::id()))
    }
}
