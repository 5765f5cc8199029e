//! One check: resolve the version the dist-tag names, apply the cool-down, answer from the version
//! guards when nothing needs staging, run the guards that come before any download, and pass a
//! version the trust policy refuses over for the next older one that qualifies.

use super::document::fetch_document;
use super::flight::single_flight;
use super::guards::bundled_node_pty_version;
use super::guards::check_provenance;
use super::guards::check_signatures;
use super::guards::compat_guard;
use super::guards::Candidate;
use super::outcome::Checked;
use super::outcome::Outcome;
use super::rollout;
use super::run::already_staged;
use super::run::Run;
use crate::config::Config;
use crate::net::Http;
use crate::registry::{document_url, Document, ACCEPT_CORGI, ACCEPT_FULL};
use crate::shared::call::Control;
use crate::shared::error::Field;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::log::Level;
use crate::shared::log::Value as LogValue;
use crate::shared::phase::Phase;
use crate::shared::text::clip;
use crate::shared::version;
use crate::store::{Store, WithdrawnNote, NATIVE_MODULE};
use crate::trust::{self, Compat, Delay};
use std::time::Duration;

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
    // The store's bucket before the withdrawal: drawing it can wait for the store lock or be
    // aborted, and a check that fails after withdrawing would leave the withdrawal unannounced.
    let delay = rollout::delay(cfg, store, ctl).await?;
    // The withdrawal comes first of what the check decides: it holds whatever else it does, and
    // a newer release that is eligible is then staged over it as usual.
    let withdrawn = rollout::withdraw_deprecated(cfg, store, &resolved.doc, ctl).await?;
    let bar = Bar {
        delay: &delay,
        baseline: baseline(cfg, withdrawn.as_ref()),
    };
    let candidate = apply_cool_down(cfg, &resolved, &delay, ctl);
    let pending = rollout::pending(
        bar.baseline.as_ref(),
        &resolved.doc,
        &resolved.tagged_v,
        candidate.as_deref(),
        &delay,
        ctl,
    );
    if let Some(c) = &candidate {
        rollout::warn_untimed(&resolved.doc, c, &delay, ctl);
    }
    let staged = stage_candidate(cfg, store, &http, &resolved, candidate, &bar, ctl).await;
    // Noted whatever the staging came to: a withdrawal stands when the newer release then fails
    // to stage, and the status (and the wiring, after a rejection) must still see it.
    rollout::note(
        cfg,
        store,
        &resolved.doc,
        pending.clone(),
        withdrawn.clone(),
        ctl,
    )
    .await;
    let (outcome, refused) = staged?;
    if outcome == Outcome::UpToDate {
        log_all_newer_deprecated(cfg, &resolved, ctl);
    }
    Ok(Checked {
        outcome,
        refused,
        pending,
        withdrawn,
    })
}

/// What a candidate is held against in this check: the delay since publication (cool-down and
/// rollout), and the version it must be newer than.
struct Bar<'a> {
    delay: &'a Delay,
    /// The running version; after a withdrawal of it, the one the app runs next. `None`: any
    /// version is newer (a running version that is not semver, a dev build say).
    baseline: Option<semver::Version>,
}

/// The version a release must be newer than to be staged: the running one, cleaned as npm does.
/// When this check withdrew the running version, it is what the app runs next instead (the new
/// pointer, else the bundled runtime): a good release older than the withdrawn one is then
/// staged in this check rather than one interval later.
fn baseline(cfg: &Config, withdrawn: Option<&WithdrawnNote>) -> Option<semver::Version> {
    let running = version::clean(&cfg.current_version);
    match withdrawn {
        Some(w) if running.as_ref().is_some_and(|r| r.to_string() == w.version) => w
            .pointer
            .as_deref()
            .and_then(version::clean)
            .or_else(|| cfg.rollout.bundled_version.clone()),
        _ => running,
    }
}

/// The outcome of staging `candidate`, or the newest older release that qualifies when the trust
/// policy refuses it, and the newest refusal met on the way.
async fn stage_candidate(
    cfg: &Config,
    store: &Store,
    http: &Http,
    resolved: &Resolved,
    mut candidate: Option<String>,
    bar: &Bar<'_>,
    ctl: &Control,
) -> Result<(Outcome, Option<StageError>)> {
    let mut refused = None;
    let mut refusals = 0;
    let outcome = loop {
        let Some(latest) = candidate else {
            break Outcome::UpToDate;
        };
        if let Some(outcome) = version_guards(cfg, store, &latest, bar.baseline.as_ref(), ctl)? {
            break outcome;
        }
        let c = Candidate {
            cfg,
            store,
            http,
            version: &latest,
            ctl,
        };
        match pre_download_guards(&c, resolved).await {
            Ok(run) => {
                break single_flight(store, &run.latest, &run.key(), ctl, || run.stage()).await?
            }
            Err(e) if is_trust_refusal(&e) => {
                refusals += 1;
                candidate = if refusals < MAX_REFUSED {
                    fallback(cfg, resolved, &latest, bar.delay)?
                } else {
                    None
                };
                log_refusal(&e, candidate.as_deref(), refusals, ctl);
                refused.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    };
    Ok((outcome, refused))
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
/// would take (under the cool-down and the rollout, eligible), if any.
fn fallback(
    cfg: &Config,
    resolved: &Resolved,
    refused: &str,
    delay: &Delay,
) -> Result<Option<String>> {
    let below = parse_version(cfg, refused)?;
    Ok(trust::candidate_below(
        &resolved.doc,
        &resolved.tagged_v,
        Some(&below),
        crate::shared::dates::now_ms(),
        delay,
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
    // The cool-down and the rollout read publish dates, which only the full document has;
    // without them the abbreviated document (which has `deprecated` too) is all we fetch.
    let full = cool_down(cfg).is_some() || cfg.rollout.hours > 0;
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

/// The version to consider: the tagged one, or under a cool-down or a rollout the newest release
/// up to it that is eligible and not deprecated (also the rule under `honorDeprecation`, so that a
/// deprecated release is never staged again); `None` when no release qualifies (nothing to stage).
fn apply_cool_down(
    cfg: &Config,
    resolved: &Resolved,
    delay: &Delay,
    ctl: &Control,
) -> Option<String> {
    if delay.is_off() && !cfg.rollout.honor_deprecation {
        return Some(resolved.tagged.clone());
    }
    let tagged = &resolved.tagged;
    let candidate = trust::cooled_candidate(
        &resolved.doc,
        &resolved.tagged_v,
        crate::shared::dates::now_ms(),
        delay,
    );
    let Some(age) = cool_down(cfg) else {
        if candidate.as_deref() != Some(tagged) {
            let then = candidate.as_deref().map_or("none qualifies".into(), |v| {
                format!("considering {}", clip(v))
            });
            ctl.log(
                Level::Info,
                format!(
                    "{} is not eligible for this store yet (or deprecated); {then}",
                    clip(tagged)
                ),
                &[("version", tagged.into())],
            );
        }
        return candidate;
    };
    let minutes = age.as_secs() / 60;
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
    baseline: Option<&semver::Version>,
    ctl: &Control,
) -> Result<Option<Outcome>> {
    let latest_v = parse_version(cfg, latest)?;
    // A current version that is not semver (a dev build, say) counts as older than anything;
    // `v1.2.3` and `=1.2.3` are cleaned as npm does, and build metadata never makes a version newer.
    if let Some(current) = baseline {
        if version::compare(&latest_v, current) != std::cmp::Ordering::Greater {
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
async fn pre_download_guards<'a>(c: &Candidate<'a>, resolved: &Resolved) -> Result<Run<'a>> {
    let Candidate {
        cfg,
        store,
        http,
        version: latest,
        ctl,
    } = *c;
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
    check_signatures(c, url, doc, *full).await?;
    if let Some(provenance) = &cfg.provenance {
        check_provenance(c, provenance, &doc.dist(latest)?).await?;
    }
    compat_guard(c, doc, &compat)?;
    let dist = doc.dist(latest)?;
    ctl.log(
        Level::Info,
        format!("staging {}", clip(latest)),
        &[("version", latest.into())],
    );
    Ok(Run {
        cfg,
        store,
        http,
        ctl,
        latest: latest.to_string(),
        dist,
        native_src,
        compat,
    })
}
