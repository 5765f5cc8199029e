//! Launch health: trial launches of a staged runtime, confirmed by the app once it came up, and
//! rolled back by themselves after a number of launches that were never confirmed, the way A/B
//! system updates give a new slot a fixed number of trial boots.
//!
//! `launches.json` in the store holds, per version, the launches begun and never confirmed, and
//! the versions the app confirmed healthy. It is rewritten atomically and flushed under the store
//! lock, so a kill at any instant leaves the old record or the new one.

use super::layout::Store;
use super::locks::LockWait;
use super::locks::StoreLock;
use super::pointer::Pointer;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil;
use serde::Deserialize;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub(crate) use super::layout::LAUNCH_FILE;
/// Unconfirmed launches a version gets before it is rolled back: one crash may be the machine's
/// (a power cut, a force-quit), two in a row are the runtime's.
pub const DEFAULT_MAX_UNCONFIRMED: u32 = 2;
/// The record is a few KiB at most (failure notes are the bulk, and are dropped oldest first to
/// stay under this); a larger file is not ours and is read as empty.
pub(super) const MAX_LAUNCH_FILE_BYTES: u64 = 64 * 1024;
/// Confirmed versions remembered: the newest few are all a rollback can use, and the file stays
/// small on a store that has staged hundreds of releases.
pub(super) const MAX_CONFIRMED: usize = 16;
/// Why `begin` rolled a version back.
pub(crate) const REASON_UNCONFIRMED: &str = "unconfirmed-launches";
/// Why `report_failed` marked a version bad: the app saw it fail.
pub(crate) const REASON_REPORTED: &str = "launch-failed";
/// Launch failures remembered: the bad list says which versions failed, these say why and when
/// for the newest few, which is what a person debugging a store looks at.
pub(super) const MAX_FAILURES: usize = 16;

/// What `launches.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRecord {
    /// Launches begun and not confirmed, per version.
    #[serde(default)]
    pub attempts: BTreeMap<String, u32>,
    /// Versions the app confirmed healthy, newest first.
    #[serde(default)]
    pub confirmed: Vec<String>,
    /// Why and when each of the newest bad versions failed to launch. Read leniently: a damaged
    /// entry is dropped, never the counts and confirmations beside it.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "lenient_failures"
    )]
    pub failures: BTreeMap<String, FailureNote>,
}

/// A launch record's text, when it is one: a JSON object with the fields this module writes
/// (serde would also take a list of the fields in order, which no writer of ours produces).
pub(super) fn parse_record(bytes: &[u8]) -> Option<LaunchRecord> {
    match serde_json::from_slice::<serde_json::Value>(bytes).ok()? {
        object @ serde_json::Value::Object(_) => LaunchRecord::deserialize(object).ok(),
        _ => None,
    }
}

/// Why and when a launch of a version failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureNote {
    /// [`REASON_UNCONFIRMED`] or [`REASON_REPORTED`].
    pub reason: String,
    /// What the app said of the failure (an exit code, an error), masked and clipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When, in ms since the Unix epoch.
    pub at: i64,
}

/// The `failures` field, keeping each entry that parses and dropping the others.
fn lenient_failures<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, FailureNote>, D::Error> {
    // Any JSON value first: a map that fails half-way would leave the parser mid-value.
    let serde_json::Value::Object(raw) = serde_json::Value::deserialize(d)? else {
        return Ok(BTreeMap::new());
    };
    let mut notes: BTreeMap<String, FailureNote> = raw
        .into_iter()
        .filter_map(|(v, note)| Some((v, serde_json::from_value::<FailureNote>(note).ok()?)))
        // A hand-edited file is held to what this module writes: a known reason, a clipped detail.
        .filter(|(_, n)| [REASON_UNCONFIRMED, REASON_REPORTED].contains(&n.reason.as_str()))
        .map(|(v, mut n)| {
            n.detail = n.detail.as_deref().map(crate::shared::text::clip);
            (v, n)
        })
        .collect();
    keep_newest_failures(&mut notes, None);
    Ok(notes)
}

/// Forgets all but the newest [`MAX_FAILURES`] notes, never `keep`'s.
fn keep_newest_failures(notes: &mut BTreeMap<String, FailureNote>, keep: Option<&str>) {
    while notes.len() > MAX_FAILURES && forget_oldest_failure(notes, keep) {}
}

/// Removes the note with the oldest `at`, never `keep`'s; returns whether one was removed.
fn forget_oldest_failure(notes: &mut BTreeMap<String, FailureNote>, keep: Option<&str>) -> bool {
    let oldest = notes
        .iter()
        .filter(|(v, _)| Some(v.as_str()) != keep)
        .min_by_key(|(_, n)| n.at)
        .map(|(v, _)| v.clone());
    oldest.is_some_and(|v| notes.remove(&v).is_some())
}

impl LaunchRecord {
    /// Notes that `version` failed, and forgets the notes of versions no longer bad and all but
    /// the newest [`MAX_FAILURES`], so the record stays small.
    fn note_failure(&mut self, version: &str, reason: &str, detail: Option<&str>, bad: &[String]) {
        // No folder can be named so (NAME_MAX): a cliEntry made up by hand, marked bad but not
        // worth a note that could crowd out the others.
        if version.len() > 255 {
            return;
        }
        let now = crate::shared::dates::now_ms();
        let latest = self.failures.values().map(|n| n.at).max();
        // Two failures in the same millisecond still order as they were noted; a note dated far
        // ahead (a clock set back, a hand edit) does not drag later ones along.
        let at = match latest {
            Some(l) if l >= now && l - now < 1000 => l + 1,
            _ => now,
        };
        self.failures.insert(
            version.to_owned(),
            FailureNote {
                reason: reason.to_owned(),
                // Masked and clipped: it is shown by `status`, and the record has a size cap.
                detail: detail.map(crate::shared::text::clip),
                at,
            },
        );
        self.failures
            .retain(|v, _| v == version || bad.iter().any(|b| b == v));
        keep_newest_failures(&mut self.failures, Some(version));
    }
}

/// A version `begin` rolled back before it chose what to launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub version: String,
    pub reason: &'static str,
}

/// What to launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The staged CLI to run; `None`: the bundled runtime.
    pub cli_entry: Option<PathBuf>,
    pub version: String,
    /// Which trial launch of this version this is (1 for the first); 0 for the bundled runtime
    /// and for a confirmed version, which are no trial.
    pub attempt: u32,
    pub rolled_back: Option<RolledBack>,
}

/// What `report_failed` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The version the failed `cliEntry` belongs to; `None` for a path outside the store.
    pub failed_version: Option<String>,
    /// The pointer afterwards.
    pub pointer: Option<Pointer>,
}

impl Store {
    /// The launch record; a missing, oversized or damaged one is empty (attempts then start
    /// again from zero, which only gives a version more trials).
    pub fn launch_record(&self) -> LaunchRecord {
        match fsutil::read_small(&self.root().join(LAUNCH_FILE), MAX_LAUNCH_FILE_BYTES) {
            fsutil::SmallFile::Read(bytes) => parse_record(&bytes).unwrap_or_default(),
            _ => LaunchRecord::default(),
        }
    }

    fn write_launch_record(&self, _: &StoreLock, record: &LaunchRecord) -> Result<()> {
        let serialize = |r: &LaunchRecord| {
            serde_json::to_vec(r).map_err(|e| StageError::Internal {
                what: format!("serializing the launch record: {e}"),
            })
        };
        let mut bytes = serialize(record)?;
        // Over the cap the whole record would be read as empty, counts and confirmations with
        // it: failure notes, which only explain, go first, oldest first.
        if bytes.len() as u64 >= MAX_LAUNCH_FILE_BYTES {
            let mut trimmed = record.clone();
            while bytes.len() as u64 >= MAX_LAUNCH_FILE_BYTES
                && forget_oldest_failure(&mut trimmed.failures, None)
            {
                bytes = serialize(&trimmed)?;
            }
        }
        bytes.push(b'\n');
        fsutil::write_atomic(self.renamer(), &self.root().join(LAUNCH_FILE), &bytes)
    }

    /// The newest confirmed version that is still runnable and not bad, none of `except` and
    /// newer than `above`: where a rollback goes, and what pruning keeps.
    pub fn newest_confirmed(
        &self,
        except: &[&str],
        above: Option<&semver::Version>,
    ) -> Option<String> {
        let record = self.launch_record();
        let bad = self.bad_versions();
        let mut confirmed: Vec<semver::Version> = record
            .confirmed
            .iter()
            .filter(|v| !except.contains(&v.as_str()) && !bad.contains(v))
            .filter_map(|v| semver::Version::parse(v).ok())
            .filter(|v| above.is_none_or(|a| crate::shared::version::compare(v, a).is_gt()))
            .collect();
        confirmed.sort_by(|a, b| crate::shared::version::compare(b, a));
        confirmed
            .into_iter()
            .map(|v| v.to_string())
            .find(|v| self.is_runnable(v))
    }

    /// Points back from the failed `version`: at the newest confirmed version (newer than
    /// `above`, when given), else, when `to_previous`, at the pointer's runnable `previous`, else
    /// at nothing. Returns what the pointer names now.
    pub(crate) fn roll_back_from(
        &self,
        lock: &StoreLock,
        version: &str,
        above: Option<&semver::Version>,
        to_previous: bool,
    ) -> Result<Option<String>> {
        // A version its publisher withdrew is no rollback target while the deprecation stands:
        // a rollback from a failed newer release must not bring back what the kill switch took.
        let withdrawn = self.withdrawn_version();
        let previous = to_previous
            .then(|| self.read_pointer_file())
            .flatten()
            .and_then(|p| p.previous)
            .filter(|v| v != version && Some(v) != withdrawn.as_ref())
            .filter(|v| !self.is_bad(v) && self.is_runnable(v))
            .filter(|v| {
                above.is_none_or(|a| {
                    semver::Version::parse(v)
                        .is_ok_and(|v| crate::shared::version::compare(&v, a).is_gt())
                })
            });
        let except: Vec<&str> = std::iter::once(version)
            .chain(withdrawn.as_deref())
            .collect();
        match self.newest_confirmed(&except, above).or(previous) {
            Some(target) => {
                self.write_pointer(lock, &target, None)?;
                Ok(Some(target))
            }
            None => {
                self.remove_pointer(lock)?;
                Ok(None)
            }
        }
    }
}

/// The launch the app's rule picks, without recording anything: the pointed version when it is
/// newer than `bundled` and its folder is runnable; a stale or unrunnable pointer, or an invalid
/// `current.json`, is removed. What a background check runs before it stages.
pub fn resolve(store: &Store, bundled: &semver::Version) -> Result<Option<Pointer>> {
    let pointer = store.read_pointer();
    let usable = pointer
        .as_ref()
        .is_some_and(|p| is_usable(store, p, bundled));
    if usable {
        return Ok(pointer);
    }
    if store.pointer_file_exists() {
        store.with_store_lock(&LockWait::Bounded, |lock| {
            // Re-read under the lock: a staging run may have pointed somewhere new meanwhile.
            match store.read_pointer() {
                Some(p) if is_usable(store, &p, bundled) => Ok(Some(p)),
                _ => store.remove_pointer(lock).map(|()| None),
            }
        })
    } else {
        Ok(None)
    }
}

pub(super) fn is_usable(store: &Store, p: &Pointer, bundled: &semver::Version) -> bool {
    semver::Version::parse(&p.version)
        .is_ok_and(|v| crate::shared::version::compare(&v, bundled).is_gt())
        && store.is_runnable(&p.version)
}

/// Decides what to launch (as `resolve`) and records one launch attempt for it, flushed, before
/// it returns. A version that already has `max_unconfirmed` attempts never confirmed is marked
/// bad and rolled back first. A confirmed version, and the bundled runtime, are no trial.
pub fn begin(store: &Store, bundled: &semver::Version, max_unconfirmed: u32) -> Result<Launch> {
    let bundled_launch = |rolled_back| Launch {
        cli_entry: None,
        version: bundled.to_string(),
        attempt: 0,
        rolled_back,
    };
    // No store, no pointer: nothing to record, and nothing is created.
    if !store.pointer_file_exists() {
        return Ok(bundled_launch(None));
    }
    store.with_store_lock(&LockWait::Bounded, |lock| {
        let mut record = store.launch_record();
        let mut rolled_back = None;
        let mut pointer = usable_pointer(store, lock, bundled)?;
        if let Some(p) = &pointer {
            let tries = record.attempts.get(&p.version).copied().unwrap_or(0);
            if !record.confirmed.contains(&p.version) && tries >= max_unconfirmed {
                // The mark first: a crash after it leaves the version bad, never re-staged.
                let bad = store.add_bad(lock, &p.version)?;
                // Only to a version that proved itself: an unconfirmed one is no safer than the
                // bundled runtime.
                store.roll_back_from(lock, &p.version, Some(bundled), false)?;
                record.attempts.remove(&p.version);
                record.note_failure(&p.version, REASON_UNCONFIRMED, None, &bad);
                rolled_back = Some(RolledBack {
                    version: p.version.clone(),
                    reason: REASON_UNCONFIRMED,
                });
                pointer = usable_pointer(store, lock, bundled)?;
            }
        }
        let Some(p) = pointer else {
            if rolled_back.is_some() {
                store.write_launch_record(lock, &record)?;
            }
            return Ok(bundled_launch(rolled_back));
        };
        let attempt = if record.confirmed.contains(&p.version) {
            0
        } else {
            let n = record.attempts.entry(p.version.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        // Only the versions still on disk keep a count: the record stays as small as the store.
        record.attempts.retain(|v, _| store.version_dir(v).is_dir());
        if attempt > 0 || rolled_back.is_some() {
            store.write_launch_record(lock, &record)?;
        }
        Ok(Launch {
            cli_entry: Some(PathBuf::from(&p.cli_entry)),
            version: p.version,
            attempt,
            rolled_back,
        })
    })
}

/// `resolve` with the store lock held.
pub(super) fn usable_pointer(
    store: &Store,
    lock: &StoreLock,
    bundled: &semver::Version,
) -> Result<Option<Pointer>> {
    match store.read_pointer() {
        Some(p) if is_usable(store, &p, bundled) => Ok(Some(p)),
        _ if store.pointer_file_exists() => store.remove_pointer(lock).map(|()| None),
        _ => Ok(None),
    }
}

/// The runtime started from `cli_entry` is healthy: its attempts are cleared and it becomes a
/// confirmed version. Returns the version, or `None` for a path outside the store's layout or a
/// version that is bad or no longer runnable (nothing is recorded then).
pub fn confirm(store: &Store, cli_entry: &str) -> Result<Option<String>> {
    let Some(version) = store.version_from_cli_entry(cli_entry) else {
        return Ok(None);
    };
    if store.is_bad(&version) || !store.is_runnable(&version) {
        return Ok(None);
    }
    store.with_store_lock(&LockWait::Bounded, |lock| {
        let mut record = store.launch_record();
        record.attempts.remove(&version);
        record.confirmed.retain(|v| v != &version);
        record.confirmed.insert(0, version.clone());
        record.confirmed.truncate(MAX_CONFIRMED);
        store.write_launch_record(lock, &record)?;
        Ok(Some(version))
    })
}

/// The start that launched `cli_entry` on trial ended cleanly: the app quit normally with no
/// failure reported and no confirmation. That launch is taken back (its attempt uncounted,
/// flushed before this returns), so a user who quits before the runtime is confirmed never
/// counts against it; only a start that died, was killed or hung until force-quit still counts.
/// Call it once per trial launch. Returns the version, or `None` when there was nothing to take
/// back (a path outside the store's layout, a bad or confirmed version, no attempt recorded).
pub fn end(store: &Store, cli_entry: &str) -> Result<Option<String>> {
    let Some(version) = store.version_from_cli_entry(cli_entry) else {
        return Ok(None);
    };
    // Nothing recorded for it: no lock taken, and nothing is created.
    if !store.launch_record().attempts.contains_key(&version) {
        return Ok(None);
    }
    store.with_store_lock(&LockWait::Bounded, |lock| {
        let mut record = store.launch_record();
        let Some(n) = record.attempts.get_mut(&version) else {
            return Ok(None);
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            record.attempts.remove(&version);
        }
        store.write_launch_record(lock, &record)?;
        Ok(Some(version))
    })
}

/// The runtime started from `cli_entry` failed: its version (taken from `cli_entry`, never from
/// the pointer) is marked bad; the pointer is rolled back only while it still names that
/// version; the folder is removed once the mark is recorded (one still held by the failed
/// runtime is left for a later prune). A failure to record the mark is an
/// error, and then nothing changed. `detail`, what the app said of the failure, is kept for
/// `status`.
pub fn report_failed(store: &Store, cli_entry: &str, detail: Option<&str>) -> Result<Failure> {
    let Some(version) = store.version_from_cli_entry(cli_entry) else {
        return Ok(Failure {
            failed_version: None,
            pointer: store.read_pointer(),
        });
    };
    store.with_store_lock(&LockWait::Bounded, |lock| {
        let bad = store.add_bad(lock, &version)?;
        if store
            .read_pointer_file()
            .is_some_and(|p| p.version == version)
        {
            store.roll_back_from(lock, &version, None, true)?;
        }
        let mut record = store.launch_record();
        record.attempts.remove(&version);
        record.confirmed.retain(|v| v != &version);
        record.note_failure(&version, REASON_REPORTED, detail, &bad);
        // The mark is what matters; a record that cannot be rewritten only keeps a stale count.
        let _ = store.write_launch_record(lock, &record);
        Ok(())
    })?;
    // Housekeeping once the mark is recorded: a folder the failed runtime still holds (Windows)
    // is bad, never launched or re-staged, and pruned by a later run.
    let _ = store.remove_version(&version);
    Ok(Failure {
        failed_version: Some(version),
        pointer: store.read_pointer(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{stage_fake, store_with};

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn unconfirmed_launches_roll_back_after_the_limit() {
        let (_d, store) = store_with(&["1.1.0"], "1.1.0");
        let bundled = v("1.0.0");
        for n in 1..=2 {
            let l = begin(&store, &bundled, 2).unwrap();
            assert_eq!((l.version.as_str(), l.attempt), ("1.1.0", n));
            assert!(l.cli_entry.is_some());
        }
        let l = begin(&store, &bundled, 2).unwrap();
        assert_eq!(l.cli_entry, None);
        assert_eq!(l.version, "1.0.0");
        assert_eq!(l.rolled_back.unwrap().version, "1.1.0");
        assert!(store.is_bad("1.1.0"));
        assert_eq!(store.read_pointer_file(), None);
        assert_eq!(begin(&store, &bundled, 2).unwrap().rolled_back, None);
    }

    #[test]
    fn the_counter_rolls_back_to_a_confirmed_version_only_never_an_unconfirmed_previous() {
        let (_d, store) = store_with(&["1.1.0", "1.2.0"], "1.1.0");
        let bundled = v("1.0.0");
        store
            .write_pointer_checked("1.2.0", &store.cli_entry("1.2.0").to_string_lossy())
            .unwrap();
        assert_eq!(
            store.read_pointer_file().unwrap().previous.as_deref(),
            Some("1.1.0")
        );
        for _ in 0..2 {
            begin(&store, &bundled, 2).unwrap();
        }
        let l = begin(&store, &bundled, 2).unwrap();
        assert_eq!((l.cli_entry, l.version.as_str()), (None, "1.0.0"));
        assert_eq!(l.rolled_back.unwrap().version, "1.2.0");
        assert_eq!(store.read_pointer_file(), None);
        // Marking bad by hand still falls back to the previous known-good version.
        let (_d, store) = store_with(&["1.1.0", "1.2.0"], "1.1.0");
        store
            .write_pointer_checked("1.2.0", &store.cli_entry("1.2.0").to_string_lossy())
            .unwrap();
        assert_eq!(store.mark_bad("1.2.0").unwrap(), Some("1.1.0".into()));
    }

    #[test]
    fn no_rollback_and_no_new_fallback_brings_back_a_withdrawn_version() {
        use crate::store::locks::LockWait;
        use crate::store::WithdrawnNote;
        let (_d, store) = store_with(&["1.5.0", "2.0.0", "2.0.1"], "2.0.0");
        let bundled = v("1.0.0");
        let entry = |v: &str| store.cli_entry(v).to_string_lossy().into_owned();
        // 2.0.0 ran and was confirmed; then its publisher deprecated it and a check withdrew it,
        // the pointer going back to the bundled runtime.
        begin(&store, &bundled, 2).unwrap();
        confirm(&store, &entry("2.0.0")).unwrap();
        let withdrawn = WithdrawnNote {
            version: "2.0.0".into(),
            reason: "breaks login".into(),
            pointer: None,
        };
        store
            .with_store_lock(&LockWait::Bounded, |l| {
                store.remove_pointer(l)?;
                store.note_rollout(l, None, Some(Some(withdrawn)))
            })
            .unwrap();
        // The same check stages 2.0.1: its fallback is not the withdrawn 2.0.0.
        store
            .write_pointer_checked("2.0.1", &entry("2.0.1"))
            .unwrap();
        assert_eq!(
            store.read_pointer_file().unwrap().previous.as_deref(),
            Some("1.5.0")
        );
        // 2.0.1 fails to come up: the rollback skips the confirmed but withdrawn 2.0.0.
        let f = report_failed(&store, &entry("2.0.1"), None).unwrap();
        assert_eq!(f.pointer.map(|p| p.version).as_deref(), Some("1.5.0"));
        assert!(store.is_runnable("2.0.0") && !store.is_bad("2.0.0"));
        // Once the deprecation is lifted (the note cleared), 2.0.0 is a rollback target again.
        store
            .with_store_lock(&LockWait::Bounded, |l| {
                store.note_rollout(l, None, Some(None))
            })
            .unwrap();
        assert_eq!(store.newest_confirmed(&[], None).as_deref(), Some("2.0.0"));
    }

    #[test]
    fn a_clean_end_never_counts_and_an_unclean_one_still_does() {
        let (_d, store) = store_with(&["1.1.0"], "1.1.0");
        let bundled = v("1.0.0");
        let entry = store.cli_entry("1.1.0").to_string_lossy().into_owned();
        // Any number of starts that quit cleanly: each is the first trial again.
        for _ in 0..5 {
            assert_eq!(begin(&store, &bundled, 2).unwrap().attempt, 1);
            assert_eq!(end(&store, &entry).unwrap().as_deref(), Some("1.1.0"));
        }
        assert!(!store.is_bad("1.1.0"));
        assert_eq!(store.launch_record().attempts.get("1.1.0"), None);
        // A second end of the same launch has nothing left to take back.
        assert_eq!(end(&store, &entry).unwrap(), None);
        // Unclean starts between clean ones still add up to the limit.
        begin(&store, &bundled, 2).unwrap();
        assert_eq!(begin(&store, &bundled, 2).unwrap().attempt, 2);
        end(&store, &entry).unwrap();
        assert_eq!(begin(&store, &bundled, 2).unwrap().attempt, 2);
        let l = begin(&store, &bundled, 2).unwrap();
        assert_eq!(l.rolled_back.unwrap().version, "1.1.0");
        // A path outside the store, or a store that recorded nothing, changes nothing.
        assert_eq!(end(&store, "/elsewhere/1.1.0/dist/cli.js").unwrap(), None);
        let empty = tempfile::tempdir().unwrap();
        let none = Store::new(empty.path());
        assert_eq!(
            end(&none, &none.cli_entry("1.1.0").to_string_lossy()).unwrap(),
            None
        );
        assert!(!none.root().exists(), "nothing is created");
    }

    #[test]
    fn a_confirmed_version_is_no_trial_and_the_rollback_target() {
        let (_d, store) = store_with(&["1.1.0", "1.2.0"], "1.1.0");
        let bundled = v("1.0.0");
        begin(&store, &bundled, 2).unwrap();
        assert_eq!(
            confirm(&store, &store.cli_entry("1.1.0").to_string_lossy()).unwrap(),
            Some("1.1.0".into())
        );
        for _ in 0..5 {
            assert_eq!(begin(&store, &bundled, 2).unwrap().attempt, 0);
        }
        store
            .write_pointer_checked("1.2.0", &store.cli_entry("1.2.0").to_string_lossy())
            .unwrap();
        for _ in 0..2 {
            begin(&store, &bundled, 2).unwrap();
        }
        let l = begin(&store, &bundled, 2).unwrap();
        assert_eq!(l.version, "1.1.0");
        assert_eq!(l.attempt, 0);
        assert_eq!(l.rolled_back.unwrap().version, "1.2.0");
    }

    #[test]
    fn a_stale_pointer_is_dropped_without_an_attempt() {
        let (_d, store) = store_with(&["1.1.0"], "1.1.0");
        let l = begin(&store, &v("1.1.0"), 2).unwrap();
        assert_eq!((l.cli_entry, l.attempt), (None, 0));
        assert!(!store.pointer_file_exists());
        assert_eq!(store.launch_record(), LaunchRecord::default());
    }

    #[test]
    fn resolve_records_nothing() {
        let (_d, store) = store_with(&["1.1.0"], "1.1.0");
        for _ in 0..5 {
            assert!(resolve(&store, &v("1.0.0")).unwrap().is_some());
        }
        assert_eq!(store.launch_record(), LaunchRecord::default());
    }

    #[test]
    fn report_failed_keys_on_the_cli_entry_that_ran() {
        let (_d, store) = store_with(&["1.1.0", "1.2.0"], "1.1.0");
        let ran = store.cli_entry("1.1.0").to_string_lossy().into_owned();
        store
            .write_pointer_checked("1.2.0", &store.cli_entry("1.2.0").to_string_lossy())
            .unwrap();
        let f = report_failed(&store, &ran, None).unwrap();
        assert_eq!(f.failed_version.as_deref(), Some("1.1.0"));
        assert_eq!(f.pointer.unwrap().version, "1.2.0");
        assert!(store.is_bad("1.1.0"));
        assert!(!store.version_dir("1.1.0").exists());
        let outside = report_failed(&store, "/elsewhere/1.2.0/dist/cli.js", None).unwrap();
        assert_eq!(outside.failed_version, None);
        assert!(!store.is_bad("1.2.0"));
    }

    #[test]
    fn a_failure_is_noted_with_its_reason_its_detail_and_its_time() {
        let (_d, store) = store_with(&["1.1.0", "1.2.0"], "1.1.0");
        let before = crate::shared::dates::now_ms();
        let ran = store.cli_entry("1.1.0").to_string_lossy().into_owned();
        let detail = format!(
            "exit code 1 at http://u:hunter2@127.0.0.1:9/ {}",
            "x".repeat(5000)
        );
        report_failed(&store, &ran, Some(&detail)).unwrap();
        let note = store.launch_record().failures["1.1.0"].clone();
        assert_eq!(note.reason, REASON_REPORTED);
        let shown = note.detail.unwrap();
        assert!(shown.starts_with("exit code 1 at http://***@127.0.0.1:9/"));
        assert!(!shown.contains("hunter2"));
        assert!(shown.chars().count() <= crate::shared::text::MAX_SHOWN_CHARS + 1);
        assert!(note.at >= before && note.at <= crate::shared::dates::now_ms());

        store
            .write_pointer_checked("1.2.0", &store.cli_entry("1.2.0").to_string_lossy())
            .unwrap();
        for _ in 0..3 {
            begin(&store, &v("1.0.0"), 2).unwrap();
        }
        let record = store.launch_record();
        assert_eq!(record.failures["1.2.0"].reason, REASON_UNCONFIRMED);
        assert_eq!(record.failures["1.2.0"].detail, None);
        assert!(record.failures.contains_key("1.1.0"));
    }

    #[test]
    fn failure_notes_are_kept_only_for_the_newest_bad_versions() {
        let versions: Vec<String> = (0..MAX_FAILURES + 4).map(|n| format!("1.{n}.0")).collect();
        let names: Vec<&str> = versions.iter().map(String::as_str).collect();
        let (_d, store) = store_with(&names, names[0]);
        for v in &versions {
            let entry = store.cli_entry(v).to_string_lossy().into_owned();
            report_failed(&store, &entry, Some("crashed")).unwrap();
        }
        let kept = store.launch_record().failures;
        // The newest MAX_FAILURES, though the 20 reports share milliseconds.
        let mut expected: Vec<&String> = versions[versions.len() - MAX_FAILURES..].iter().collect();
        expected.sort();
        assert_eq!(kept.keys().collect::<Vec<_>>(), expected);
        let mut ats: Vec<i64> = kept.values().map(|n| n.at).collect();
        ats.sort();
        ats.dedup();
        assert_eq!(ats.len(), MAX_FAILURES, "each note has its own time");

        // A version no longer bad (its mark removed by hand) loses its note at the next failure.
        let lists = store.root().join("bad-versions.json");
        std::fs::write(&lists, "[]").unwrap();
        stage_fake(&store, "2.0.0");
        report_failed(&store, &store.cli_entry("2.0.0").to_string_lossy(), None).unwrap();
        let kept = store.launch_record().failures;
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["2.0.0"]);
    }

    #[test]
    fn a_damaged_failure_note_loses_only_itself() {
        let (_d, store) = store_with(&["1.1.0"], "1.1.0");
        std::fs::write(
            store.root().join(LAUNCH_FILE),
            r#"{"attempts":{"1.1.0":1},"confirmed":["1.0.5"],"failures":{"1.0.9":{"reason":"launch-failed","at":5},"1.0.8":{"reason":7},"1.0.7":null,"1.0.6":{"reason":"\u001b[2J","at":5},"1.0.5":{"reason":"launch-failed","at":1.5},"1.0.4":{"reason":"launch-failed","at":99999999999999999999}}}"#,
        )
        .unwrap();
        let record = store.launch_record();
        assert_eq!(record.attempts["1.1.0"], 1);
        assert_eq!(record.confirmed, ["1.0.5"]);
        assert_eq!(record.failures.keys().collect::<Vec<_>>(), ["1.0.9"]);
        std::fs::write(
            store.root().join(LAUNCH_FILE),
            r#"{"attempts":{"1.1.0":1},"failures":[1,2]}"#,
        )
        .unwrap();
        let record = store.launch_record();
        assert_eq!(record.attempts["1.1.0"], 1);
        assert!(record.failures.is_empty());
    }

    #[test]
    fn failure_notes_read_from_a_hand_edited_file_are_held_to_what_is_written() {
        let (_d, store) = store_with(&["1.1.0"], "1.1.0");
        let notes: serde_json::Map<String, serde_json::Value> = (0..40)
            .map(|n| {
                let note = serde_json::json!({"reason": "launch-failed", "detail": "x".repeat(1000), "at": n});
                (format!("1.0.{n}"), note)
            })
            .collect();
        let record = serde_json::json!({"attempts": {"1.1.0": 1}, "failures": notes});
        std::fs::write(store.root().join(LAUNCH_FILE), record.to_string()).unwrap();
        let record = store.launch_record();
        assert_eq!(record.attempts["1.1.0"], 1);
        let kept: Vec<&String> = record.failures.keys().collect();
        assert_eq!(kept.len(), MAX_FAILURES);
        assert!(
            kept.iter().all(|v| v.as_str() >= "1.0.24"),
            "the newest: {kept:?}"
        );
        let detail = record.failures["1.0.39"].detail.as_deref().unwrap();
        assert_eq!(
            detail.chars().count(),
            crate::shared::text::MAX_SHOWN_CHARS + 1
        );
    }

    #[test]
    fn failure_notes_never_push_the_record_past_its_cap() {
        let (_d, store) = store_with(&["1.1.0"], "1.1.0");
        // Names no folder could hold are marked bad, and not noted.
        let long = format!("1.0.0-{}", "x".repeat(70_000));
        report_failed(&store, &store.cli_entry(&long).to_string_lossy(), None).unwrap();
        assert!(store.is_bad(&long));
        assert!(store.launch_record().failures.is_empty());

        // A record whose notes (read from a hand-edited file, say) would outgrow the cap: the
        // oldest notes go, the counts and confirmations stay.
        let mut record = LaunchRecord::default();
        record.attempts.insert("1.1.0".into(), 1);
        record.confirmed.push("1.0.5".into());
        for n in 0..MAX_FAILURES as i64 {
            let note = FailureNote {
                reason: REASON_REPORTED.into(),
                detail: Some("\u{1b}".repeat(2000)),
                at: n,
            };
            record.failures.insert(format!("1.0.{n}"), note);
        }
        store
            .with_store_lock(&LockWait::Bounded, |lock| {
                store.write_launch_record(lock, &record)
            })
            .unwrap();
        let size = std::fs::metadata(store.root().join(LAUNCH_FILE))
            .unwrap()
            .len();
        assert!(size < MAX_LAUNCH_FILE_BYTES, "{size} bytes");
        let read = store.launch_record();
        assert_eq!(
            (read.attempts, read.confirmed),
            (record.attempts, record.confirmed)
        );
        assert!(!read.failures.is_empty());
        assert!(
            !read.failures.contains_key("1.0.0"),
            "the oldest went first"
        );
        assert!(read.failures.contains_key("1.0.15"));
    }
}
