//! The package document cached in the store (`package-document.cache`) with its `ETag` and
//! `Last-Modified`, so a check that finds nothing new costs a 304 instead of the whole document.
//!
//! The file is one JSON header line (URL, validators, body length) then the body's raw bytes.
//! It is written atomically without the staging lock: an up-to-date check never waits for a
//! download, and concurrent writers each leave a whole file. Anything that does not read back
//! exactly is ignored and refetched.

use super::http::CacheValidators;
use crate::shared::error::{Op, Result, StageError};
use crate::shared::fsutil;
use crate::store::{Store, CACHE_FILE};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Room for the header line beside the body: a URL and two short validators.
const MAX_HEADER_BYTES: u64 = 16 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    len: u64,
}

/// A cached document: what to send back, and the body to use on a 304.
#[derive(Debug)]
pub(crate) struct Cached {
    pub validators: CacheValidators,
    pub body: Vec<u8>,
}

fn path(store: &Store) -> PathBuf {
    store.root().join(CACHE_FILE)
}

/// The cached document for `url`, when there is one that reads back whole within `max_bytes`.
pub(crate) fn read(store: &Store, url: &str, max_bytes: u64) -> Option<Cached> {
    // Read at the start of every check: a regular file only (a FIFO's open would wait past the
    // call's deadline and its abort), and capped whatever the file's size: a file past the cap
    // is not ours.
    let fsutil::SmallFile::Read(bytes) =
        fsutil::read_small(&path(store), max_bytes.saturating_add(MAX_HEADER_BYTES))
    else {
        return None;
    };
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let header: Header = serde_json::from_slice(&bytes[..newline]).ok()?;
    let body = &bytes[newline + 1..];
    if header.url != url || header.len != body.len() as u64 || header.len > max_bytes {
        return None;
    }
    if header.etag.is_none() && header.last_modified.is_none() {
        return None;
    }
    Some(Cached {
        validators: CacheValidators {
            etag: header.etag,
            last_modified: header.last_modified,
        },
        body: body.to_vec(),
    })
}

/// Distinguishes the temp files of concurrent writers in one process.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Caches `body` for `url` when it came with a validator; without one it could never be
/// revalidated, so any older copy is dropped instead.
pub(crate) fn write(
    store: &Store,
    url: &str,
    validators: &CacheValidators,
    body: &[u8],
) -> Result<()> {
    if validators.etag.is_none() && validators.last_modified.is_none() {
        return remove(store);
    }
    let header = Header {
        url: url.to_string(),
        etag: validators.etag.clone(),
        last_modified: validators.last_modified.clone(),
        len: body.len() as u64,
    };
    let final_path = path(store);
    crate::shared::fsutil::create_dir_all(store.root())?;
    let tmp = store.root().join(format!(
        ".{CACHE_FILE}.tmp-{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> Result<()> {
        let mut f = File::create(&tmp).map_err(|e| StageError::io(Op::Creating, &tmp, e))?;
        let mut head = serde_json::to_vec(&header).expect("header serialises");
        head.push(b'\n');
        f.write_all(&head)
            .and_then(|_| f.write_all(body))
            .map_err(|e| StageError::io(Op::Writing, &tmp, e))?;
        // Not flushed to disk: a cache torn by a power cut fails its length check and is
        // refetched, and skipping the flush keeps the no-change check fast.
        drop(f);
        fs::rename(&tmp, &final_path).map_err(|e| StageError::io(Op::Renaming, &tmp, e))
    };
    let result = write();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

pub(crate) fn remove(store: &Store) -> Result<()> {
    let p = path(store);
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StageError::io(Op::Removing, &p, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etag(v: &str) -> CacheValidators {
        CacheValidators {
            etag: Some(v.into()),
            last_modified: None,
        }
    }

    #[test]
    fn round_trip_and_mismatches() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let body = b"{\"a\":\n1}";
        write(&store, "http://r/k", &etag("\"1\""), body).unwrap();
        let c = read(&store, "http://r/k", 1000).unwrap();
        assert_eq!(
            (c.body.as_slice(), c.validators),
            (&body[..], etag("\"1\""))
        );
        // Another document, or a cap it no longer fits under: not used.
        assert!(read(&store, "http://r/other", 1000).is_none());
        assert!(read(&store, "http://r/k", 4).is_none());
        // Torn: the length no longer matches.
        let p = store.root().join(CACHE_FILE);
        let mut bytes = fs::read(&p).unwrap();
        bytes.pop();
        fs::write(&p, &bytes).unwrap();
        assert!(read(&store, "http://r/k", 1000).is_none());
        fs::write(&p, b"garbage").unwrap();
        assert!(read(&store, "http://r/k", 1000).is_none());
        // No validator: nothing cached, the old copy dropped.
        write(&store, "http://r/k", &CacheValidators::default(), body).unwrap();
        assert!(!p.exists());
        // No temp file is left behind.
        write(&store, "http://r/k", &etag("\"2\""), body).unwrap();
        let names: Vec<_> = fs::read_dir(store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [CACHE_FILE]);
    }
}
