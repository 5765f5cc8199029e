//! One staging run under the staging lock: download, verify and extract, copy the native
//! modules, rename into place, repoint, prune.

use super::install::download_with_retries;
use super::outcome::Outcome;
use crate::config::{Config, NetConfig};
use crate::net::Http;
use crate::registry::{rewrite_tarball_url, Dist};
use crate::shared::call::Control;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil;
use crate::shared::fsutil::blocking;
use crate::shared::log::Level;
use crate::shared::phase::Phase;
use crate::shared::text::clip;
use crate::shared::version;
use crate::store::{
    self, IncompatibleEntry, LockWait, StagingGuard, StagingLock, Store, StoreLock,
};
use crate::trust::Compat;
use sha2::Digest;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

/// How long to wait between polls of a lock held by another stager. Polling (rather than a
/// blocking wait on a thread) keeps the wait abortable and bounded by the deadline.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// One staging run: the version it stages, from which tarball and with which native modules, and
/// the call it runs for.
pub(super) struct Run<'a> {
    pub(super) cfg: &'a Config,
    pub(super) store: &'a Store,
    pub(super) http: &'a Http,
    pub(super) ctl: &'a Control,
    pub(super) latest: String,
    pub(super) dist: Dist,
    pub(super) native_src: PathBuf,
    pub(super) compat: Compat,
}

impl Run<'_> {
    /// What calls must agree on to share this run: the tarball, the native modules and the host
    /// to check against, and every setting that can change what the run does (the caps, the
    /// throttle, the network settings, the trust policy, the running version pruning keeps).
    /// A digest, as the trust root alone is kilobytes.
    pub(super) fn key(&self) -> String {
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
    pub(super) async fn stage(&self) -> Result<Outcome> {
        let (store, ctl) = (self.store.clone(), self.ctl.clone());
        let moved = blocking(move || store.heal_staging_lock(&LockWait::Call(&ctl))).await?;
        self.log_moved(&moved);
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
        // Before anything takes the store lock or walks the folders: an entry of the wrong type
        // at one of the store's names would fail this run and every later one.
        let (store, ctl) = (self.store.clone(), self.ctl.clone());
        let moved = staging
            .blocking(move |staging| store.heal_locked(Some(staging), &LockWait::Call(&ctl)))
            .await?;
        self.log_moved(&moved);
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
        let downloaded = download_with_retries(staging, self).await;
        if let Err(StageError::Incompatible { guard, range, .. }) = &downloaded {
            let entry = IncompatibleEntry {
                guard: guard.to_string(),
                range: range.clone(),
                integrity: Some(self.dist.integrity.to_string()),
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

    /// Warns of each entry moved aside from a store name it had the wrong type for.
    fn log_moved(&self, moved: &[store::MovedAside]) {
        for m in moved {
            let e = m.log_entry();
            self.ctl.log(e.level, e.message, &e.fields);
        }
    }

    /// Logs the leftovers of interrupted runs the sweep removed, if any, and warns of each it
    /// could not delete yet.
    fn log_swept(&self, swept: &store::Swept) {
        for u in &swept.undeleted {
            let e = u.log_entry();
            self.ctl.log(e.level, e.message, &e.fields);
        }
        let swept = &swept.removed;
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
pub(super) fn promote(
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
pub(super) fn already_staged(store: &Store, version: &str) -> bool {
    let pointed_whole = store
        .read_pointer()
        .is_some_and(|p| p.version == version && store.is_whole(version));
    pointed_whole || pointer_is_newer(store, version)
}

/// The pointer names a runnable, not bad version newer than `version`.
pub(super) fn pointer_is_newer(store: &Store, version: &str) -> bool {
    store
        .read_pointer()
        .is_some_and(|p| version::is_newer(&p.version, version) && store.is_runnable(&p.version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EnvDefaults, Options, ProvenanceInput};
    use crate::registry::{sri_of, Expected};
    use crate::store::NATIVE_MODULE;

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
