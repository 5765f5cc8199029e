//! Resumable tarball downloads. The bytes of a tarball received so far are kept in the store
//! (`staging/<v>.download`) with a sidecar (`staging/<v>.download.json`) naming what they are:
//! the URL, the integrity the document promised, the server's validator, the full size and when
//! they were last written. The next attempt, in this call or a later one, in this process or
//! another, asks for the rest with `Range` guarded by `If-Range`. Only the holder of the staging
//! lock reads or writes them.

use crate::shared::error::{Op, Result, StageError};
use crate::shared::fsutil;
use crate::store::{now_secs, read_sidecar, Sidecar, Store, Validator};
use std::fs::{self, File};
use std::io::{self};
use std::path::Path;

/// How the server answered a request for the rest of the kept bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// 206 for exactly the bytes after the kept ones, of the same representation: append.
    Resumed,
    /// 200: the server ignored `Range`, or `If-Range` told it the tarball changed. Its body is
    /// the whole tarball: start over from byte 0 with it.
    WholeBody,
    /// Anything else (a range that does not line up, a changed validator): drop the kept bytes
    /// and ask again without a range.
    Mismatch,
}

/// Judges the answer to `Range: bytes=<offset>-` sent for the bytes `kept` describes.
pub(crate) fn judge_range_answer(
    status: u16,
    content_range: Option<&str>,
    validator: Option<&Validator>,
    kept: &Sidecar,
    offset: u64,
) -> RangeAnswer {
    match status {
        200 => return RangeAnswer::WholeBody,
        206 => {}
        _ => return RangeAnswer::Mismatch,
    }
    // A 206 that names another validator is another representation, whatever If-Range said.
    if validator.is_some_and(|v| *v != kept.validator) {
        return RangeAnswer::Mismatch;
    }
    let Some((first, last, total)) = content_range.and_then(parse_content_range) else {
        return RangeAnswer::Mismatch;
    };
    let size_agrees = match (total, kept.size) {
        (Some(t), Some(s)) => t == s,
        _ => true,
    };
    let reaches_end = total.is_none_or(|t| last + 1 == t);
    if first == offset && size_agrees && reaches_end {
        RangeAnswer::Resumed
    } else {
        RangeAnswer::Mismatch
    }
}

/// Parses `Content-Range: bytes <first>-<last>/<total or *>`.
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if last < first || total.is_some_and(|t| last >= t) {
        return None;
    }
    Some((first, last, total))
}

/// Kept bytes found usable for a download: their description and how many there are.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub sidecar: Sidecar,
    pub len: u64,
}

/// The kept bytes for `version` when they may be resumed for `url` and `integrity`; anything
/// else found is removed. Call with the staging lock held, from a blocking thread.
pub(crate) fn load(
    store: &Store,
    version: &str,
    url: &str,
    integrity: &str,
) -> Result<Option<Kept>> {
    let found = read_sidecar(&store.sidecar_path(version)).and_then(|sidecar| {
        // Not through a link: the bytes are appended to, and must stay inside the store.
        let len = fs::symlink_metadata(store.kept_path(version))
            .ok()
            .filter(|m| m.is_file())?
            .len();
        sidecar
            .usable_for(url, integrity, len, now_secs())
            .then_some(Kept { sidecar, len })
    });
    if found.is_none() {
        discard(store, version)?;
    }
    Ok(found)
}

/// Starts keeping a new download: the sidecar first, then an empty kept file. Call with the
/// staging lock held.
pub(crate) fn begin(store: &Store, version: &str, sidecar: &Sidecar) -> Result<()> {
    let kept = store.kept_path(version);
    remove_file(&kept)?;
    write_sidecar(store, version, sidecar)?;
    File::create(&kept).map_err(|e| StageError::io(Op::Creating, &kept, e))?;
    Ok(())
}

/// Replaces the sidecar in one rename. Not flushed to disk: after a power cut a torn sidecar
/// fails to parse and torn kept bytes fail the hash, and either way the download starts over,
/// so the flushes would only slow every download down.
fn write_sidecar(store: &Store, version: &str, sidecar: &Sidecar) -> Result<()> {
    let path = store.sidecar_path(version);
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec(sidecar).expect("sidecar serialises");
    fs::write(&tmp, json).map_err(|e| StageError::io(Op::Writing, &tmp, e))?;
    fsutil::rename_retrying(store.renamer(), &tmp, &path)
}

/// Marks kept bytes as resumed now, so an active download never ages out.
pub(crate) fn touch(store: &Store, version: &str, sidecar: &Sidecar) -> Result<()> {
    write_sidecar(
        store,
        version,
        &Sidecar {
            time: now_secs(),
            ..sidecar.clone()
        },
    )
}

/// Removes the kept bytes of `version` and their sidecar (the bytes first: a kept file without
/// a sidecar is never used).
pub(crate) fn discard(store: &Store, version: &str) -> Result<()> {
    remove_file(&store.kept_path(version))?;
    remove_file(&store.sidecar_path(version))
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StageError::io(Op::Removing, path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{kept_version, MAX_KEPT_AGE};

    fn sidecar(size: Option<u64>) -> Sidecar {
        Sidecar {
            url: "http://r/k.tgz".into(),
            integrity: "sha512-x".into(),
            validator: Validator::Etag("\"v1\"".into()),
            size,
            time: now_secs(),
        }
    }

    #[test]
    fn validator_prefers_a_strong_etag() {
        let lm = "Tue, 01 Dec 2026 00:00:00 GMT";
        assert_eq!(
            Validator::from_headers(Some("\"a\""), Some(lm)),
            Some(Validator::Etag("\"a\"".into()))
        );
        assert_eq!(
            Validator::from_headers(Some("W/\"a\""), Some(lm)),
            Some(Validator::LastModified(lm.into()))
        );
        assert_eq!(Validator::from_headers(Some("W/\"a\""), None), None);
        assert_eq!(Validator::from_headers(None, None), None);
        let long = format!("\"{}\"", "a".repeat(400));
        assert_eq!(Validator::from_headers(Some(&long), None), None);
        assert_eq!(Validator::from_headers(Some("\"a\nb\""), None), None);
    }

    #[test]
    fn content_range_parses_and_rejects_nonsense() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, 199, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, 9, None)));
        assert_eq!(parse_content_range("bytes 10-5/200"), None);
        assert_eq!(parse_content_range("bytes 0-200/200"), None);
        assert_eq!(parse_content_range("bytes */200"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes 0-1/-3"), None);
    }

    #[test]
    fn range_answers() {
        let k = sidecar(Some(200));
        let etag = Validator::Etag("\"v1\"".into());
        let other = Validator::Etag("\"v2\"".into());
        let judge = |status, cr, v| judge_range_answer(status, cr, v, &k, 100);
        assert_eq!(
            judge(206, Some("bytes 100-199/200"), Some(&etag)),
            RangeAnswer::Resumed
        );
        assert_eq!(
            judge(206, Some("bytes 100-199/200"), None),
            RangeAnswer::Resumed
        );
        assert_eq!(judge(200, None, Some(&other)), RangeAnswer::WholeBody);
        // Wrong first byte, wrong size, not to the end, changed validator, no Content-Range.
        for (cr, v) in [
            (Some("bytes 90-199/200"), Some(&etag)),
            (Some("bytes 100-299/300"), Some(&etag)),
            (Some("bytes 100-149/200"), Some(&etag)),
            (Some("bytes 100-199/200"), Some(&other)),
            (None, Some(&etag)),
        ] {
            assert_eq!(judge(206, cr, v), RangeAnswer::Mismatch, "{cr:?} {v:?}");
        }
        assert_eq!(judge(416, None, None), RangeAnswer::Mismatch);
    }

    #[test]
    fn sidecar_use_rules() {
        let now = now_secs();
        let k = sidecar(Some(200));
        assert!(k.usable_for("http://r/k.tgz", "sha512-x", 100, now));
        assert!(!k.usable_for("http://r/other.tgz", "sha512-x", 100, now));
        assert!(!k.usable_for("http://r/k.tgz", "sha512-y", 100, now));
        assert!(!k.usable_for("http://r/k.tgz", "sha512-x", 0, now));
        assert!(!k.usable_for("http://r/k.tgz", "sha512-x", 200, now));
        let week = MAX_KEPT_AGE.as_secs();
        assert!(!k.usable_for("http://r/k.tgz", "sha512-x", 100, now + week));
        assert!(k.is_stale(now + week) && !k.is_stale(now));
        // A time in the future (a clock set back) is not trusted either.
        assert!(k.is_stale(now - 10));
    }

    #[test]
    fn load_keeps_usable_bytes_and_removes_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        fs::create_dir_all(store.staging_dir()).unwrap();
        let k = sidecar(Some(200));
        begin(&store, "2.0.0", &k).unwrap();
        assert!(load(&store, "2.0.0", &k.url, &k.integrity)
            .unwrap()
            .is_none());
        assert!(!store.kept_path("2.0.0").exists() && !store.sidecar_path("2.0.0").exists());

        begin(&store, "2.0.0", &k).unwrap();
        fs::write(store.kept_path("2.0.0"), [7u8; 50]).unwrap();
        let found = load(&store, "2.0.0", &k.url, &k.integrity)
            .unwrap()
            .unwrap();
        assert_eq!((found.len, found.sidecar), (50, k.clone()));
        // The document now promises another tarball: the bytes go.
        assert!(load(&store, "2.0.0", &k.url, "sha512-new")
            .unwrap()
            .is_none());
        assert!(!store.kept_path("2.0.0").exists());

        // A sidecar that does not parse is not ours to trust.
        fs::write(store.kept_path("2.0.0"), [7u8; 50]).unwrap();
        fs::write(store.sidecar_path("2.0.0"), "{").unwrap();
        assert!(load(&store, "2.0.0", &k.url, &k.integrity)
            .unwrap()
            .is_none());
        assert!(!store.sidecar_path("2.0.0").exists());
    }

    #[test]
    fn kept_names_map_to_versions() {
        assert_eq!(kept_version("1.2.3.download"), Some("1.2.3"));
        assert_eq!(kept_version("1.2.3.download.json"), Some("1.2.3"));
        assert_eq!(kept_version("notes.download"), None);
        assert_eq!(kept_version("1.2.3"), None);
    }
}
