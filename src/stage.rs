//! The staging algorithm: resolve, guard, lock, download + verify + extract, copy native
//! modules, rename into place, repoint.

use crate::config::{
    Config, Provenance, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES, HARD_MAX_ENTRIES,
    HARD_MAX_UNPACKED_BYTES,
};
use crate::doccache;
use crate::error::{clip, Result, StageError};
use crate::extract::{extract_tgz, ExtractLimits};
use crate::fsutil;
use crate::http::{log_retry, Control, Fetched, Http, Phase, Throttle};
use crate::log::Level;
use crate::provenance::{self, Check, Subject, MAX_ATTESTATIONS_BYTES};
use crate::registry::{
    document_url, rewrite_tarball_url, Dist, Document, ACCEPT_CORGI, ACCEPT_FULL,
};
use crate::resume::{self, Kept, RangeAnswer, Sidecar, Validator};
use crate::store::{self, CompletionRecord, IncompatibleEntry, Store, CLI_ENTRY, NATIVE_MODULE};
use crate::trust::{self, Compat, Signed};
use crate::version;

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// The result of one call; mirrors the JS `StageOutcome` union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    UpToDate,
    BadVersion(String),
    AlreadyStaged,
    Staged(String),
}

impl Outcome {
    /// The JS `kind` of this outcome.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::UpToDate => "up-to-date",
            Outcome::BadVersion(_) => "bad-version",
            Outcome::AlreadyStaged => "already-staged",
            Outcome::Staged(_) => "staged",
        }
    }
}

/// One piece of the response body on its way to the extractor.
type Chunk = io::Result<bytes::Bytes>;

/// How long to wait between polls of a lock held by another stager. Polling (rather than a
/// blocking wait on a thread) keeps the wait abortable and bounded by the deadline.
const LOCK_POLL: Duration = Duration::from_millis(25);
/// Chunks buffered between the download and the extractor: enough to keep both busy, small
/// enough that memory stays flat whatever the tarball's size.
const PIPE_CHUNKS: usize = 8;
/// Download progress is reported every 256 KiB: smooth for a progress bar, a few dozen events per runtime.
const PROGRESS_STEP: u64 = 256 * 1024;

/// Runs the whole check-and-stage algorithm (design §4).
pub async fn check_and_stage(cfg: &Config, store: &Store, ctl: &Control) -> Result<Outcome> {
    // An already-aborted signal never starts a request.
    if ctl.is_aborted() {
        return Err(StageError::Aborted);
    }
    ctl.report(Phase::Resolving, 0, None);
    let http = Http::new(&cfg.net, &cfg.registry)?;
    let doc_url = document_url(&cfg.registry, &cfg.package_name);
    // The cool-down reads publish dates, which only the full document has; without it the
    // abbreviated document is all we fetch.
    let cool_down = cfg.trust.min_release_age.filter(|d| !d.is_zero());
    let mut full = cool_down.is_some();
    let accept = if full { ACCEPT_FULL } else { ACCEPT_CORGI };
    let doc = fetch_document(cfg, store, &http, &doc_url, accept, ctl).await?;
    let tagged = doc.tag_version(&cfg.dist_tag)?;
    ctl.log(
        Level::Info,
        format!(
            "dist-tag {} of {} names {}",
            clip(&cfg.dist_tag),
            clip(&cfg.package_name),
            clip(&tagged)
        ),
        &[
            ("tag", (&cfg.dist_tag).into()),
            ("version", (&tagged).into()),
            ("registry", (&cfg.registry).into()),
        ],
    );
    let invalid = |version: &str| StageError::InvalidVersion {
        package: cfg.package_name.clone(),
        tag: cfg.dist_tag.clone(),
        version: version.to_string(),
    };
    let tagged_v = semver::Version::parse(&tagged).map_err(|_| invalid(&tagged))?;

    let latest = match cool_down {
        None => tagged,
        Some(age) => {
            let minutes = age.as_secs() / 60;
            let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            match trust::cooled_candidate(&doc, &tagged_v, trust::now_ms(), age_ms) {
                Some(v) => {
                    if v != tagged {
                        ctl.log(
                            Level::Info,
                            format!(
                                "cool-down: {} is younger than {minutes} minutes (or deprecated); considering {}",
                                clip(&tagged),
                                clip(&v)
                            ),
                            &[("version", (&v).into()), ("minutes", minutes.into())],
                        );
                    }
                    v
                }
                None => {
                    ctl.log(
                        Level::Info,
                        format!(
                            "cool-down: no release up to {} is {minutes} minutes old and not deprecated",
                            clip(&tagged)
                        ),
                        &[("version", (&tagged).into()), ("minutes", minutes.into())],
                    );
                    return Ok(Outcome::UpToDate);
                }
            }
        }
    };

    // Guards, in the original's order.
    let latest_v = semver::Version::parse(&latest).map_err(|_| invalid(&latest))?;
    // A current version that is not semver (a dev build, say) counts as older than anything;
    // `v1.2.3` and `=1.2.3` are cleaned as npm does, and build metadata never makes a version newer.
    if let Some(current) = version::clean(&cfg.current_version) {
        if version::compare(&latest_v, &current) != std::cmp::Ordering::Greater {
            ctl.log(
                Level::Info,
                format!(
                    "up to date: {} is not newer than the running {current}",
                    clip(&latest)
                ),
                &[("current", (&current.to_string()).into())],
            );
            return Ok(Outcome::UpToDate);
        }
    }
    if store.is_bad(&latest) {
        ctl.log(
            Level::Info,
            format!("{} is marked bad: not staged", clip(&latest)),
            &[("version", (&latest).into())],
        );
        return Ok(Outcome::BadVersion(latest));
    }
    if already_staged(store, &latest) {
        ctl.log(
            Level::Info,
            "already staged: the pointer names it (or a newer version), whole",
            &[("version", (&latest).into())],
        );
        return Ok(Outcome::AlreadyStaged);
    }

    let native_src = cfg.native_deps_source.join(NATIVE_MODULE[1]);
    if !native_src.is_dir() {
        return Err(StageError::NativeDeps {
            path: cfg.native_deps_source.clone(),
        });
    }
    let compat = Compat {
        host_node: cfg.trust.host_node_version.clone(),
        node_pty: bundled_node_pty_version(&native_src),
    };
    compat_guard(store, &doc, &latest, &compat, ctl)?;
    check_signatures(cfg, &http, &doc_url, &doc, &mut full, &latest, ctl).await?;
    ctl.log(
        Level::Info,
        format!("staging {}", clip(&latest)),
        &[("version", (&latest).into())],
    );
    let dist = doc.dist(&latest)?;
    if let Some(provenance) = &cfg.provenance {
        check_provenance(cfg, provenance, &http, &dist, &latest, ctl).await?;
    }

    // Calls share a run only when it stages what each would: the same tarball, the same
    // native modules, the same host to check against.
    let run_of = format!(
        "{}\n{}\n{}\n{:?}",
        dist.integrity,
        rewrite_tarball_url(&dist.tarball, &cfg.registry),
        native_src.display(),
        compat
    );
    single_flight(store, &latest, &run_of, ctl, || {
        stage_locked(cfg, store, &http, &dist, &latest, &native_src, &compat, ctl)
    })
    .await
}

/// The document as `accept` asks for it, fetched unconditionally: the full document, which the
/// cool-down and expiring signing keys need, is not cached.
async fn fetch_plain(
    cfg: &Config,
    http: &Http,
    url: &str,
    accept: &str,
    ctl: &Control,
) -> Result<Document> {
    // The raw bytes are dropped once parsed: the document is never held twice.
    Document::parse(
        url,
        &http
            .get_bytes(url, accept, cfg.limits.max_document_bytes, ctl)
            .await?,
    )
}

/// The bundled node-pty's version, from its package.json; `None` (not checked) when it has none.
fn bundled_node_pty_version(native_src: &Path) -> Option<nodejs_semver::Version> {
    read_manifest(&native_src.join("package.json"))?
        .get("version")?
        .as_str()
        .and_then(|v| nodejs_semver::Version::parse(v).ok())
}

/// A package.json read whole: real ones are a few KB, so anything past this cap is not one and
/// is not read into memory.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// A package.json as JSON, or `None` when it is missing, oversized or not JSON.
fn read_manifest(path: &Path) -> Option<serde_json::Value> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// The compatibility guard before any download: a refusal remembered from an earlier download
/// (re-checked, as the app may have been updated since), then the document's own entry.
fn compat_guard(
    store: &Store,
    doc: &Document,
    latest: &str,
    compat: &Compat,
    ctl: &Control,
) -> Result<()> {
    let (host, pty) = (compat.host_node.as_ref(), compat.node_pty.as_ref());
    let remembered = store
        .incompatible_versions()
        .remove(latest)
        .and_then(|e| trust::still_refused(&e.guard, &e.range, host, pty));
    let refusal = match remembered {
        Some(r) => Some(r),
        None => doc
            .entry(latest)
            .and_then(|entry| trust::check_compat(entry, host, pty).err()),
    };
    match refusal {
        None => Ok(()),
        Some(r) => {
            let e = r.into_error(latest);
            ctl.log(Level::Warn, e.to_string(), &[("version", latest.into())]);
            Err(e)
        }
    }
}

/// The registry's signatures of `latest`: a present signature must verify with a known key, and
/// with `requireSignatures` one must be present. Fetches the full document for the publish time
/// only when a key in use expires.
async fn check_signatures(
    cfg: &Config,
    http: &Http,
    doc_url: &str,
    doc: &Document,
    full: &mut bool,
    latest: &str,
    ctl: &Control,
) -> Result<()> {
    let keys = cfg
        .trust
        .registry_keys
        .clone()
        .unwrap_or_else(trust::public_keys);
    let signatures = doc.signatures(latest);
    let published = if trust::needs_publish_time(&signatures, &keys) {
        if *full {
            doc.published_ms(latest)
        } else {
            *full = true;
            fetch_plain(cfg, http, doc_url, ACCEPT_FULL, ctl)
                .await?
                .published_ms(latest)
        }
    } else {
        None
    };
    let signed = trust::verify_signatures(
        &cfg.package_name,
        latest,
        doc.raw_integrity(latest),
        &signatures,
        &keys,
        published,
    );
    match signed {
        Ok(Signed::Verified(keyid)) => {
            ctl.log(
                Level::Info,
                format!("registry signature verified (key {})", clip(&keyid)),
                &[("version", latest.into()), ("keyid", (&keyid).into())],
            );
            Ok(())
        }
        Ok(Signed::Missing) if cfg.trust.require_signatures => Err(StageError::Signature {
            version: latest.to_string(),
            keyid: None,
            reason: "missing",
        }),
        Ok(Signed::Missing) => {
            ctl.log(
                Level::Debug,
                "no registry signature (not required)",
                &[("version", latest.into())],
            );
            Ok(())
        }
        Err(e) => {
            ctl.log(Level::Warn, e.to_string(), &[("version", latest.into())]);
            Err(e)
        }
    }
}

/// Before anything is downloaded or written: the version's attestation must prove it was built
/// by the configured repository (and workflow) with the sha512 the document names. The download
/// then checks the tarball against that same integrity, so the attestation covers what is staged.
async fn check_provenance(
    cfg: &Config,
    provenance: &Provenance,
    http: &Http,
    dist: &Dist,
    version: &str,
    ctl: &Control,
) -> Result<()> {
    let refused = |check: Check, reason: String| StageError::Provenance {
        package: cfg.package_name.clone(),
        version: version.to_string(),
        check: check.as_str(),
        reason,
    };
    let sha512 = dist.integrity.sha512().ok_or_else(|| {
        refused(
            Check::Subject,
            format!(
                "the registry's integrity `{}` is not one sha512 digest",
                dist.integrity
            ),
        )
    })?;
    let url = dist.attestations_url.as_deref().ok_or_else(|| {
        refused(
            Check::Attestation,
            "the package document names no attestations for this version".into(),
        )
    })?;
    let url = rewrite_tarball_url(url, &cfg.registry);
    let body = match http
        .get_bytes(&url, "application/json", MAX_ATTESTATIONS_BYTES, ctl)
        .await
    {
        Ok(body) => body,
        Err(StageError::Http {
            status: 404 | 410, ..
        }) => {
            return Err(refused(
                Check::Attestation,
                format!("the registry serves no attestations at {}", clip(&url)),
            ))
        }
        Err(StageError::TooLarge { .. }) => {
            return Err(refused(
                Check::Attestation,
                format!("the attestations are over {MAX_ATTESTATIONS_BYTES} bytes"),
            ))
        }
        Err(e) => return Err(e),
    };
    let subject = Subject {
        name: &cfg.package_name,
        version,
        sha512,
    };
    provenance::verify(&body, &subject, &provenance.policy, &provenance.trust_root)
        .map_err(|r| refused(r.check, r.reason))?;
    ctl.log(
        Level::Info,
        format!(
            "provenance verified: {} was built by {}",
            clip(version),
            clip(&provenance.policy.repository)
        ),
        &[
            ("version", version.into()),
            ("repository", (&provenance.policy.repository).into()),
        ],
    );
    Ok(())
}

/// The package document, revalidated against the store's cached copy when there is one: a 304
/// costs a few hundred bytes instead of the whole document. A cached copy that no longer parses
/// is dropped and the document fetched again unconditionally. The raw bytes are dropped once
/// parsed, and the cached body is read only on a 304: the document is never held twice.
async fn fetch_document(
    cfg: &Config,
    store: &Store,
    http: &Http,
    url: &str,
    accept: &str,
    ctl: &Control,
) -> Result<Document> {
    if accept != ACCEPT_CORGI {
        return fetch_plain(cfg, http, url, accept, ctl).await;
    }
    let max = cfg.limits.max_document_bytes;
    let read_cache = || {
        let (store, url) = (store.clone(), url.to_string());
        blocking(move || Ok(doccache::read(&store, &url, max)))
    };
    let validators = read_cache().await?.map(|c| c.validators);
    let mut fetched = http
        .get_document(url, ACCEPT_CORGI, max, validators.as_ref(), ctl)
        .await?;
    if let Fetched::NotModified = fetched {
        if let Some(doc) = read_cache()
            .await?
            .and_then(|c| Document::parse(url, &c.body).ok())
        {
            return Ok(doc);
        }
        // Cached copy gone (another writer) or unparsable: drop it and ask for the document.
        blocking({
            let store = store.clone();
            move || doccache::remove(&store)
        })
        .await?;
        fetched = http.get_document(url, ACCEPT_CORGI, max, None, ctl).await?;
    }
    let Fetched::Body { body, validators } = fetched else {
        return Err(StageError::Http {
            url: url.into(),
            status: 304,
            retry_after: None,
        });
    };
    let doc = Document::parse(url, &body)?;
    let (store, url) = (store.clone(), url.to_string());
    // The cache is an optimisation: a store that cannot take it still gets its update.
    let _ = blocking(move || doccache::write(&store, &url, &validators, &body)).await;
    Ok(doc)
}

/// Staging runs in flight in this process, by store and version. Concurrent calls for the same
/// version share one run instead of queueing on the store lock and re-checking one by one.
type FlightResult = Option<Result<Outcome>>;
/// The store, the version, and what the run stages (tarball, native modules, host).
type FlightKey = (PathBuf, String, String);
type Flights = HashMap<FlightKey, tokio::sync::watch::Receiver<FlightResult>>;
static FLIGHTS: LazyLock<Mutex<Flights>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Removes the in-flight entry when the leading run ends, however it ends (a dropped future too).
struct FlightEntry(FlightKey);
impl Drop for FlightEntry {
    fn drop(&mut self) {
        FLIGHTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

async fn single_flight<F, Fut>(
    store: &Store,
    version: &str,
    run_of: &str,
    ctl: &Control,
    run: F,
) -> Result<Outcome>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let key = (
        store.root().to_path_buf(),
        version.to_string(),
        run_of.to_string(),
    );
    loop {
        let joined = {
            let mut flights = FLIGHTS.lock().unwrap_or_else(|e| e.into_inner());
            match flights.get(&key) {
                Some(rx) => Err(rx.clone()),
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    flights.insert(key.clone(), rx);
                    Ok(tx)
                }
            }
        };
        match joined {
            Ok(tx) => {
                let _entry = FlightEntry(key.clone());
                let result = run().await;
                tx.send_replace(Some(result.clone()));
                return result;
            }
            Err(mut rx) => {
                let shared = ctl
                    .guard(version, async {
                        Ok(rx
                            .wait_for(Option::is_some)
                            .await
                            .ok()
                            .and_then(|r| r.clone()))
                    })
                    .await?;
                match shared {
                    // The leader was aborted or dropped by its own caller: this call is not, so
                    // it runs the staging itself.
                    None
                    | Some(Err(StageError::Aborted))
                    | Some(Err(StageError::Timeout {
                        phase: "staging", ..
                    })) => continue,
                    Some(result) => return result,
                }
            }
        }
    }
}

/// Steps 3 to 7: under the store lock, re-check, clean up, stage (or reuse), repoint, prune.
#[allow(clippy::too_many_arguments)]
async fn stage_locked(
    cfg: &Config,
    store: &Store,
    http: &Http,
    dist: &Dist,
    latest: &str,
    native_src: &Path,
    compat: &Compat,
    ctl: &Control,
) -> Result<Outcome> {
    let latest = latest.to_string();
    let mut lock = blocking({
        let store = store.clone();
        move || store.lock_file()
    })
    .await?;
    let lock_path = store.root().join(store::LOCK_FILE);
    let mut waiting = false;
    let _guard = loop {
        match lock.try_write() {
            Ok(guard) => break guard,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !waiting {
                    waiting = true;
                    ctl.report(Phase::WaitingForLock, 0, None);
                    ctl.log(
                        Level::Info,
                        "waiting for another staging run to release the store",
                        &[("lock", (&lock_path.display().to_string()).into())],
                    );
                }
            }
            Err(e) => return Err(StageError::io("locking", &lock_path, e)),
        }
        ctl.sleep(&lock_path.display().to_string(), LOCK_POLL)
            .await?;
    };

    // Another stager may have finished this version (or a newer one) while we waited, the app
    // may have marked it bad meanwhile, or the pointer names a whole folder the original
    // TypeScript stager left without a completion record.
    let before = blocking({
        let (store, latest, integrity) =
            (store.clone(), latest.clone(), dist.integrity.to_string());
        move || store.with_store_lock(|| recheck_locked(&store, &latest, &integrity))
    })
    .await?;
    if let Some(outcome) = before {
        ctl.log(
            Level::Info,
            format!("re-checked under the lock: {}", outcome.kind()),
            &[("version", (&latest).into())],
        );
        return Ok(outcome);
    }

    let (reuse, swept) = blocking({
        let (store, latest) = (store.clone(), latest.clone());
        let integrity = dist.integrity.to_string();
        move || -> Result<(bool, Vec<String>)> {
            // With the staging lock held no run is in flight, so every partial is a crashed run's.
            let swept = store.sweep_stale_locked(Some(&latest))?;
            fsutil::create_dir_all(&store.versions_dir())?;
            // A whole, unpointed folder is a run that died before its pointer write: reuse it,
            // when it holds the tarball this document (and its checked signature or provenance)
            // names; a folder staged from another registry's bytes is staged again.
            let same_tarball = store::read_record(&store.version_dir(&latest))
                .is_some_and(|r| r.integrity == integrity);
            if store.is_whole(&latest) && same_tarball {
                return Ok((true, swept));
            }
            store.discard_version_locked(&latest)?;
            Ok((false, swept))
        }
    })
    .await?;
    if !swept.is_empty() {
        ctl.log(
            Level::Info,
            format!(
                "removed leftovers of interrupted runs: {}",
                clip(&swept.join(", "))
            ),
            &[("count", swept.len().into())],
        );
    }
    if reuse {
        ctl.log(
            Level::Info,
            "a whole, unpointed folder of this version is reused: no download",
            &[("version", (&latest).into())],
        );
    }

    if !reuse {
        let downloaded =
            download_with_retries(cfg, store, http, dist, &latest, native_src, compat, ctl).await;
        if let Err(StageError::Incompatible { guard, range, .. }) = &downloaded {
            // Remembered, so later calls refuse it from the store instead of downloading it again.
            let entry = IncompatibleEntry {
                guard: guard.to_string(),
                range: range.clone(),
            };
            blocking({
                let (store, latest) = (store.clone(), latest.clone());
                move || store.with_store_lock(|| store.add_incompatible(&latest, entry))
            })
            .await?;
        }
        downloaded?;
    }

    let (outcome, pruned) = blocking({
        let (store, latest) = (store.clone(), latest.clone());
        let running = version::clean(&cfg.current_version);
        move || {
            let promoted =
                store.with_store_lock(|| promote_locked(&store, &latest, running.as_ref()));
            store.empty_trash();
            promoted
        }
    })
    .await?;
    match &outcome {
        Outcome::Staged(v) => ctl.log(
            Level::Info,
            format!("pointed at {}", clip(v)),
            &[("version", v.into())],
        ),
        other => ctl.log(
            Level::Warn,
            format!("not pointed after the download: {}", other.kind()),
            &[("version", (&latest).into())],
        ),
    }
    if !pruned.is_empty() {
        ctl.log(
            Level::Info,
            format!("pruned {}", clip(&pruned.join(", "))),
            &[("count", pruned.len().into())],
        );
    }
    Ok(outcome)
}

/// Under the store lock, before staging: the outcome when there is nothing to download.
fn recheck_locked(store: &Store, latest: &str, integrity: &str) -> Result<Option<Outcome>> {
    if store.is_bad(latest) {
        return Ok(Some(Outcome::BadVersion(latest.to_string())));
    }
    if already_staged(store, latest) {
        return Ok(Some(Outcome::AlreadyStaged));
    }
    let pointed = store.read_pointer_file().map(|p| p.version);
    if pointed.as_deref() == Some(latest) && store.is_legacy_whole(latest) {
        store.adopt_legacy_locked(latest, integrity)?;
        return Ok(Some(Outcome::AlreadyStaged));
    }
    Ok(None)
}

/// Under the store lock, after staging: re-reads the bad list (the app may have marked this
/// version bad during the download), never moves the pointer back to an older version, points
/// at `latest` with the best fallback, prunes.
fn promote_locked(
    store: &Store,
    latest: &str,
    running: Option<&semver::Version>,
) -> Result<(Outcome, Vec<String>)> {
    if store.is_bad(latest) {
        return Ok((Outcome::BadVersion(latest.to_string()), Vec::new()));
    }
    if pointer_is_newer(store, latest) {
        return Ok((Outcome::AlreadyStaged, Vec::new()));
    }
    let previous = store.fallback_for(latest);
    store.write_pointer(latest, previous.as_deref())?;
    let mut keep = vec![latest];
    keep.extend(previous.as_deref());
    // Pruning is housekeeping: the new runtime is already staged and pointed, so a folder that
    // cannot be removed now (a running runtime holding it on Windows) waits for the next run
    // instead of failing this one. The version the app runs right now stays too: it may be
    // neither the new pointer nor its fallback when several updates are staged without a restart.
    let pruned = store.prune_locked(&keep, running).unwrap_or_default();
    Ok((Outcome::Staged(latest.to_string()), pruned))
}

/// The pointer already names `version` whole, or a newer version that is runnable and not bad:
/// staging `version` would move it backwards, which only `markBadVersion`'s rollback may do.
fn already_staged(store: &Store, version: &str) -> bool {
    let pointed_whole = store
        .read_pointer()
        .is_some_and(|p| p.version == version && store.is_whole(version));
    pointed_whole || pointer_is_newer(store, version)
}

/// The pointer names a runnable, not bad version newer than `version`.
fn pointer_is_newer(store: &Store, version: &str) -> bool {
    store
        .read_pointer()
        .is_some_and(|p| version::is_newer(&p.version, version) && store.is_runnable(&p.version))
}

/// Runs file-system work on tokio's blocking pool, never on the JS thread or the libuv pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StageError::joined("a file task", e))?
}

fn limits_for(cfg: &Config, dist: &Dist) -> ExtractLimits {
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
/// retries: on a link that drops every few MB each attempt moves the download on, and the
/// call's deadline still bounds them all.
#[allow(clippy::too_many_arguments)]
async fn download_with_retries(
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
    let mut retries_left = http.retries();
    let mut integrity_retry = true;
    let mut clean_restart = true;
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
        let retry = match &err {
            // Resumed bytes that fail to hash (or to be read back) may have been damaged on
            // disk, not by the registry: one clean download from byte 0 settles it, at no cost
            // to the retries. Any other failure with the right hash is the package's own.
            StageError::Integrity { .. } | StageError::Io { .. }
                if attempt.resumed && clean_restart =>
            {
                clean_restart = false;
                true
            }
            StageError::Integrity { .. } if integrity_retry => {
                integrity_retry = false;
                ctl.log(
                    Level::Warn,
                    "the tarball failed its integrity check: downloading it once more",
                    &[("url", (&url).into())],
                );
                true
            }
            e if e.is_retryable()
                && !ctl.is_aborted()
                && http.retries() > 0
                && (retries_left > 0 || attempt.received > 0) =>
            {
                if attempt.received > 0 {
                    retries_left = http.retries();
                }
                let n = http.retries() - retries_left;
                retries_left -= 1;
                let delay = crate::http::retry_delay(e, n);
                log_retry(ctl, &url, e, n + 1, http.retries(), delay);
                ctl.sleep(&url, delay).await?;
                true
            }
            _ => false,
        };
        if !retry || ctl.expired() {
            return Err(err);
        }
    }
}

/// What one download attempt did, for the retry policy.
#[derive(Debug, Default)]
struct Attempt {
    /// It continued from kept bytes.
    resumed: bool,
    /// Tarball bytes it received from the network.
    received: u64,
}

/// The tarball response, and where its body starts.
struct Opened {
    resp: reqwest::Response,
    /// Kept bytes to feed first: the response carries the bytes after them.
    replay: Option<Kept>,
    /// Whether the body's bytes are appended to the kept file as they arrive.
    keeping: bool,
}

const TARBALL_ACCEPT: &str = "application/octet-stream";
/// Kept bytes are read back in pieces of this size: large enough to be cheap, small enough
/// that the pipe to the extractor stays a few MB at most.
const REPLAY_CHUNK: u64 = 256 * 1024;

fn validator_of(resp: &reqwest::Response) -> Option<Validator> {
    let h = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    Validator::from_headers(h(reqwest::header::ETAG), h(reqwest::header::LAST_MODIFIED))
}

/// Asks for the tarball: for the rest of the kept bytes when there are some, else (or when the
/// server's answer does not line up with them) for all of it, from byte 0.
async fn open_tarball(
    store: &Store,
    http: &Http,
    url: &str,
    version: &str,
    integrity: &str,
    kept: Option<Kept>,
    ctl: &Control,
) -> Result<Opened> {
    let discard = || {
        let (store, version) = (store.clone(), version.to_string());
        blocking(move || resume::discard(&store, &version))
    };
    if let Some(k) = kept {
        let answer = http
            .open_range(
                url,
                TARBALL_ACCEPT,
                k.len,
                k.sidecar.validator.header_value(),
                ctl,
            )
            .await;
        match answer {
            Ok(resp) => {
                let content_range = resp
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok());
                let judged = resume::judge_range_answer(
                    resp.status().as_u16(),
                    content_range,
                    validator_of(&resp).as_ref(),
                    &k.sidecar,
                    k.len,
                );
                match judged {
                    RangeAnswer::Resumed => {
                        let (store, version, sidecar) =
                            (store.clone(), version.to_string(), k.sidecar.clone());
                        blocking(move || resume::touch(&store, &version, &sidecar)).await?;
                        return Ok(Opened {
                            resp,
                            replay: Some(k),
                            keeping: true,
                        });
                    }
                    RangeAnswer::WholeBody => {
                        let keeping = start_keeping(store, version, url, integrity, &resp).await?;
                        return Ok(Opened {
                            resp,
                            replay: None,
                            keeping,
                        });
                    }
                    RangeAnswer::Mismatch => discard().await?,
                }
            }
            // The server cannot serve past the kept bytes (the tarball changed size): start over.
            Err(StageError::Http { status: 416, .. }) => discard().await?,
            Err(e) => return Err(e),
        }
    }
    let resp = http.open(url, TARBALL_ACCEPT, ctl).await?;
    let keeping = start_keeping(store, version, url, integrity, &resp).await?;
    Ok(Opened {
        resp,
        replay: None,
        keeping,
    })
}

/// Starts keeping a whole-body response's bytes, when it has a validator to guard a resume
/// with; without one a resume could never be checked, so nothing is kept.
async fn start_keeping(
    store: &Store,
    version: &str,
    url: &str,
    integrity: &str,
    resp: &reqwest::Response,
) -> Result<bool> {
    let validator = validator_of(resp);
    let size = resp.content_length();
    let (store, version, url, integrity) = (
        store.clone(),
        version.to_string(),
        url.to_string(),
        integrity.to_string(),
    );
    blocking(move || match validator {
        Some(validator) => {
            let sidecar = Sidecar {
                url,
                integrity,
                validator,
                size,
                time: resume::now_secs(),
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
fn append_kept(path: &Path, mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Result<u64> {
    use std::io::Write;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| StageError::io("opening", path, e))?;
    let mut w = io::BufWriter::with_capacity(256 * 1024, f);
    let mut n = 0u64;
    while let Some(piece) = rx.blocking_recv() {
        w.write_all(&piece)
            .map_err(|e| StageError::io("writing", path, e))?;
        n += piece.len() as u64;
    }
    w.flush().map_err(|e| StageError::io("writing", path, e))?;
    Ok(n)
}

/// Reads the next piece of kept bytes (at most `max`) from a blocking thread.
async fn read_kept(
    mut f: std::fs::File,
    max: u64,
    path: PathBuf,
) -> Result<(std::fs::File, bytes::Bytes)> {
    blocking(move || {
        let mut buf = Vec::with_capacity(max as usize);
        (&mut f)
            .take(max)
            .read_to_end(&mut buf)
            .map_err(|e| StageError::io("reading", &path, e))?;
        Ok((f, bytes::Bytes::from(buf)))
    })
    .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Limits, NetConfig};
    use crate::fsutil::Renamer;
    use crate::integrity::sri_of;
    use flate2::write::GzEncoder;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A registry on 127.0.0.1 publishing one version as `latest`, logging every request path.
    struct TestRegistry {
        url: String,
        log: Arc<Mutex<Vec<String>>>,
    }

    /// Makes a version's attestations response from its tarball.
    type Attest<'a> = dyn Fn(&[u8]) -> Vec<u8> + 'a;

    impl TestRegistry {
        /// `integrity` overrides the true SRI in the document (to simulate a mismatch).
        async fn start(version: &str, integrity: Option<String>) -> TestRegistry {
            Self::start_with(version, integrity, None).await
        }

        /// `attest` makes the attestations response from the tarball; the document then names it.
        async fn start_with(
            version: &str,
            integrity: Option<String>,
            attest: Option<&Attest<'_>>,
        ) -> TestRegistry {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/", listener.local_addr().unwrap());
            let tgz = runtime_tgz(version);
            let tar_path = format!("/kanban/-/kanban-{version}.tgz");
            let att_path = format!("/-/npm/v1/attestations/kanban@{version}");
            let mut doc = serde_json::json!({
                "dist-tags": {"latest": version},
                "versions": {version: {"dist": {
                    "tarball": format!("{}{}", url.trim_end_matches('/'), tar_path),
                    "integrity": integrity.unwrap_or_else(|| sri_of(&tgz)),
                }}}
            });
            let mut routes: HashMap<String, Vec<u8>> = HashMap::new();
            if let Some(attest) = attest {
                doc["versions"][version]["dist"]["attestations"] = serde_json::json!({
                    "url": format!("{}{}", url.trim_end_matches('/'), att_path),
                    "provenance": { "predicateType": crate::provenance::SLSA_PROVENANCE_V1 }
                });
                routes.insert(att_path, attest(&tgz));
            }
            routes.insert("/kanban".to_string(), doc.to_string().into_bytes());
            routes.insert(tar_path, tgz);
            let log = Arc::new(Mutex::new(Vec::new()));
            let (routes, log2) = (Arc::new(routes), log.clone());
            tokio::spawn(async move {
                loop {
                    let (mut sock, _) = listener.accept().await.unwrap();
                    let (routes, log) = (routes.clone(), log2.clone());
                    tokio::spawn(async move {
                        let mut req = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => req.extend_from_slice(&buf[..n]),
                            }
                        }
                        let text = String::from_utf8_lossy(&req).into_owned();
                        let path = text.split(' ').nth(1).unwrap_or("").to_string();
                        log.lock().unwrap().push(path.clone());
                        let (status, body) = match routes.get(&path) {
                            Some(b) => ("200 OK", b.clone()),
                            None => ("404 Not Found", Vec::new()),
                        };
                        let head = format!(
                            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(&body).await;
                    });
                }
            });
            TestRegistry { url, log }
        }

        fn attestation_requests(&self) -> usize {
            let log = self.log.lock().unwrap();
            log.iter().filter(|p| p.contains("/attestations/")).count()
        }

        fn tarball_requests(&self) -> usize {
            let log = self.log.lock().unwrap();
            log.iter().filter(|p| p.ends_with(".tgz")).count()
        }
    }

    fn runtime_tgz(version: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (path, body) in [
            (
                "package/package.json",
                format!("{{\"version\":\"{version}\"}}"),
            ),
            ("package/dist/cli.js", format!("console.log('{version}')")),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, body.as_bytes()).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    struct Env {
        _tmp: tempfile::TempDir,
        cfg: Config,
    }

    fn env(registry: &str, current: &str) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let native = tmp.path().join("native");
        std::fs::create_dir_all(native.join("node-pty")).unwrap();
        std::fs::write(native.join("node-pty/package.json"), "{}").unwrap();
        let cfg = Config {
            user_data: tmp.path().join("userData"),
            current_version: current.into(),
            native_deps_source: native,
            registry: registry.into(),
            package_name: "kanban".into(),
            dist_tag: "latest".into(),
            net: NetConfig {
                retries: 0,
                ..NetConfig::default()
            },
            limits: Limits::default(),
            trust: crate::config::Trust::default(),
            provenance: None,
        };
        Env { _tmp: tmp, cfg }
    }

    fn ctl() -> Control {
        Control::new(Duration::from_secs(30)).0
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn outcomes_in_order_with_one_download() {
        let reg = TestRegistry::start("2.0.0", None).await;
        let e = env(&reg.url, "1.0.0");
        let store = Store::new(&e.cfg.user_data);
        let out = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap();
        assert_eq!(out, Outcome::Staged("2.0.0".into()));
        assert!(store.is_whole("2.0.0"));
        assert_eq!(store.resolve_cli_entry(), Some(store.cli_entry("2.0.0")));
        assert_eq!(
            std::fs::read_to_string(store.cli_entry("2.0.0")).unwrap(),
            "console.log('2.0.0')"
        );
        let again = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap();
        assert_eq!(again, Outcome::AlreadyStaged);

        let mut newer = e.cfg.clone();
        newer.current_version = "2.0.0".into();
        assert_eq!(
            check_and_stage(&newer, &store, &ctl()).await.unwrap(),
            Outcome::UpToDate
        );
        store.add_bad("2.0.0").unwrap();
        assert_eq!(
            check_and_stage(&e.cfg, &store, &ctl()).await.unwrap(),
            Outcome::BadVersion("2.0.0".into())
        );
        assert_eq!(reg.tarball_requests(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn logs_what_it_decided_and_why() {
        let reg = TestRegistry::start("2.0.0", None).await;
        let e = env(&reg.url, "1.0.0");
        let store = Store::new(&e.cfg.user_data);
        std::fs::create_dir_all(store.versions_dir()).unwrap();
        std::fs::write(store.versions_dir().join("notes.partial"), "x").unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let logged = ctl().with_log(Arc::new(move |e: crate::log::LogEntry| {
            sink.lock().unwrap().push(e)
        }));
        check_and_stage(&e.cfg, &store, &logged).await.unwrap();
        let entries = seen.lock().unwrap().clone();
        let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "dist-tag latest of kanban names 2.0.0",
                "no registry signature (not required)",
                "staging 2.0.0",
                "removed leftovers of interrupted runs: notes.partial",
                "pointed at 2.0.0",
            ]
        );
        assert!(entries[0]
            .fields
            .contains(&("version", crate::log::Value::Str("2.0.0".into()))));
        seen.lock().unwrap().clear();
        let mut current = e.cfg.clone();
        current.current_version = "v2.0.0".into();
        check_and_stage(&current, &store, &logged).await.unwrap();
        let last = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            last.message,
            "up to date: 2.0.0 is not newer than the running 2.0.0"
        );
    }

    /// Fails renames onto `current.json`, as a full disk or a held file would.
    struct PointerRenameFails;
    impl Renamer for PointerRenameFails {
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            if to.ends_with(crate::store::POINTER_FILE) {
                return Err(io::Error::from_raw_os_error(28));
            }
            std::fs::rename(from, to)
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pointer_failure_is_repaired_without_a_second_download() {
        let reg = TestRegistry::start("2.0.0", None).await;
        let e = env(&reg.url, "1.0.0");
        let failing = Store::with_renamer(&e.cfg.user_data, Arc::new(PointerRenameFails));
        let err = check_and_stage(&e.cfg, &failing, &ctl()).await.unwrap_err();
        assert_eq!(err.code(), "ENOSPC");
        assert!(failing.is_whole("2.0.0"));
        assert_eq!(failing.read_pointer(), None);

        let store = Store::new(&e.cfg.user_data);
        let out = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap();
        assert_eq!(out, Outcome::Staged("2.0.0".into()));
        assert_eq!(store.read_pointer().unwrap().version, "2.0.0");
        assert_eq!(reg.tarball_requests(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn integrity_mismatch_retries_once_and_leaves_nothing() {
        let reg = TestRegistry::start("2.0.0", Some(sri_of(b"something else"))).await;
        let e = env(&reg.url, "1.0.0");
        let store = Store::new(&e.cfg.user_data);
        let err = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap_err();
        assert!(
            matches!(&err, StageError::Integrity { expected, .. } if *expected == sri_of(b"something else")),
            "{err}"
        );
        assert_eq!(reg.tarball_requests(), 2);
        assert!(!store.partial_dir("2.0.0").exists());
        assert!(!store.version_dir("2.0.0").exists());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn non_semver_tag_rejects_before_touching_the_disk() {
        let reg = TestRegistry::start("not-a-version", None).await;
        let e = env(&reg.url, "1.0.0");
        let store = Store::new(&e.cfg.user_data);
        let err = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap_err();
        assert_eq!(err.code(), "EINVALID_VERSION");
        assert!(!e.cfg.user_data.exists());
    }

    #[test]
    fn registry_size_hints_at_the_integer_limit_do_not_overflow() {
        let e = env("http://127.0.0.1:1/", "1.0.0");
        let dist = Dist {
            tarball: "t".into(),
            integrity: crate::integrity::Expected::from_sri(&sri_of(b"x")).unwrap(),
            unpacked_size: Some(u64::MAX),
            file_count: Some(u64::MAX),
            bins: Vec::new(),
            attestations_url: None,
        };
        let limits = limits_for(&e.cfg, &dist);
        assert_eq!(limits.max_bytes, HARD_MAX_UNPACKED_BYTES);
        assert_eq!(limits.max_entries, HARD_MAX_ENTRIES);
    }

    mod provenance {
        use super::*;
        use crate::config::Provenance;
        use crate::provenance::tests::{self as kit, TestCa};
        use crate::provenance::{Policy, TrustRoot, GITHUB_ACTIONS_ISSUER};
        use sha2::{Digest, Sha512};

        /// A registry whose attestation for 2.0.0 was made for a run of `repo` (by another CA than
        /// the trusted one when asked), naming `digest` (the tarball's own when `None`).
        async fn scenario(
            repo: &str,
            sign_with_other_ca: bool,
            digest: Option<[u8; 64]>,
        ) -> (TestRegistry, Env) {
            let trusted = TestCa::new("trusted");
            let other = sign_with_other_ca.then(|| TestCa::new("other"));
            let signer = other.as_ref().unwrap_or(&trusted);
            let (leaf, leaf_key) = signer.leaf(repo, kit::WORKFLOW, GITHUB_ACTIONS_ISSUER);
            let log_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let make = |tgz: &[u8]| {
                let sha: [u8; 64] = digest.unwrap_or_else(|| Sha512::digest(tgz).into());
                kit::attestations(kit::bundle(&kit::Parts {
                    leaf: &leaf,
                    leaf_key: &leaf_key,
                    log_key: &log_key,
                    statement: kit::statement("kanban", "2.0.0", &sha),
                    integrated: kit::INTEGRATED,
                    kind: "dsse",
                    logged_cert: None,
                }))
            };
            let reg = TestRegistry::start_with("2.0.0", None, Some(&make)).await;
            let mut e = env(&reg.url, "1.0.0");
            e.cfg.provenance = Some(Provenance {
                policy: Policy {
                    repository: kit::REPO.into(),
                    workflow_path: Some(kit::WORKFLOW.into()),
                },
                trust_root: TrustRoot::from_json(&kit::trust_root_json(&trusted, &log_key))
                    .unwrap(),
            });
            (reg, e)
        }

        fn versions(e: &Env) -> usize {
            std::fs::read_dir(e.cfg.user_data.join("kanban-runtime/versions"))
                .map(|d| d.count())
                .unwrap_or(0)
        }

        #[tokio::test]
        async fn a_valid_attestation_stages() {
            let (reg, e) = scenario(kit::REPO, false, None).await;
            let store = Store::new(&e.cfg.user_data);
            let out = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap();
            assert_eq!(out.kind(), "staged");
            assert_eq!((reg.attestation_requests(), reg.tarball_requests()), (1, 1));
        }

        #[tokio::test]
        async fn refusals_download_and_write_nothing() {
            for (repo, other_ca, digest, check) in [
                ("evil/kanban", false, None, "identity"),
                (kit::REPO, true, None, "certificate"),
                (kit::REPO, false, Some([1u8; 64]), "subject"),
            ] {
                let (reg, e) = scenario(repo, other_ca, digest).await;
                let store = Store::new(&e.cfg.user_data);
                match check_and_stage(&e.cfg, &store, &ctl()).await {
                    Err(StageError::Provenance {
                        check: c, version, ..
                    }) => assert_eq!((c, version.as_str()), (check, "2.0.0")),
                    other => panic!("expected EPROVENANCE ({check}), got {other:?}"),
                }
                assert_eq!(reg.tarball_requests(), 0, "{check}");
                assert_eq!(versions(&e), 0, "{check}");
            }
        }

        #[tokio::test]
        async fn no_attestations_is_refused_and_no_option_asks_for_none() {
            let reg = TestRegistry::start("2.0.0", None).await;
            let (_, with) = scenario(kit::REPO, false, None).await;
            let mut e = env(&reg.url, "1.0.0");
            e.cfg.provenance = with.cfg.provenance.clone();
            let store = Store::new(&e.cfg.user_data);
            match check_and_stage(&e.cfg, &store, &ctl()).await {
                Err(StageError::Provenance { check, .. }) => assert_eq!(check, "attestation"),
                other => panic!("expected EPROVENANCE, got {other:?}"),
            }
            assert_eq!((reg.tarball_requests(), versions(&e)), (0, 0));

            let (reg, mut e) = scenario(kit::REPO, false, None).await;
            e.cfg.provenance = None;
            let store = Store::new(&e.cfg.user_data);
            check_and_stage(&e.cfg, &store, &ctl()).await.unwrap();
            assert_eq!(reg.attestation_requests(), 0);
        }
    }
}
