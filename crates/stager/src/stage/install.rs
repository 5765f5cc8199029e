//! One version into `versions/<v>`: the download piped into the extractor beside the copy of the
//! native modules, the checks on the result, the completion record and the rename; retried as a
//! whole.

use super::finish::finish;
use super::plan::Run;
use crate::config::{Config, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES};
use crate::extract::{
    extract_tgz, ExtractLimits, Extracted, HARD_MAX_ENTRIES, HARD_MAX_UNPACKED_BYTES,
};
use crate::net::Http;
use crate::net::Throttle;
use crate::net::{
    append_kept, discard_kept, open_tarball, read_kept, Opened, Tarball, REPLAY_CHUNK,
};
use crate::net::{resume, Kept};
use crate::net::{Attempt, RetryPolicy};
use crate::registry::Hasher;
use crate::registry::{rewrite_tarball_url, Dist};
use crate::shared::call::Control;
use crate::shared::error::Limit;
use crate::shared::error::Op;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil;
use crate::shared::fsutil::blocking;
use crate::shared::phase::Phase;
use crate::store::{CompletionRecord, StagingLock, Store, NATIVE_MODULE};
use crate::trust::Compat;
use std::io;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::task::JoinHandle;

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
/// call) resumes them. An attempt that got further into the tarball than any before it does not
/// count against the retries (see `RetryPolicy::download`). Only the holder of the staging lock may call it: the
/// partial folders and kept bytes it writes and removes are then no other run's.
pub(super) async fn download_with_retries(_staging: &StagingLock, run: &Run<'_>) -> Result<()> {
    let Run {
        cfg,
        store,
        http,
        ctl,
        latest: ref version,
        ref dist,
        ref native_src,
        ref compat,
    } = *run;
    let job = Job {
        store,
        http,
        dist,
        url: rewrite_tarball_url(&dist.tarball, &cfg.registry),
        version,
        limits: limits_for(cfg, dist),
        native_src,
        compat,
        ctl,
    };
    let mut policy = RetryPolicy::download(http.retries());
    loop {
        let mut attempt = Attempt::default();
        let Err(err) = stage_once(&job, &mut attempt).await else {
            // The version is in place: bytes that cannot be removed now are swept later.
            let _ = discard_kept(store, version).await;
            return Ok(());
        };
        job.clean_up(&err).await?;
        if !policy.retry(ctl, &job.url, &err, attempt).await? {
            return Err(err);
        }
    }
}

/// One version's download, as every attempt at it sees it.
struct Job<'a> {
    store: &'a Store,
    http: &'a Http,
    dist: &'a Dist,
    /// The tarball's URL, rewritten onto the configured registry.
    url: String,
    version: &'a str,
    limits: ExtractLimits,
    native_src: &'a Path,
    compat: &'a Compat,
    ctl: &'a Control,
}

/// One download-and-extract attempt into `versions/<v>.partial`, then the finishing steps and
/// the rename. Three things run at once: the download (hashing each chunk as it arrives, and
/// appending it to the kept bytes), the extractor (inflate, untar, write) fed through a small
/// channel, and the copy of the native modules into their own partial folder. When the attempt
/// resumes kept bytes, they are read back (and hashed) into the extractor first, then the
/// network's. Nothing of the tarball is held in memory beyond a few chunks.
async fn stage_once(job: &Job<'_>, attempt: &mut Attempt) -> Result<()> {
    let opened = job.open().await?;
    attempt.resumed = opened.replay.is_some();
    attempt.start = opened.replay.as_ref().map_or(0, |k| k.len);
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(PIPE_CHUNKS);
    let cancel = Arc::new(AtomicBool::new(false));
    let (keep_tx, keeper) = job.spawn_keeper(opened.keeping);
    let tasks = Tasks {
        native_copy: job.spawn_native_copy(),
        extractor: job.spawn_extractor(rx, cancel.clone()),
        keeper,
    };
    let mut pump = Pump::new(job, opened, tx, keep_tx, cancel);
    let pumped = pump.run().await;
    attempt.received = pump.received;
    let body = pump.close(pumped.is_err());
    let (extracted, native_bytes) = tasks.join(job).await?;
    // The transport's error is the cause when both failed.
    let whole_body = pumped?;
    // With the whole body read, a hash mismatch explains any extraction failure too.
    if whole_body {
        job.verify(body.hasher)?;
    }
    let stats = extracted?;
    let native_bytes = native_bytes?;
    job.ctl
        .report(Phase::Finishing, body.downloaded, body.total);
    job.promote(stats, native_bytes).await
}

impl Job<'_> {
    /// The tarball's response, after the kept bytes of an earlier attempt when they resume.
    async fn open(&self) -> Result<Opened> {
        let integrity = self.dist.integrity.to_string();
        let kept = blocking({
            let (store, version, url, integrity) = (
                self.store.clone(),
                self.version.to_string(),
                self.url.clone(),
                integrity.clone(),
            );
            move || resume::load(&store, &version, &url, &integrity)
        })
        .await?;
        // Kept bytes are replayed within this call's caps: an earlier call with larger caps may
        // have kept more than this one accepts in all, which already proves the body too large.
        let max = max_download(self.limits);
        if let Some(k) = kept.as_ref().filter(|k| k.len > max) {
            return Err(StageError::TooLarge {
                url: self.url.clone(),
                limit: Limit::TarballBytes,
                reason: format!(
                    "the {} bytes kept from an earlier download are over this call's {max}",
                    k.len
                ),
            });
        }
        let tarball = Tarball {
            store: self.store,
            http: self.http,
            url: &self.url,
            version: self.version,
            integrity: &integrity,
            ctl: self.ctl,
        };
        open_tarball(&tarball, kept).await
    }

    /// The copy of the native modules into their partial folder; gives the bytes copied.
    fn spawn_native_copy(&self) -> JoinHandle<Result<u64>> {
        let from = self.native_src.to_path_buf();
        let to = self.store.native_partial_dir(self.version);
        tokio::task::spawn_blocking(move || {
            fsutil::remove_tree(&to)?;
            fsutil::copy_tree(&from, &to.join(NATIVE_MODULE[1]))
        })
    }

    /// The extractor, reading the tarball from `rx` into the partial; gives what it wrote.
    fn spawn_extractor(
        &self,
        rx: tokio::sync::mpsc::Receiver<Chunk>,
        cancel: Arc<AtomicBool>,
    ) -> JoinHandle<Result<Extracted>> {
        let (partial, limits) = (self.store.partial_dir(self.version), self.limits);
        let (bins, url) = (self.dist.bins.clone(), self.url.clone());
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
    }

    /// When `keeping`, the writer that appends the body's pieces to the kept bytes, and the
    /// sender that feeds it; else neither.
    fn spawn_keeper(&self, keeping: bool) -> (Option<KeepSender>, Option<JoinHandle<Result<u64>>>) {
        if !keeping {
            return (None, None);
        }
        let (ktx, krx) = tokio::sync::mpsc::channel::<bytes::Bytes>(PIPE_CHUNKS);
        let path = self.store.kept_path(self.version);
        let handle = tokio::task::spawn_blocking(move || append_kept(&path, krx));
        (Some(ktx), Some(handle))
    }

    /// `Ok` when the whole body's hash is the registry's integrity, else `EINTEGRITY`.
    fn verify(&self, hasher: Hasher) -> Result<()> {
        hasher
            .verify(&self.dist.integrity)
            .map_err(|actual| StageError::Integrity {
                url: self.url.clone(),
                expected: self.dist.integrity.to_string(),
                actual,
            })
    }

    /// The version in place: `finish` on a blocking thread, with the completion record.
    async fn promote(&self, stats: Extracted, native_bytes: u64) -> Result<()> {
        let record = CompletionRecord {
            version: self.version.to_string(),
            integrity: self.dist.integrity.to_string(),
            files: stats.files,
            bytes: stats.bytes + native_bytes,
        };
        let (store, url, compat) = (self.store.clone(), self.url.clone(), self.compat.clone());
        let partial = store.partial_dir(self.version);
        let native_partial = store.native_partial_dir(self.version);
        blocking(move || finish(&store, &partial, &native_partial, &url, &compat, record)).await
    }

    /// `Ok` once a failed attempt's partials are out of their names, and its kept bytes gone too
    /// unless the network (or the caller) cut the download. A partial that cannot be deleted yet
    /// (a scanner still holding a file just written) waits as trash for a later sweep: it must
    /// neither replace the attempt's own error nor keep the next attempt from its name.
    async fn clean_up(&self, err: &StageError) -> Result<()> {
        let store = self.store.clone();
        let (partial, native) = (
            store.partial_dir(self.version),
            store.native_partial_dir(self.version),
        );
        blocking(move || {
            store.discard_leftover(&partial);
            store.discard_leftover(&native);
            Ok(())
        })
        .await?;
        // Kept bytes are worth keeping only when the network (or the caller) cut the download.
        let cut = err.is_retryable() || matches!(err, StageError::Aborted);
        if !cut {
            discard_kept(self.store, self.version).await?;
        }
        Ok(())
    }
}

/// The tasks an attempt runs beside the download.
struct Tasks {
    native_copy: JoinHandle<Result<u64>>,
    extractor: JoinHandle<Result<Extracted>>,
    keeper: Option<JoinHandle<Result<u64>>>,
}

impl Tasks {
    /// The extractor's and the native copy's own results, once every task has finished; an error
    /// when one could not be joined, or when kept bytes the keeper failed on could not be removed.
    async fn join(self, job: &Job<'_>) -> Result<(Result<Extracted>, Result<u64>)> {
        let discarded = match self.keeper {
            Some(keeper) => settle_keeper(keeper, job).await,
            None => Ok(()),
        };
        // Every task is awaited before any error is returned: the caller removes the partials next,
        // and a task still writing into them would race with that (or with the next attempt).
        let extracted = self
            .extractor
            .await
            .map_err(|e| StageError::joined("the extractor", e));
        let native_bytes = self
            .native_copy
            .await
            .map_err(|e| StageError::joined("the native module copy", e));
        discarded?;
        Ok((extracted?, native_bytes?))
    }
}

/// `Ok` once the keeper has finished and, when it failed, its kept bytes are gone.
async fn settle_keeper(keeper: JoinHandle<Result<u64>>, job: &Job<'_>) -> Result<()> {
    if matches!(keeper.await, Ok(Ok(_))) {
        return Ok(());
    }
    // Bytes that could not all be written are not a trustworthy prefix.
    discard_kept(job.store, job.version).await
}

/// Feeds the keeper: the pieces of the body to append to the kept bytes.
type KeepSender = tokio::sync::mpsc::Sender<bytes::Bytes>;

/// The download's side of an attempt: kept bytes read back, then the network's, each piece
/// hashed, counted and reported on its way to the extractor (and the network's to the keeper).
struct Pump<'a> {
    job: &'a Job<'a>,
    resp: reqwest::Response,
    replay: Option<Kept>,
    tx: tokio::sync::mpsc::Sender<Chunk>,
    keep_tx: Option<KeepSender>,
    /// Stops the extractor.
    cancel: Arc<AtomicBool>,
    // Hashing here, as chunks arrive, runs in parallel with the extractor's inflating.
    hasher: Hasher,
    throttle: Option<Throttle>,
    /// The tarball's size, when the server sent a Content-Length.
    total: Option<u64>,
    max_download: u64,
    /// Bytes between progress reports.
    step: u64,
    /// Bytes passed to the extractor, kept ones included.
    downloaded: u64,
    reported: u64,
    /// Bytes received from the network.
    received: u64,
}

/// What the pump leaves for the checks after it: the hash of the bytes it passed, their count
/// and the expected total.
struct Pumped {
    hasher: Hasher,
    downloaded: u64,
    total: Option<u64>,
}

impl<'a> Pump<'a> {
    /// A pump for the `opened` response, feeding the extractor through `tx` and the keeper
    /// through `keep_tx`.
    fn new(
        job: &'a Job<'a>,
        opened: Opened,
        tx: tokio::sync::mpsc::Sender<Chunk>,
        keep_tx: Option<KeepSender>,
        cancel: Arc<AtomicBool>,
    ) -> Pump<'a> {
        let offset = opened.replay.as_ref().map_or(0, |k| k.len);
        let throttle = job.http.max_bytes_per_second().map(Throttle::new);
        Pump {
            job,
            total: opened
                .resp
                .content_length()
                .map(|n| n.saturating_add(offset)),
            resp: opened.resp,
            replay: opened.replay,
            tx,
            keep_tx,
            cancel,
            hasher: job.dist.integrity.hasher(),
            step: progress_step(throttle.as_ref()),
            throttle,
            max_download: max_download(job.limits),
            downloaded: 0,
            reported: 0,
            received: 0,
        }
    }

    /// `true` once the whole body went to the extractor, `false` when it stopped reading first;
    /// cut short by the deadline or an abort.
    async fn run(&mut self) -> Result<bool> {
        let job = self.job;
        job.ctl.report(Phase::Downloading, 0, self.total);
        job.ctl
            .guard(&job.url, async {
                if !self.replay_kept().await? {
                    return Ok(false);
                }
                self.stream().await
            })
            .await
    }

    /// `true` once the kept bytes (if any) went to the extractor, read back and hashed; `false`
    /// when it stopped reading first.
    async fn replay_kept(&mut self) -> Result<bool> {
        let Some(len) = self.replay.as_ref().map(|k| k.len) else {
            return Ok(true);
        };
        let kept_path = self.job.store.kept_path(self.job.version);
        let mut f = std::fs::File::open(&kept_path)
            .map_err(|e| StageError::io(Op::Opening, &kept_path, e))?;
        let mut left = len;
        while left > 0 {
            let (back, piece) = read_kept(f, left.min(REPLAY_CHUNK), kept_path.clone()).await?;
            f = back;
            if piece.is_empty() {
                // Truncated on disk: a read-back failure, which restarts from byte 0.
                return Err(StageError::io(
                    Op::Reading,
                    &kept_path,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the kept bytes are shorter than recorded",
                    ),
                ));
            }
            left -= piece.len() as u64;
            self.hasher.update(&piece);
            self.downloaded += piece.len() as u64;
            if self.tx.send(Ok(piece)).await.is_err() {
                return Ok(false);
            }
        }
        self.reported = self.downloaded;
        self.job
            .ctl
            .report(Phase::Downloading, self.downloaded, self.total);
        Ok(true)
    }

    /// `true` once the network's bytes all went to the extractor, `false` when it stopped
    /// reading first.
    async fn stream(&mut self) -> Result<bool> {
        let (http, url) = (self.job.http, self.job.url.as_str());
        loop {
            let chunk = self
                .resp
                .chunk()
                .await
                .map_err(|e| http.transport_error(url, Phase::Downloading, &e))?;
            let Some(mut rest) = chunk else {
                self.job
                    .ctl
                    .report(Phase::Downloading, self.downloaded, self.total);
                return Ok(true);
            };
            while !rest.is_empty() {
                let piece = self.next_piece(&mut rest).await;
                if !self.pass(piece).await? {
                    return Ok(false);
                }
            }
        }
    }

    /// The next piece of `rest` to pass on: all of it, or under a rate cap one slice, once the
    /// cap lets it through.
    async fn next_piece(&mut self, rest: &mut bytes::Bytes) -> bytes::Bytes {
        match &mut self.throttle {
            Some(t) => {
                let piece = rest.split_to(rest.len().min(t.slice()));
                t.take(piece.len()).await;
                piece
            }
            None => std::mem::take(rest),
        }
    }

    /// `true` once a piece of the network's bytes is hashed, counted against the cap, kept,
    /// reported and sent to the extractor; `false` when the extractor stopped reading.
    async fn pass(&mut self, piece: bytes::Bytes) -> Result<bool> {
        self.hasher.update(&piece);
        self.downloaded += piece.len() as u64;
        self.received += piece.len() as u64;
        if self.downloaded > self.max_download {
            return Err(StageError::TooLarge {
                url: self.job.url.clone(),
                limit: Limit::TarballBytes,
                reason: format!("the tarball is over {} bytes", self.max_download),
            });
        }
        if let Some(k) = &self.keep_tx {
            // A writer that failed has said why; the download goes on without it.
            let _ = k.send(piece.clone()).await;
        }
        if self.downloaded - self.reported >= self.step {
            self.reported = self.downloaded;
            self.job
                .ctl
                .report(Phase::Downloading, self.downloaded, self.total);
        }
        // An extractor that stopped before the end did not read the whole body.
        Ok(self.tx.send(Ok(piece)).await.is_ok())
    }

    /// What the pump passed, once it is closed: its pipes to the extractor and the keeper end
    /// here, so both finish. After a failure the extractor is stopped first.
    fn close(self, failed: bool) -> Pumped {
        if failed {
            // Stop the extractor: it may be mid-file, and the partial is removed after it returns.
            self.cancel.store(true, Ordering::Relaxed);
            let _ = self
                .tx
                .try_send(Err(io::Error::other("download interrupted")));
        }
        Pumped {
            hasher: self.hasher,
            downloaded: self.downloaded,
            total: self.total,
        }
    }
}

/// The most tarball bytes an attempt accepts. gzip never makes a tar much larger than its files
/// plus a header block or two per entry, so a body past this is endless or hostile: refused
/// before it fills the disk (its kept bytes go too, as the error is not a network cut).
fn max_download(limits: ExtractLimits) -> u64 {
    limits
        .max_bytes
        .saturating_mul(2)
        .saturating_add(limits.max_entries.saturating_mul(2048))
        .saturating_add(1 << 20)
}

/// Bytes between progress reports: under a cap, every couple of slices so a slow bar still
/// moves.
fn progress_step(throttle: Option<&Throttle>) -> u64 {
    throttle.map_or(PROGRESS_STEP, |t| (t.slice() as u64 * 2).min(PROGRESS_STEP))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Limits, NetConfig, Rollout, Trust};
    use crate::registry::{sri_of, Expected};

    #[test]
    fn registry_size_hints_at_the_integer_limit_do_not_overflow() {
        let cfg = Config {
            user_data: "userData".into(),
            current_version: "1.0.0".into(),
            native_deps_source: "native".into(),
            registry: "http://127.0.0.1:1/".into(),
            package_name: "kanban".into(),
            dist_tag: "latest".into(),
            net: NetConfig::default(),
            limits: Limits::default(),
            trust: Trust::default(),
            provenance: None,
            rollout: Rollout::default(),
        };
        let dist = Dist {
            tarball: "t".into(),
            integrity: Expected::from_sri(&sri_of(b"x")).unwrap(),
            unpacked_size: Some(u64::MAX),
            file_count: Some(u64::MAX),
            bins: Vec::new(),
            attestations_url: None,
        };
        let limits = limits_for(&cfg, &dist);
        assert_eq!(limits.max_bytes, HARD_MAX_UNPACKED_BYTES);
        assert_eq!(limits.max_entries, HARD_MAX_ENTRIES);
    }
}
