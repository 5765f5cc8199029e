//! Safe extraction of a gzipped npm tarball into a fresh folder.
//!
//! Entries are walked one by one (never `Archive::unpack`): only regular files and directories
//! are written, every path is sanitised and its top folder stripped, sizes and counts are capped,
//! and every read or write error is fatal.

use crate::error::{clip, Result, StageError};
use crate::fsutil;
use flate2::bufread::GzDecoder;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tar::EntryType;

/// Hard ceilings whatever the registry claims: the runtime is ~60 MB in ~20 files today.
pub const HARD_MAX_UNPACKED_BYTES: u64 = 1024 * 1024 * 1024;
pub const HARD_MAX_ENTRIES: u64 = 100_000;
/// Deepest path we accept; real packages stay under 20, and deep trees exhaust Windows' MAX_PATH.
pub const MAX_PATH_DEPTH: usize = 32;
/// Longest entry path in bytes; leaves room under Windows' 260-char MAX_PATH for userData.
pub const MAX_PATH_BYTES: usize = 200;
/// Largest PAX or GNU extension record read: real ones hold a path and a few times, well under
/// 1 KiB; the cap is checked against the header before a byte of the body is buffered.
pub const MAX_EXTENSION_BYTES: u64 = 64 * 1024;
/// Longest path an extension may name, far past any real one (the sanitiser allows much less);
/// only a bound on what is held in memory and quoted, the real path caps come after.
pub const MAX_EXTENDED_PATH_BYTES: usize = 4096;

/// Caps for one tarball.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extracted {
    pub files: u64,
    pub bytes: u64,
}

/// Large buffers: the runtime's files are megabytes each, and fewer syscalls is most of the speed.
const COPY_BUF: usize = 256 * 1024;

/// Marks the inflated stream growing past its cap, so the error can be told apart from I/O.
#[derive(Debug)]
struct LimitExceeded(u64);
impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "inflated stream exceeds {} bytes", self.0)
    }
}
impl std::error::Error for LimitExceeded {}

/// Counts inflated bytes and fails once they pass the cap: a gzip bomb is stopped while it
/// inflates, whatever its tar headers claim.
struct CappedReader<R> {
    inner: R,
    read: u64,
    cap: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.cap {
            return Err(io::Error::other(LimitExceeded(self.cap)));
        }
        Ok(n)
    }
}

/// Unpacks the gzipped tar read from `src` into `dest` (which must not exist yet), then reads the
/// rest of `src` to its end, so a streamed download is consumed to its last byte.
///
/// `bins` are package-relative paths that get the executable bit. `cancel` is polled between
/// chunks so an abort or timeout stops the write promptly.
pub fn extract_tgz<R: Read>(
    src: R,
    dest: &Path,
    limits: ExtractLimits,
    bins: &[String],
    url: &str,
    cancel: &AtomicBool,
) -> Result<Extracted> {
    fs::create_dir(dest).map_err(|e| StageError::io("creating", dest, e))?;
    let mut archive = tar::Archive::new(inflate(src, limits));
    let mut unpacker = Unpacker::new(dest, limits, bins, url, cancel);
    unpacker.unpack_all(&mut archive)?;
    drain(archive.into_inner(), url)?;
    unpacker.finish()
}

/// The inflated stream of `src`, failing once it grows past what `limits` can account for.
fn inflate<R: Read>(src: R, limits: ExtractLimits) -> CappedReader<GzMembers<BufReader<R>>> {
    // Headers, padding and PAX records cost at most a few KiB per entry on top of file bodies.
    let cap = limits
        .max_bytes
        .saturating_add(limits.max_entries.saturating_mul(4096))
        .saturating_add(1 << 20);
    CappedReader {
        inner: GzMembers::new(BufReader::with_capacity(GZ_BUF, src)),
        read: 0,
        cap,
    }
}

/// The raw bytes read ahead for the decoder: flate2's own reader buffers as much.
const GZ_BUF: usize = 32 * 1024;

/// Why bytes after the last gzip member are refused.
#[derive(Debug)]
struct TrailingBytes;
impl std::fmt::Display for TrailingBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bytes that are neither a gzip member nor zero padding follow the gzip stream")
    }
}
impl std::error::Error for TrailingBytes {}

/// Every gzip member of a stream, inflated in turn, as npm and GNU tar read it: a tarball written
/// as several concatenated members (parallel compressors do this) is one archive, not its first
/// piece. After the last member only zero bytes may follow (the padding some writers add to fill
/// a block, which zlib, node-tar and GNU tar accept); anything else is a corrupt archive.
struct GzMembers<R: BufRead> {
    /// The member being inflated; `None` once the stream has ended.
    member: Option<GzDecoder<R>>,
}

impl<R: BufRead> GzMembers<R> {
    fn new(src: R) -> Self {
        GzMembers {
            member: Some(GzDecoder::new(src)),
        }
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = &mut self.member else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The member is whole (its CRC and length checked); see what follows it.
            let mut src = self.member.take().expect("a member").into_inner();
            match src.fill_buf()?.first() {
                Some(0) => {
                    skip_zero_padding(&mut src)?;
                    return Ok(0);
                }
                // The next member; a byte that does not start one fails its header check.
                Some(_) => self.member = Some(GzDecoder::new(src)),
                None => return Ok(0),
            }
        }
    }
}

/// Reads `src` to its end, refusing any byte that is not zero.
fn skip_zero_padding<R: BufRead>(src: &mut R) -> io::Result<()> {
    loop {
        let chunk = src.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        if chunk.iter().any(|b| *b != 0) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TrailingBytes));
        }
        let n = chunk.len();
        src.consume(n);
    }
}

/// Ok once the inflated stream, and with it the raw source, is read to its end.
fn drain<R: Read>(mut capped: CappedReader<GzMembers<BufReader<R>>>, url: &str) -> Result<()> {
    // Read the inflated stream to its end: the gzip trailer's CRC and length are only checked
    // there, and a truncated stream must fail here rather than stage a runtime. The members
    // reader ends only at the raw source's end, so the download is consumed to its last byte
    // and its hash can be checked.
    io::copy(&mut capped, &mut io::sink()).map_err(|e| archive_error(url, e))?;
    Ok(())
}

/// One extraction's settings and what it has written so far.
struct Unpacker<'a> {
    dest: &'a Path,
    limits: ExtractLimits,
    bins: &'a [String],
    url: &'a str,
    cancel: &'a AtomicBool,
    stats: Extracted,
    entries_seen: u64,
    /// The top folder every entry must share, once the first entry named it.
    root: Option<Vec<u8>>,
    buf: Vec<u8>,
    syncer: fsutil::Syncer,
}

impl<'a> Unpacker<'a> {
    /// An unpacker writing below `dest`, its flush thread started.
    fn new(
        dest: &'a Path,
        limits: ExtractLimits,
        bins: &'a [String],
        url: &'a str,
        cancel: &'a AtomicBool,
    ) -> Self {
        Unpacker {
            dest,
            limits,
            bins,
            url,
            cancel,
            stats: Extracted::default(),
            entries_seen: 0,
            root: None,
            buf: vec![0u8; COPY_BUF],
            syncer: fsutil::Syncer::start(),
        }
    }

    /// What was written, once every file is flushed.
    fn finish(self) -> Result<Extracted> {
        self.syncer.finish()?;
        Ok(self.stats)
    }

    /// Ok once every entry of `archive` is written and no extension header is left dangling.
    fn unpack_all<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<()> {
        let url = self.url;
        let archive_err = |e: io::Error| archive_error(url, e);
        // Raw iteration: the tar crate would otherwise read GNU long names and PAX records into
        // memory whole, whatever their size, before this loop could look at them.
        let mut ext = Extensions::default();
        for entry in archive.entries().map_err(archive_err)?.raw(true) {
            let mut entry = entry.map_err(archive_err)?;
            self.check_cancel()?;
            let kind = entry.header().entry_type();
            let is_extension = matches!(
                kind,
                EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader
            );
            // Global PAX headers are counted like entries: nothing else bounds how many there are.
            if !is_extension {
                self.count_entry()?;
            }
            if is_extension || kind == EntryType::XGlobalHeader {
                ext.read(&mut entry, url)?;
                continue;
            }
            self.unpack_entry(&mut entry, kind, std::mem::take(&mut ext))?;
        }
        if ext.is_pending() {
            return Err(StageError::BadArchive {
                url: url.into(),
                reason: "a long-name or PAX header describes no entry".into(),
            });
        }
        Ok(())
    }

    /// Ok unless the caller asked to stop.
    fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(StageError::Aborted);
        }
        Ok(())
    }

    /// Ok while the entries counted so far, this one included, are within the cap.
    fn count_entry(&mut self) -> Result<()> {
        self.entries_seen += 1;
        let max = self.limits.max_entries;
        if self.entries_seen > max {
            return Err(too_large(
                self.url,
                "entries",
                format!("more than {max} entries"),
            ));
        }
        Ok(())
    }

    /// Ok once a file or folder entry, named as `ext` says, is written (or skipped: the top
    /// folder itself).
    fn unpack_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        ext: Extensions,
    ) -> Result<()> {
        let url = self.url;
        let raw_path = entry_path(entry, ext.long_name, ext.pax_path, url)?;
        let shown = clip(&String::from_utf8_lossy(&raw_path));
        check_kind(kind, url, &shown)?;
        check_pax_size(entry.header(), ext.pax_size, url, &shown)?;
        self.check_root(&raw_path, &shown)?;
        let Some(rel) = relative_path(&raw_path, url, &shown)? else {
            return Ok(());
        };
        // No link can exist below `dest`: it was created empty and only regular files and
        // directories are ever written, so joining a sanitised relative path stays inside it.
        let target = self.dest.join(&rel);
        if kind == EntryType::Directory {
            return fs::create_dir_all(&target).map_err(|e| self.clash(&rel, &target, e));
        }
        self.write_file(entry, &rel, target, &shown)
    }

    /// Ok when the entry's top folder is the one every earlier entry had.
    fn check_root(&mut self, raw_path: &[u8], shown: &str) -> Result<()> {
        let top = top_component(raw_path);
        match &self.root {
            None => self.root = Some(top.to_vec()),
            // Two top folders would both be stripped onto one tree, one silently overwriting
            // the other's files; npm packages have exactly one.
            Some(r) if r.as_slice() != top => {
                return Err(unsafe_entry(
                    self.url,
                    shown,
                    "the tarball has more than one top folder",
                ))
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// The error for a failed creation of `target`: the package's when a file and a folder
    /// claim one name, else the disk's.
    fn clash(&self, rel: &Path, target: &Path, e: io::Error) -> StageError {
        // A name that is a file in one entry and a folder in another is the package's fault;
        // the file system's refusal is reported as such, not as a disk failure.
        match kind_clash(self.dest, rel) {
            Some(name) => unsafe_entry(
                self.url,
                &clip(&name),
                "a file and a folder of the same name",
            ),
            None => StageError::io("creating", target, e),
        }
    }

    /// Ok once the entry's body is written whole to `target` and queued for flushing.
    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        target: PathBuf,
        shown: &str,
    ) -> Result<()> {
        let size = entry.size();
        self.check_room(size)?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| self.clash(rel, &target, e))?;
        }
        let executable = is_executable(entry.header(), rel, self.bins);
        let mut file = open_for_write(&target, executable).map_err(|e| match e {
            StageError::Io { .. } if kind_clash(self.dest, rel).is_some() => {
                self.clash(rel, &target, io::ErrorKind::AlreadyExists.into())
            }
            e => e,
        })?;
        let written = self.copy_body(entry, &mut file, &target)?;
        if written != size {
            return Err(StageError::BadArchive {
                url: self.url.into(),
                reason: format!("entry `{shown}` declares {size} bytes but holds {written}"),
            });
        }
        // Flushed before the folder is renamed into place: a power cut must not leave a
        // named version with empty files. The flush runs beside the next entries' writes.
        self.syncer.push(file, target);
        self.stats.files += 1;
        self.stats.bytes += written;
        Ok(())
    }

    /// Ok while `size` more bytes keep the unpacked total within the cap.
    fn check_room(&self, size: u64) -> Result<()> {
        let max = self.limits.max_bytes;
        if self.stats.bytes.saturating_add(size) > max {
            let reason = format!("unpacked size exceeds {max} bytes");
            return Err(too_large(self.url, "unpackedBytes", reason));
        }
        Ok(())
    }

    /// How many bytes of the entry's body were copied into `file`, polling for cancellation
    /// between chunks.
    fn copy_body<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        file: &mut File,
        target: &Path,
    ) -> Result<u64> {
        let mut written = 0u64;
        loop {
            self.check_cancel()?;
            let n = entry
                .read(&mut self.buf)
                .map_err(|e| archive_error(self.url, e))?;
            if n == 0 {
                return Ok(written);
            }
            file.write_all(&self.buf[..n])
                .map_err(|e| StageError::io("writing", target, e))?;
            written += n as u64;
        }
    }
}

/// The entry's raw path: a GNU long name's or a PAX path's if one came before it, else the
/// header's own.
fn entry_path<R: Read>(
    entry: &tar::Entry<'_, R>,
    long_name: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    url: &str,
) -> Result<Vec<u8>> {
    match (long_name, pax_path) {
        (Some(p), None) | (None, Some(p)) => Ok(p),
        (None, None) => Ok(entry.path_bytes().into_owned()),
        (Some(p), Some(_)) => Err(unsafe_entry(
            url,
            &clip(&String::from_utf8_lossy(&p)),
            "both a GNU long name and a PAX path name this entry",
        )),
    }
}

/// Ok for a regular file or a folder; links and every other kind are refused.
fn check_kind(kind: EntryType, url: &str, shown: &str) -> Result<()> {
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::Directory => Ok(()),
        EntryType::Symlink => Err(unsafe_entry(url, shown, "symbolic links are not allowed")),
        EntryType::Link => Err(unsafe_entry(url, shown, "hard links are not allowed")),
        other => Err(unsafe_entry(
            url,
            shown,
            &format!("entry type {other:?} is not a regular file or directory"),
        )),
    }
}

/// Ok when the entry has no PAX size or one equal to its header's.
fn check_pax_size(
    header: &tar::Header,
    pax_size: Option<u64>,
    url: &str,
    shown: &str,
) -> Result<()> {
    // A PAX size that differs from the header's lets two tar readers see two different
    // archives (one reads the hidden bytes as more entries); refuse the ambiguity. The body
    // is read by the header's size, which is then the only one.
    let header_size = header.entry_size().map_err(|e| archive_error(url, e))?;
    match pax_size {
        Some(pax_size) if pax_size != header_size => Err(unsafe_entry(
            url,
            shown,
            &format!("PAX size {pax_size} disagrees with the header's {header_size}"),
        )),
        _ => Ok(()),
    }
}

/// The sanitised path below the destination, `None` for the top folder itself.
fn relative_path(raw_path: &[u8], url: &str, shown: &str) -> Result<Option<PathBuf>> {
    match sanitize(raw_path) {
        Ok(rel) => Ok(rel),
        Err(PathProblem::Unsafe(reason)) => Err(unsafe_entry(url, shown, &reason)),
        Err(PathProblem::TooLarge(reason)) => {
            Err(too_large(url, "path", format!("entry `{shown}`: {reason}")))
        }
    }
}

/// Whether the file gets the executable bit: any execute bit in its header, or named in `bins`.
fn is_executable(header: &tar::Header, rel: &Path, bins: &[String]) -> bool {
    let rel_str = rel.to_string_lossy().replace('\\', "/");
    header.mode().map(|m| m & 0o111 != 0).unwrap_or(false) || bins.contains(&rel_str)
}

/// An `ETOO_LARGE` error for the cap named `limit`.
fn too_large(url: &str, limit: &'static str, reason: String) -> StageError {
    StageError::TooLarge {
        url: url.into(),
        limit,
        reason,
    }
}

/// An `EUNSAFE_ENTRY` error quoting `entry` (already clipped).
fn unsafe_entry(url: &str, entry: &str, reason: &str) -> StageError {
    StageError::UnsafeEntry {
        url: url.into(),
        entry: entry.into(),
        reason: reason.into(),
    }
}

/// What GNU long-name and PAX headers say about the next entry, applied to it here rather than by
/// the tar crate, so their sizes are checked before their bodies are read.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_size: Option<u64>,
    pax_seen: bool,
}

impl Extensions {
    fn is_pending(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax_seen
    }

    /// Reads one extension header (`L`, `K`, `x` or `g`) into `self`, refusing an oversized one
    /// before buffering it.
    fn read<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, url: &str) -> Result<()> {
        let kind = entry.header().entry_type();
        let header_name = clip(&String::from_utf8_lossy(&entry.header().path_bytes()));
        let size = entry
            .header()
            .entry_size()
            .map_err(|e| archive_error(url, e))?;
        check_extension_size(kind, size, &header_name, url)?;
        self.check_first(kind, &header_name, url)?;
        let body = read_body(entry, size, url)?;
        match kind {
            EntryType::GNULongName => self.long_name = Some(trim_nuls(body)),
            EntryType::GNULongLink => self.long_link = Some(trim_nuls(body)),
            _ => {
                let global = kind == EntryType::XGlobalHeader;
                self.read_pax(&body, global, &header_name, url)?;
            }
        }
        Ok(())
    }

    /// Ok unless a header of this kind already describes the coming entry.
    fn check_first(&self, kind: EntryType, header_name: &str, url: &str) -> Result<()> {
        let twice = match kind {
            EntryType::GNULongName => self.long_name.is_some(),
            EntryType::GNULongLink => self.long_link.is_some(),
            EntryType::XHeader => self.pax_seen,
            _ => false,
        };
        // Readers disagree on which of two such headers wins; refuse the ambiguity.
        if twice {
            return Err(unsafe_entry(
                url,
                header_name,
                &format!("two {} headers describe one entry", kind_name(kind)),
            ));
        }
        Ok(())
    }

    /// Ok once every record of a PAX header's body is applied (or ignored: most keys are).
    fn read_pax(&mut self, body: &[u8], global: bool, header_name: &str, url: &str) -> Result<()> {
        self.pax_seen |= !global;
        for record in tar::PaxExtensions::new(body) {
            let record = record.map_err(|_| StageError::BadArchive {
                url: url.into(),
                reason: format!("malformed PAX record in `{header_name}`"),
            })?;
            let (key, value) = (record.key_bytes(), record.value_bytes());
            if matches!(key, b"path" | b"linkpath" | b"size") && global {
                // Readers disagree on whether a global path or size applies to every entry.
                return Err(unsafe_entry(
                    url,
                    header_name,
                    &format!(
                        "a global PAX header sets `{}`",
                        String::from_utf8_lossy(key)
                    ),
                ));
            }
            self.apply_pax(key, value, header_name, url)?;
        }
        Ok(())
    }

    /// Ok once one PAX record of an entry's own header is applied: its path or size.
    fn apply_pax(&mut self, key: &[u8], value: &[u8], header_name: &str, url: &str) -> Result<()> {
        match key {
            b"path" | b"linkpath" if value.len() > MAX_EXTENDED_PATH_BYTES => {
                return Err(too_large(
                    url,
                    "path",
                    format!(
                        "PAX `{}` is {} bytes, more than {MAX_EXTENDED_PATH_BYTES}",
                        String::from_utf8_lossy(key),
                        value.len()
                    ),
                ));
            }
            b"path" => self.pax_path = Some(value.to_vec()),
            // Links are refused whatever their target; the target itself is not needed.
            b"linkpath" => {}
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| unsafe_entry(url, header_name, "PAX size is not a number"))?;
                self.pax_size = Some(size);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Ok when an extension header's declared size is within its cap, before a byte of it is read.
fn check_extension_size(kind: EntryType, size: u64, header_name: &str, url: &str) -> Result<()> {
    let is_name = matches!(kind, EntryType::GNULongName | EntryType::GNULongLink);
    // A long name's body is the name itself (plus a NUL), so it gets the path bound.
    let cap = if is_name {
        MAX_EXTENDED_PATH_BYTES as u64 + 1
    } else {
        MAX_EXTENSION_BYTES
    };
    if size > cap {
        return Err(too_large(
            url,
            "extensionHeader",
            format!(
                "the {} header `{header_name}` holds {size} bytes, more than {cap}",
                kind_name(kind)
            ),
        ));
    }
    Ok(())
}

/// The extension header's body, exactly `size` bytes (already checked against its cap).
fn read_body<R: Read>(entry: &mut tar::Entry<'_, R>, size: u64, url: &str) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(size as usize);
    entry
        .take(size)
        .read_to_end(&mut body)
        .map_err(|e| archive_error(url, e))?;
    if body.len() as u64 != size {
        return Err(archive_error(
            url,
            io::Error::from(io::ErrorKind::UnexpectedEof),
        ));
    }
    Ok(body)
}

/// A GNU long name or link without the NULs that end it.
fn trim_nuls(mut body: Vec<u8>) -> Vec<u8> {
    while body.last() == Some(&0) {
        body.pop();
    }
    body
}

/// How an extension header's kind is named in errors.
fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::GNULongName => "GNU long-name",
        EntryType::GNULongLink => "GNU long-link",
        EntryType::XGlobalHeader => "global PAX",
        _ => "PAX",
    }
}

/// The first prefix of `rel` (itself included) that exists below `dest` as something other than a
/// folder, or `rel` itself when it is an existing folder: the name a file and a folder both claim.
/// On a case-insensitive file system this also catches `A` and `a/b`.
fn kind_clash(dest: &Path, rel: &Path) -> Option<String> {
    let mut at = dest.to_path_buf();
    for comp in rel.components() {
        at.push(comp);
        match fs::symlink_metadata(&at) {
            Ok(m) if !m.is_dir() => return Some(shown_rel(dest, &at)),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    // Every component is a folder: a file entry named like an existing folder.
    Some(shown_rel(dest, &at))
}

fn shown_rel(dest: &Path, at: &Path) -> String {
    at.strip_prefix(dest)
        .unwrap_or(at)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Refuses a package whose own files sit where a folder must go (`node_modules` or
/// `node_modules/node-pty` shipped as a file, or a link): the native modules are copied there, and
/// the package, not the disk, is at fault.
pub fn require_folders_or_absent(root: &Path, rel: &[&str], url: &str) -> Result<()> {
    let mut at = root.to_path_buf();
    for (i, comp) in rel.iter().enumerate() {
        at.push(comp);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(StageError::UnsafeEntry {
                    url: clip(url),
                    entry: rel[..=i].join("/"),
                    reason: "the package ships a file where the native modules folder goes".into(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StageError::io("reading", &at, e)),
        }
    }
    Ok(())
}

fn open_for_write(target: &Path, executable: bool) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never the tarball's own mode bits: setuid, setgid and sticky are dropped by construction.
        opts.mode(if executable { 0o755 } else { 0o644 });
    }
    let file = opts
        .open(target)
        .map_err(|e| StageError::io("creating", target, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode passed to open is masked by the umask and ignored for an existing file; set it
        // explicitly so the runtime's bin is executable whatever the app's umask.
        let mode = if executable { 0o755 } else { 0o644 };
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| StageError::io("setting mode of", target, e))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(file)
}

fn archive_error(url: &str, e: io::Error) -> StageError {
    if let Some(limit) = e.get_ref().and_then(|i| i.downcast_ref::<LimitExceeded>()) {
        return too_large(url, "inflatedBytes", limit.to_string());
    }
    let reason = match e.kind() {
        io::ErrorKind::UnexpectedEof => "the stream ends early (truncated)".to_string(),
        _ => e.to_string(),
    };
    StageError::BadArchive {
        url: url.into(),
        reason,
    }
}

/// The first non-empty, non-`.` component of a raw path: the folder npm strips.
fn top_component(raw: &[u8]) -> &[u8] {
    raw.split(|b| *b == b'/')
        .find(|c| !c.is_empty() && *c != b".")
        .unwrap_or(b"")
}

pub(crate) enum PathProblem {
    Unsafe(String),
    TooLarge(String),
}

/// Turns a raw tar path into a safe relative path with the top folder stripped, `None` for the
/// top folder itself. Everything that could leave the folder, alias another name on some OS, or
/// be misread by Windows is refused rather than rewritten.
pub(crate) fn sanitize(raw: &[u8]) -> std::result::Result<Option<PathBuf>, PathProblem> {
    let unsafe_ = |s: &str| Err(PathProblem::Unsafe(s.into()));
    let Ok(path) = std::str::from_utf8(raw) else {
        return unsafe_("path is not UTF-8");
    };
    if path.contains('\\') {
        return unsafe_("path uses a backslash separator");
    }
    if path.starts_with('/') {
        return unsafe_("path is absolute");
    }
    if path.len() > MAX_PATH_BYTES + 256 {
        return Err(PathProblem::TooLarge(format!(
            "path is longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    let mut parts = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => continue,
            ".." => return unsafe_("path has a `..` component"),
            c => {
                if let Some(reason) = windows_problem(c) {
                    return unsafe_(reason);
                }
                parts.push(c);
            }
        }
    }
    // npm strips the first component whatever its name (`package/` by convention).
    if parts.len() <= 1 {
        return Ok(None);
    }
    let rest = &parts[1..];
    if rest.len() > MAX_PATH_DEPTH {
        return Err(PathProblem::TooLarge(format!(
            "path is deeper than {MAX_PATH_DEPTH} folders"
        )));
    }
    let joined = rest.join("/");
    if joined.len() > MAX_PATH_BYTES {
        return Err(PathProblem::TooLarge(format!(
            "path is longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    Ok(Some(rest.iter().collect()))
}

/// Why Windows could not hold `name` as written, if it cannot. Refused on every platform: a
/// package that stages on Linux must stage the same on Windows.
pub(crate) fn windows_problem(name: &str) -> Option<&'static str> {
    // A colon is a drive prefix (`C:`) or an NTFS alternate data stream; the others are wildcard
    // and redirection characters the Win32 API refuses in names.
    if name.contains(['<', '>', ':', '"', '|', '?', '*']) {
        return Some("path has a character Windows refuses (<>:\"|?*)");
    }
    // Control characters (NUL included) end or corrupt names in Win32 calls and terminals.
    if name.chars().any(|c| (c as u32) < 0x20) {
        return Some("path has a control character");
    }
    // Windows silently trims a trailing dot or space, turning the name into another one.
    if name.ends_with('.') || name.ends_with(' ') {
        return Some("path has a name ending in a dot or space");
    }
    if is_windows_device(name) {
        return Some("path has a device name Windows reserves");
    }
    None
}

/// Device names Windows resolves in every folder, whatever the case and extension (`nul.js`,
/// `Com1.tar.gz` and `LPT¹` are all devices); spaces before the extension are trimmed too.
fn is_windows_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    let Some(port) = upper
        .strip_prefix("COM")
        .or_else(|| upper.strip_prefix("LPT"))
    else {
        return false;
    };
    // COM0-9 and LPT0-9, and the superscript digits Windows also maps to the ports.
    let mut chars = port.chars();
    matches!(
        (chars.next(), chars.next()),
        (Some('0'..='9' | '¹' | '²' | '³'), None)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    pub(crate) fn tgz(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, kind, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(body.len() as u64);
            h.set_mode(if *kind == EntryType::Directory {
                0o755
            } else {
                0o644
            });
            // Write the name bytes raw so hostile names are not normalised by the builder.
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            if *kind == EntryType::Symlink || *kind == EntryType::Link {
                h.set_link_name("../../etc/passwd").unwrap();
            }
            h.set_cksum();
            b.append(&h, *body).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    /// An ungzipped tar of regular files, written by the tar crate's own builder.
    fn plain_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, *body).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// `bytes` as one gzip member.
    fn gzip(bytes: &[u8], level: Compression) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), level);
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    const LIMITS: ExtractLimits = ExtractLimits {
        max_bytes: 1 << 20,
        max_entries: 100,
    };

    fn run(data: &[u8], dest: &Path) -> Result<Extracted> {
        extract_tgz(
            data,
            dest,
            LIMITS,
            &["dist/cli.js".into()],
            "http://t/x.tgz",
            &AtomicBool::new(false),
        )
    }

    /// The error extracting `data` into a fresh folder ends with; the test fails if it succeeds.
    fn refusal(data: &[u8]) -> StageError {
        let tmp = tempfile::tempdir().unwrap();
        run(data, &tmp.path().join("a")).unwrap_err()
    }

    /// The cap an `ETOO_LARGE` error names, `None` for any other error.
    fn cap_hit(err: &StageError) -> Option<&'static str> {
        match err {
            StageError::TooLarge { limit, .. } => Some(limit),
            _ => None,
        }
    }

    /// The error extracting `data` with no bins under `limits` ends with, the cancel flag already
    /// set when `cancelled`; the test fails if it succeeds.
    fn refusal_with(data: &[u8], limits: ExtractLimits, cancelled: bool) -> StageError {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("a");
        extract_tgz(data, &dest, limits, &[], "u", &AtomicBool::new(cancelled)).unwrap_err()
    }

    #[test]
    fn strips_any_top_folder_and_writes_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("out");
        let data = tgz(&[
            ("node/", EntryType::Directory, b""),
            ("node/package.json", EntryType::Regular, b"{}"),
            (
                "node/dist/cli.js",
                EntryType::Regular,
                b"#!/usr/bin/env node\n",
            ),
        ]);
        let stats = run(&data, &dest).unwrap();
        assert_eq!(
            stats,
            Extracted {
                files: 2,
                bytes: 22
            }
        );
        assert_eq!(fs::read(dest.join("package.json")).unwrap(), b"{}");
        assert_eq!(
            fs::read(dest.join("dist/cli.js")).unwrap(),
            b"#!/usr/bin/env node\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode("dist/cli.js"), 0o755);
            assert_eq!(mode("package.json"), 0o644);
        }
    }

    #[test]
    fn refuses_links_and_escapes() {
        let cases: &[(&str, EntryType)] = &[
            ("package/../../evil", EntryType::Regular),
            ("/etc/evil", EntryType::Regular),
            ("package/a\\..\\evil", EntryType::Regular),
            ("package/C:evil", EntryType::Regular),
            ("package/link", EntryType::Symlink),
            ("package/hard", EntryType::Link),
            ("package/fifo", EntryType::Fifo),
            ("package/dev", EntryType::Char),
            ("package/CON.js", EntryType::Regular),
            ("package/lpt1", EntryType::Regular),
            ("package/trailing.", EntryType::Regular),
        ];
        for (path, kind) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let dest = tmp.path().join("out");
            let data = tgz(&[(path, *kind, b"x")]);
            let err = run(&data, &dest).unwrap_err();
            assert_eq!(err.code(), "EUNSAFE_ENTRY", "{path}: {err}");
            assert!(!tmp.path().join("evil").exists());
        }
    }

    #[test]
    fn caps_size_entries_and_depth() {
        let big = vec![0u8; (LIMITS.max_bytes + 1) as usize];
        let data = tgz(&[("package/big", EntryType::Regular, &big)]);
        assert_eq!(refusal(&data).code(), "ETOO_LARGE");

        let deep = format!("package/{}f", "d/".repeat(MAX_PATH_DEPTH + 1));
        let data = tgz(&[(&deep, EntryType::Regular, b"x")]);
        assert_eq!(refusal(&data).code(), "ETOO_LARGE");

        let names: Vec<String> = (0..=LIMITS.max_entries)
            .map(|i| format!("package/{i}"))
            .collect();
        let entries: Vec<_> = names
            .iter()
            .map(|n| (n.as_str(), EntryType::Regular, &b""[..]))
            .collect();
        let data = tgz(&entries);
        assert_eq!(refusal(&data).code(), "ETOO_LARGE");
    }

    #[test]
    fn truncated_and_corrupt_streams_fail() {
        let data = tgz(&[("package/a", EntryType::Regular, &[7u8; 50_000])]);
        let cut = &data[..data.len() - 10];
        assert_eq!(refusal(cut).code(), "EBADARCHIVE");
        let mut flipped = data.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        let err = refusal(&flipped);
        assert!(matches!(err.code(), "EBADARCHIVE" | "ETOO_LARGE"), "{err}");
    }

    #[test]
    fn gzip_bomb_stops_at_the_cap() {
        // A single entry claiming a small size followed by a long run of zeros after the archive.
        let mut tar_bytes = plain_tar(&[("package/a", b"x")]);
        tar_bytes.resize(tar_bytes.len() + (LIMITS.max_bytes as usize) * 3, 0);
        let data = gzip(&tar_bytes, Compression::best());
        let small = ExtractLimits {
            max_bytes: 1 << 20,
            max_entries: 1,
        };
        let err = refusal_with(&data, small, false);
        assert_eq!(err.code(), "ETOO_LARGE");
    }

    #[test]
    fn cancel_stops_extraction() {
        let data = tgz(&[("package/a", EntryType::Regular, b"x")]);
        let err = refusal_with(&data, LIMITS, true);
        assert_eq!(err.code(), "EABORTED");
    }

    #[test]
    fn refuses_two_top_folders() {
        let data = tgz(&[
            ("package/a.js", EntryType::Regular, b"1"),
            ("other/a.js", EntryType::Regular, b"2"),
        ]);
        assert_eq!(refusal(&data).code(), "EUNSAFE_ENTRY");
    }

    #[test]
    fn refuses_pax_size_that_disagrees_with_the_header() {
        let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let record = b"12 size=600\n";
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(EntryType::XHeader);
        pax.set_size(record.len() as u64);
        pax.set_cksum();
        b.append(&pax, &record[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_cksum();
        // 600 bytes of data: what the PAX size claims, hiding a second "entry" from the header.
        b.append_data(&mut h, "package/a.js", &[b'x'; 600][..])
            .unwrap();
        let data = b.into_inner().unwrap().finish().unwrap();
        let err = refusal(&data);
        assert_eq!(err.code(), "EUNSAFE_ENTRY", "{err}");
    }

    #[test]
    fn sanitize_rules() {
        let ok = |p: &str| sanitize(p.as_bytes()).ok().flatten();
        assert_eq!(ok("package/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(ok("x/./a//b"), Some(PathBuf::from("a/b")));
        assert_eq!(ok("package/"), None);
        assert!(sanitize(b"package/aux.txt").is_err());
        assert!(sanitize(b"package/com7").is_err());
        assert!(ok("package/computer.js").is_some());
    }

    #[test]
    fn sanitize_refuses_what_windows_cannot_hold() {
        let refused = |name: &str| {
            let p = format!("package/lib/{name}");
            matches!(sanitize(p.as_bytes()), Err(PathProblem::Unsafe(_)))
        };
        for c in ['<', '>', ':', '"', '|', '?', '*'] {
            assert!(refused(&format!("a{c}b.js")), "{c}");
        }
        for c in 0u8..0x20 {
            let name = format!("a{}b", c as char);
            assert!(refused(&name), "control {c:#x}");
        }
        for dev in ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"] {
            assert!(refused(dev), "{dev}");
            assert!(refused(&dev.to_ascii_lowercase()), "{dev}");
            assert!(refused(&format!("{dev}.txt")), "{dev}.txt");
        }
        for port in ["COM", "LPT"] {
            for d in ["0", "1", "5", "9", "¹", "²", "³"] {
                assert!(refused(&format!("{port}{d}")), "{port}{d}");
                assert!(refused(&format!("{}{d}", port.to_lowercase())), "{port}{d}");
                assert!(refused(&format!("{port}{d}.tar.gz")), "{port}{d}.tar.gz");
            }
        }
        assert!(refused("nul.txt"));
        assert!(refused("com1.tar.gz"));
        assert!(refused("Aux .js"));
        assert!(refused("trailing."));
        assert!(refused("trailing "));
        assert!(refused("dir./x"));
        // Near misses are ordinary names.
        for ok in [
            "console.js",
            "com10",
            "lpt",
            "nul_",
            "auxiliary.js",
            "com¹x",
            "COM⁴",
            "a.b.c",
            ".npmignore",
        ] {
            assert!(
                matches!(sanitize(format!("package/{ok}").as_bytes()), Ok(Some(_))),
                "{ok}"
            );
        }
    }

    #[test]
    fn refuses_windows_names_through_the_extractor() {
        for name in ["package/nul.txt", "package/a|b", "package/COM\u{b2}"] {
            let data = tgz(&[(name, EntryType::Regular, b"x")]);
            let err = refusal(&data);
            assert_eq!(err.code(), "EUNSAFE_ENTRY", "{name}");
        }
    }

    #[test]
    fn header_size_at_the_integer_limit_is_refused_not_a_panic() {
        let mut tar_bytes = Vec::new();
        let mut h = tar::Header::new_gnu();
        h.set_path("package/huge").unwrap();
        h.set_size(u64::MAX);
        h.set_cksum();
        tar_bytes.extend_from_slice(h.as_bytes());
        tar_bytes.extend_from_slice(&[0u8; 1024]);
        let data = gzip(&tar_bytes, Compression::fast());
        let err = refusal(&data);
        assert!(matches!(err.code(), "ETOO_LARGE" | "EBADARCHIVE"), "{err}");
    }

    #[test]
    fn accepts_zero_padding_after_the_gzip_stream_and_nothing_else() {
        let tar_bytes = plain_tar(&[
            ("package/package.json", b"{}"),
            ("package/dist/cli.js", b"console.log(1)"),
        ]);
        let one = gzip(&tar_bytes, Compression::fast());
        let two = [
            gzip(&tar_bytes[..1024], Compression::fast()),
            gzip(&tar_bytes[1024..], Compression::fast()),
        ]
        .concat();
        for stream in [&one, &two] {
            // A block's worth, a single byte and more than the read-ahead buffer of zeros.
            for pad in [512, 1, 3 * GZ_BUF + 7] {
                let data = [stream.clone(), vec![0u8; pad]].concat();
                let tmp = tempfile::tempdir().unwrap();
                let stats = run(&data, &tmp.path().join("out")).unwrap();
                assert_eq!(stats.files, 2, "padding {pad}");
            }
            // Anything else after the last member is refused, also after zeros.
            let mut late = vec![0u8; 3 * GZ_BUF];
            late.push(1);
            for tail in [b"x".to_vec(), vec![0, 0, 7], late, vec![0x1f]] {
                let data = [stream.clone(), tail.clone()].concat();
                let e = refusal(&data);
                assert_eq!(e.code(), "EBADARCHIVE", "tail of {} bytes", tail.len());
            }
        }
    }

    #[test]
    fn reads_every_gzip_member() {
        // One tar stream cut in two, each half its own gzip member: the second member holds
        // dist/cli.js, which a single-member reader would never see.
        let tar_bytes = plain_tar(&[
            ("package/package.json", b"{}"),
            ("package/dist/cli.js", b"console.log(1)"),
        ]);
        let mut data = gzip(&tar_bytes[..1024], Compression::fast());
        data.extend(gzip(&tar_bytes[1024..], Compression::fast()));
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("out");
        let stats = run(&data, &dest).unwrap();
        assert_eq!(stats.files, 2);
        assert_eq!(
            fs::read(dest.join("dist/cli.js")).unwrap(),
            b"console.log(1)"
        );
    }

    type RawRecord<'a> = (EntryType, &'a str, u64, &'a [u8]);

    /// A raw tar stream of (type, name, declared size, body) records, gzipped; the body may be
    /// shorter than the declared size, to show a header is refused before its body is read.
    fn raw_tgz(records: &[RawRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, name, size, body) in records {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(*kind);
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(*size);
            h.set_mode(0o644);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(body);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        gzip(&out, Compression::fast())
    }

    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in records {
            let rest = format!(" {k}={v}\n");
            let mut len = rest.len() + 1;
            while format!("{len}").len() + rest.len() != len {
                len += 1;
            }
            out.extend_from_slice(format!("{len}{rest}").as_bytes());
        }
        out
    }

    const L: EntryType = EntryType::GNULongName;
    const K: EntryType = EntryType::GNULongLink;
    const X: EntryType = EntryType::XHeader;
    const G: EntryType = EntryType::XGlobalHeader;
    const F: EntryType = EntryType::Regular;

    #[test]
    fn huge_extension_headers_are_refused_before_their_body_is_read() {
        // Each header declares 300 MiB but carries 1 KiB: reading it would fail as truncated,
        // so ETOO_LARGE shows the size was refused from the header alone.
        let huge = 300u64 << 20;
        for kind in [L, K, X, G] {
            let data = raw_tgz(&[
                (kind, "././@LongLink", huge, &[b'a'; 1024]),
                (F, "package/a.js", 1, b"x"),
            ]);
            let err = refusal(&data);
            assert_eq!(cap_hit(&err), Some("extensionHeader"), "{kind:?}: {err}");
            assert!(err.to_string().len() < 1000);
        }
    }

    #[test]
    fn extension_caps_sit_at_4_kib_names_and_64_kib_records() {
        let name = format!("package/{}", "n".repeat(MAX_EXTENDED_PATH_BYTES));
        let data = raw_tgz(&[
            (L, "././@LongLink", name.len() as u64, name.as_bytes()),
            (F, "package/a.js", 1, b"x"),
        ]);
        let err = refusal(&data);
        assert_eq!(cap_hit(&err), Some("extensionHeader"), "{err}");

        // A PAX record under 64 KiB whose path is over 4 KiB.
        let rec = pax(&[("path", &name)]);
        let data = raw_tgz(&[
            (X, "pax", rec.len() as u64, &rec),
            (F, "package/a.js", 1, b"x"),
        ]);
        let err = refusal(&data);
        assert_eq!(cap_hit(&err), Some("path"), "{err}");
        assert!(err.to_string().len() < 1000);

        let rec = pax(&[("comment", &"c".repeat(MAX_EXTENSION_BYTES as usize))]);
        let data = raw_tgz(&[
            (X, "pax", rec.len() as u64, &rec),
            (F, "package/a.js", 1, b"x"),
        ]);
        let err = refusal(&data);
        assert_eq!(cap_hit(&err), Some("extensionHeader"), "{err}");
    }

    #[test]
    fn long_names_and_pax_paths_apply_to_the_next_entry() {
        let long = format!("package/{}/cli.js", "d".repeat(120));
        let data = raw_tgz(&[
            (
                L,
                "././@LongLink",
                long.len() as u64 + 1,
                format!("{long}\0").as_bytes(),
            ),
            (F, "package/short", 2, b"ok"),
            (F, "package/plain.js", 1, b"p"),
        ]);
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("a");
        run(&data, &dest).unwrap();
        assert_eq!(
            fs::read(dest.join(&long["package/".len()..])).unwrap(),
            b"ok"
        );
        assert!(!dest.join("short").exists());
        assert_eq!(fs::read(dest.join("plain.js")).unwrap(), b"p");

        let rec = pax(&[
            ("path", "package/from-pax.js"),
            ("mtime", "1.5"),
            ("size", "2"),
        ]);
        let comment = pax(&[("comment", "built by git")]);
        let data = raw_tgz(&[
            (G, "global", comment.len() as u64, &comment),
            (X, "pax", rec.len() as u64, &rec),
            (F, "package/ignored", 2, b"px"),
        ]);
        let dest = tmp.path().join("b");
        run(&data, &dest).unwrap();
        assert_eq!(fs::read(dest.join("from-pax.js")).unwrap(), b"px");
        assert!(!dest.join("ignored").exists());
    }

    #[test]
    fn ambiguous_or_dangling_extensions_are_refused() {
        let name = b"package/a.js";
        let p = pax(&[("path", "package/b.js")]);
        let gpath = pax(&[("path", "package/c.js")]);
        let gsize = pax(&[("size", "1")]);
        let cases: Vec<(Vec<RawRecord>, &str)> = vec![
            (
                vec![
                    (L, "l", 12, name),
                    (L, "l", 12, name),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![
                    (X, "x", p.len() as u64, &p),
                    (X, "x", p.len() as u64, &p),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![
                    (L, "l", 12, name),
                    (X, "x", p.len() as u64, &p),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![
                    (G, "g", gpath.len() as u64, &gpath),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![
                    (G, "g", gsize.len() as u64, &gsize),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![(F, "package/x", 0, b""), (L, "l", 12, name)],
                "EBADARCHIVE",
            ),
            (
                vec![(X, "x", 7, b"garbage"), (F, "package/x", 0, b"")],
                "EBADARCHIVE",
            ),
        ];
        for (i, (records, code)) in cases.iter().enumerate() {
            let err = refusal(&raw_tgz(records));
            assert_eq!(err.code(), *code, "case {i}: {err}");
        }
    }

    #[test]
    fn a_file_and_a_folder_of_one_name_is_the_packages_fault() {
        let cases: &[&[(&str, EntryType, &[u8])]] = &[
            // A file, then a folder of the same name.
            &[
                ("package/lib", EntryType::Regular, b"x"),
                ("package/lib/", EntryType::Directory, b""),
            ],
            // A file, then a file below a folder of that name.
            &[
                ("package/lib", EntryType::Regular, b"x"),
                ("package/lib/a.js", EntryType::Regular, b"y"),
            ],
            // A folder, then a file of the same name.
            &[
                ("package/lib/", EntryType::Directory, b""),
                ("package/lib", EntryType::Regular, b"x"),
            ],
            // A folder made implicitly by a file below it, then a file of its name.
            &[
                ("package/lib/a.js", EntryType::Regular, b"y"),
                ("package/lib", EntryType::Regular, b"x"),
            ],
        ];
        for (i, entries) in cases.iter().enumerate() {
            let err = refusal(&tgz(entries));
            assert!(
                matches!(&err, StageError::UnsafeEntry { entry, .. } if entry == "lib"),
                "case {i}: {err}"
            );
        }
    }

    #[test]
    fn native_modules_folder_shipped_as_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        require_folders_or_absent(root, &["node_modules", "node-pty"], "u").unwrap();
        fs::create_dir(root.join("node_modules")).unwrap();
        require_folders_or_absent(root, &["node_modules", "node-pty"], "u").unwrap();
        fs::write(root.join("node_modules/node-pty"), "x").unwrap();
        let err = require_folders_or_absent(root, &["node_modules", "node-pty"], "u").unwrap_err();
        assert!(
            matches!(&err, StageError::UnsafeEntry { entry, .. } if entry == "node_modules/node-pty"),
            "{err}"
        );
        fs::remove_dir_all(root.join("node_modules")).unwrap();
        fs::write(root.join("node_modules"), "x").unwrap();
        let err = require_folders_or_absent(root, &["node_modules", "node-pty"], "u").unwrap_err();
        assert!(
            matches!(&err, StageError::UnsafeEntry { entry, .. } if entry == "node_modules"),
            "{err}"
        );
    }
}
