//! The phased rollout and the kill switch, as one check applies them: this store's delay (the
//! cool-down plus its bucket's share of `rolloutHours`), the newest release it holds back, the
//! withdrawal of a pointed version its publisher deprecated, and the note of both kept in the
//! store for the status.

use crate::config::Config;
use crate::registry::Document;
use crate::shared::call::Control;
use crate::shared::dates::{iso_utc, now_ms};
use crate::shared::error::{Result, StageError};
use crate::shared::fsutil::blocking;
use crate::shared::log::{Level, Value as LogValue};
use crate::shared::text::clip;
use crate::shared::version;
use crate::store::{draw_bucket, LockWait, PendingNote, Store, WithdrawnNote};
use crate::trust::{self, Delay};

/// This call's delay between a release's publication and its staging here.
pub(super) async fn delay(cfg: &Config, store: &Store, ctl: &Control) -> Result<Delay> {
    let min_age_ms = cfg
        .trust
        .min_release_age
        .filter(|d| !d.is_zero())
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let hours = cfg.rollout.hours;
    if hours == 0 {
        return Ok(Delay {
            min_age_ms,
            rollout_ms: None,
        });
    }
    let (bucket, whose) = match cfg.rollout.bucket {
        Some(b) => (b, "given"),
        None => (store_bucket(store, ctl).await?, "the store's"),
    };
    ctl.log(
        Level::Debug,
        format!("rollout over {hours} h: {whose} bucket {bucket}"),
        &[("bucket", LogValue::Num(bucket)), ("hours", hours.into())],
    );
    Ok(Delay {
        min_age_ms,
        rollout_ms: Some(trust::rollout_ms(bucket, hours)),
    })
}

/// The store's bucket, drawn and recorded on first use. A record that cannot be written (a
/// read-only store, a folder in its place) is no reason to fail the check: this call uses a
/// bucket drawn for it alone, and says so.
async fn store_bucket(store: &Store, ctl: &Control) -> Result<f64> {
    if let Some(b) = store.read_rollout().bucket {
        return Ok(b);
    }
    let (s, c) = (store.clone(), ctl.clone());
    match blocking(move || s.with_store_lock(&LockWait::Call(&c), |l| s.rollout_bucket(l))).await {
        Ok(b) => Ok(b),
        Err(e @ (StageError::Aborted | StageError::Timeout { .. })) => Err(e),
        Err(e) => {
            ctl.log(
                Level::Warn,
                format!(
                    "the rollout bucket could not be recorded ({}): {e}; this check draws its own",
                    e.code()
                ),
                &[("code", e.code().into())],
            );
            draw_bucket()
        }
    }
}

/// Under a rollout, the newest release the tag's choice would take, newer than `chosen` and the
/// running version, that `delay` holds back; logged with when it becomes eligible. A cool-down
/// alone says what it passes over in its own log line, as it always has.
pub(super) fn pending(
    baseline: Option<&semver::Version>,
    doc: &Document,
    tag: &semver::Version,
    chosen: Option<&str>,
    delay: &Delay,
    ctl: &Control,
) -> Option<PendingNote> {
    delay.rollout_ms?;
    let chosen = chosen.and_then(|c| semver::Version::parse(c).ok());
    let above = match (chosen, baseline.cloned()) {
        (Some(a), Some(b)) => Some(std::cmp::max_by(a, b, version::compare)),
        (a, b) => a.or(b),
    };
    let (version, at) = trust::held_back(doc, tag, above.as_ref(), now_ms(), delay)?;
    let eligible_at = iso_utc(at);
    ctl.log(
        Level::Info,
        format!(
            "{} is held back: eligible for this store at {eligible_at}",
            clip(&version)
        ),
        &[
            ("version", (&version).into()),
            ("eligibleAt", (&eligible_at).into()),
        ],
    );
    Some(PendingNote {
        version,
        eligible_at,
    })
}

/// Warns when the chosen release passed a rollout only because the document gives it no `time`:
/// it is staged as it was before rollouts, at once.
pub(super) fn warn_untimed(doc: &Document, chosen: &str, delay: &Delay, ctl: &Control) {
    if delay.rollout_ms.is_some() && doc.published_ms(chosen).is_none() {
        ctl.log(
            Level::Warn,
            format!(
                "the document gives no publish time for {}: staged without the rollout's delay",
                clip(chosen)
            ),
            &[("version", chosen.into())],
        );
    }
}

/// Under `honorDeprecation`, when the document deprecates the version the pointer names: moves
/// the pointer off it (see `Store::withdraw`) and says so. `None` when nothing was withdrawn.
pub(super) async fn withdraw_deprecated(
    cfg: &Config,
    store: &Store,
    doc: &Document,
    ctl: &Control,
) -> Result<Option<WithdrawnNote>> {
    if !cfg.rollout.honor_deprecation {
        return Ok(None);
    }
    let Some(pointed) = store.read_pointer().map(|p| p.version) else {
        return Ok(None);
    };
    let Some(reason) = doc.deprecation(&pointed).map(clip) else {
        return Ok(None);
    };
    let deprecated: std::collections::BTreeSet<String> = doc
        .version_keys()
        .filter(|v| doc.is_deprecated(v))
        .map(str::to_string)
        .collect();
    let bundled = cfg.rollout.bundled_version.clone();
    let (s, c, version) = (store.clone(), ctl.clone(), pointed.clone());
    let moved = blocking(move || {
        s.with_store_lock(&LockWait::Call(&c), |lock| {
            s.withdraw(
                lock,
                &version,
                &|v| deprecated.contains(v),
                bundled.as_ref(),
            )
        })
    })
    .await?;
    let Some(pointer) = moved else {
        return Ok(None);
    };
    let now = pointer.as_deref().unwrap_or("the bundled runtime");
    ctl.log(
        Level::Warn,
        format!(
            "withdrew {} (deprecated: {reason}); the pointer now names {}",
            clip(&pointed),
            clip(now)
        ),
        &[
            ("version", (&pointed).into()),
            ("reason", (&reason).into()),
            ("pointer", now.into()),
        ],
    );
    Ok(Some(WithdrawnNote {
        version: pointed,
        reason,
        pointer,
    }))
}

/// Keeps what this check held back and withdrew in the store for the status; a withdrawal the
/// publisher lifted is dropped from it. Only a change is written, and a failure to write is a
/// warning: the note is for a person, the check's outcome already says it.
pub(super) async fn note(
    cfg: &Config,
    store: &Store,
    doc: &Document,
    pending: Option<PendingNote>,
    withdrawn: Option<WithdrawnNote>,
    ctl: &Control,
) {
    let before = store.read_rollout();
    let lifted = cfg.rollout.honor_deprecation
        && before
            .withdrawn
            .as_ref()
            .is_some_and(|w| !doc.is_deprecated(&w.version));
    let update = match (withdrawn, lifted) {
        (Some(w), _) => Some(Some(w)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    if before.pending == pending && update.is_none() {
        return;
    }
    let (s, c) = (store.clone(), ctl.clone());
    let written = blocking(move || {
        s.with_store_lock(&LockWait::Call(&c), |l| s.note_rollout(l, pending, update))
    })
    .await;
    if let Err(e) = written {
        ctl.log(
            Level::Warn,
            format!("the rollout note could not be recorded ({}): {e}", e.code()),
            &[("code", e.code().into())],
        );
    }
}
