//! Entries of the wrong type at the names the store owns: a regular file named `versions` or
//! `staging`, a folder named `current.json` or `launches.json`, a FIFO or a link where a lock file
//! belongs. Each would fail every check or every launch for good, so `cleanupPartials` and every
//! staging run move it aside, to `<name>.misplaced-<pid>-<n>` beside it in the store: renamed,
//! never followed (a link moves as itself) and never deleted, so whatever it held is still there
//! for a person to look at (`status` and `doctor` list it). Each is moved under the lock its
//! writers take, so no writer sees its name change under it.

use super::layout::is_temp_name;
use super::layout::EntryKind;
use super::layout::OwnedName;
use super::layout::Store;
use super::layout::LOCK_FILE;
use super::layout::OWNED_NAMES;
use super::layout::STORE_LOCK_FILE;
use super::locks::LockWait;
use super::locks::StagingLock;
use crate::shared::error::Op;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil;
use crate::shared::log::Level;
use crate::shared::log::LogEntry;
use std::fs;
use std::io;
use std::path::PathBuf;

/// In the name an entry is moved aside to: `<name>.misplaced-<pid>-<n>`.
pub(super) const MISPLACED_MARK: &str = ".misplaced-";

/// What sits at a name, as lstat sees it: a link is itself, never its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    File,
    Folder,
    Link,
    Fifo,
    Socket,
    Device,
    Other,
}

impl Found {
    pub(super) fn of(m: &fs::Metadata) -> Found {
        let t = m.file_type();
        if t.is_symlink() {
            return Found::Link;
        }
        if t.is_dir() {
            return Found::Folder;
        }
        if t.is_file() {
            return Found::File;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if t.is_fifo() {
                return Found::Fifo;
            }
            if t.is_socket() {
                return Found::Socket;
            }
            if t.is_block_device() || t.is_char_device() {
                return Found::Device;
            }
        }
        Found::Other
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Found::File => "file",
            Found::Folder => "folder",
            Found::Link => "link",
            Found::Fifo => "fifo",
            Found::Socket => "socket",
            Found::Device => "device",
            Found::Other => "other",
        }
    }

    pub(super) fn words(self) -> &'static str {
        match self {
            Found::File => "a regular file",
            Found::Folder => "a folder",
            Found::Link => "a symbolic link",
            Found::Fifo => "a FIFO",
            Found::Socket => "a socket",
            Found::Device => "a device",
            Found::Other => "not a regular file",
        }
    }

    fn fits(self, kind: EntryKind) -> bool {
        matches!(
            (self, kind),
            (Found::File, EntryKind::File) | (Found::Folder, EntryKind::Folder)
        )
    }
}

/// An entry of the wrong type at one of the store's own names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misplaced {
    pub name: &'static str,
    pub found: Found,
    pub expected: EntryKind,
}

/// An entry moved aside: the name it had, what it was, and the name it has now in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    pub name: &'static str,
    pub found: Found,
    pub expected: EntryKind,
    pub to: String,
}

impl MovedAside {
    /// The warning an `onLog` gets for it.
    pub fn log_entry(&self) -> LogEntry {
        LogEntry {
            level: Level::Warn,
            message: format!(
                "{} was {} where the store keeps a {}: moved aside to {} (not deleted)",
                self.name,
                self.found.words(),
                self.expected.as_str(),
                crate::shared::text::clip(&self.to)
            ),
            fields: vec![
                ("name", self.name.into()),
                ("found", self.found.as_str().into()),
                ("movedTo", (&self.to).into()),
            ],
        }
    }
}

impl Store {
    /// The store's own names (directly in it) that hold an entry of the wrong type.
    pub fn misplaced(&self) -> Vec<Misplaced> {
        OWNED_NAMES
            .iter()
            .filter(|o| o.is_top())
            .filter_map(|o| self.misplaced_at(o))
            .collect()
    }

    fn misplaced_at(&self, owned: &OwnedName) -> Option<Misplaced> {
        let m = fs::symlink_metadata(self.root.join(owned.path)).ok()?;
        let found = Found::of(&m);
        (!found.fits(owned.kind)).then_some(Misplaced {
            name: owned.path,
            found,
            expected: owned.kind,
        })
    }

    fn misplaced_named(&self, name: &str) -> Option<Misplaced> {
        OWNED_NAMES
            .iter()
            .find(|o| o.path == name)
            .and_then(|o| self.misplaced_at(o))
    }

    /// The names entries were moved aside to, sorted: kept until a person deletes them.
    pub fn moved_aside(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                OWNED_NAMES
                    .iter()
                    .filter(|o| o.is_top())
                    .any(|o| n.starts_with(&format!("{}{MISPLACED_MARK}", o.path)))
            })
            .collect();
        names.sort();
        names
    }

    /// A name beside `name` that nothing has: the pid and a counter make it unique among
    /// processes alive at once, and a name left by an earlier process with the same pid is
    /// skipped, since a rename onto it would replace what it holds.
    fn aside_path(&self, name: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = self
                .root
                .join(format!("{name}{MISPLACED_MARK}{}-{n}", std::process::id()));
            if fs::symlink_metadata(&path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
                return path;
            }
        }
    }

    /// Moves `name` aside when it still holds an entry of the wrong type: checked again here,
    /// under the caller's lock, since another process may have moved it meanwhile. Renamed once,
    /// as everything under the store lock is: what cannot move now is moved by a later call.
    fn move_aside(&self, name: &str) -> Result<Option<MovedAside>> {
        let Some(m) = self.misplaced_named(name) else {
            return Ok(None);
        };
        let from = self.root.join(m.name);
        let to = self.aside_path(m.name);
        match self.renamer().rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StageError::io(Op::MovingAside, &from, e)),
        }
        fsutil::sync_dir(&self.root)?;
        Ok(Some(MovedAside {
            name: m.name,
            found: m.found,
            expected: m.expected,
            to: to
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        }))
    }

    /// Moves aside an entry of the wrong type at the staging lock's name, which would keep that
    /// lock from ever being taken. Under the store lock, which every mover of it holds, so two
    /// never race over the name. When the store lock's name holds one too, neither lock can be
    /// held by any process (`open_lock` takes a regular file only), so both are moved with no
    /// lock: only two such movers could race, over a window of microseconds.
    pub fn heal_staging_lock(&self, wait: &LockWait<'_>) -> Result<Vec<MovedAside>> {
        if self.misplaced_named(LOCK_FILE).is_none() {
            return Ok(Vec::new());
        }
        if self.misplaced_named(STORE_LOCK_FILE).is_some() {
            let mut moved = Vec::new();
            moved.extend(self.move_aside(STORE_LOCK_FILE)?);
            moved.extend(self.move_aside(LOCK_FILE)?);
            return Ok(moved);
        }
        self.with_store_lock(wait, |_| {
            Ok(self.move_aside(LOCK_FILE)?.into_iter().collect())
        })
    }

    /// Moves aside every other entry of the wrong type, and sweeps the temp files crashed writers
    /// left. With the staging lock held (`staging`): the store lock's name first (every mover of
    /// it holds the staging lock), then, under the store lock, the files its holders write and,
    /// since no staging run is in flight, `versions` and `staging`. Without it, only those files,
    /// and nothing while the store lock's own name is wrong: the run in flight moves it. The
    /// store lock is taken only when there is something to do, and for temp files alone only
    /// when it is free at once: they harm nothing while they wait for the next call.
    pub fn heal_locked(
        &self,
        staging: Option<&StagingLock>,
        wait: &LockWait<'_>,
    ) -> Result<Vec<MovedAside>> {
        let mut moved = Vec::new();
        if staging.is_some() {
            moved.extend(self.move_aside(STORE_LOCK_FILE)?);
        } else if self.misplaced_named(STORE_LOCK_FILE).is_some() {
            return Ok(moved);
        }
        let todo: Vec<Misplaced> = self
            .misplaced()
            .into_iter()
            .filter(|m| m.name != LOCK_FILE && m.name != STORE_LOCK_FILE)
            .filter(|m| staging.is_some() || m.expected == EntryKind::File)
            .collect();
        let wait = match (todo.is_empty(), self.has_temp_files()) {
            (true, false) => return Ok(moved),
            (true, true) => &LockWait::Now,
            (false, _) => wait,
        };
        let healed = self.with_store_lock(wait, |lock| {
            let mut healed = Vec::new();
            for m in &todo {
                healed.extend(self.move_aside(m.name)?);
            }
            self.sweep_temp_files(lock);
            Ok(healed)
        });
        match healed {
            Ok(healed) => moved.extend(healed),
            Err(StageError::Locked { .. }) if todo.is_empty() => {}
            Err(e) => return Err(e),
        }
        Ok(moved)
    }

    /// Whether the store holds a temp file of a writer (see `sweep_temp_files`).
    fn has_temp_files(&self) -> bool {
        fs::read_dir(&self.root).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| is_temp_name(&e.file_name().to_string_lossy()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::stage_fake;
    use crate::store::StoreLock;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        fs::create_dir_all(store.root()).unwrap();
        (tmp, store)
    }

    /// Puts an entry of the wrong type at `name`, holding `marker` so that it can be found again.
    fn misplace(store: &Store, owned: &OwnedName, marker: &str) {
        let path = store.root().join(owned.path);
        fsutil::remove_tree(&path).unwrap();
        match owned.kind {
            EntryKind::File => {
                fs::create_dir(&path).unwrap();
                fs::write(path.join("kept.txt"), marker).unwrap();
            }
            EntryKind::Folder => fs::write(&path, marker).unwrap(),
        }
    }

    /// What was moved aside from `name`, read back: the folder's file or the file itself.
    fn contents_aside(store: &Store, moved: &MovedAside) -> String {
        let path = store.root().join(&moved.to);
        let file = if path.is_dir() {
            path.join("kept.txt")
        } else {
            path
        };
        fs::read_to_string(file).unwrap()
    }

    #[test]
    fn an_entry_of_the_wrong_type_at_any_store_name_is_moved_aside_and_kept() {
        for owned in OWNED_NAMES.iter().filter(|o| o.is_top()) {
            let (_tmp, store) = temp_store();
            misplace(&store, owned, owned.path);
            assert_eq!(
                store.misplaced(),
                [Misplaced {
                    name: owned.path,
                    found: if owned.kind == EntryKind::File {
                        Found::Folder
                    } else {
                        Found::File
                    },
                    expected: owned.kind,
                }]
            );
            let moved = store.cleanup_partials().unwrap().moved;
            assert_eq!(moved.len(), 1, "{}", owned.path);
            assert_eq!(moved[0].name, owned.path);
            assert!(moved[0]
                .to
                .starts_with(&format!("{}{MISPLACED_MARK}", owned.path)));
            assert_eq!(contents_aside(&store, &moved[0]), owned.path);
            assert_eq!(store.misplaced(), []);
            assert_eq!(store.moved_aside(), [moved[0].to.clone()]);
            // Once moved, the store works at that name again.
            store.staging_lock_file().unwrap();
            store.with_store_lock(&LockWait::Now, |_| Ok(())).unwrap();
            assert!(store.cleanup_partials().unwrap().moved.is_empty());
        }
    }

    #[test]
    fn a_second_entry_at_the_same_name_never_replaces_the_first_moved_aside() {
        let (_tmp, store) = temp_store();
        let pointer = OWNED_NAMES
            .iter()
            .find(|o| o.path == "current.json")
            .unwrap();
        misplace(&store, pointer, "one");
        let first = store.cleanup_partials().unwrap().moved.remove(0);
        misplace(&store, pointer, "two");
        let second = store.cleanup_partials().unwrap().moved.remove(0);
        assert_ne!(first.to, second.to);
        assert_eq!(contents_aside(&store, &first), "one");
        assert_eq!(contents_aside(&store, &second), "two");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_moved_as_itself_and_what_it_names_is_untouched() {
        let (tmp, store) = temp_store();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("2.0.0.partial")).unwrap();
        fs::write(outside.join("2.0.0.partial/x"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, store.staging_dir()).unwrap();
        std::os::unix::fs::symlink(&outside, store.versions_dir()).unwrap();
        let moved = store.cleanup_partials().unwrap().moved;
        let names: Vec<&str> = moved.iter().map(|m| m.name).collect();
        assert_eq!(names, ["versions", "staging"]);
        assert!(moved.iter().all(|m| m.found == Found::Link));
        assert_eq!(
            fs::read_to_string(outside.join("2.0.0.partial/x")).unwrap(),
            "x"
        );
        for m in &moved {
            assert!(fs::symlink_metadata(store.root().join(&m.to))
                .unwrap()
                .file_type()
                .is_symlink());
        }
    }

    #[cfg(unix)]
    #[test]
    fn fifos_at_both_lock_names_are_moved_aside() {
        let (_tmp, store) = temp_store();
        for name in [LOCK_FILE, STORE_LOCK_FILE] {
            crate::store::tests::mkfifo(&store.root().join(name));
        }
        // Neither lock can be taken over a FIFO, nor is one reported held.
        assert_eq!(store.staging_lock_file().err().unwrap().code(), "EIO");
        assert!(!store.is_locked().unwrap());
        let moved = store.cleanup_partials().unwrap().moved;
        let names: Vec<&str> = moved.iter().map(|m| m.name).collect();
        assert_eq!(names, [STORE_LOCK_FILE, LOCK_FILE]);
        assert!(moved.iter().all(|m| m.found == Found::Fifo));
        let mut file = store.staging_lock_file().unwrap();
        assert!(file.try_lock().unwrap().is_some());
    }

    #[test]
    fn with_a_run_in_flight_only_the_store_lock_files_are_moved() {
        let (_tmp, store) = temp_store();
        for name in ["versions", "current.json"] {
            let owned = OWNED_NAMES.iter().find(|o| o.path == name).unwrap();
            misplace(&store, owned, name);
        }
        let mut file = store.staging_lock_file().unwrap();
        let _held = file.try_lock().unwrap().unwrap();
        // Another opener of the lock file, as another process's would be.
        let moved = Store::new(store.root().parent().unwrap())
            .cleanup_partials()
            .unwrap()
            .moved;
        let names: Vec<&str> = moved.iter().map(|m| m.name).collect();
        assert_eq!(names, ["current.json"]);
        assert_eq!(store.misplaced().len(), 1);
    }

    #[test]
    fn crashed_writers_temp_files_are_swept_by_cleanup_partials() {
        let (_tmp, store) = temp_store();
        stage_fake(&store, "1.0.0");
        let crashed = [".launches.json.tmp-4194999", ".current.json.tmp-1"];
        for name in crashed {
            fs::write(store.root().join(name), "torn").unwrap();
        }
        // Written with no lock: a fresh one may be a live writer's.
        let cache_tmp = format!(".{}.tmp-1-0", crate::store::CACHE_FILE);
        fs::write(store.root().join(&cache_tmp), "in flight").unwrap();
        assert!(store.cleanup_partials().unwrap().moved.is_empty());
        for name in crashed {
            assert!(!store.root().join(name).exists(), "{name}");
        }
        assert!(store.root().join(&cache_tmp).exists());
        assert!(store.is_whole("1.0.0"));
    }

    #[test]
    fn temp_files_alone_never_wait_for_the_store_lock() {
        let (_tmp, store) = temp_store();
        fs::write(store.root().join(".launches.json.tmp-1"), "torn").unwrap();
        let other = Store::new(store.root().parent().unwrap());
        store
            .with_store_lock(&LockWait::Now, |_: &StoreLock| {
                let started = std::time::Instant::now();
                assert!(other.cleanup_partials().unwrap().moved.is_empty());
                assert!(started.elapsed() < std::time::Duration::from_secs(1));
                Ok(())
            })
            .unwrap();
        assert!(store.root().join(".launches.json.tmp-1").exists());
    }

    #[test]
    fn the_warning_names_the_entry_and_where_it_went() {
        let moved = MovedAside {
            name: "current.json",
            found: Found::Folder,
            expected: EntryKind::File,
            to: "current.json.misplaced-7-0".into(),
        };
        let e = moved.log_entry();
        assert_eq!(e.level, Level::Warn);
        assert_eq!(
            e.message,
            "current.json was a folder where the store keeps a file: moved aside to \
             current.json.misplaced-7-0 (not deleted)"
        );
    }
}
