//! Test tarballs, and the extractor run on them, for the tests of every step.

use super::limits::{ExtractLimits, Extracted};
use super::unpack::extract_tgz;
use crate::shared::error::{Result, StageError};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use tar::EntryType;

/// A gzipped tar of `(path, kind, body)` entries, names written raw; links point out of the folder.
pub(super) fn tgz(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
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
pub(super) fn plain_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
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
pub(super) fn gzip(bytes: &[u8], level: Compression) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), level);
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub(super) const LIMITS: ExtractLimits = ExtractLimits {
    max_bytes: 1 << 20,
    max_entries: 100,
};

pub(super) fn run(data: &[u8], dest: &Path) -> Result<Extracted> {
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
pub(super) fn refusal(data: &[u8]) -> StageError {
    let tmp = tempfile::tempdir().unwrap();
    run(data, &tmp.path().join("a")).unwrap_err()
}

/// The error extracting `data` with no bins under `limits` ends with, the cancel flag already
/// set when `cancelled`; the test fails if it succeeds.
pub(super) fn refusal_with(data: &[u8], limits: ExtractLimits, cancelled: bool) -> StageError {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("a");
    extract_tgz(data, &dest, limits, &[], "u", &AtomicBool::new(cancelled)).unwrap_err()
}
