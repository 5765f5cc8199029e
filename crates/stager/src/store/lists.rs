//! `bad-versions.json` (versions that failed to start) and `incompatible-versions.json` (versions
//! whose own package.json refused this app): read capped and salvaged, never rewritten from less.

use super::layout::json_line;
use super::layout::Store;
use super::layout::BAD_FILE;
use super::layout::INCOMPATIBLE_FILE;
use super::locks::StoreLock;
use crate::shared::error::Op;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil;
use serde::Deserialize;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;

/// The incompatible list holds one short entry per refused release: far below this, and a file
/// above it is not ours, so it is ignored rather than read into memory.
pub(super) const MAX_INCOMPATIBLE_FILE_BYTES: u64 = 1024 * 1024;

/// The bad list gains one version for each release that failed to start: 1 MiB holds tens of
/// thousands. A larger file is not read (a version it names is then not known to be bad), and
/// never rewritten, since that would lose what it holds.
pub(super) const MAX_BAD_LIST_BYTES: u64 = 1024 * 1024;

/// Why a downloaded version was refused by the compatibility guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompatibleEntry {
    /// `engines.node` or `node-pty`.
    pub guard: String,
    pub range: String,
    /// The integrity of the tarball whose package.json refused: another registry's release of
    /// the same version is another tarball, and is judged on its own. An entry without one (an
    /// earlier release's) matches nothing, so that version is checked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
}

/// Every valid version a bad list names. A list that parses keeps its valid string entries; one
/// that does not (torn, hand-edited) keeps every quoted valid version in it: a damaged entry must
/// never make the list forget the others.
pub(super) fn salvage_versions(bytes: &[u8]) -> Vec<String> {
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

impl Store {
    /// Versions marked bad: every valid version the list holds, also when other entries of it
    /// are damaged. A missing list, or one that cannot be read, means none: a damaged list must
    /// not stop updates, and the app re-marks a version that fails again.
    pub fn bad_versions(&self) -> Vec<String> {
        self.read_bad_list().unwrap_or_default()
    }

    /// The bad list, for a writer: `Err` when a file is there but cannot be read whole (too
    /// large, a folder, a link), since a list rewritten from it would forget what it holds.
    pub(crate) fn read_bad_list(&self) -> Result<Vec<String>> {
        let path = self.root.join(BAD_FILE);
        match fsutil::read_small(&path, MAX_BAD_LIST_BYTES) {
            fsutil::SmallFile::Missing => Ok(Vec::new()),
            fsutil::SmallFile::Read(bytes) => Ok(salvage_versions(&bytes)),
            fsutil::SmallFile::Refused => Err(StageError::io(
                Op::Reading,
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

    /// Versions refused by the compatibility guard after their download, with the guard, the
    /// range and the tarball's integrity. A missing, oversized or damaged file means none: the
    /// guard then runs again on the next download.
    pub fn incompatible_versions(&self) -> BTreeMap<String, IncompatibleEntry> {
        let path = self.root.join(INCOMPATIBLE_FILE);
        match fsutil::read_small(&path, MAX_INCOMPATIBLE_FILE_BYTES) {
            fsutil::SmallFile::Read(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => BTreeMap::new(),
        }
    }

    /// The refusal remembered for `version` when it was for the tarball `integrity` names.
    pub fn incompatible(&self, version: &str, integrity: &str) -> Option<IncompatibleEntry> {
        self.incompatible_versions()
            .remove(version)
            .filter(|e| e.integrity.as_deref() == Some(integrity))
    }

    /// Remembers that `version`'s own package.json, in the tarball `entry.integrity` names,
    /// refused this app.
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
    /// sorted by precedence. Refuses to rewrite a list it cannot read whole. Returns the list
    /// written.
    pub fn add_bad(&self, _: &StoreLock, version: &str) -> Result<Vec<String>> {
        let mut list = self.read_bad_list()?;
        list.push(version.into());
        let mut parsed: Vec<semver::Version> = list
            .iter()
            .filter_map(|v| semver::Version::parse(v).ok())
            .collect();
        parsed.sort_by(crate::shared::version::compare);
        parsed.dedup_by(|a, b| a == b);
        let list: Vec<String> = parsed.iter().map(|v| v.to_string()).collect();
        self.write_list(BAD_FILE, &list)?;
        Ok(list)
    }

    /// Writes one of the store's lists (bad, incompatible) atomically, creating the store.
    pub(crate) fn write_list(&self, name: &str, list: &impl Serialize) -> Result<()> {
        fsutil::create_dir_all(&self.root)?;
        fsutil::write_atomic(self.renamer(), &self.root.join(name), &json_line(list))
    }
}
