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
use crate::registry::{document_url, rewrite_tarball_url, Dist, ACCEPT_CORGI, ACCEPT_FULL};
use crate::store::{self, IncompatibleEntry, Store, NATIVE_MODULE};
use crate::trust::{self, Compat};
use crate::version;

use std::io;
use std::path::Path;
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
