//! The entry loop: each file and folder of the tarball written below a fresh folder, within the
//! caps, and queued for flushing.

use super::headers::{check_kind, check_pax_size, entry_path, Extensions};
use super::inflate::{drain, inflate};
use super::limits::{archive_error, too_large, unsafe_entry, ExtractLimits, Extracted};
use super::paths::{relative_path, shown_rel, top_component};
use crate::shared::error::{Limit, Op, Result, StageError};
use crate::shared::fsutil;
use crate::shared::text::clip;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tar::EntryType;

/// Large buffers: the runtime's files are megabytes each, and fewer syscalls is most of the speed.
const COPY_BUF: usize = 256 * 1024;

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
    fs::create_dir(dest).map_err(|e| StageError::io(Op::Creating, dest, e))?;
    let mut archive = tar::Archive::new(inflate(src, limits));
    let mut unpacker = Unpacker::new(dest, limits, bins, url, cancel);
    unpacker.unpack_all(&mut archive)?;
    drain(archive.into_inner(), url)?;
    unpacker.finish()
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
    /// Writes the bodies (and queues their flushes) beside the inflating and untarring.
    writer: fsutil::FileWriter,
}

impl<'a> Unpacker<'a> {
    /// An unpacker writing below `dest`, its writing and flush threads started.
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
            writer: fsutil::FileWriter::start(COPY_BUF),
        }
    }

    /// What was written, once every file is written and flushed.
    fn finish(self) -> Result<Extracted> {
        self.writer.finish()?;
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
                Limit::Entries,
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
            None => StageError::io(Op::Creating, target, e),
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
        let file = open_for_write(&target, executable).map_err(|e| match e {
            StageError::Io { .. } if kind_clash(self.dest, rel).is_some() => {
                self.clash(rel, &target, io::ErrorKind::AlreadyExists.into())
            }
            e => e,
        })?;
        self.writer.start_file(file, target)?;
        let written = self.copy_body(entry)?;
        if written != size {
            return Err(StageError::BadArchive {
                url: self.url.into(),
                reason: format!("entry `{shown}` declares {size} bytes but holds {written}"),
            });
        }
        // The writing thread queues the file for its flush once its bytes are written.
        self.writer.end_file()?;
        self.stats.files += 1;
        self.stats.bytes += written;
        Ok(())
    }

    /// Ok while `size` more bytes keep the unpacked total within the cap.
    fn check_room(&self, size: u64) -> Result<()> {
        let max = self.limits.max_bytes;
        if self.stats.bytes.saturating_add(size) > max {
            let reason = format!("unpacked size exceeds {max} bytes");
            return Err(too_large(self.url, Limit::UnpackedBytes, reason));
        }
        Ok(())
    }

    /// How many bytes of the entry's body were passed to the writer, polling for cancellation
    /// (and for a failed write) between chunks.
    fn copy_body<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<u64> {
        let mut written = 0u64;
        loop {
            self.check_cancel()?;
            let mut buf = self.writer.buffer()?;
            // A failed read ends the extraction: its buffer is not needed back.
            let n = entry
                .read(&mut buf)
                .map_err(|e| archive_error(self.url, e))?;
            if n == 0 {
                self.writer.give_back(buf)?;
                return Ok(written);
            }
            self.writer.write(buf, n)?;
            written += n as u64;
        }
    }
}

/// Whether the file gets the executable bit: any execute bit in its header, or named in `bins`.
fn is_executable(header: &tar::Header, rel: &Path, bins: &[String]) -> bool {
    let rel_str = rel.to_string_lossy().replace('\\', "/");
    header.mode().map(|m| m & 0o111 != 0).unwrap_or(false) || bins.contains(&rel_str)
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

/// Refuses a package whose own files sit where a folder must go (`node_modules` or
/// `node_modules/node-pty` shipped as a file, or a link): the native modules are copied there, and
/// the package, not the disk, is at fault.
pub(crate) fn require_folders_or_absent(root: &Path, rel: &[&str], url: &str) -> Result<()> {
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
            Err(e) => return Err(StageError::io(Op::Reading, &at, e)),
        }
    }
    Ok(())
}

/// `target` created (or truncated) for writing, with mode 0o755 when `executable`, else 0o644.
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
        .map_err(|e| StageError::io(Op::Creating, target, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode passed to open is masked by the umask and ignored for an existing file; set it
        // explicitly so the runtime's bin is executable whatever the app's umask.
        let mode = if executable { 0o755 } else { 0o644 };
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| StageError::io(Op::SettingModeOf, target, e))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::limits::MAX_PATH_DEPTH;
    use crate::extract::testkit::{gzip, refusal, refusal_with, run, tgz, LIMITS};
    use flate2::Compression;

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
