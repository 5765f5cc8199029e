//! One version into `versions/<v>`: the download piped into the extractor beside the copy of the
//! native modules, the checks on the result, the completion record and the rename; retried as a
//! whole.

use crate::call::{Control, Phase};
use crate::config::{
    Config, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES, HARD_MAX_ENTRIES,
    HARD_MAX_UNPACKED_BYTES,
};
use crate::download::{append_kept, open_tarball, read_kept, Opened, REPLAY_CHUNK};
use crate::error::{Result, StageError};
use crate::extract::{extract_tgz, ExtractLimits};
use crate::fsutil::{self, blocking};
use crate::guards::read_manifest;
use crate::http::Http;
use crate::registry::{rewrite_tarball_url, Dist};
use crate::resume;
use crate::retry::{Attempt, RetryPolicy};
use crate::store::{self, CompletionRecord, Store, CLI_ENTRY, NATIVE_MODULE};
use crate::throttle::Throttle;
use crate::trust::{self, Compat};
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One piece of the response body on its way to the extractor.
type Chunk = io::Result<bytes::Bytes>;

/// Chunks buffered between the download and the extractor: enough to keep both busy, small
/// enough that memory stays flat whatever the tarball's size.
const PIPE_CHUNKS: usize = 8;
/// Download progress is reported every 256 KiB: smooth for a progress bar, a few dozen events per runtime.
const PROGRESS_STEP: u64 = 256 * 1024;

pub(crate) fn limits_for(cfg: &Config, dist: &Dist) -> ExtractLimits {
    // 2x the registry's own figure: room for directory entries and headers, far below a bomb.
    let max_bytes = cfg
        .limits
        .max_unpacked_bytes
        .or(dist
            .unpacked_size
            .map(|s| s.saturating_mul(2).saturating_add(1 << 20)))
        .unwrap_or(DEFAULT_MAX_UNPACKED_BYTES)
        .min(HARD_MAX_UNPACKED_BYTES);
    let max_entries = cfg
        .limits
        .max_entries
        .or(dist
            .file_count
            .map(|n| n.saturating_mul(2).saturating_add(64)))
        .unwrap_or(DEFAULT_MAX_ENTRIES)
        .min(HARD_MAX_ENTRIES);
    ExtractLimits {
        max_bytes,
        max_entries,
    }
}

/// Downloads and stages into `versions/<v>`, retrying transient failures and one integrity
/// failure (a mirror may have served a bad copy once). The partial never outlives a failure; the
/// tarball bytes received so far do, when the network is what failed, so the next attempt (or
/// call) resumes them. An attempt that got further than the last does not count against the
/// retries (see `RetryPolicy::download`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn download_with_retries(
    cfg: &Config,
    store: &Store,
    http: &Http,
    dist: &Dist,
    version: &str,
    native_src: &Path,
    compat: &Compat,
    ctl: &Control,
) -> Result<()> {
    let url = rewrite_tarball_url(&dist.tarball, &cfg.registry);
    let limits = limits_for(cfg, dist);
    let mut policy = RetryPolicy::download(http.retries());
    let discard_kept = || {
        let (store, version) = (store.clone(), version.to_string());
        blocking(move || resume::discard(&store, &version))
    };
    loop {
        let mut attempt = Attempt::default();
        let result = stage_once(
            store,
            http,
            dist,
            &url,
            version,
            limits,
            native_src,
            compat,
            ctl,
            &mut attempt,
        )
        .await;
        let err = match result {
            Ok(()) => {
                // The version is in place: bytes that cannot be removed now are swept later.
                let _ = discard_kept().await;
                return Ok(());
            }
            Err(e) => e,
        };
        let (partial, native) = (
            store.partial_dir(version),
            store.native_partial_dir(version),
        );
        blocking(move || {
            fsutil::remove_tree(&partial)?;
            fsutil::remove_tree(&native)
        })
        .await?;
        // Kept bytes are worth keeping only when the network (or the caller) cut the download.
        let cut = err.is_retryable() || matches!(err, StageError::Aborted);
        if !cut {
            discard_kept().await?;
        }
        if !policy.retry(ctl, &url, &err, attempt).await? {
            return Err(err);
        }
    }
}

/// One download-and-extract attempt into `versions/<v>.partial`, then the finishing steps and
/// the rename. Three things run at once: the download (hashing each chunk as it arrives, and
/// appending it to the kept bytes), the extractor (inflate, untar, write) fed through a small
/// channel, and the copy of the native modules into their own partial folder. When the attempt
/// resumes kept bytes, they are read back (and hashed) into the extractor first, then the
/// network's. Nothing of the tarball is held in memory beyond a few chunks.
#[allow(clippy::too_many_arguments)]
async fn stage_once(
    store: &Store,
    http: &Http,
    dist: &Dist,
    url: &str,
    version: &str,
    limits: ExtractLimits,
    native_src: &Path,
    compat: &Compat,
    ctl: &Control,
    attempt: &mut Attempt,
) -> Result<()> {
    let integrity = dist.integrity.to_string();
    let kept = blocking({
        let (store, version, url, integrity) = (
            store.clone(),
            version.to_string(),
            url.to_string(),
            integrity.clone(),
        );
        move || resume::load(&store, &version, &url, &integrity)
    })
    .await?;
    let Opened {
        mut resp,
        replay,
        keeping,
    } = open_tarball(store, http, url, version, &integrity, kept, ctl).await?;
    attempt.resumed = replay.is_some();
    let offset = replay.as_ref().map_or(0, |k| k.len);
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(PIPE_CHUNKS);
    let cancel = Arc::new(AtomicBool::new(false));
    let partial = store.partial_dir(version);
    let native_partial = store.native_partial_dir(version);
    let kept_path = store.kept_path(version);

    let native_copy = {
        let (from, to) = (native_src.to_path_buf(), native_partial.clone());
        tokio::task::spawn_blocking(move || {
            fsutil::remove_tree(&to)?;
            fsutil::copy_tree(&from, &to.join(NATIVE_MODULE[1]))
        })
    };

    let extractor = {
        let (cancel, partial, bins, url) = (
            cancel.clone(),
            partial.clone(),
            dist.bins.clone(),
            url.to_string(),
        );
        tokio::task::spawn_blocking(move || {
            let mut reader = PipeReader {
                rx,
                current: bytes::Bytes::new(),
                pos: 0,
            };
            let result = extract_tgz(&mut reader, &partial, limits, &bins, &url, &cancel);
            if matches!(&result, Err(e) if !matches!(e, StageError::Aborted)) {
                // Read the rest of the body so its hash is known: a refused or corrupt archive
                // that does not match the registry's integrity was damaged in transit, and is
                // reported (and retried) as EINTEGRITY rather than blamed on the package.
                let _ = io::copy(&mut reader, &mut io::sink());
            }
            result
        })
    };

    let (keep_tx, keeper) = if keeping {
        let (ktx, krx) = tokio::sync::mpsc::channel::<bytes::Bytes>(PIPE_CHUNKS);
        let path = kept_path.clone();
        let handle = tokio::task::spawn_blocking(move || append_kept(&path, krx));
        (Some(ktx), Some(handle))
    } else {
        (None, None)
    };

    // Hashing here, as chunks arrive, runs in parallel with the extractor's inflating.
    let mut hasher = dist.integrity.hasher();
    let total = resp.content_length().map(|n| n.saturating_add(offset));
    let mut throttle = http.max_bytes_per_second().map(Throttle::new);
    // gzip never makes a tar much larger than its files plus a header block or two per entry, so
    // a body past this is endless or hostile: refused before it fills the disk (its kept bytes
    // go too, as the error is not a network cut).
    let max_download = limits
        .max_bytes
        .saturating_mul(2)
        .saturating_add(limits.max_entries.saturating_mul(2048))
        .saturating_add(1 << 20);
    // Under a cap, progress is reported every couple of slices so a slow bar still moves.
    let step = throttle
        .as_ref()
        .map_or(PROGRESS_STEP, |t| (t.slice() as u64 * 2).min(PROGRESS_STEP));
    let mut downloaded = 0u64;
    let mut reported = 0u64;
    let mut received = 0u64;
    ctl.report(Phase::Downloading, 0, total);
    let pump = ctl
        .guard(url, async {
            if let Some(k) = &replay {
                let mut f = std::fs::File::open(&kept_path)
                    .map_err(|e| StageError::io("opening", &kept_path, e))?;
                let mut left = k.len;
                while left > 0 {
                    let (back, piece) =
                        read_kept(f, left.min(REPLAY_CHUNK), kept_path.clone()).await?;
                    f = back;
                    if piece.is_empty() {
                        // Truncated on disk: a read-back failure, which restarts from byte 0.
                        return Err(StageError::io(
                            "reading",
                            &kept_path,
                            io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the kept bytes are shorter than recorded",
                            ),
                        ));
                    }
                    left -= piece.len() as u64;
                    hasher.update(&piece);
                    downloaded += piece.len() as u64;
                    if tx.send(Ok(piece)).await.is_err() {
                        return Ok(false);
                    }
                }
                reported = downloaded;
                ctl.report(Phase::Downloading, downloaded, total);
            }
            loop {
                let chunk = resp
                    .chunk()
                    .await
                    .map_err(|e| http.transport_error(url, "downloading", &e));
                let mut rest = match chunk {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => {
                        ctl.report(Phase::Downloading, downloaded, total);
                        return Ok(true);
                    }
                    Err(e) => return Err(e),
                };
                while !rest.is_empty() {
                    let piece = match &mut throttle {
                        Some(t) => {
                            let piece = rest.split_to(rest.len().min(t.slice()));
                            t.take(piece.len()).await;
                            piece
                        }
                        None => std::mem::take(&mut rest),
                    };
                    hasher.update(&piece);
                    downloaded += piece.len() as u64;
                    received += piece.len() as u64;
                    if downloaded > max_download {
                        return Err(StageError::TooLarge {
                            url: url.into(),
                            limit: "tarballBytes",
                            reason: format!("the tarball is over {max_download} bytes"),
                        });
                    }
                    if let Some(k) = &keep_tx {
                        // A writer that failed has said why; the download goes on without it.
                        let _ = k.send(piece.clone()).await;
                    }
                    if downloaded - reported >= step {
                        reported = downloaded;
                        ctl.report(Phase::Downloading, downloaded, total);
                    }
                    if tx.send(Ok(piece)).await.is_err() {
                        // The extractor stopped before the end: the body was not all read.
                        return Ok(false);
                    }
                }
            }
        })
        .await;
    attempt.received = received;
    if pump.is_err() {
        // Stop the extractor: it may be mid-file, and the partial is removed after it returns.
        cancel.store(true, Ordering::Relaxed);
        let _ = tx.try_send(Err(io::Error::other("download interrupted")));
    }
    drop(tx);
    drop(keep_tx);
    let mut discarded = Ok(());
    if let Some(keeper) = keeper {
        let kept_ok = matches!(keeper.await, Ok(Ok(_)));
        if !kept_ok {
            // Bytes that could not all be written are not a trustworthy prefix.
            let (store, version) = (store.clone(), version.to_string());
            discarded = blocking(move || resume::discard(&store, &version)).await;
        }
    }
    // Every task is awaited before any error is returned: the caller removes the partials next,
    // and a task still writing into them would race with that (or with the next attempt).
    let extracted = extractor
        .await
        .map_err(|e| StageError::joined("the extractor", e));
    let native_bytes = native_copy
        .await
        .map_err(|e| StageError::joined("the native module copy", e));
    discarded?;
    let extracted = extracted?;
    let native_bytes = native_bytes?;
    // The transport's error is the cause when both failed.
    let whole_body = pump?;
    // With the whole body read, a hash mismatch explains any extraction failure too.
    if whole_body {
        hasher
            .verify(&dist.integrity)
            .map_err(|actual| StageError::Integrity {
                url: url.into(),
                expected: dist.integrity.to_string(),
                actual,
            })?;
    }
    let stats = extracted?;
    let native_bytes = native_bytes?;
    ctl.report(Phase::Finishing, downloaded, total);

    let (store, version, url, integrity) = (
        store.clone(),
        version.to_string(),
        url.to_string(),
        dist.integrity.to_string(),
    );
    let record = CompletionRecord {
        version,
        integrity,
        files: stats.files,
        bytes: stats.bytes + native_bytes,
    };
    let compat = compat.clone();
    blocking(move || finish(&store, &partial, &native_partial, &url, &compat, record)).await
}

/// Moves the native modules in, checks the CLI, writes the completion record, flushes, renames.
fn finish(
    store: &Store,
    partial: &Path,
    native_partial: &Path,
    url: &str,
    compat: &Compat,
    record: CompletionRecord,
) -> Result<()> {
    // The tarball's own package.json is what the runtime runs with; a document may lack (or
    // misstate) its engines and dependencies. Checked before anything is promoted.
    if let Some(manifest) = read_manifest(&partial.join("package.json")) {
        trust::check_compat(
            &manifest,
            compat.host_node.as_ref(),
            compat.node_pty.as_ref(),
        )
        .map_err(|r| r.into_error(&record.version))?;
    }
    let mut cli = partial.to_path_buf();
    cli.extend(CLI_ENTRY);
    if !cli.is_file() {
        return Err(StageError::MissingCli {
            url: url.into(),
            missing: CLI_ENTRY.join("/"),
        });
    }
    let mut native_dst = partial.to_path_buf();
    native_dst.extend(NATIVE_MODULE);
    // The package may ship its own node_modules/node-pty (ours, built for this app, replaces
    // it), but never as a file or link: that is the package's fault, not the disk's.
    crate::extract::require_folders_or_absent(partial, &NATIVE_MODULE, url)?;
    fsutil::remove_tree(&native_dst)?;
    fsutil::create_dir_all(native_dst.parent().expect("node_modules"))?;
    fsutil::rename_retrying(
        store.renamer(),
        &native_partial.join(NATIVE_MODULE[1]),
        &native_dst,
    )?;
    fsutil::remove_tree(native_partial)?;
    store::write_record(partial, &record)?;
    // Every name in the tree is durable before the tree gets its final name.
    fsutil::sync_tree_dirs(partial)?;
    let final_dir = store.version_dir(&record.version);
    fsutil::rename_retrying(store.renamer(), partial, &final_dir)?;
    fsutil::sync_dir(&store.versions_dir())
}

/// The extractor's view of the download: a blocking `Read` over the channel of body chunks.
struct PipeReader {
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    current: bytes::Bytes,
    pos: usize,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
