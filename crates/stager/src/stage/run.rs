//! One staging run under the staging lock: download, verify and extract, copy the native
//! modules, rename into place, repoint, prune.

use super::install::download_with_retries;
use super::outcome::Outcome;
pub(super) use super::plan::Run;
use crate::config::{Config, EnvProxy, Limits, NetConfig, Provenance, Trust};
use crate::registry::rewrite_tarball_url;
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
use crate::trust::provenance::Policy;
use crate::trust::{Compat, RegistryKey};
use sha2::Digest;
use std::path::Path;
use std::time::Duration;

/// How long to wait between polls of a lock held by another stager. Polling (rather than a
/// blocking wait on a thread) keeps the wait abortable and bounded by the deadline.
const LOCK_POLL: Duration = Duration::from_millis(25);

impl Run<'_> {
    /// What calls must agree on to share this run: the tarball, the native modules and the host
    /// to check against, and every setting that can change what the run does, each listed below
    /// by name. A SHA-256 digest of them, so that no setting (the token, a certificate) can be
    /// read back from it, and the trust root's kilobytes stay out of the map of flights.
    pub(super) fn key(&self) -> String {
        let mut key = KeyDigest::default();
        // What the run stages: the tarball, by the integrity it must have and the URL it is
        // fetched from, and the native modules copied beside it. The version and the store are
        // the flight's own key (see `flight.rs`).
        key.part("integrity", self.dist.integrity.to_string());
        key.part(
            "tarball",
            rewrite_tarball_url(&self.dist.tarball, &self.cfg.registry),
        );
        key.part(
            "native modules",
            self.native_src.as_os_str().as_encoded_bytes(),
        );
        // What the unpacked runtime is checked against.
        let Compat {
            host_node,
            node_pty,
        } = &self.compat;
        key.part("host node", optional(host_node.as_ref()));
        key.part("bundled node-pty", optional(node_pty.as_ref()));

        // Every setting destructured whole, so that a setting added later has to be placed here.
        let Config {
            // The store is the flight's own key.
            user_data: _,
            // The tag only chose the version, which the flight's key holds: calls asking for
            // `latest` and `next` that both resolve to it stage the same thing.
            dist_tag: _,
            current_version,
            native_deps_source,
            registry,
            package_name,
            net,
            limits,
            trust,
            provenance,
            // The rollout and the kill switch only choose the version, which the flight's key
            // holds, as the tag does; a withdrawal is each call's own, before it joins.
            rollout: _,
        } = self.cfg;
        // The package and where it comes from; the running version, which pruning keeps.
        key.part("registry", registry);
        key.part("package", package_name);
        key.part("current version", current_version);
        key.part(
            "native deps source",
            native_deps_source.as_os_str().as_encoded_bytes(),
        );

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
        // How the download goes: when it gives up, and how fast it may read.
        key.part("connect timeout", connect_timeout.as_nanos().to_string());
        key.part("idle timeout", idle_timeout.as_nanos().to_string());
        key.part("retries", retries.to_string());
        key.part(
            "max bytes per second",
            optional(max_bytes_per_second.as_ref()),
        );
        // Who the requests go through and whom they trust: another route or CA may reach
        // another server, or none.
        let EnvProxy {
            https,
            http,
            no_proxy,
        } = env_proxy;
        key.part("proxy", optional(proxy.as_ref()));
        key.part("env https proxy", optional(https.as_ref()));
        key.part("env http proxy", optional(http.as_ref()));
        key.part("env no proxy", optional(no_proxy.as_ref()));
        key.part("ca count", ca.len().to_string());
        for pem in ca {
            key.part("ca", sha256_hex(pem.as_bytes()));
        }
        // Who the requests say they are: a registry may serve another answer, or refuse. Only
        // the token's hash goes in, so the token is never kept beside the flights.
        let token = auth_token
            .as_ref()
            .map(|t| sha256_hex(t.expose().as_bytes()));
        key.part("auth token", optional(token.as_ref()));
        key.part("user agent", user_agent);

        let Limits {
            max_unpacked_bytes,
            max_entries,
            max_document_bytes,
        } = limits;
        // The extractor's caps refuse a tarball one call accepts. The document cap is the
        // checks', which each call makes before it joins: it stays in, so that a run is shared
        // only by calls that asked for the same thing.
        key.part("max unpacked bytes", optional(max_unpacked_bytes.as_ref()));
        key.part("max entries", optional(max_entries.as_ref()));
        key.part("max document bytes", max_document_bytes.to_string());

        // The trust policy is checked by each call before it joins; it stays in for the same
        // reason as the document cap: a call never takes the answer of a run started under
        // another policy.
        let Trust {
            min_release_age,
            registry_keys,
            require_signatures,
            host_node_version,
        } = trust;
        let age = min_release_age.map(|a| a.as_nanos());
        key.part("min release age", optional(age.as_ref()));
        match registry_keys {
            None => key.part("registry keys", "public"),
            Some(keys) => {
                key.part("registry keys", keys.len().to_string());
                for RegistryKey {
                    keyid,
                    key: public,
                    expires,
                } in keys
                {
                    key.part("key id", keyid);
                    key.part("key", public.to_encoded_point(false).as_bytes());
                    key.part("key expires", optional(expires.as_ref()));
                }
            }
        }
        key.part("require signatures", require_signatures.to_string());
        key.part("host node version", optional(host_node_version.as_ref()));
        match provenance {
            None => key.part("provenance", "none"),
            Some(Provenance { policy, trust_root }) => {
                let Policy {
                    repository,
                    workflow_path,
                    git_ref,
                } = policy;
                key.part("provenance repository", repository);
                key.part("provenance workflow", optional(workflow_path.as_ref()));
                key.part("provenance ref", optional(git_ref.as_ref()));
                key.part("sigstore trust root", trust_root.digest());
            }
        }
        key.finish()
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

/// A SHA-256 over named parts, each length-prefixed, so that no two different lists of parts
/// (a value moved from one setting to the next) hash alike.
#[derive(Default)]
struct KeyDigest(sha2::Sha256);

impl KeyDigest {
    fn part(&mut self, name: &str, value: impl AsRef<[u8]>) {
        for bytes in [name.as_bytes(), value.as_ref()] {
            self.0.update((bytes.len() as u64).to_le_bytes());
            self.0.update(bytes);
        }
    }

    fn finish(self) -> String {
        format!("{:x}", self.0.finalize())
    }
}

/// An optional setting as a key part: not given differs from every given value, the empty one
/// too.
fn optional(value: Option<&impl std::fmt::Display>) -> String {
    match value {
        None => "-".into(),
        Some(v) => format!("={v}"),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
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
    let previous = store.previous_for(latest);
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
    use crate::config::{EnvDefaults, Options, ProvenanceInput, Secret, PUBLIC_REGISTRY};
    use crate::net::Http;
    use crate::registry::Dist;
    use crate::registry::{sri_of, Expected};
    use crate::shared::call::Control;
    use crate::store::NATIVE_MODULE;
    use crate::trust::public_keys;
    use std::sync::Arc;

    /// A run's settings: the options a call passes, the environment, an edit of the resolved
    /// settings (for those no option sets), the compatibility the run checks against, an edit of
    /// what the document says of the tarball, and the call's own control (its callbacks and
    /// deadline) in place of a plain one.
    #[derive(Default)]
    struct Setup {
        options: Options,
        env: EnvDefaults,
        edit: Option<fn(&mut Config)>,
        compat: Compat,
        dist: Option<fn(&mut Dist)>,
        control: Option<fn() -> Control>,
    }

    /// The single-flight key of a run of 2.0.0 with `setup`, its store in `dir`.
    fn key_with(dir: &Path, setup: Setup) -> String {
        let Setup {
            options,
            env,
            edit,
            compat,
            dist: edit_dist,
            control,
        } = setup;
        let options = Options {
            user_data: Some(dir.display().to_string()),
            current_version: options.current_version.clone().or(Some("1.0.0".into())),
            native_deps_source: Some(dir.display().to_string()),
            ..options
        };
        let mut cfg = Config::resolve(options, &env).unwrap();
        if let Some(edit) = edit {
            edit(&mut cfg);
        }
        let store = Store::new(dir);
        // The key does not look at the client: one built from the defaults lets a case give
        // certificates that are not PEM.
        let http = Http::new(&NetConfig::default(), PUBLIC_REGISTRY).unwrap();
        let (plain, _abort) = Control::new(Duration::from_secs(60));
        let ctl = control.map_or(plain, |make| make());
        let mut dist = Dist {
            tarball: "https://registry.npmjs.org/kanban/-/kanban-2.0.0.tgz".into(),
            integrity: Expected::from_sri(&sri_of(b"tgz")).unwrap(),
            unpacked_size: None,
            file_count: None,
            bins: Vec::new(),
            attestations_url: None,
        };
        if let Some(edit_dist) = edit_dist {
            edit_dist(&mut dist);
        }
        let run = Run {
            cfg: &cfg,
            store: &store,
            http: &http,
            ctl: &ctl,
            latest: "2.0.0".into(),
            dist,
            native_src: cfg.native_deps_source.join(NATIVE_MODULE[1]),
            compat,
        };
        run.key()
    }

    fn options(options: Options) -> Setup {
        Setup {
            options,
            ..Default::default()
        }
    }

    fn env(env: EnvDefaults) -> Setup {
        Setup {
            env,
            ..Default::default()
        }
    }

    fn edit(edit: fn(&mut Config)) -> Setup {
        Setup {
            edit: Some(edit),
            ..Default::default()
        }
    }

    fn dist(edit: fn(&mut Dist)) -> Setup {
        Setup {
            dist: Some(edit),
            ..Default::default()
        }
    }

    fn control(make: fn() -> Control) -> Setup {
        Setup {
            control: Some(make),
            ..Default::default()
        }
    }

    fn compat(host: Option<&str>, pty: Option<&str>) -> Setup {
        let version = |v: Option<&str>| v.map(|v| nodejs_semver::Version::parse(v).unwrap());
        Setup {
            compat: Compat {
                host_node: version(host),
                node_pty: version(pty),
            },
            ..Default::default()
        }
    }

    fn provenance(
        repository: &str,
        workflow: Option<&str>,
        git_ref: Option<&str>,
    ) -> ProvenanceInput {
        ProvenanceInput {
            repository: Some(repository.into()),
            workflow_path: workflow.map(Into::into),
            git_ref: git_ref.map(Into::into),
        }
    }

    const PUBLIC_GOOD: &str = runtime_stager_provenance::PUBLIC_GOOD_TRUST_ROOT;

    /// The public-good trust root without its CT logs: another root, which checks less.
    fn root_without_ct_logs() -> String {
        let mut root: serde_json::Value = serde_json::from_str(PUBLIC_GOOD).unwrap();
        assert!(!root["ctlogs"].as_array().unwrap().is_empty());
        root["ctlogs"] = serde_json::json!([]);
        root.to_string()
    }

    /// Every setting that can change what a run does, each given a value of its own by a case
    /// that differs from the defaults in that setting alone.
    fn differing_cases() -> Vec<(&'static str, Setup)> {
        let with_provenance = |input: ProvenanceInput, root: Option<String>| {
            options(Options {
                provenance: Some(input),
                sigstore_trust_root: root,
                ..Default::default()
            })
        };
        let proxies = |https: Option<&str>, http: Option<&str>, no_proxy: Option<&str>| {
            env(EnvDefaults {
                proxy: EnvProxy {
                    https: https.map(Into::into),
                    http: http.map(Into::into),
                    no_proxy: no_proxy.map(Into::into),
                },
                ..Default::default()
            })
        };
        vec![
            (
                "integrity",
                dist(|d| d.integrity = Expected::from_sri(&sri_of(b"other tgz")).unwrap()),
            ),
            (
                "tarball URL",
                dist(|d| d.tarball = "https://registry.npmjs.org/kanban/-/other-2.0.0.tgz".into()),
            ),
            (
                "registry",
                options(Options {
                    registry: Some("https://mirror.example/".into()),
                    ..Default::default()
                }),
            ),
            (
                "package name",
                options(Options {
                    package_name: Some("kanban-next".into()),
                    ..Default::default()
                }),
            ),
            (
                "current version",
                options(Options {
                    current_version: Some("1.5.0".into()),
                    ..Default::default()
                }),
            ),
            (
                "native deps source",
                edit(|c| c.native_deps_source = c.native_deps_source.join("other")),
            ),
            (
                "connect timeout",
                options(Options {
                    connect_timeout_ms: Some(1_000.0),
                    ..Default::default()
                }),
            ),
            (
                "idle timeout",
                options(Options {
                    idle_timeout_ms: Some(1_000.0),
                    ..Default::default()
                }),
            ),
            (
                "retries",
                options(Options {
                    retries: Some(0.0),
                    ..Default::default()
                }),
            ),
            (
                "bandwidth cap",
                options(Options {
                    max_bytes_per_second: Some(1e6),
                    ..Default::default()
                }),
            ),
            (
                "proxy",
                options(Options {
                    proxy: Some("http://127.0.0.1:1/".into()),
                    ..Default::default()
                }),
            ),
            (
                "env https proxy",
                proxies(Some("http://127.0.0.1:2/"), None, None),
            ),
            (
                "env http proxy",
                proxies(None, Some("http://127.0.0.1:2/"), None),
            ),
            (
                "env no proxy",
                proxies(None, None, Some("registry.npmjs.org")),
            ),
            (
                "a CA",
                options(Options {
                    ca: Some(vec!["PEM A".into()]),
                    ..Default::default()
                }),
            ),
            (
                "another CA",
                options(Options {
                    ca: Some(vec!["PEM B".into()]),
                    ..Default::default()
                }),
            ),
            (
                "two CAs",
                options(Options {
                    ca: Some(vec!["PEM A".into(), "PEM B".into()]),
                    ..Default::default()
                }),
            ),
            (
                "an auth token",
                options(Options {
                    auth_token: Some("token-a".into()),
                    ..Default::default()
                }),
            ),
            (
                "another auth token",
                options(Options {
                    auth_token: Some("token-b".into()),
                    ..Default::default()
                }),
            ),
            ("user agent", edit(|c| c.net.user_agent.push_str(" other"))),
            (
                "max unpacked bytes",
                options(Options {
                    max_unpacked_bytes: Some(100.0),
                    ..Default::default()
                }),
            ),
            (
                "max entries",
                options(Options {
                    max_entries: Some(10.0),
                    ..Default::default()
                }),
            ),
            (
                "max document bytes",
                options(Options {
                    max_document_bytes: Some(1e6),
                    ..Default::default()
                }),
            ),
            (
                "min release age",
                options(Options {
                    min_release_age_minutes: Some(60.0),
                    ..Default::default()
                }),
            ),
            (
                "registry keys",
                edit(|c| c.trust.registry_keys = Some(public_keys())),
            ),
            (
                "one registry key",
                edit(|c| c.trust.registry_keys = Some(public_keys()[1..].to_vec())),
            ),
            (
                "a key's id",
                edit(|c| {
                    let mut keys = public_keys();
                    keys[0].keyid.push('x');
                    c.trust.registry_keys = Some(keys);
                }),
            ),
            (
                "a key's expiry",
                edit(|c| {
                    let mut keys = public_keys();
                    keys[0].expires = keys[0].expires.map(|e| e + 1);
                    c.trust.registry_keys = Some(keys);
                }),
            ),
            (
                "a key itself",
                edit(|c| {
                    let mut keys = public_keys();
                    keys[0].key = keys[1].key;
                    c.trust.registry_keys = Some(keys);
                }),
            ),
            (
                "require signatures",
                options(Options {
                    require_signatures: Some(true),
                    ..Default::default()
                }),
            ),
            (
                "host node version",
                options(Options {
                    host_node_version: Some("22.12.0".into()),
                    ..Default::default()
                }),
            ),
            (
                "provenance repository",
                with_provenance(provenance("kanban-org/kanban", None, None), None),
            ),
            (
                "another repository",
                with_provenance(provenance("kanban-org/other", None, None), None),
            ),
            (
                "provenance workflow",
                with_provenance(
                    provenance(
                        "kanban-org/kanban",
                        Some(".github/workflows/publish.yml"),
                        None,
                    ),
                    None,
                ),
            ),
            (
                "provenance ref",
                with_provenance(
                    provenance("kanban-org/kanban", None, Some("refs/tags/v*")),
                    None,
                ),
            ),
            (
                "sigstore trust root",
                with_provenance(
                    provenance("kanban-org/kanban", None, None),
                    Some(root_without_ct_logs()),
                ),
            ),
            ("compat host node", compat(Some("22.12.0"), None)),
            ("compat node-pty", compat(None, Some("1.0.0"))),
        ]
    }

    #[test]
    fn runs_are_shared_only_by_calls_with_the_same_settings() {
        let tmp = tempfile::tempdir().unwrap();
        let key_of = |setup| key_with(tmp.path(), setup);
        let base = key_of(Setup::default());
        assert_eq!(base, key_of(Setup::default()));
        let mut seen = std::collections::HashMap::from([(base.clone(), "the defaults")]);
        for (i, (name, setup)) in differing_cases().into_iter().enumerate() {
            let key = key_of(setup);
            // The same settings again, built anew: the same key.
            let (_, again) = differing_cases().swap_remove(i);
            assert_eq!(key, key_of(again), "{name}: the same settings");
            // Differs from the defaults and from every other case.
            if let Some(other) = seen.insert(key, name) {
                panic!("{name} has the key of {other}");
            }
        }
    }

    #[test]
    fn settings_that_cannot_change_the_run_do_not_split_it() {
        let tmp = tempfile::tempdir().unwrap();
        let key_of = |setup| key_with(tmp.path(), setup);
        let base = key_of(Setup::default());
        let same = [
            // The call's own deadline: a joiner's wait is bounded by its own.
            options(Options {
                timeout_ms: Some(5_000.0),
                ..Default::default()
            }),
            // The tag only chose the version, which the flight's key holds.
            options(Options {
                dist_tag: Some("next".into()),
                ..Default::default()
            }),
            // An empty token is no token: none is sent.
            options(Options {
                auth_token: Some("".into()),
                ..Default::default()
            }),
            // The call's own callbacks (`onLog`, `onProgress`) and deadline: each joiner keeps
            // its own, and a run's result does not depend on who listens to it.
            control(|| {
                let (ctl, _abort) = Control::new(Duration::from_secs(5));
                ctl.with_log(Arc::new(|_| {}))
                    .with_progress(Arc::new(|_| {}))
            }),
            // The rollout only chose the version, which the flight's key holds.
            options(Options {
                rollout_hours: Some(48.0),
                rollout_bucket: Some(0.5),
                honor_deprecation: Some(true),
                bundled_version: Some("0.9.0".into()),
                ..Default::default()
            }),
        ];
        for setup in same {
            let shown = format!("{:?} control: {}", setup.options, setup.control.is_some());
            assert_eq!(base, key_of(setup), "{shown}");
        }
    }

    #[test]
    fn the_auth_token_never_shows_in_debug_output() {
        let tmp = tempfile::tempdir().unwrap();
        let token = "npm_s3cr3t-token-value";
        let given = Options {
            user_data: Some(tmp.path().display().to_string()),
            current_version: Some("1.0.0".into()),
            native_deps_source: Some(tmp.path().display().to_string()),
            auth_token: Some(token.into()),
            ..Default::default()
        };
        let shown_options = format!("{given:?} {given:#?}");
        let cfg = Config::resolve(given, &EnvDefaults::default()).unwrap();
        assert_eq!(cfg.net.auth_token.as_ref().map(Secret::expose), Some(token));
        for shown in [
            shown_options,
            format!("{cfg:?}"),
            format!("{cfg:#?}"),
            format!("{:?}", cfg.net),
            format!("{:?}", cfg.net.auth_token),
        ] {
            assert!(!shown.contains(token), "{shown}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        // Nor can it be read back from the single-flight key, which holds only a digest.
        let key = key_with(
            tmp.path(),
            options(Options {
                auth_token: Some(token.into()),
                ..Default::default()
            }),
        );
        assert!(!key.contains(token));
        assert_eq!(key.len(), 64);
    }
}
