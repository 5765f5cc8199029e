//! The staging algorithm: resolve, guard, lock, download + verify + extract, copy native
//! modules, rename into place, repoint.

use crate::call::{Control, Phase};
use crate::config::{Config, NetConfig};
use crate::document::fetch_document;
use crate::error::{clip, Field, Result, StageError};
use crate::flight::single_flight;
use crate::fsutil::{self, blocking};
use crate::guards::{bundled_node_pty_version, check_provenance, check_signatures, compat_guard};
use crate::http::Http;
use crate::install::download_with_retries;
use crate::log::{Level, Value as LogValue};
use crate::registry::{
    document_url, rewrite_tarball_url, Dist, Document, ACCEPT_CORGI, ACCEPT_FULL,
};
use crate::store::{
    self, IncompatibleEntry, LockWait, StagingGuard, StagingLock, Store, StoreLock, NATIVE_MODULE,
};
use crate::trust::{self, Compat};
use crate::version;

use sha2::Digest;
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

/// What one call settled on: its outcome and, when the trust policy refused a newer version on
/// the way (and an older one was considered instead, as the cool-down does), the newest refusal.
#[derive(Debug, Clone)]
pub struct Checked {
    pub outcome: Outcome,
    /// An `ESIGNATURE` or `EPROVENANCE` error, naming the refused version.
    pub refused: Option<StageError>,
}

/// How long to wait between polls of a lock held by another stager. Polling (rather than a
/// blocking wait on a thread) keeps the wait abortable and bounded by the deadline.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// Most versions one call refuses on trust before it stops looking further back: each refusal can
/// cost a request (the attestations, the full document), and a document listing hundreds of
/// refused versions must not turn one check into hundreds of requests. Far more than the bad
/// publishes that land between two good releases.
const MAX_REFUSED: usize = 16;

/// Checks the registry for a newer runtime and stages it: resolves the version the dist-tag
/// names, applies the cool-down, answers from the version guards when nothing needs staging,
/// runs the guards that come before any download, then stages under the staging lock. A version
/// the trust policy refuses (its signature or provenance) is passed over like one the cool-down
/// holds back: the next older release that would qualify is considered, so a bad publish cannot
/// halt updates. Concurrent calls in this process that would stage the same thing share one run.
pub async fn check_and_stage(cfg: &Config, store: &Store, ctl: &Control) -> Result<Checked> {
    // An already-aborted signal never starts a request.
    if ctl.is_aborted() {
        return Err(StageError::Aborted);
    }
    ctl.report(Phase::Resolving, 0, None);
    let http = Http::new(&cfg.net, &cfg.registry)?;
    let resolved = resolve_tag(cfg, store, &http, ctl).await?;
    let mut candidate = apply_cool_down(cfg, &resolved, ctl);
    let mut refused = None;
    let mut refusals = 0;
    let outcome = loop {
        let Some(latest) = candidate else {
            break Outcome::UpToDate;
        };
        if let Some(outcome) = version_guards(cfg, store, &latest, ctl)? {
            break outcome;
        }
        match pre_download_guards(cfg, store, &http, &resolved, latest.clone(), ctl).await {
            Ok(run) => {
                break single_flight(store, &run.latest, &run.key(), ctl, || run.stage()).await?
            }
            Err(e) if is_trust_refusal(&e) => {
                refusals += 1;
                candidate = if refusals < MAX_REFUSED {
                    fallback(cfg, &resolved, &latest)?
                } else {
                    None
                };
                log_refusal(&e, candidate.as_deref(), refusals, ctl);
                refused.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    };
    if outcome == Outcome::UpToDate {
        log_all_newer_deprecated(cfg, &resolved, ctl);
    }
    Ok(Checked { outcome, refused })
}

/// Whether `e` is the trust policy refusing a version (not a fault of the network, the store or
/// the document), which passes the version over instead of failing the call.
fn is_trust_refusal(e: &StageError) -> bool {
    matches!(
        e,
        StageError::Signature { .. } | StageError::Provenance { .. }
    )
}

/// The release to consider once `refused` is refused: the newest older one that the tag's choice
/// would take (under the cool-down, old enough), if any.
fn fallback(cfg: &Config, resolved: &Resolved, refused: &str) -> Result<Option<String>> {
    let below = parse_version(cfg, refused)?;
    let min_age = cool_down(cfg).map(|age| i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
    Ok(trust::candidate_below(
        &resolved.doc,
        &resolved.tagged_v,
        Some(&below),
        trust::now_ms(),
        min_age,
    ))
}

/// Warns that the trust policy refused a version, why, and what is considered instead.
fn log_refusal(e: &StageError, next: Option<&str>, refusals: usize, ctl: &Control) {
    let fields = e.fields();
    let version = fields.iter().find_map(|(name, value)| match (name, value) {
        (&"version", Field::Str(v)) => Some(v.clone()),
        _ => None,
    });
    let version = version.unwrap_or_default();
    let then = match next {
        Some(v) => format!("considering {}", clip(v)),
        None if refusals >= MAX_REFUSED => {
            format!("{MAX_REFUSED} versions refused: no older release is considered")
        }
        None => "no older release qualifies".to_string(),
    };
    let mut shown: Vec<(&'static str, LogValue)> =
        vec![("version", (&version).into()), ("code", e.code().into())];
    shown.extend(fields.into_iter().filter(|(n, _)| *n != "version").map(
        |(name, value)| match value {
            Field::Str(s) => (name, LogValue::from(&s)),
            Field::Num(n) => (name, LogValue::Num(n)),
        },
    ));
    if let Some(v) = next {
        shown.push(("considering", v.into()));
    }
    ctl.log(
        Level::Warn,
        format!("refused {} ({}): {e}; {then}", clip(&version), e.code()),
        &shown,
    );
}

/// Warns when the answer is `up-to-date` although the registry has newer releases (up to the
/// tag's version), because every one of them is deprecated.
fn log_all_newer_deprecated(cfg: &Config, resolved: &Resolved, ctl: &Control) {
    let current = version::clean(&cfg.current_version);
    let deprecated =
        trust::all_newer_deprecated(&resolved.doc, &resolved.tagged_v, current.as_ref());
    if deprecated.is_empty() {
        return;
    }
    let list = deprecated.join(", ");
    let current = current.map_or_else(|| cfg.current_version.clone(), |c| c.to_string());
    ctl.log(
        Level::Warn,
        format!(
            "every release newer than the running {} is deprecated: {}; none is staged",
            clip(&current),
            clip(&list)
        ),
        &[("current", (&current).into()), ("versions", (&list).into())],
    );
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
/// downloaded or written: the bundled native modules are there, its registry signature holds
/// and, when configured, its provenance, and the version is compatible with the modules and
/// with the host.
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
    // The trust checks come first: a version no one can trust is passed over, and what the
    // compatibility guard would say about it must not be what answers the call.
    check_signatures(cfg, http, url, doc, *full, &latest, ctl).await?;
    if let Some(provenance) = &cfg.provenance {
        check_provenance(cfg, provenance, http, &doc.dist(&latest)?, &latest, ctl).await?;
    }
    compat_guard(store, doc, &latest, &compat, ctl)?;
    let dist = doc.dist(&latest)?;
    ctl.log(
        Level::Info,
        format!("staging {}", clip(&latest)),
        &[("version", (&latest).into())],
    );
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
    /// What calls must agree on to share this run: the tarball, the native modules and the host
    /// to check against, and every setting that can change what the run does (the caps, the
    /// throttle, the network settings, the trust policy, the running version pruning keeps).
    /// A digest, as the trust root alone is kilobytes.
    fn key(&self) -> String {
        // Destructured whole, so that a setting added later has to be placed here or below.
        let Config {
            // The store is the flight's own key.
            user_data: _,
            // The tag only chose the version, which the key holds.
            dist_tag: _,
            current_version,
            native_deps_source,
            registry,
            package_name,
            net,
            limits,
            trust,
            provenance,
        } = self.cfg;
        let NetConfig {
            // A run that ends by its leader's deadline is run anew by a joiner (see `flight.rs`),
            // and each joiner's wait is bounded by its own.
            total_timeout: _,
            connect_timeout,
            idle_timeout,
            retries,
            proxy,
            env_proxy,
            ca,
            auth_token,
            user_agent,
            max_bytes_per_second,
        } = net;
        let settings = format!(
            "{current_version:?} {native_deps_source:?} {registry:?} {package_name:?} \
             {connect_timeout:?} {idle_timeout:?} {retries} {proxy:?} {env_proxy:?} {ca:?} \
             {auth_token:?} {user_agent:?} {max_bytes_per_second:?} {limits:?} {trust:?} \
             {provenance:?}"
        );
        let mut digest = sha2::Sha256::new();
        for part in [
            self.dist.integrity.to_string(),
            rewrite_tarball_url(&self.dist.tarball, &self.cfg.registry),
            self.native_src.display().to_string(),
            format!("{:?}", self.compat),
            settings,
        ] {
            // Length-prefixed, so no two different lists of parts hash alike.
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part.as_bytes());
        }
        format!("{:x}", digest.finalize())
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
            self.download(&staging).await?;
        }
        self.promote_and_prune(&staging).await
    }

    /// The outcome when, by the time the lock is held, there is nothing to download: another
    /// stager finished this version (or a newer one) while this one waited, the app marked it bad
    /// meanwhile, or the pointer names a whole folder the original TypeScript stager left without
    /// a completion record.
    async fn recheck_under_lock(&self, staging: &StagingGuard<'_>) -> Result<Option<Outcome>> {
        let (store, latest, ctl) = (self.store.clone(), self.latest.clone(), self.ctl.clone());
        let integrity = self.dist.integrity.to_string();
        let before = staging
            .blocking(move |staging| {
                store.with_store_lock(&LockWait::Call(&ctl), |lock| {
                    recheck(&store, staging, lock, &latest, &integrity)
                })
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
        let (store, latest, ctl) = (self.store.clone(), self.latest.clone(), self.ctl.clone());
        let integrity = self.dist.integrity.to_string();
        let (reuse, swept) = staging
            .blocking(move |staging| {
                // With the staging lock held no run is in flight, so every partial is a crashed
                // run's.
                let swept = store.sweep_stale(staging, &LockWait::Call(&ctl), Some(&latest))?;
                fsutil::create_dir_all(&store.versions_dir())?;
                fsutil::create_dir_all(&store.staging_dir())?;
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
    async fn download(&self, staging: &StagingLock) -> Result<()> {
        let downloaded = download_with_retries(
            staging,
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
            let (store, latest, ctl) = (self.store.clone(), self.latest.clone(), self.ctl.clone());
            blocking(move || {
                store.with_store_lock(&LockWait::Call(&ctl), |lock| {
                    store.add_incompatible(lock, &latest, entry)
                })
            })
            .await?;
        }
        downloaded
    }

    /// The outcome of pointing at this version, which prunes what the new pointer no longer
    /// needs; the pruned folders are deleted once the store lock is released.
    async fn promote_and_prune(&self, staging: &StagingGuard<'_>) -> Result<Outcome> {
        let (store, latest, ctl) = (self.store.clone(), self.latest.clone(), self.ctl.clone());
        let running = version::clean(&self.cfg.current_version);
        let (outcome, pruned) = staging
            .blocking(move |staging| {
                let promoted = store.with_store_lock(&LockWait::Call(&ctl), |lock| {
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
    use crate::config::{EnvDefaults, Options, ProvenanceInput};
    use crate::integrity::{sri_of, Expected};

    /// The single-flight key of a run of 2.0.0 for a call with `options`, its store in `dir`.
    fn key_of(dir: &Path, options: Options) -> String {
        let options = Options {
            user_data: Some(dir.display().to_string()),
            current_version: options.current_version.clone().or(Some("1.0.0".into())),
            native_deps_source: Some(dir.display().to_string()),
            ..options
        };
        let cfg = Config::resolve(options, &EnvDefaults::default()).unwrap();
        let store = Store::new(dir);
        let http = Http::new(&cfg.net, &cfg.registry).unwrap();
        let (ctl, _abort) = Control::new(Duration::from_secs(60));
        let dist = Dist {
            tarball: "https://registry.npmjs.org/kanban/-/kanban-2.0.0.tgz".into(),
            integrity: Expected::from_sri(&sri_of(b"tgz")).unwrap(),
            unpacked_size: None,
            file_count: None,
            bins: Vec::new(),
            attestations_url: None,
        };
        let run = Run {
            cfg: &cfg,
            store: &store,
            http: &http,
            ctl: &ctl,
            latest: "2.0.0".into(),
            dist,
            native_src: dir.join(NATIVE_MODULE[1]),
            compat: Compat::default(),
        };
        run.key()
    }

    #[test]
    fn runs_are_shared_only_by_calls_with_the_same_settings() {
        let tmp = tempfile::tempdir().unwrap();
        let key_of = |options| key_of(tmp.path(), options);
        let base = key_of(Options::default());
        assert_eq!(base, key_of(Options::default()));
        // The call's own deadline does not change what the run does.
        assert_eq!(
            base,
            key_of(Options {
                timeout_ms: Some(5_000.0),
                ..Default::default()
            })
        );
        let differing = [
            Options {
                max_unpacked_bytes: Some(100.0),
                ..Default::default()
            },
            Options {
                max_entries: Some(10.0),
                ..Default::default()
            },
            Options {
                max_document_bytes: Some(1e6),
                ..Default::default()
            },
            Options {
                max_bytes_per_second: Some(1e6),
                ..Default::default()
            },
            Options {
                retries: Some(0.0),
                ..Default::default()
            },
            Options {
                idle_timeout_ms: Some(1_000.0),
                ..Default::default()
            },
            Options {
                connect_timeout_ms: Some(1_000.0),
                ..Default::default()
            },
            Options {
                auth_token: Some("t".into()),
                ..Default::default()
            },
            Options {
                proxy: Some("http://127.0.0.1:1/".into()),
                ..Default::default()
            },
            Options {
                require_signatures: Some(true),
                ..Default::default()
            },
            Options {
                min_release_age_minutes: Some(60.0),
                ..Default::default()
            },
            Options {
                host_node_version: Some("22.12.0".into()),
                ..Default::default()
            },
            Options {
                provenance: Some(ProvenanceInput {
                    repository: Some("kanban-org/kanban".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Options {
                registry: Some("https://mirror.example/".into()),
                ..Default::default()
            },
            Options {
                current_version: Some("1.5.0".into()),
                ..Default::default()
            },
        ];
        for options in differing {
            let shown = format!("{options:?}");
            assert_ne!(base, key_of(options), "{shown}");
        }
    }
}
