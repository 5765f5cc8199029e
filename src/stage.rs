//! The staging algorithm: resolve, guard, lock, download + verify + extract, copy native
//! modules, rename into place, repoint.

use crate::call::{Control, Phase};
use crate::config::Config;
use crate::document::fetch_document;
use crate::error::{clip, Result, StageError};
use crate::flight::single_flight;
use crate::fsutil::{self, blocking};
use crate::guards::{bundled_node_pty_version, check_provenance, check_signatures, compat_guard};
use crate::http::Http;
use crate::install::download_with_retries;
use crate::log::Level;
use crate::registry::{
    document_url, rewrite_tarball_url, Dist, Document, ACCEPT_CORGI, ACCEPT_FULL,
};
use crate::store::{
    self, IncompatibleEntry, StagingGuard, StagingLock, Store, StoreLock, NATIVE_MODULE,
};
use crate::trust::{self, Compat};
use crate::version;

use std::path::{Path, PathBuf};
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

/// How long to wait between polls of a lock held by another stager. Polling (rather than a
/// blocking wait on a thread) keeps the wait abortable and bounded by the deadline.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// Checks the registry for a newer runtime and stages it: resolves the version the dist-tag
/// names, applies the cool-down, answers from the version guards when nothing needs staging,
/// runs the guards that come before any download, then stages under the staging lock.
/// Concurrent calls in this process that would stage the same thing share one run.
pub async fn check_and_stage(cfg: &Config, store: &Store, ctl: &Control) -> Result<Outcome> {
    // An already-aborted signal never starts a request.
    if ctl.is_aborted() {
        return Err(StageError::Aborted);
    }
    ctl.report(Phase::Resolving, 0, None);
    let http = Http::new(&cfg.net, &cfg.registry)?;
    let resolved = resolve_tag(cfg, store, &http, ctl).await?;
    let Some(latest) = apply_cool_down(cfg, &resolved, ctl) else {
        return Ok(Outcome::UpToDate);
    };
    if let Some(outcome) = version_guards(cfg, store, &latest, ctl)? {
        return Ok(outcome);
    }
    let run = pre_download_guards(cfg, store, &http, &resolved, latest, ctl).await?;
    single_flight(store, &run.latest, &run.key(), ctl, || run.stage()).await
}

/// The package document as this call fetched it, and the version its dist-tag names.
struct Resolved {
    url: String,
    doc: Document,
    /// The full document (with publish dates), not the abbreviated one.
    full: bool,
    tagged: String,
    tagged_v: semver::Version,
}

/// The release-age cool-down, when one is set.
fn cool_down(cfg: &Config) -> Option<Duration> {
    cfg.trust.min_release_age.filter(|d| !d.is_zero())
}

/// The package document and the version the dist-tag names, which must be semver.
async fn resolve_tag(cfg: &Config, store: &Store, http: &Http, ctl: &Control) -> Result<Resolved> {
    let url = document_url(&cfg.registry, &cfg.package_name);
    // The cool-down reads publish dates, which only the full document has; without it the
    // abbreviated document is all we fetch.
    let full = cool_down(cfg).is_some();
    let accept = if full { ACCEPT_FULL } else { ACCEPT_CORGI };
    let doc = fetch_document(cfg, store, http, &url, accept, ctl).await?;
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
    let tagged_v = parse_version(cfg, &tagged)?;
    Ok(Resolved {
        url,
        doc,
        full,
        tagged,
        tagged_v,
    })
}

/// `version` as semver, or the error naming the dist-tag that led to it.
fn parse_version(cfg: &Config, version: &str) -> Result<semver::Version> {
    semver::Version::parse(version).map_err(|_| StageError::InvalidVersion {
        package: cfg.package_name.clone(),
        tag: cfg.dist_tag.clone(),
        version: version.to_string(),
    })
}

/// The version to consider: the tagged one, or under a cool-down the newest release up to it that
/// is old enough and not deprecated; `None` when no release qualifies (nothing to stage).
fn apply_cool_down(cfg: &Config, resolved: &Resolved, ctl: &Control) -> Option<String> {
    let Some(age) = cool_down(cfg) else {
        return Some(resolved.tagged.clone());
    };
    let tagged = &resolved.tagged;
    let minutes = age.as_secs() / 60;
    let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    let candidate =
        trust::cooled_candidate(&resolved.doc, &resolved.tagged_v, trust::now_ms(), age_ms);
    match &candidate {
        Some(v) if v != tagged => ctl.log(
            Level::Info,
            format!(
                "cool-down: {} is younger than {minutes} minutes (or deprecated); considering {}",
                clip(tagged),
                clip(v)
            ),
            &[("version", v.into()), ("minutes", minutes.into())],
        ),
        Some(_) => {}
        None => ctl.log(
            Level::Info,
            format!(
                "cool-down: no release up to {} is {minutes} minutes old and not deprecated",
                clip(tagged)
            ),
            &[("version", tagged.into()), ("minutes", minutes.into())],
        ),
    }
    candidate
}

/// The outcome when `latest` needs no staging. These guards read only the store, so a call that
/// stages nothing costs no request beyond the document; they run in this order because the first
/// that applies names the outcome: a version not newer than the running one is `up-to-date` even
/// when it is marked bad or staged, a bad one is `bad-version` even when staged, and only then is
/// a version `already-staged`.
fn version_guards(
    cfg: &Config,
    store: &Store,
    latest: &str,
    ctl: &Control,
) -> Result<Option<Outcome>> {
    let latest_v = parse_version(cfg, latest)?;
    // A current version that is not semver (a dev build, say) counts as older than anything;
    // `v1.2.3` and `=1.2.3` are cleaned as npm does, and build metadata never makes a version newer.
    if let Some(current) = version::clean(&cfg.current_version) {
        if version::compare(&latest_v, &current) != std::cmp::Ordering::Greater {
            ctl.log(
                Level::Info,
                format!(
                    "up to date: {} is not newer than the running {current}",
                    clip(latest)
                ),
                &[("current", (&current.to_string()).into())],
            );
            return Ok(Some(Outcome::UpToDate));
        }
    }
    if store.is_bad(latest) {
        ctl.log(
            Level::Info,
            format!("{} is marked bad: not staged", clip(latest)),
            &[("version", latest.into())],
        );
        return Ok(Some(Outcome::BadVersion(latest.to_string())));
    }
    if already_staged(store, latest) {
        ctl.log(
            Level::Info,
            "already staged: the pointer names it (or a newer version), whole",
            &[("version", latest.into())],
        );
        return Ok(Some(Outcome::AlreadyStaged));
    }
    Ok(None)
}

/// The staging run of `latest`, once it passes the guards that come before anything is
/// downloaded or written: the bundled native modules are there, the version is compatible with
/// them and with the host, its registry signature holds and, when configured, its provenance.
async fn pre_download_guards<'a>(
    cfg: &'a Config,
    store: &'a Store,
    http: &'a Http,
    resolved: &Resolved,
    latest: String,
    ctl: &'a Control,
) -> Result<Run<'a>> {
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
    let Resolved { url, doc, full, .. } = resolved;
    compat_guard(store, doc, &latest, &compat, ctl)?;
    check_signatures(cfg, http, url, doc, *full, &latest, ctl).await?;
    ctl.log(
        Level::Info,
        format!("staging {}", clip(&latest)),
        &[("version", (&latest).into())],
    );
    let dist = doc.dist(&latest)?;
    if let Some(provenance) = &cfg.provenance {
        check_provenance(cfg, provenance, http, &dist, &latest, ctl).await?;
    }
    Ok(Run {
        cfg,
        store,
        http,
        ctl,
        latest,
        dist,
        native_src,
        compat,
    })
}

/// One staging run: the version it stages, from which tarball and with which native modules, and
/// the call it runs for.
struct Run<'a> {
    cfg: &'a Config,
    store: &'a Store,
    http: &'a Http,
    ctl: &'a Control,
    latest: String,
    dist: Dist,
    native_src: PathBuf,
    compat: Compat,
}

impl Run<'_> {
    /// What calls must agree on to share this run: it stages what each would only with the same
    /// tarball, the same native modules and the same host to check against.
    fn key(&self) -> String {
        format!(
            "{}\n{}\n{}\n{:?}",
            self.dist.integrity,
            rewrite_tarball_url(&self.dist.tarball, &self.cfg.registry),
            self.native_src.display(),
            self.compat
        )
    }

    /// The outcome of the run, which holds the staging lock from its re-check to its pruning.
    async fn stage(&self) -> Result<Outcome> {
        let mut file = blocking({
            let store = self.store.clone();
            move || store.staging_lock_file()
        })
        .await?;
        // The wait for the lock stays here, not in a helper: the guard borrows `file`, and a
        // function returning that borrow from inside its polling loop does not borrow-check.
        let mut waiting = false;
        let staging = loop {
            if let Some(guard) = file.try_lock()? {
                break guard;
            }
            if !waiting {
                waiting = true;
                self.log_waiting(file.path());
            }
            let what = file.path().display().to_string();
            self.ctl.sleep(&what, LOCK_POLL).await?;
        };
        if let Some(outcome) = self.recheck_under_lock(&staging).await? {
            return Ok(outcome);
        }
        if !self.sweep_and_reuse(&staging).await? {
            self.download().await?;
        }
        self.promote_and_prune(&staging).await
    }

    /// The outcome when, by the time the lock is held, there is nothing to download: another
    /// stager finished this version (or a newer one) while this one waited, the app marked it bad
    /// meanwhile, or the pointer names a whole folder the original TypeScript stager left without
    /// a completion record.
    async fn recheck_under_lock(&self, staging: &StagingGuard<'_>) -> Result<Option<Outcome>> {
        let (store, latest) = (self.store.clone(), self.latest.clone());
        let integrity = self.dist.integrity.to_string();
        let before = staging
            .blocking(move |staging| {
                store.with_store_lock(|lock| recheck(&store, staging, lock, &latest, &integrity))
            })
            .await?;
        if let Some(outcome) = &before {
            let message = format!("re-checked under the lock: {}", outcome.kind());
            self.log_version(Level::Info, message);
        }
        Ok(before)
    }

    /// Whether a whole, unpointed folder of this version is reused instead of downloaded, once the
    /// leftovers of crashed runs are swept; a folder that is not reused is discarded.
    async fn sweep_and_reuse(&self, staging: &StagingGuard<'_>) -> Result<bool> {
        let (store, latest) = (self.store.clone(), self.latest.clone());
        let integrity = self.dist.integrity.to_string();
        let (reuse, swept) = staging
            .blocking(move |staging| {
                // With the staging lock held no run is in flight, so every partial is a crashed
                // run's.
                let swept = store.sweep_stale(staging, Some(&latest))?;
                fsutil::create_dir_all(&store.versions_dir())?;
                // A whole, unpointed folder is a run that died before its pointer write: reuse
                // it, when it holds the tarball this document (and its checked signature or
                // provenance) names; a folder staged from another registry's bytes is staged
                // again.
                let same_tarball = store::read_record(&store.version_dir(&latest))
                    .is_some_and(|r| r.integrity == integrity);
                if store.is_whole(&latest) && same_tarball {
                    return Ok((true, swept));
                }
                store.discard_version(staging, &latest)?;
                Ok((false, swept))
            })
            .await?;
        self.log_swept(&swept);
        if reuse {
            let message = "a whole, unpointed folder of this version is reused: no download";
            self.log_version(Level::Info, message);
        }
        Ok(reuse)
    }

    /// Downloads, verifies and extracts this version into place. A version its own package.json
    /// refuses is remembered, so later calls refuse it from the store instead of downloading it
    /// again.
    async fn download(&self) -> Result<()> {
        let downloaded = download_with_retries(
            self.cfg,
            self.store,
            self.http,
            &self.dist,
            &self.latest,
            &self.native_src,
            &self.compat,
            self.ctl,
        )
        .await;
        if let Err(StageError::Incompatible { guard, range, .. }) = &downloaded {
            let entry = IncompatibleEntry {
                guard: guard.to_string(),
                range: range.clone(),
            };
            let (store, latest) = (self.store.clone(), self.latest.clone());
            blocking(move || {
                store.with_store_lock(|lock| store.add_incompatible(lock, &latest, entry))
            })
            .await?;
        }
        downloaded
    }

    /// The outcome of pointing at this version, which prunes what the new pointer no longer
    /// needs; the pruned folders are deleted once the store lock is released.
    async fn promote_and_prune(&self, staging: &StagingGuard<'_>) -> Result<Outcome> {
        let (store, latest) = (self.store.clone(), self.latest.clone());
        let running = version::clean(&self.cfg.current_version);
        let (outcome, pruned) = staging
            .blocking(move |staging| {
                let promoted = store.with_store_lock(|lock| {
                    promote(&store, staging, lock, &latest, running.as_ref())
                });
                store.empty_trash(staging);
                promoted
            })
            .await?;
        self.log_promoted(&outcome, &pruned);
        Ok(outcome)
    }

    /// Logs `message` with this run's version.
    fn log_version(&self, level: Level, message: impl Into<String>) {
        self.ctl
            .log(level, message, &[("version", (&self.latest).into())]);
    }

    /// Reports and logs that another run holds the staging lock.
    fn log_waiting(&self, lock_path: &Path) {
        self.ctl.report(Phase::WaitingForLock, 0, None);
        self.ctl.log(
            Level::Info,
            "waiting for another staging run to release the store",
            &[("lock", (&lock_path.display().to_string()).into())],
        );
    }

    /// Logs the leftovers of interrupted runs the sweep removed, if any.
    fn log_swept(&self, swept: &[String]) {
        if !swept.is_empty() {
            self.ctl.log(
                Level::Info,
                format!(
                    "removed leftovers of interrupted runs: {}",
                    clip(&swept.join(", "))
                ),
                &[("count", swept.len().into())],
            );
        }
    }

    /// Logs where the pointer went and what was pruned.
    fn log_promoted(&self, outcome: &Outcome, pruned: &[String]) {
        match outcome {
            Outcome::Staged(v) => self.ctl.log(
                Level::Info,
                format!("pointed at {}", clip(v)),
                &[("version", v.into())],
            ),
            other => self.log_version(
                Level::Warn,
                format!("not pointed after the download: {}", other.kind()),
            ),
        }
        if !pruned.is_empty() {
            self.ctl.log(
                Level::Info,
                format!("pruned {}", clip(&pruned.join(", "))),
                &[("count", pruned.len().into())],
            );
        }
    }
}

/// Under both locks, before staging: the outcome when there is nothing to download.
fn recheck(
    store: &Store,
    staging: &StagingLock,
    _: &StoreLock,
    latest: &str,
    integrity: &str,
) -> Result<Option<Outcome>> {
    if store.is_bad(latest) {
        return Ok(Some(Outcome::BadVersion(latest.to_string())));
    }
    if already_staged(store, latest) {
        return Ok(Some(Outcome::AlreadyStaged));
    }
    let pointed = store.read_pointer_file().map(|p| p.version);
    if pointed.as_deref() == Some(latest) && store.is_legacy_whole(latest) {
        store.adopt_legacy(staging, latest, integrity)?;
        return Ok(Some(Outcome::AlreadyStaged));
    }
    Ok(None)
}

/// Under both locks, after staging: re-reads the bad list (the app may have marked this version
/// bad during the download), never moves the pointer back to an older version, points at
/// `latest` with the best fallback, prunes. The outcome, and the names pruned.
fn promote(
    store: &Store,
    staging: &StagingLock,
    lock: &StoreLock,
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
    store.write_pointer(lock, latest, previous.as_deref())?;
    let mut keep = vec![latest];
    keep.extend(previous.as_deref());
    // Pruning is housekeeping: the new runtime is already staged and pointed, so a folder that
    // cannot be removed now (a running runtime holding it on Windows) waits for the next run
    // instead of failing this one. The version the app runs right now stays too: it may be
    // neither the new pointer nor its fallback when several updates are staged without a restart.
    let pruned = store
        .prune(staging, lock, &keep, running)
        .unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Limits, NetConfig};
    use crate::config::{HARD_MAX_ENTRIES, HARD_MAX_UNPACKED_BYTES};
    use crate::fsutil::Renamer;
    use crate::install::limits_for;
    use crate::integrity::sri_of;
    use flate2::write::GzEncoder;
    use std::collections::HashMap;
    use std::io;
    use std::sync::Arc;
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
        store
            .with_store_lock(|lock| store.add_bad(lock, "2.0.0"))
            .unwrap();
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
