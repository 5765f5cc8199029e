//! File-system steps with the durability and error mapping the store relies on.

use super::error::{Op, Result, StageError};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) fn create_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| StageError::io(Op::Creating, path, e))
}

/// Flushes a folder's entries (new names, renames) to disk. Windows cannot open a folder as a
/// file and persists metadata with the rename itself, so there it is a no-op.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(path)
            .and_then(|d| d.sync_all())
            .map_err(|e| StageError::io(Op::FlushingFolder, path, e))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Flushes every folder of a tree, deepest first, so each new name is durable before the tree's
/// own rename makes it visible.
pub(crate) fn sync_tree_dirs(root: &Path) -> Result<()> {
    let entries = fs::read_dir(root).map_err(|e| StageError::io(Op::ReadingFolder, root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StageError::io(Op::ReadingFolder, root, e))?;
        let ft = entry
            .file_type()
            .map_err(|e| StageError::io(Op::Reading, &entry.path(), e))?;
        if ft.is_dir() {
            sync_tree_dirs(&entry.path())?;
        }
    }
    sync_dir(root)
}

/// How a rename is attempted; tests inject failures through it.
pub trait Renamer: Send + Sync {
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
}

pub(crate) struct OsRenamer;
impl Renamer for OsRenamer {
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
}

/// Renames, retrying on the errors Windows gives while an antivirus scanner or the search
/// indexer still holds a freshly written file (EPERM / EBUSY / EACCES); they clear in seconds.
pub(crate) fn rename_retrying(r: &dyn Renamer, from: &Path, to: &Path) -> Result<()> {
    // 8 tries with doubling waits from 50 ms: about 6 s in all, past what scanners usually take.
    const TRIES: u32 = 8;
    let mut wait = Duration::from_millis(50);
    for attempt in 1..=TRIES {
        match r.rename(from, to) {
            Ok(()) => return Ok(()),
            Err(e) if attempt < TRIES && is_held(&e) => {
                std::thread::sleep(wait);
                wait *= 2;
            }
            Err(e) => return Err(StageError::io(Op::Renaming, from, e)),
        }
    }
    unreachable!("the last attempt returns")
}

/// Whether `e` says another process holds the file or folder: what a scanner, the search indexer
/// or a running program causes on Windows, and what retries or a later sweep get past.
pub(crate) fn is_held(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::PermissionDenied {
        return true;
    }
    // EBUSY on Unix; ERROR_SHARING_VIOLATION (32) and ERROR_LOCK_VIOLATION (33) on Windows.
    match e.raw_os_error() {
        Some(16) => cfg!(unix),
        Some(32) | Some(33) => cfg!(windows),
        _ => false,
    }
}

/// Written files waiting for their flush: enough to overlap the disk's flush latency with the
/// writing of the next entries, few enough that a package of any entry count holds a handful of
/// descriptors open (macOS's default soft limit is 256 per process).
pub(crate) const SYNC_QUEUE: usize = 16;

/// Flushes files on a thread of its own, so that waiting for the disk overlaps with inflating and
/// writing the next entries. At most `SYNC_QUEUE` files wait (each holds its descriptor until it is
/// flushed): a writer that gets further ahead waits for the flushes. `finish` waits for every
/// flush and reports the first failure.
pub(crate) struct Syncer {
    tx: Option<std::sync::mpsc::SyncSender<(File, PathBuf)>>,
    handle: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Syncer {
    pub(crate) fn start() -> Syncer {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(File, PathBuf)>(SYNC_QUEUE);
        let handle = std::thread::spawn(move || {
            for (file, path) in rx {
                file.sync_all()
                    .map_err(|e| StageError::io(Op::Flushing, &path, e))?;
            }
            Ok(())
        });
        Syncer {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Queues a written file for flushing (the file is closed once flushed); waits while the
    /// queue is full.
    pub(crate) fn push(&self, file: File, path: PathBuf) {
        if let Some(tx) = &self.tx {
            // A send fails only once the thread stopped on an error (it never blocks then: the
            // receiver is gone), which `finish` reports.
            let _ = tx.send((file, path));
        }
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        drop(self.tx.take());
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(result)) => result,
            Some(Err(payload)) => Err(StageError::panicked("the flush thread", &*payload)),
            None => Ok(()),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // A failed extraction still waits for the thread, so nothing touches the partial after
        // the caller removes it.
        let _ = self.join();
    }
}

/// Buffers in flight between the reader and the writing thread: the reader fills the next while
/// the thread writes the last ones, and memory stays at `WRITE_BUFS` buffers whatever the size
/// of the files.
pub(crate) const WRITE_BUFS: usize = 4;

/// What the writing thread is asked to do, in order.
enum WriteJob {
    /// Files from now on go to this file, created by the caller.
    Start(File, PathBuf),
    /// The next bytes of the current file: the first `usize` of the buffer, which goes back to the
    /// caller once written.
    Data(Vec<u8>, usize),
    /// The current file is whole: it goes to the flush queue.
    End,
}

/// Writes file bodies on a thread of its own, so that writing (copying into the page cache)
/// overlaps with producing the next bytes, then queues each whole file on a [`Syncer`]. The
/// caller creates each file (so a name clash is reported on the entry that caused it), then
/// sends its bytes in buffers it takes from [`FileWriter::buffer`]; at most `WRITE_BUFS` exist.
/// The first write error stops the writing; the caller sees it at its next buffer (or at
/// `finish`), and every later job is dropped.
pub(crate) struct FileWriter {
    jobs: Option<std::sync::mpsc::SyncSender<WriteJob>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Result<()>>>,
}

impl FileWriter {
    /// A writer whose buffers hold `buf_size` bytes each.
    pub(crate) fn start(buf_size: usize) -> FileWriter {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::mpsc::sync_channel;
        // Every buffer can be queued at once, plus a start and an end: the caller never waits on
        // the queue itself, only for a free buffer.
        let (jobs_tx, jobs_rx) = sync_channel::<WriteJob>(WRITE_BUFS * 2 + 2);
        let (free_tx, free_rx) = sync_channel::<Vec<u8>>(WRITE_BUFS);
        for _ in 0..WRITE_BUFS {
            let _ = free_tx.send(vec![0u8; buf_size]);
        }
        let failed = std::sync::Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let handle = std::thread::spawn(move || {
            let syncer = Syncer::start();
            let mut current: Option<(File, PathBuf)> = None;
            let mut error = None;
            for job in jobs_rx {
                match job {
                    WriteJob::Start(f, p) => current = Some((f, p)),
                    WriteJob::Data(buf, n) => {
                        if let (None, Some((f, p))) = (&error, &mut current) {
                            if let Err(e) = f.write_all(&buf[..n]) {
                                error =
                                    Some(StageError::io(crate::shared::error::Op::Writing, p, e));
                                flag.store(true, Ordering::Release);
                            }
                        }
                        // The caller may be gone after its own failure; the buffer is then freed.
                        let _ = free_tx.send(buf);
                    }
                    WriteJob::End => {
                        if let (None, Some((f, p))) = (&error, current.take()) {
                            // Flushed before the folder is renamed into place: a power cut must
                            // not leave a named version with empty files.
                            syncer.push(f, p);
                        }
                    }
                }
            }
            let flushed = syncer.finish();
            match error {
                Some(e) => Err(e),
                None => flushed,
            }
        });
        FileWriter {
            jobs: Some(jobs_tx),
            free: free_rx,
            failed,
            handle: Some(handle),
        }
    }

    /// Ok unless a write failed: then the writing thread's error, once it has stopped.
    fn check(&mut self) -> Result<()> {
        if self.failed.load(std::sync::atomic::Ordering::Acquire) {
            return self.join();
        }
        Ok(())
    }

    fn send(&mut self, job: WriteJob) -> Result<()> {
        let sent = self.jobs.as_ref().map(|j| j.send(job).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The thread is gone: its result says why.
        self.join()?;
        Err(StageError::internal("the writing thread stopped early"))
    }

    /// Starts writing `file` (created by the caller) at `path`.
    pub(crate) fn start_file(&mut self, file: File, path: PathBuf) -> Result<()> {
        self.check()?;
        self.send(WriteJob::Start(file, path))
    }

    /// A free buffer to fill; waits while every buffer is being written.
    pub(crate) fn buffer(&mut self) -> Result<Vec<u8>> {
        self.check()?;
        match self.free.recv() {
            Ok(buf) => Ok(buf),
            Err(_) => {
                self.join()?;
                Err(StageError::internal("the writing thread stopped early"))
            }
        }
    }

    /// Queues the first `n` bytes of `buf` for the current file.
    pub(crate) fn write(&mut self, buf: Vec<u8>, n: usize) -> Result<()> {
        self.send(WriteJob::Data(buf, n))
    }

    /// Gives back a buffer that was not filled.
    pub(crate) fn give_back(&mut self, buf: Vec<u8>) -> Result<()> {
        self.send(WriteJob::Data(buf, 0))
    }

    /// The current file is whole: queued for its flush.
    pub(crate) fn end_file(&mut self) -> Result<()> {
        self.send(WriteJob::End)
    }

    /// Ok once every file is written and flushed; else the first failure.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        drop(self.jobs.take());
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(result)) => result,
            Some(Err(payload)) => Err(StageError::panicked("the writing thread", &*payload)),
            None => Ok(()),
        }
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        // A failed extraction still waits for the thread (and its flushes), so nothing touches
        // the partial after the caller removes it.
        let _ = self.join();
    }
}

/// Removes a tree if it exists; a missing tree is fine.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let removed = match remove_tree_once(path) {
        // Windows deletes nothing that has the read-only attribute (a runtime, an installer or a
        // backup tool may set it) unless the file system takes POSIX deletes, which NTFS does
        // since Windows 10 1607 but FAT, exFAT and many network shares do not: the attributes
        // are cleared, and the deletion tried once more.
        #[cfg(windows)]
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && clear_readonly(path) => {
            remove_tree_once(path)
        }
        removed => removed,
    };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StageError::io(Op::Removing, path, e)),
    }
}

fn remove_tree_once(path: &Path) -> io::Result<()> {
    // A stray regular file (or link) where a folder is expected is removed as itself: nothing in
    // the store may block staging because it has the wrong type.
    let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if is_dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Clears the read-only attribute of `path` and of everything below it, never through a link or
/// junction (whatever it leads to is not the store's). Returns whether any was cleared.
#[cfg(windows)]
fn clear_readonly(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    if meta.file_type().is_symlink() {
        return false;
    }
    let mut cleared = false;
    if meta.permissions().readonly() {
        let mut writable = meta.permissions();
        // On Windows this clears FILE_ATTRIBUTE_READONLY only; there are no mode bits to widen.
        #[allow(clippy::permissions_set_readonly_false)]
        writable.set_readonly(false);
        cleared = fs::set_permissions(path, writable).is_ok();
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            cleared |= clear_readonly(&entry.path());
        }
    }
    cleared
}

/// What `read_small` found at a path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SmallFile {
    /// Nothing is there.
    Missing,
    /// A regular file of at most the cap, read whole.
    Read(Vec<u8>),
    /// Something that is not one of our small files: a link, a folder, a FIFO or a device, a file
    /// over the cap, or one that could not be read. Its contents are unknown.
    Refused,
}

/// The folder's one real name when it exists (links resolved), so that a store staged through a
/// link or another spelling is found under every spelling; else `path` itself. On Windows the
/// `\\?\` form the OS returns is spelled back as the drive or share path the app uses.
pub(crate) fn canonical_dir(path: &Path) -> PathBuf {
    let Ok(real) = std::fs::canonicalize(path) else {
        return path.to_path_buf();
    };
    #[cfg(windows)]
    {
        let s = real.to_string_lossy();
        if let Some(rest) = s.strip_prefix(r"\\?\UNC\") {
            return PathBuf::from(format!(r"\\{rest}"));
        }
        if let Some(rest) = s.strip_prefix(r"\\?\") {
            if rest.as_bytes().get(1) == Some(&b':') {
                return PathBuf::from(rest);
            }
        }
    }
    real
}

/// A package.json read whole: real ones are a few KB, so anything past this cap is not one and
/// is not read into memory.
pub(crate) const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// Reads one of the store's small files (pointer, lists, records) without trusting what is there:
/// a regular file only, never through a link (a link could lead out of the store or to
/// `/dev/zero`), never a FIFO (whose open would wait for a writer forever), and at most `cap`
/// bytes, so that the start-up path reads a bounded amount and never blocks.
pub(crate) fn read_small(path: &Path, cap: u64) -> SmallFile {
    use std::io::Read;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return SmallFile::Missing,
        Ok(m) if m.is_file() && m.len() <= cap => {}
        _ => return SmallFile::Refused,
    }
    let mut options = fs::OpenOptions::new();
    options.read(true);
    // Between the check above and the open, the name could be replaced: refuse a link and never
    // wait on a FIFO there too; the open file is checked again below.
    no_follow_no_wait(&mut options);
    let Ok(f) = options.open(path) else {
        return SmallFile::Refused;
    };
    if !is_regular(&f) {
        return SmallFile::Refused;
    }
    let mut bytes = Vec::new();
    match f.take(cap + 1).read_to_end(&mut bytes) {
        Ok(n) if n as u64 <= cap => SmallFile::Read(bytes),
        _ => SmallFile::Refused,
    }
}

/// Makes an open refuse a link at the name and return at once on a FIFO (whose plain open waits
/// for a writer, or a reader, forever). Windows has no FIFOs, and a link there is refused by the
/// `is_regular` check of the open file instead.
pub(crate) fn no_follow_no_wait(options: &mut fs::OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    #[cfg(not(unix))]
    let _ = options;
}

/// Whether an open file is a regular file: a FIFO, a device or a folder opened in its place is
/// none of the store's files.
pub(crate) fn is_regular(f: &File) -> bool {
    f.metadata().is_ok_and(|m| m.is_file())
}

/// Writes `data` to `path` atomically: a temp file beside it, flushed, renamed over, and the folder
/// flushed. A reader sees the old file or the new one, never a mix, even after a power cut.
pub(crate) fn write_atomic(r: &dyn Renamer, path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().expect("store files live in a folder");
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let write = || -> Result<()> {
        let mut f = File::create(&tmp).map_err(|e| StageError::io(Op::Creating, &tmp, e))?;
        f.write_all(data)
            .map_err(|e| StageError::io(Op::Writing, &tmp, e))?;
        f.sync_all()
            .map_err(|e| StageError::io(Op::Flushing, &tmp, e))?;
        drop(f);
        rename_retrying(r, &tmp, path)?;
        sync_dir(dir)
    };
    let result = write();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Deepest folder nesting `copy_tree` follows: far beyond any real module, and it stops a link
/// cycle in the source (links are followed) before it exhausts the stack.
const MAX_COPY_DEPTH: usize = 64;

/// Copies a folder tree of regular files and folders, flushing each file. Links in the source are
/// followed: the copy must be self-contained inside the staged version.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<u64> {
    copy_tree_at(from, to, 0)
}

fn copy_tree_at(from: &Path, to: &Path, depth: usize) -> Result<u64> {
    if depth > MAX_COPY_DEPTH {
        // The source's shape, not a bug of ours: an I/O failure on that path.
        return Err(StageError::io(
            Op::Copying,
            from,
            io::Error::other(format!(
                "folders nest deeper than {MAX_COPY_DEPTH} levels (a link cycle?)"
            )),
        ));
    }
    create_dir_all(to)?;
    let mut bytes = 0;
    let entries = fs::read_dir(from).map_err(|e| StageError::io(Op::ReadingFolder, from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StageError::io(Op::ReadingFolder, from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::metadata(&src).map_err(|e| StageError::io(Op::Reading, &src, e))?;
        if meta.is_dir() {
            bytes += copy_tree_at(&src, &dst, depth + 1)?;
        } else if meta.is_file() {
            bytes += copy_file(&src, &dst)?;
        }
        // Sockets, FIFOs and devices have no place in a module folder; they are skipped.
    }
    Ok(bytes)
}

fn copy_file(src: &Path, dst: &Path) -> Result<u64> {
    let mut input = File::open(src).map_err(|e| StageError::io(Op::Reading, src, e))?;
    let mut output = File::create(dst).map_err(|e| StageError::io(Op::Creating, dst, e))?;
    // io::copy reports write errors (a full disk included) instead of truncating silently.
    // io::copy reports write errors (a full disk included) instead of truncating silently.
    let n = io::copy(&mut input, &mut output).map_err(|e| StageError::io(Op::CopyingTo, dst, e))?;
    let perms = input
        .metadata()
        .map_err(|e| StageError::io(Op::Reading, src, e))?
        .permissions();
    fs::set_permissions(dst, perms).map_err(|e| StageError::io(Op::SettingModeOf, dst, e))?;
    output
        .sync_all()
        .map_err(|e| StageError::io(Op::Flushing, dst, e))?;
    Ok(n)
}

/// Runs file-system work on tokio's blocking pool, never on the JS thread or the libuv pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StageError::joined("a file task", e))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct FailNTimes(AtomicU32, i32);
    impl Renamer for FailNTimes {
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            if self.0.fetch_sub(1, Ordering::SeqCst) > 0 {
                return Err(io::Error::from_raw_os_error(self.1));
            }
            fs::rename(from, to)
        }
    }

    #[test]
    fn rename_retries_transient_lock_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::write(&a, "x").unwrap();
        // EACCES twice, as an antivirus holding the file would give, then success.
        let r = FailNTimes(AtomicU32::new(2), 13);
        rename_retrying(&r, &a, &b).unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"x");
        assert_eq!(r.0.load(Ordering::SeqCst), u32::MAX);
    }

    #[test]
    fn rename_gives_up_on_other_errors_and_after_bounded_tries() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::write(&a, "x").unwrap();
        let r = FailNTimes(AtomicU32::new(1), 2); // ENOENT: not transient
        assert_eq!(rename_retrying(&r, &a, &b).unwrap_err().code(), "EIO");
        let r = FailNTimes(AtomicU32::new(100), 13);
        assert!(rename_retrying(&r, &a, &b).is_err());
        assert!(a.exists() && !b.exists());
    }

    #[test]
    fn write_atomic_replaces_and_cleans_temp() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("current.json");
        write_atomic(&OsRenamer, &p, b"one").unwrap();
        write_atomic(&OsRenamer, &p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let r = FailNTimes(AtomicU32::new(1), 2);
        assert!(write_atomic(&r, &p, b"three").is_err());
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn copy_tree_stops_at_a_link_cycle() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(&src).unwrap();
        std::os::unix::fs::symlink(&src, src.join("loop")).unwrap();
        let err = copy_tree(&src, &tmp.path().join("dst")).unwrap_err();
        assert_eq!(err.code(), "EIO");
    }

    #[test]
    fn syncer_flushes_and_reports() {
        let tmp = tempfile::tempdir().unwrap();
        let syncer = Syncer::start();
        for i in 0..5 {
            let p = tmp.path().join(format!("f{i}"));
            let mut f = File::create(&p).unwrap();
            f.write_all(b"data").unwrap();
            syncer.push(f, p);
        }
        syncer.finish().unwrap();
        assert_eq!(fs::read(tmp.path().join("f4")).unwrap(), b"data");
    }

    #[test]
    fn file_writer_writes_in_order_and_reports_the_first_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = FileWriter::start(4);
        for i in 0..3 {
            let p = tmp.path().join(format!("f{i}"));
            w.start_file(File::create(&p).unwrap(), p).unwrap();
            for piece in [&b"abcd"[..], b"ef"] {
                let mut buf = w.buffer().unwrap();
                buf[..piece.len()].copy_from_slice(piece);
                w.write(buf, piece.len()).unwrap();
            }
            w.end_file().unwrap();
        }
        w.finish().unwrap();
        assert_eq!(fs::read(tmp.path().join("f2")).unwrap(), b"abcdef");

        // A file opened read-only cannot be written: the error comes back, not a hang.
        let p = tmp.path().join("f0");
        let mut w = FileWriter::start(4);
        w.start_file(File::open(&p).unwrap(), p.clone()).unwrap();
        let mut outcome = Ok(());
        for _ in 0..(WRITE_BUFS * 4) {
            outcome = w.buffer().and_then(|buf| w.write(buf, 4));
            if outcome.is_err() {
                break;
            }
        }
        let err = outcome.and_then(|()| w.finish()).unwrap_err();
        assert_eq!(err.code(), "EIO", "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"abcdef");
    }

    #[test]
    fn copy_tree_copies_nested_files() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("build/Release")).unwrap();
        fs::write(src.join("package.json"), "{}").unwrap();
        fs::write(src.join("build/Release/pty.node"), "bin").unwrap();
        let n = copy_tree(&src, &tmp.path().join("dst")).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            fs::read(tmp.path().join("dst/build/Release/pty.node")).unwrap(),
            b"bin"
        );
    }
}
