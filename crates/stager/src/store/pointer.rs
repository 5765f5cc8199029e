//! `current.json`: what the app runs next, read with the original's rules and written atomically.

use super::layout::check_version;
use super::layout::json_line;
use super::layout::Store;
use super::locks::LockWait;
use super::locks::StoreLock;
use crate::shared::error::Op;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil;
use serde::Deserialize;
use serde::Serialize;
use std::fs;
use std::io;
use std::path::Path;
use std::path::PathBuf;

/// The pointer is two short fields and a path: a file above this is not ours and is not read.
pub(super) const MAX_POINTER_BYTES: u64 = 16 * 1024;

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

impl Store {
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
    pub(crate) fn is_other_spelling(&self, cli_entry: &str, canonical: &Path) -> bool {
        use std::path::Component;
        let spelled = Path::new(cli_entry);
        let Some(user_data) = self.root.parent() else {
            return false;
        };
        let Ok(tail) = canonical.strip_prefix(user_data) else {
            return false;
        };
        // No `.`, `..` or empty component: a path spelled exactly as its components rebuild it.
        let plain = spelled
            .components()
            .all(|c| !matches!(c, Component::CurDir | Component::ParentDir))
            && spelled.components().collect::<PathBuf>().as_os_str() == spelled.as_os_str();
        let spelled_user_data = spelled.ancestors().nth(tail.components().count());
        plain
            && spelled.is_absolute()
            && spelled.ends_with(tail)
            // Spelled as `userData` itself was when the store was opened (on Windows, the drive
            // path rather than the `\\?\` form).
            && spelled_user_data.is_some_and(|u| fsutil::canonical_dir(u) == user_data)
    }

    /// The CLI to run: the (never bad) pointer's `cliEntry` when its folder is runnable.
    pub fn resolve_cli_entry(&self) -> Option<PathBuf> {
        let p = self.read_pointer()?;
        self.is_runnable(&p.version)
            .then(|| PathBuf::from(p.cli_entry))
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
            Err(e) => Err(StageError::io(Op::Removing, &path, e)),
        }
    }

    /// Whether a `current.json` is there, whatever it holds (not a folder): what the app checks
    /// to remove a pointer that `read_pointer` refuses.
    pub fn pointer_file_exists(&self) -> bool {
        // Followed through a link and a regular file only, as the first stager's check was: a
        // FIFO or a device is not a pointer file an app could remove and rewrite.
        fs::metadata(self.pointer_path()).is_ok_and(|m| m.is_file())
    }

    /// Whether `cli_entry` is `version`'s CLI in this store: its canonical path exactly, or that
    /// path joined from another spelling of userData (a link to it, as macOS's temporary folder
    /// is; see [`Store::is_other_spelling`]).
    fn names_cli_entry(&self, version: &str, cli_entry: &str) -> bool {
        let canonical = self.cli_entry(version);
        canonical.to_string_lossy() == cli_entry || self.is_other_spelling(cli_entry, &canonical)
    }

    /// Points at `version`, whose `cli_entry` must name its CLI in this store (written with the
    /// canonical path either way); the version pointed so far (or its fallback) is kept as
    /// `previous` when it is runnable and not bad.
    pub fn write_pointer_checked(&self, version: &str, cli_entry: &str) -> Result<()> {
        check_version(version)?;
        if !self.names_cli_entry(version, cli_entry) {
            return Err(StageError::InvalidOption {
                name: "cliEntry",
                reason: format!(
                    "cliEntry for {version} must be {}, got {cli_entry}",
                    self.cli_entry(version).display()
                ),
            });
        }
        self.with_store_lock(&LockWait::Bounded, |lock| {
            let previous = self.previous_for(version);
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

    /// The version a CLI path was staged for, when it names this store's
    /// `versions/<v>/dist/cli.js` for a semver `<v>`; anything else is `None`, so a stray path
    /// never names a real version.
    pub fn version_from_cli_entry(&self, cli_entry: &str) -> Option<String> {
        let path = Path::new(cli_entry);
        if !path.is_absolute() {
            return None;
        }
        let version = path.parent()?.parent()?.file_name()?.to_str()?;
        semver::Version::parse(version).ok()?;
        self.names_cli_entry(version, cli_entry)
            .then(|| version.to_string())
    }

    /// The fallback kept beside a newly pointed `latest`: the version pointed so far, else its own
    /// fallback, else the newest other staged version; in each case runnable and not bad. Pruning
    /// keeps it, so the store never loses its last good runtime.
    pub fn fallback_for(&self, latest: &str) -> Option<String> {
        self.fallback_skipping(latest, None)
    }

    /// The fallback to write beside a newly pointed `latest`: as [`Store::fallback_for`], never
    /// the version its publisher withdrew (while the deprecation stands), so a rollback from
    /// `latest` cannot bring that one back.
    pub(crate) fn previous_for(&self, latest: &str) -> Option<String> {
        self.fallback_skipping(latest, self.withdrawn_version().as_deref())
    }

    fn fallback_skipping(&self, latest: &str, skip: Option<&str>) -> Option<String> {
        let pointer = self.read_pointer_file();
        let mut on_disk: Vec<semver::Version> = fs::read_dir(self.versions_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| semver::Version::parse(&e.file_name().to_string_lossy()).ok())
            .collect();
        on_disk.sort_by(|a, b| crate::shared::version::compare(b, a));
        let bad = self.bad_versions();
        pointer
            .iter()
            .flat_map(|p| std::iter::once(p.version.clone()).chain(p.previous.clone()))
            .chain(on_disk.iter().map(|v| v.to_string()))
            .filter(|v| v != latest && Some(v.as_str()) != skip)
            .find(|v| !bad.contains(v) && self.is_runnable(v))
    }
}
