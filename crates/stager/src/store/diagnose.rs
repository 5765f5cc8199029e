//! What a healthy store looks like, and what to do about each way a store is not: the findings
//! `doctor` prints and `diagnoseStore` returns. Every store file is read here exactly as the
//! store reads it (capped, regular files only), so a finding never disagrees with what the store
//! itself makes of a file.

use super::heal::Found;
use super::launches::parse_record;
use super::launches::MAX_LAUNCH_FILE_BYTES;
use super::layout::Store;
use super::layout::BAD_FILE;
use super::layout::CACHE_FILE;
use super::layout::INCOMPATIBLE_FILE;
use super::layout::LAUNCH_FILE;
use super::layout::LOCK_FILE;
use super::layout::POINTER_FILE;
use super::layout::STAGING_DIR;
use super::layout::STORE_LOCK_FILE;
use super::layout::VERSIONS_DIR;
use super::lists::salvage_versions;
use super::lists::MAX_BAD_LIST_BYTES;
use super::pointer::MAX_POINTER_BYTES;
use super::status::StoreStatus;
use crate::shared::error::Result;
use crate::shared::fsutil;
use std::fs;
use std::path::Path;

/// A way the store is not healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// `current.json` is not a regular file of at most its cap, or cannot be read.
    PointerRefused,
    /// `current.json` does not parse, or names a folder outside this store.
    PointerInvalid,
    /// The pointer names a version marked bad and has no good fallback.
    PointerBad,
    /// The pointed version's folder is not whole.
    PointedDamaged,
    /// A staged version's folder is not whole.
    VersionDamaged,
    /// A staging run holds the store lock.
    Locked,
    /// Leftovers of interrupted runs.
    Partials,
    /// `bad-versions.json` is not a regular file of at most its cap, or cannot be read.
    BadListRefused,
    /// `bad-versions.json` does not parse as a list.
    BadListUnreadable,
    /// `launches.json` is not a regular file of at most its cap, or cannot be read.
    LaunchRecordRefused,
    /// `launches.json` does not parse as a launch record.
    LaunchRecordUnreadable,
    /// An entry of the wrong type at another of the store's names.
    Misplaced,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::PointerRefused => "pointer-refused",
            ProblemKind::PointerInvalid => "pointer-invalid",
            ProblemKind::PointerBad => "pointer-bad",
            ProblemKind::PointedDamaged => "pointed-damaged",
            ProblemKind::VersionDamaged => "version-damaged",
            ProblemKind::Locked => "locked",
            ProblemKind::Partials => "partials",
            ProblemKind::BadListRefused => "bad-list-refused",
            ProblemKind::BadListUnreadable => "bad-list-unreadable",
            ProblemKind::LaunchRecordRefused => "launch-record-refused",
            ProblemKind::LaunchRecordUnreadable => "launch-record-unreadable",
            ProblemKind::Misplaced => "misplaced",
        }
    }
}

/// What is worth knowing about a store but needs no action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// The pointed version was launched and never confirmed healthy: it is still on trial.
    UnconfirmedLaunches,
    /// An entry of the wrong type was moved aside from a store name, and is kept.
    MovedAside,
}

impl NoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::UnconfirmedLaunches => "unconfirmed-launches",
            NoteKind::MovedAside => "moved-aside",
        }
    }
}

/// A problem, in words, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub problem: String,
    pub fix: String,
}

/// A note, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    pub note: String,
}

/// The store's problems (none: it is healthy) and notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub problems: Vec<Problem>,
    pub notes: Vec<Note>,
}

/// Why one of the store's small files was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    WrongType(Found),
    TooLarge { bytes: u64, cap: u64 },
    Unreadable(String),
}

impl Refusal {
    fn words(&self) -> String {
        match self {
            Refusal::WrongType(Found::Other) => "is not a regular file".into(),
            Refusal::WrongType(found) => format!("is {}, not a regular file", found.words()),
            Refusal::TooLarge { bytes, cap } => {
                format!("is larger than {} ({bytes} bytes)", size_words(*cap))
            }
            Refusal::Unreadable(why) => format!("cannot be read ({why})"),
        }
    }

    /// The fix: an entry of the wrong type is moved aside by the store; anything else `fix`.
    fn fix(&self, name: &str, fix: &str) -> String {
        match self {
            Refusal::WrongType(_) => move_aside_fix(name),
            _ => fix.into(),
        }
    }
}

/// One of the store's small files, as the store reads it.
enum Inspected {
    Missing,
    Read(Vec<u8>),
    Refused(Refusal),
}

/// A cap in words: 16 KiB, 1 MiB.
fn size_words(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// The fix for an entry of the wrong type at a store name: a staging run moves it aside.
fn move_aside_fix(name: &str) -> String {
    format!(
        "run stage (or start the app: its cleanupPartials does it): it moves {name} aside to \
         {name}.misplaced-<pid>-<n> in the store, never deleting it"
    )
}

/// What an entry of the wrong type at `name` stops, for the names no file check reports.
fn misplaced_effect(name: &str) -> &'static str {
    match name {
        VERSIONS_DIR | STAGING_DIR | LOCK_FILE => "no update can be staged",
        STORE_LOCK_FILE => {
            "nothing can change the store: no update, no launch recorded, no version marked bad"
        }
        INCOMPATIBLE_FILE => "a release this app cannot run is downloaded again by every check",
        CACHE_FILE => "every check downloads the whole package document",
        _ => "the store cannot use it",
    }
}

const POINTER_FIX: &str =
    "the app runs its bundled runtime; the next stage run writes a new pointer (or delete current.json)";
const BAD_LIST_FIX: &str = "delete it; the app marks a failing version again";
const LAUNCH_RECORD_FIX: &str =
    "delete it; the app counts launches afresh (the pointed version gets its trial launches again)";

/// Why `read_small` refused `path`: looked at again only to say so; nothing is read.
fn explain(path: &Path, cap: u64) -> Refusal {
    match fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() => Refusal::WrongType(Found::of(&m)),
        Ok(m) if m.len() > cap => Refusal::TooLarge {
            bytes: m.len(),
            cap,
        },
        Ok(_) => {
            let mut options = fs::OpenOptions::new();
            options.read(true);
            // As `read_small` opens: never through a link, never waiting on a FIFO.
            fsutil::no_follow_no_wait(&mut options);
            match options.open(path) {
                Err(e) => Refusal::Unreadable(e.to_string()),
                Ok(_) => Refusal::Unreadable("it changed while it was read".into()),
            }
        }
        Err(e) => Refusal::Unreadable(e.to_string()),
    }
}

impl Store {
    fn inspect(&self, name: &str, cap: u64) -> Inspected {
        let path = self.root.join(name);
        match fsutil::read_small(&path, cap) {
            fsutil::SmallFile::Missing => Inspected::Missing,
            fsutil::SmallFile::Read(bytes) => Inspected::Read(bytes),
            fsutil::SmallFile::Refused => Inspected::Refused(explain(&path, cap)),
        }
    }

    /// What is wrong with the store, each with what to do about it, and what is worth knowing.
    /// No problem: the store is healthy.
    pub fn diagnose(&self) -> Result<Diagnosis> {
        let st = self.status()?;
        let mut problems = Vec::new();
        problems.extend(self.pointer_problem(&st));
        problems.extend(st.versions.iter().filter(|v| !v.whole).map(|v| Problem {
            kind: ProblemKind::VersionDamaged,
            problem: format!("{VERSIONS_DIR}/{} is damaged (not whole)", v.version),
            fix: "run prune, or stage to replace it".into(),
        }));
        problems.extend(lock_problem(&st));
        problems.extend(self.bad_list_problem());
        problems.extend(self.launch_record_problem());
        problems.extend(misplaced_problems(&st));
        Ok(Diagnosis {
            problems,
            notes: notes(&st),
        })
    }

    /// What is wrong with `current.json`, where there is one.
    fn pointer_problem(&self, st: &StoreStatus) -> Option<Problem> {
        let bytes = match self.inspect(POINTER_FILE, MAX_POINTER_BYTES) {
            Inspected::Missing => return None,
            Inspected::Refused(r) => {
                return Some(Problem {
                    kind: ProblemKind::PointerRefused,
                    problem: format!("{POINTER_FILE} {}, so it is not read", r.words()),
                    fix: r.fix(POINTER_FILE, POINTER_FIX),
                })
            }
            Inspected::Read(bytes) => bytes,
        };
        match &st.pointer {
            None => {
                let named = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| Some(v.get("version")?.as_str()?.to_string()))
                    .filter(|v| st.bad.contains(v));
                let (kind, problem) = match named {
                    Some(v) => (
                        ProblemKind::PointerBad,
                        format!(
                            "the pointer names {v}, which is marked bad, and has no good fallback"
                        ),
                    ),
                    None => (
                        ProblemKind::PointerInvalid,
                        format!(
                            "{POINTER_FILE} is unreadable or names a folder outside this store"
                        ),
                    ),
                };
                Some(Problem {
                    kind,
                    problem,
                    fix: POINTER_FIX.into(),
                })
            }
            Some(p) if st.runnable.is_none() => Some(Problem {
                kind: ProblemKind::PointedDamaged,
                problem: format!("the pointed version {} is not whole", p.version),
                fix: "run stage: it stages that version again".into(),
            }),
            Some(_) => None,
        }
    }

    /// A bad list the store cannot read whole forgets versions marked bad.
    fn bad_list_problem(&self) -> Option<Problem> {
        let bytes = match self.inspect(BAD_FILE, MAX_BAD_LIST_BYTES) {
            Inspected::Missing => return None,
            Inspected::Refused(r) => {
                return Some(Problem {
                    kind: ProblemKind::BadListRefused,
                    problem: format!("{BAD_FILE} {}, so no version counts as bad", r.words()),
                    fix: r.fix(BAD_FILE, BAD_LIST_FIX),
                })
            }
            Inspected::Read(bytes) => bytes,
        };
        if serde_json::from_slice::<Vec<serde_json::Value>>(&bytes).is_ok() {
            return None;
        }
        // The store still salvages every version quoted in a list that does not parse.
        let salvaged = salvage_versions(&bytes);
        Some(if salvaged.is_empty() {
            Problem {
                kind: ProblemKind::BadListUnreadable,
                problem: format!("{BAD_FILE} is unreadable, so no version counts as bad"),
                fix: BAD_LIST_FIX.into(),
            }
        } else {
            Problem {
                kind: ProblemKind::BadListUnreadable,
                problem: format!(
                    "{BAD_FILE} does not parse, so only the versions quoted in it count as bad: {}",
                    salvaged.join(", ")
                ),
                fix: "mark a version bad (mark-bad): the list is written again whole, keeping \
                      every version quoted in it"
                    .into(),
            }
        })
    }

    /// A launch record the store cannot read counts as empty: trial launches and confirmations
    /// are lost.
    fn launch_record_problem(&self) -> Option<Problem> {
        let bytes = match self.inspect(LAUNCH_FILE, MAX_LAUNCH_FILE_BYTES) {
            Inspected::Missing => return None,
            Inspected::Refused(r) => {
                return Some(Problem {
                    kind: ProblemKind::LaunchRecordRefused,
                    problem: format!(
                        "{LAUNCH_FILE} {}, so no launch is counted or confirmed",
                        r.words()
                    ),
                    fix: r.fix(LAUNCH_FILE, LAUNCH_RECORD_FIX),
                })
            }
            Inspected::Read(bytes) => bytes,
        };
        parse_record(&bytes).is_none().then(|| Problem {
            kind: ProblemKind::LaunchRecordUnreadable,
            problem: format!("{LAUNCH_FILE} is unreadable, so no launch is counted or confirmed"),
            fix: LAUNCH_RECORD_FIX.into(),
        })
    }
}

/// A held lock, else leftovers of interrupted runs (which a held lock may still be writing).
fn lock_problem(st: &StoreStatus) -> Option<Problem> {
    if st.locked {
        return Some(Problem {
            kind: ProblemKind::Locked,
            problem: "a staging run holds the store lock".into(),
            fix: "wait for it to finish; an OS lock is released when its process dies".into(),
        });
    }
    (!st.partials.is_empty()).then(|| Problem {
        kind: ProblemKind::Partials,
        problem: format!("leftovers of interrupted runs: {}", st.partials.join(", ")),
        fix: "run prune (the next stage run also removes them)".into(),
    })
}

/// Entries of the wrong type at the store's names, but the files the checks above read.
fn misplaced_problems(st: &StoreStatus) -> impl Iterator<Item = Problem> + '_ {
    st.misplaced
        .iter()
        .filter(|m| ![POINTER_FILE, BAD_FILE, LAUNCH_FILE].contains(&m.name))
        .map(|m| Problem {
            kind: ProblemKind::Misplaced,
            problem: format!(
                "{} is {} where the store keeps a {}, so {}",
                m.name,
                m.found.words(),
                m.expected.as_str(),
                misplaced_effect(m.name)
            ),
            fix: move_aside_fix(m.name),
        })
}

/// A pointed version still on trial, and what was moved aside from a store name (kept, never
/// deleted by the store).
fn notes(st: &StoreStatus) -> Vec<Note> {
    let trial = st
        .versions
        .iter()
        .find(|v| v.pointed && v.whole && !v.bad && !v.confirmed && v.attempts > 0)
        .map(|v| Note {
            kind: NoteKind::UnconfirmedLaunches,
            note: format!(
                "{} was launched {} time{} and never confirmed healthy: the app rolls it back by \
                 itself after its limit of unconfirmed launches",
                v.version,
                v.attempts,
                if v.attempts == 1 { "" } else { "s" }
            ),
        });
    let moved = st.moved_aside.iter().map(|name| Note {
        kind: NoteKind::MovedAside,
        note: format!(
            "{name} was moved aside from a name the store owns, where it had the wrong type: look \
             at it, then delete it"
        ),
    });
    trial.into_iter().chain(moved).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::locks::LockWait;
    use crate::store::tests::store_with;
    use crate::store::KeptBecause;

    fn kinds(store: &Store) -> Vec<ProblemKind> {
        let d = store.diagnose().unwrap();
        d.problems.iter().map(|p| p.kind).collect()
    }

    fn only_problem(store: &Store) -> Problem {
        let mut d = store.diagnose().unwrap();
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        d.problems.remove(0)
    }

    #[test]
    fn a_staged_and_pointed_store_is_healthy_and_so_is_an_empty_one() {
        let (_dir, store) = store_with(&["1.0.0"], "1.0.0");
        let d = store.diagnose().unwrap();
        assert_eq!((d.problems, d.notes), (vec![], vec![]));
        let empty = tempfile::tempdir().unwrap();
        let d = Store::new(empty.path()).diagnose().unwrap();
        assert_eq!((d.problems, d.notes), (vec![], vec![]));
    }

    #[test]
    fn a_pointer_that_does_not_parse_or_names_a_missing_folder() {
        let (_dir, store) = store_with(&["1.0.0"], "1.0.0");
        fs::write(store.pointer_path(), "{ not json").unwrap();
        let p = only_problem(&store);
        assert_eq!(p.kind, ProblemKind::PointerInvalid);
        assert_eq!(
            p.problem,
            "current.json is unreadable or names a folder outside this store"
        );
        store
            .with_store_lock(&LockWait::Bounded, |l| {
                store.write_pointer(l, "2.0.0", None)
            })
            .unwrap();
        let p = only_problem(&store);
        assert_eq!(p.kind, ProblemKind::PointedDamaged);
        assert_eq!(p.problem, "the pointed version 2.0.0 is not whole");
    }

    #[test]
    fn a_pointer_on_a_bad_version_without_a_good_fallback() {
        let (_dir, store) = store_with(&["1.0.0"], "1.0.0");
        fs::write(store.root().join(BAD_FILE), r#"["1.0.0"]"#).unwrap();
        let p = only_problem(&store);
        assert_eq!(p.kind, ProblemKind::PointerBad);
        assert_eq!(
            p.problem,
            "the pointer names 1.0.0, which is marked bad, and has no good fallback"
        );
    }

    #[test]
    fn store_files_of_the_wrong_type_or_over_their_cap_are_refused_with_why() {
        let (_dir, store) = store_with(&["1.0.0"], "1.0.0");
        fs::remove_file(store.pointer_path()).unwrap();
        fs::create_dir(store.pointer_path()).unwrap();
        let big = vec![b' '; MAX_LAUNCH_FILE_BYTES as usize + 1];
        fs::write(store.root().join(LAUNCH_FILE), &big).unwrap();
        let d = store.diagnose().unwrap();
        let words: Vec<(ProblemKind, &str)> = d
            .problems
            .iter()
            .map(|p| (p.kind, p.problem.as_str()))
            .collect();
        assert_eq!(
            words,
            [
                (
                    ProblemKind::PointerRefused,
                    "current.json is a folder, not a regular file, so it is not read"
                ),
                (
                    ProblemKind::LaunchRecordRefused,
                    "launches.json is larger than 64 KiB (65537 bytes), so no launch is counted \
                     or confirmed"
                ),
            ]
        );
        // A folder is moved aside by the store; an oversized file is the person's to delete.
        assert!(d.problems[0].fix.contains("moves current.json aside"));
        assert!(d.problems[1].fix.starts_with("delete it"));
    }

    #[test]
    fn a_misplaced_entry_says_what_it_stops_and_what_was_moved_aside_is_a_note() {
        let (_dir, store) = store_with(&["1.0.0"], "1.0.0");
        fs::remove_dir_all(store.staging_dir()).ok();
        fs::write(store.staging_dir(), "not a folder").unwrap();
        let p = only_problem(&store);
        assert_eq!(p.kind, ProblemKind::Misplaced);
        assert_eq!(
            p.problem,
            "staging is a regular file where the store keeps a folder, so no update can be staged"
        );
        store.cleanup_partials().unwrap();
        let d = store.diagnose().unwrap();
        assert_eq!(d.problems, []);
        assert_eq!(d.notes.len(), 1);
        assert_eq!(d.notes[0].kind, NoteKind::MovedAside);
        assert!(d.notes[0].note.starts_with("staging.misplaced-"));
    }

    #[test]
    fn launch_records_the_store_reads_as_empty_are_unreadable() {
        let (_dir, store) = store_with(&["1.0.0"], "1.0.0");
        let path = store.root().join(LAUNCH_FILE);
        for text in [
            "not json",
            "[]",
            r#"{"attempts":{"1.0.0":"two"}}"#,
            r#"{"confirmed":"1.0.0"}"#,
            r#"{"attempts":{"1.0.0":-1}}"#,
        ] {
            fs::write(&path, text).unwrap();
            assert_eq!(
                kinds(&store),
                [ProblemKind::LaunchRecordUnreadable],
                "{text}"
            );
            assert_eq!(store.launch_record(), Default::default(), "{text}");
        }
        fs::write(&path, r#"{"attempts":{"1.0.0":1},"confirmed":[]}"#).unwrap();
        let d = store.diagnose().unwrap();
        assert_eq!(d.problems, []);
        // Launched once, never confirmed: on trial, a note.
        assert_eq!(d.notes.len(), 1);
        assert_eq!(d.notes[0].kind, NoteKind::UnconfirmedLaunches);
        assert!(d.notes[0]
            .note
            .starts_with("1.0.0 was launched 1 time and never confirmed healthy"));
    }

    #[test]
    fn a_bad_list_that_does_not_parse_says_which_versions_still_count() {
        let (_dir, store) = store_with(&["1.0.0"], "1.0.0");
        let path = store.root().join(BAD_FILE);
        fs::write(&path, "not json").unwrap();
        assert_eq!(
            only_problem(&store).problem,
            "bad-versions.json is unreadable, so no version counts as bad"
        );
        fs::write(&path, r#"["0.9.0", "0.8.0""#).unwrap();
        assert_eq!(store.bad_versions(), ["0.9.0", "0.8.0"]);
        assert_eq!(
            only_problem(&store).problem,
            "bad-versions.json does not parse, so only the versions quoted in it count as bad: \
             0.9.0, 0.8.0"
        );
        fs::write(&path, vec![b' '; MAX_BAD_LIST_BYTES as usize + 1]).unwrap();
        assert_eq!(only_problem(&store).kind, ProblemKind::BadListRefused);
    }

    #[test]
    fn damaged_versions_partials_and_a_held_lock() {
        let (_dir, store) = store_with(&["1.0.0", "1.1.0"], "1.1.0");
        fs::remove_file(store.cli_entry("1.0.0")).unwrap();
        fs::create_dir_all(store.versions_dir().join("1.2.0.partial")).unwrap();
        assert_eq!(
            kinds(&store),
            [ProblemKind::VersionDamaged, ProblemKind::Partials]
        );
        let mut file = store.staging_lock_file().unwrap();
        let _held = file.try_lock().unwrap().unwrap();
        // A held lock may be writing the partials: it is named instead of them.
        assert_eq!(
            kinds(&store),
            [ProblemKind::VersionDamaged, ProblemKind::Locked]
        );
    }

    #[test]
    fn status_says_why_each_version_is_kept_as_pruning_decides() {
        let (_dir, store) = store_with(&["1.0.0", "1.1.0", "1.2.0", "1.3.0"], "1.3.0");
        // No `previous` in the pointer: pruning still keeps the newest other whole version.
        crate::store::launches::confirm(&store, &store.cli_entry("1.0.0").to_string_lossy())
            .unwrap();
        let running = semver::Version::parse("1.1.0").unwrap();
        let st = store.status_running(Some(&running)).unwrap();
        let kept: Vec<(&str, &[KeptBecause])> = st
            .versions
            .iter()
            .map(|v| (v.version.as_str(), v.kept_because.as_slice()))
            .collect();
        assert_eq!(
            kept,
            [
                ("1.0.0", &[KeptBecause::Confirmed][..]),
                ("1.1.0", &[KeptBecause::Running][..]),
                ("1.2.0", &[KeptBecause::Fallback][..]),
                ("1.3.0", &[KeptBecause::Pointed][..]),
            ]
        );
        assert!(!st.versions[2].fallback, "not the pointer's `previous`");
        // Without the running version, pruning removes exactly what status says is not kept.
        let st = store.status().unwrap();
        let unkept: Vec<&str> = st
            .versions
            .iter()
            .filter(|v| v.kept_because.is_empty())
            .map(|v| v.version.as_str())
            .collect();
        assert_eq!(unkept, ["1.1.0"]);
        assert_eq!(store.prune_now(None).unwrap().removed, ["1.1.0"]);
    }
}
