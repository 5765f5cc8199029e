//! The store's two locks: the staging lock, held by one staging run from its first store step to
//! its last, and the store lock, held for short critical sections only. Each is the OS's advisory
//! lock on a file, released by the OS when its holder dies.

use super::layout::Store;
use super::layout::LOCK_FILE;
use super::layout::STORE_LOCK_FILE;
use crate::shared::error::Op;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil;
use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::path::PathBuf;

/// How long a store function (`markBadVersion`, `writePointer`, ...) waits for the store lock.
/// The lock is held only for short sections, so a longer wait means a frozen holder: the function
/// then fails with `ELOCKED` instead of freezing the app's main process with it.
pub(super) const STORE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Between two tries of a held lock: short against sections that last milliseconds.
pub(super) const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(5);

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
            Err(e) => Err(StageError::io(Op::Locking, &self.path, e)),
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
    Call(&'a crate::shared::call::Control),
    /// No wait: `ELOCKED` at once when the lock is held.
    Now,
}

impl LockWait<'_> {
    /// `Err` once a wait that began at `started` must end.
    pub(super) fn check(&self, path: &Path, started: std::time::Instant) -> Result<()> {
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
                    phase: crate::shared::phase::Phase::WaitingForLock,
                    budget,
                    ms,
                },
                e => e,
            }),
        }
    }
}

impl Store {
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
                Err(e) => return Err(StageError::io(Op::Locking, &path, e)),
            }
            wait.check(&path, started)?;
            std::thread::sleep(LOCK_RETRY);
        }
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
    pub(crate) fn open_lock(&self, name: &str) -> Result<fd_lock::RwLock<File>> {
        fsutil::create_dir_all(&self.root)?;
        let path = self.root.join(name);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        // A link would lock (or create) a file elsewhere, and a FIFO is no file to lock: only a
        // regular file is the lock, so no process ever holds a lock on anything else there, and
        // such an entry is safe to move aside (see `heal`).
        fsutil::no_follow_no_wait(&mut options);
        let f = options
            .open(&path)
            .map_err(|e| StageError::io(Op::OpeningLock, &path, e))?;
        if !fsutil::is_regular(&f) {
            return Err(StageError::io(Op::OpeningLock, &path, not_a_lock_file()));
        }
        Ok(fd_lock::RwLock::new(f))
    }

    /// Whether another stager holds the lock right now (a staging run is changing the store).
    /// Opens the lock file for reading only, so that it answers on a read-only store too.
    /// Anything but a regular file there is a lock no process can hold (see `open_lock`).
    pub fn is_locked(&self) -> Result<bool> {
        let path = self.root.join(LOCK_FILE);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Ok(m) if !m.is_file() => return Ok(false),
            _ => {}
        }
        let mut options = OpenOptions::new();
        options.read(true);
        fsutil::no_follow_no_wait(&mut options);
        let file = match options.open(&path) {
            Ok(f) if fsutil::is_regular(&f) => f,
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StageError::io(Op::OpeningLock, &path, e)),
        };
        let mut lock = fd_lock::RwLock::new(file);
        let held = match lock.try_write() {
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => return Err(StageError::io(Op::Locking, &path, e)),
        };
        Ok(held)
    }
}

/// Why a lock file was refused.
fn not_a_lock_file() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "not a regular file; cleanupPartials or the next staging run moves it aside",
    )
}
