//! `rollout.json`: this store's place in phased rollouts (its bucket), and what the last check
//! held back or withdrew, for a person to see in the status. Also the withdrawal itself: moving
//! the pointer off a version its publisher deprecated, in one store-lock section.
//!
//! The record is rewritten atomically under the store lock. A missing or damaged record is never
//! an error: a bucket that cannot be read is drawn anew, a note that cannot be read is dropped.

use super::layout::json_line;
use super::layout::Store;
use super::layout::ROLLOUT_FILE;
use super::locks::StoreLock;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil;
use crate::shared::version;
use serde::Deserialize;
use serde::Serialize;
use std::path::PathBuf;

/// A bucket and two short notes, the withdrawal's reason clipped to a few hundred characters:
/// a larger file is not ours and is read as empty.
pub(super) const MAX_ROLLOUT_FILE_BYTES: u64 = 16 * 1024;

/// The newest release a check held back for this store, and when it becomes eligible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingNote {
    pub version: String,
    /// ISO 8601 UTC.
    pub eligible_at: String,
}

/// A version a check withdrew because its publisher deprecated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawnNote {
    pub version: String,
    /// The registry's deprecation message, clipped.
    pub reason: String,
    /// The version the pointer named afterwards; `None`: the bundled runtime.
    pub pointer: Option<String>,
}

/// What `rollout.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RolloutRecord {
    /// In [0, 1); `None` until a check with a rollout first needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingNote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<WithdrawnNote>,
}

impl RolloutRecord {
    /// The record in `bytes`, each field read on its own: a damaged field is dropped, never the
    /// others beside it.
    fn parse(bytes: &[u8]) -> RolloutRecord {
        let Ok(serde_json::Value::Object(mut raw)) = serde_json::from_slice(bytes) else {
            return RolloutRecord::default();
        };
        let mut take = |name: &str| raw.remove(name).unwrap_or_default();
        RolloutRecord {
            bucket: take("bucket").as_f64().filter(|b| is_bucket(*b)),
            pending: serde_json::from_value(take("pending")).ok(),
            withdrawn: serde_json::from_value(take("withdrawn")).ok(),
        }
    }
}

/// Whether `b` is a bucket: a number in [0, 1).
pub(super) fn is_bucket(b: f64) -> bool {
    (0.0..1.0).contains(&b)
}

/// A bucket drawn from the operating system's random source, uniform in [0, 1): the top 53 bits
/// of a random `u64`, every one of the 2^53 doubles as likely. Never from the clock, whose
/// values cluster for stores set up at the same moment (an image rolled out to a fleet).
pub(crate) fn draw_bucket() -> Result<f64> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StageError::Internal {
            what: "the operating system's random source failed".into(),
        })?;
    Ok((u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64)
}

impl Store {
    pub fn rollout_path(&self) -> PathBuf {
        self.root().join(ROLLOUT_FILE)
    }

    /// The version the last check withdrew because its publisher deprecated it, while the
    /// deprecation stands: no rollback and no new pointer's fallback may hand it out again.
    pub(crate) fn withdrawn_version(&self) -> Option<String> {
        self.read_rollout().withdrawn.map(|w| w.version)
    }

    /// The record, read bounded and leniently; empty when missing or damaged.
    pub fn read_rollout(&self) -> RolloutRecord {
        match fsutil::read_small(&self.rollout_path(), MAX_ROLLOUT_FILE_BYTES) {
            fsutil::SmallFile::Read(bytes) => RolloutRecord::parse(&bytes),
            _ => RolloutRecord::default(),
        }
    }

    fn write_rollout(&self, _: &StoreLock, record: &RolloutRecord) -> Result<()> {
        let mut bytes = json_line(record);
        if bytes.len() as u64 > MAX_ROLLOUT_FILE_BYTES {
            // Notes that would push the record past what is read back (a registry's version key
            // of kilobytes) are dropped: losing them costs a status line, losing the record
            // would redraw the bucket at every check.
            bytes = json_line(&RolloutRecord {
                bucket: record.bucket,
                ..RolloutRecord::default()
            });
        }
        fsutil::write_atomic(self.renamer(), &self.rollout_path(), &bytes)
    }

    /// This store's bucket: the recorded one, else one drawn now and recorded, so that it stays
    /// the same across calls, restarts and app updates.
    pub fn rollout_bucket(&self, lock: &StoreLock) -> Result<f64> {
        let mut record = self.read_rollout();
        if let Some(b) = record.bucket {
            return Ok(b);
        }
        let b = draw_bucket()?;
        record.bucket = Some(b);
        self.write_rollout(lock, &record)?;
        Ok(b)
    }

    /// Records what a check held back (`pending`, replacing the last check's) and, when it
    /// withdrew a version or saw a withdrawal lifted, `withdrawn`; the file is written only when
    /// something changed, so a check that changes nothing writes nothing.
    pub fn note_rollout(
        &self,
        lock: &StoreLock,
        pending: Option<PendingNote>,
        withdrawn: Option<Option<WithdrawnNote>>,
    ) -> Result<()> {
        let before = self.read_rollout();
        let mut after = RolloutRecord {
            pending,
            ..before.clone()
        };
        if let Some(w) = withdrawn {
            after.withdrawn = w;
        }
        if after == before {
            return Ok(());
        }
        self.write_rollout(lock, &after)
    }

    /// Moves the pointer off `version` when it still names it: to the newest staged version
    /// that is whole, not bad, not `deprecated` and newer than `bundled` (when known), else
    /// removes it so the app runs its bundled runtime. Nothing is marked bad and no folder is
    /// deleted, so lifting the deprecation makes `version` eligible again. `None` when the
    /// pointer no longer names `version` (another call moved it); else the version it names now.
    pub fn withdraw(
        &self,
        lock: &StoreLock,
        version: &str,
        deprecated: &dyn Fn(&str) -> bool,
        bundled: Option<&semver::Version>,
    ) -> Result<Option<Option<String>>> {
        if self.read_pointer().is_none_or(|p| p.version != version) {
            return Ok(None);
        }
        let mut staged: Vec<semver::Version> = std::fs::read_dir(self.versions_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| semver::Version::parse(e.file_name().to_str()?).ok())
            .collect();
        staged.sort_by(|a, b| version::compare(b, a));
        let target = staged
            .into_iter()
            .filter(|v| bundled.is_none_or(|b| version::compare(v, b).is_gt()))
            .map(|v| v.to_string())
            .find(|v| v != version && !deprecated(v) && !self.is_bad(v) && self.is_runnable(v));
        match &target {
            Some(t) => self.write_pointer(lock, t, None)?,
            None => self.remove_pointer(lock)?,
        }
        Ok(Some(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{stage_fake, temp_store};
    use crate::store::LockWait;

    fn locked<T>(store: &Store, f: impl FnOnce(&StoreLock) -> Result<T>) -> T {
        store.with_store_lock(&LockWait::Bounded, f).unwrap()
    }

    #[test]
    fn the_bucket_is_drawn_once_and_kept() {
        let (_tmp, store) = temp_store();
        assert_eq!(store.read_rollout().bucket, None);
        let b = locked(&store, |l| store.rollout_bucket(l));
        assert!(is_bucket(b));
        assert_eq!(store.read_rollout().bucket, Some(b));
        // Another handle on the same folder (another process, the next app version) reads it.
        let again = Store::new(store.root().parent().unwrap());
        assert_eq!(locked(&again, |l| again.rollout_bucket(l)), b);
    }

    #[test]
    fn a_damaged_or_missing_record_gets_a_new_bucket() {
        let (_tmp, store) = temp_store();
        std::fs::create_dir_all(store.root()).unwrap();
        for damaged in [
            &b"{\"bucket\": 1.0}"[..],
            b"{\"bucket\": -0.1}",
            b"{\"bucket\": \"0.5\"}",
            b"{\"bucket\": 0.2",
            b"[0.2]",
            b"",
        ] {
            std::fs::write(store.rollout_path(), damaged).unwrap();
            assert_eq!(store.read_rollout().bucket, None);
            let b = locked(&store, |l| store.rollout_bucket(l));
            assert!(is_bucket(b), "{b}");
            assert_eq!(store.read_rollout().bucket, Some(b));
        }
        // Oversized: not read, and replaced.
        let big = format!("{{\"bucket\": 0.25, \"x\": \"{}\"}}", "x".repeat(20_000));
        std::fs::write(store.rollout_path(), big).unwrap();
        assert_eq!(store.read_rollout(), RolloutRecord::default());
        std::fs::remove_file(store.rollout_path()).unwrap();
        let b = locked(&store, |l| store.rollout_bucket(l));
        assert!(is_bucket(b));
    }

    #[test]
    fn a_damaged_note_is_dropped_without_the_bucket() {
        let (_tmp, store) = temp_store();
        std::fs::create_dir_all(store.root()).unwrap();
        std::fs::write(
            store.rollout_path(),
            r#"{"bucket":0.25,"pending":{"version":2},"withdrawn":{"version":"2.0.0","reason":"r","pointer":null}}"#,
        )
        .unwrap();
        let r = store.read_rollout();
        assert_eq!(r.bucket, Some(0.25));
        assert_eq!(r.pending, None);
        assert_eq!(r.withdrawn.unwrap().pointer, None);
    }

    #[test]
    fn notes_are_written_only_when_they_change() {
        let (_tmp, store) = temp_store();
        let pending = PendingNote {
            version: "2.0.0".into(),
            eligible_at: "2026-01-01T00:00:00.000Z".into(),
        };
        locked(&store, |l| store.note_rollout(l, None, None));
        assert!(!store.rollout_path().exists());
        locked(&store, |l| {
            store.note_rollout(l, Some(pending.clone()), None)
        });
        // The same record spelled otherwise: an unchanged note leaves the bytes as they are.
        let spelled = format!(
            "{{ \"pending\": {} }}\n",
            serde_json::to_string(&pending).unwrap()
        );
        std::fs::write(store.rollout_path(), &spelled).unwrap();
        locked(&store, |l| {
            store.note_rollout(l, Some(pending.clone()), None)
        });
        assert_eq!(
            std::fs::read_to_string(store.rollout_path()).unwrap(),
            spelled
        );
        let withdrawn = WithdrawnNote {
            version: "2.1.0".into(),
            reason: "broken".into(),
            pointer: Some("2.0.0".into()),
        };
        locked(&store, |l| {
            store.note_rollout(l, None, Some(Some(withdrawn.clone())))
        });
        let r = store.read_rollout();
        assert_eq!((r.pending, r.withdrawn), (None, Some(withdrawn)));
        // A later check that says nothing of the withdrawal keeps it; a lifted one clears it.
        locked(&store, |l| store.note_rollout(l, None, None));
        assert!(store.read_rollout().withdrawn.is_some());
        locked(&store, |l| store.note_rollout(l, None, Some(None)));
        assert_eq!(store.read_rollout().withdrawn, None);
    }

    #[test]
    fn buckets_are_uniform() {
        // 4,000 draws in 10 bins: each bin's count is within 5 standard deviations of 400.
        let mut bins = [0u32; 10];
        for _ in 0..4_000 {
            let b = draw_bucket().unwrap();
            assert!(is_bucket(b));
            // Written and read back, exactly the same number: the store's bucket never drifts.
            let text = String::from_utf8(json_line(&RolloutRecord {
                bucket: Some(b),
                ..Default::default()
            }))
            .unwrap();
            assert_eq!(
                RolloutRecord::parse(text.as_bytes()).bucket,
                Some(b),
                "{text}"
            );
            bins[(b * 10.0) as usize] += 1;
        }
        for (i, n) in bins.iter().enumerate() {
            assert!((305..=495).contains(n), "bin {i}: {n} of 4000 ({bins:?})");
        }
    }

    #[test]
    fn notes_too_large_to_read_back_are_dropped_and_the_bucket_kept() {
        let (_tmp, store) = temp_store();
        let bucket = locked(&store, |l| store.rollout_bucket(l));
        let huge = PendingNote {
            version: format!("2.0.0+{}", "x".repeat(20_000)),
            eligible_at: "2026-12-08T00:00:00.000Z".into(),
        };
        locked(&store, |l| store.note_rollout(l, Some(huge), None));
        let r = store.read_rollout();
        assert_eq!((r.bucket, r.pending), (Some(bucket), None));
        assert!(std::fs::metadata(store.rollout_path()).unwrap().len() <= MAX_ROLLOUT_FILE_BYTES);
    }

    #[test]
    fn a_withdrawal_moves_to_the_newest_good_version_never_below_the_bundled_one() {
        let (_tmp, store) = temp_store();
        for v in ["1.0.0", "1.5.0", "1.8.0", "2.0.0"] {
            stage_fake(&store, v);
        }
        let point = |v: &str| locked(&store, |l| store.write_pointer(l, v, None));
        let v = |s: &str| semver::Version::parse(s).unwrap();
        locked(&store, |l| store.add_bad(l, "1.8.0"));
        point("2.0.0");
        // 1.8.0 is bad: 1.5.0; nothing is marked bad or removed.
        let dep = |x: &str| x == "2.0.0";
        assert_eq!(
            locked(&store, |l| store.withdraw(l, "2.0.0", &dep, None)),
            Some(Some("1.5.0".into()))
        );
        assert_eq!(store.read_pointer().unwrap().version, "1.5.0");
        assert!(!store.is_bad("2.0.0"));
        assert!(store.is_runnable("2.0.0"));
        // The pointer no longer names it: nothing to do.
        assert_eq!(
            locked(&store, |l| store.withdraw(l, "2.0.0", &dep, None)),
            None
        );
        // 1.5.0 deprecated too, and 1.0.0 not newer than the bundled 1.0.0: the bundled runtime.
        let dep = |x: &str| x == "2.0.0" || x == "1.5.0";
        point("2.0.0");
        assert_eq!(
            locked(&store, |l| store.withdraw(
                l,
                "2.0.0",
                &dep,
                Some(&v("1.0.0"))
            )),
            Some(None)
        );
        assert!(store.read_pointer_file().is_none());
        assert!(store.is_runnable("2.0.0") && store.is_runnable("1.0.0"));
        // Without a bundled version, 1.0.0 would do.
        point("2.0.0");
        assert_eq!(
            locked(&store, |l| store.withdraw(l, "2.0.0", &dep, None)),
            Some(Some("1.0.0".into()))
        );
    }
}
