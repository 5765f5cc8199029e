//! The tarball's bytes: opening the download (resumed from kept bytes when the server agrees),
//! keeping what arrives for a later resume, and reading kept bytes back.

use super::http::Http;
use super::resume::{self, Kept, RangeAnswer};
use crate::shared::call::Control;
use crate::shared::error::{Op, Result, StageError};
use crate::shared::fsutil::blocking;
use crate::store::Store;
use crate::store::{Sidecar, Validator};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The tarball response, and where its body starts.
pub(crate) struct Opened {
    pub(crate) resp: reqwest::Response,
    /// Kept bytes to feed first: the response carries the bytes after them.
    pub(crate) replay: Option<Kept>,
    /// Whether the body's bytes are appended to the kept file as they arrive.
    pub(crate) keeping: bool,
}

const TARBALL_ACCEPT: &str = "application/octet-stream";
/// Kept bytes are read back in pieces of this size: large enough to be cheap, small enough
/// that the pipe to the extractor stays a few MB at most.
pub(crate) const REPLAY_CHUNK: u64 = 256 * 1024;

fn validator_of(resp: &reqwest::Response) -> Option<Validator> {
    let h = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    Validator::from_headers(h(reqwest::header::ETAG), h(reqwest::header::LAST_MODIFIED))
}

/// One version's tarball as every request for it needs it: where it is, what it must hash to,
/// the store its bytes are kept in for a resume, and the call that asks.
pub(crate) struct Tarball<'a> {
    pub(crate) store: &'a Store,
    pub(crate) http: &'a Http,
    pub(crate) url: &'a str,
    pub(crate) version: &'a str,
    /// The integrity the document promises, which kept bytes must have been kept for.
    pub(crate) integrity: &'a str,
    pub(crate) ctl: &'a Control,
}

/// Asks for the tarball: for the rest of the kept bytes when there are some, else (or when the
/// server's answer does not line up with them) for all of it, from byte 0.
pub(crate) async fn open_tarball(t: &Tarball<'_>, kept: Option<Kept>) -> Result<Opened> {
    if let Some(k) = kept {
        if let Some(opened) = open_rest(t, k).await? {
            return Ok(opened);
        }
    }
    let resp = t.http.open(t.url, TARBALL_ACCEPT, t.ctl).await?;
    whole_body(t, resp).await
}

/// Asks for the bytes after the kept ones `k`: the rest of the body, or the whole of it when
/// the server sends it all; `None` when its answer does not line up with them, which are
/// discarded.
async fn open_rest(t: &Tarball<'_>, k: Kept) -> Result<Option<Opened>> {
    let Tarball {
        store,
        http,
        url,
        version,
        ctl,
        ..
    } = *t;
    let if_range = k.sidecar.validator.header_value();
    let resp = match http
        .open_range(url, TARBALL_ACCEPT, k.len, if_range, ctl)
        .await
    {
        Ok(resp) => resp,
        // The server cannot serve past the kept bytes (the tarball changed size): start over.
        Err(StageError::Http { status: 416, .. }) => {
            discard_kept(store, version).await?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    match judge(&resp, &k) {
        RangeAnswer::Resumed => {
            let (store, version, sidecar) = (store.clone(), version.to_string(), k.sidecar.clone());
            blocking(move || resume::touch(&store, &version, &sidecar)).await?;
            Ok(Some(Opened {
                resp,
                replay: Some(k),
                keeping: true,
            }))
        }
        RangeAnswer::WholeBody => whole_body(t, resp).await.map(Some),
        RangeAnswer::Mismatch => {
            discard_kept(store, version).await?;
            Ok(None)
        }
    }
}

/// What the answer to a range request for the bytes after `k` means for them.
fn judge(resp: &reqwest::Response, k: &Kept) -> RangeAnswer {
    let content_range = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok());
    resume::judge_range_answer(
        resp.status().as_u16(),
        content_range,
        validator_of(resp).as_ref(),
        &k.sidecar,
        k.len,
    )
}

/// A response with the whole body, from byte 0; its bytes are kept when they can be resumed.
async fn whole_body(t: &Tarball<'_>, resp: reqwest::Response) -> Result<Opened> {
    let keeping = start_keeping(t, &resp).await?;
    Ok(Opened {
        resp,
        replay: None,
        keeping,
    })
}

/// Removes the kept bytes of `version`, on a blocking thread.
pub(crate) async fn discard_kept(store: &Store, version: &str) -> Result<()> {
    let (store, version) = (store.clone(), version.to_string());
    blocking(move || resume::discard(&store, &version)).await
}

/// Starts keeping a whole-body response's bytes, when it has a validator to guard a resume
/// with; without one a resume could never be checked, so nothing is kept.
async fn start_keeping(t: &Tarball<'_>, resp: &reqwest::Response) -> Result<bool> {
    let validator = validator_of(resp);
    let size = resp.content_length();
    let (store, version, url, integrity) = (
        t.store.clone(),
        t.version.to_string(),
        t.url.to_string(),
        t.integrity.to_string(),
    );
    blocking(move || match validator {
        Some(validator) => {
            let sidecar = Sidecar {
                url,
                integrity,
                validator,
                size,
                time: crate::store::now_secs(),
            };
            resume::begin(&store, &version, &sidecar)?;
            Ok(true)
        }
        None => {
            resume::discard(&store, &version)?;
            Ok(false)
        }
    })
    .await
}

/// Appends the body's pieces to the kept file, in order, on a blocking thread; the file stays
/// a prefix of the tarball whatever happens. Returns the bytes written.
pub(crate) fn append_kept(
    path: &Path,
    mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> Result<u64> {
    use std::io::Write;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| StageError::io(Op::Opening, path, e))?;
    let mut w = io::BufWriter::with_capacity(256 * 1024, f);
    let mut n = 0u64;
    while let Some(piece) = rx.blocking_recv() {
        w.write_all(&piece)
            .map_err(|e| StageError::io(Op::Writing, path, e))?;
        n += piece.len() as u64;
    }
    w.flush()
        .map_err(|e| StageError::io(Op::Writing, path, e))?;
    Ok(n)
}

/// Reads the next piece of kept bytes (at most `max`) from a blocking thread.
pub(crate) async fn read_kept(
    mut f: std::fs::File,
    max: u64,
    path: PathBuf,
) -> Result<(std::fs::File, bytes::Bytes)> {
    blocking(move || {
        let mut buf = Vec::with_capacity(max as usize);
        (&mut f)
            .take(max)
            .read_to_end(&mut buf)
            .map_err(|e| StageError::io(Op::Reading, &path, e))?;
        Ok((f, bytes::Bytes::from(buf)))
    })
    .await
}
