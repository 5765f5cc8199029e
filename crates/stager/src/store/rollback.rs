//! Marking a version bad, and moving the pointer off it in the same store-lock section.

use super::layout::check_version;
use super::layout::Store;
use super::locks::LockWait;
use super::locks::StoreLock;
use crate::shared::error::Result;

impl Store {
    /// Takes the store lock (held only for short sections, never for a download: this answers at
    /// once while another process downloads), then marks `version` bad as
    /// `mark_bad_and_roll_back` does. Call from a blocking thread.
    pub fn mark_bad(&self, version: &str) -> Result<Option<String>> {
        check_version(version)?;
        self.with_store_lock(&LockWait::Bounded, |lock| {
            self.mark_bad_and_roll_back(lock, version)
        })
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
        self.roll_back_from(lock, version, None, true)
    }
}
