//! What the binding hands back to JS: outcomes, progress, log entries, the pointer, and errors.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use runtime_stager_core::Progress;
use runtime_stager_core::{Checked, Outcome};
use runtime_stager_core::{Field, StageError};
use runtime_stager_core::{LogEntry, LogValue};
use std::collections::HashMap;

/// A log entry of `checkAndStageLatestRuntime`: what it decided and why.
#[napi(object)]
pub(crate) struct StageLogEntry {
    #[napi(ts_type = "'debug' | 'info' | 'warn'")]
    pub level: String,
    pub message: String,
    /// Structured details (version, tag, url, reason, delayMs, ...).
    #[napi(ts_type = "Record<string, string | number>")]
    pub fields: Option<HashMap<String, Either<String, f64>>>,
}

impl From<LogEntry> for StageLogEntry {
    fn from(e: LogEntry) -> Self {
        let fields: HashMap<String, Either<String, f64>> = e
            .fields
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    LogValue::Str(s) => Either::A(s),
                    LogValue::Num(n) => Either::B(n),
                };
                (k.to_string(), v)
            })
            .collect();
        StageLogEntry {
            level: e.level.as_str().to_string(),
            message: e.message,
            fields: (!fields.is_empty()).then_some(fields),
        }
    }
}

/// A progress event of `checkAndStageLatestRuntime`.
#[napi(object)]
#[derive(Clone)]
pub(crate) struct StageProgress {
    #[napi(ts_type = "StagePhase")]
    pub phase: String,
    /// Tarball bytes received so far.
    pub downloaded_bytes: f64,
    /// The tarball's size, when the registry sent a Content-Length.
    pub total_bytes: Option<f64>,
}

impl From<Progress> for StageProgress {
    fn from(p: Progress) -> Self {
        StageProgress {
            phase: p.phase.as_str().to_string(),
            downloaded_bytes: p.downloaded as f64,
            total_bytes: p.total.map(|t| t as f64),
        }
    }
}

/// What `checkAndStageLatestRuntime` resolved to. `refused` is set when the trust policy
/// (`requireSignatures`, `registryKeys`, `provenance`) refused a newer version than the outcome's
/// and the call passed it over, as the cool-down passes over a young one. `pending` is set when
/// the phased rollout (`rolloutHours`) held a newer release back for this store; `withdrawn` when, under `honorDeprecation`, this call moved the pointer off a version its
/// publisher deprecated.
#[napi(discriminant = "kind", discriminant_case = "kebab-case")]
pub enum StageOutcome {
    /// The running runtime is as new as the registry's (or as every newer version it may stage).
    UpToDate {
        refused: Option<StageRefusal>,
        pending: Option<StagePending>,
        withdrawn: Option<StageWithdrawal>,
    },
    /// The newest version is marked bad; nothing was staged.
    BadVersion {
        version: String,
        refused: Option<StageRefusal>,
        pending: Option<StagePending>,
        withdrawn: Option<StageWithdrawal>,
    },
    /// The pointer already names the newest version and its folder is whole.
    AlreadyStaged {
        refused: Option<StageRefusal>,
        pending: Option<StagePending>,
        withdrawn: Option<StageWithdrawal>,
    },
    /// The newest version was staged and the pointer now names it.
    Staged {
        version: String,
        refused: Option<StageRefusal>,
        pending: Option<StagePending>,
        withdrawn: Option<StageWithdrawal>,
    },
}

/// The newest release the phased rollout (after the cool-down) holds back for this store.
#[napi(object)]
pub struct StagePending {
    pub version: String,
    /// When it becomes eligible here, ISO 8601 UTC: its publication plus the cool-down plus
    /// this store's bucket times `rolloutHours`.
    pub eligible_at: String,
}

impl From<runtime_stager_core::PendingNote> for StagePending {
    fn from(p: runtime_stager_core::PendingNote) -> Self {
        StagePending {
            version: p.version,
            eligible_at: p.eligible_at,
        }
    }
}

/// A version withdrawn because its publisher deprecated it (`honorDeprecation`). It is not marked
/// bad and its folder is kept: once the deprecation is lifted it is eligible again.
#[napi(object)]
pub struct StageWithdrawal {
    pub version: String,
    /// The registry's deprecation message, clipped.
    pub reason: String,
    /// The version the pointer names afterwards; `null`: the bundled runtime.
    #[napi(ts_type = "string | null")]
    pub pointer: Either<String, Null>,
}

impl From<runtime_stager_core::WithdrawnNote> for StageWithdrawal {
    fn from(w: runtime_stager_core::WithdrawnNote) -> Self {
        StageWithdrawal {
            version: w.version,
            reason: w.reason,
            pointer: or_null(w.pointer),
        }
    }
}

/// The newest version the trust policy refused on the way to an outcome: the `code`, `message`
/// and fields the error would have had (`ESIGNATURE` with `reason` and `keyid`, `EPROVENANCE`
/// with `check`).
#[napi(object)]
pub struct StageRefusal {
    #[napi(ts_type = "'ESIGNATURE' | 'EPROVENANCE'")]
    pub code: String,
    pub message: String,
    /// The refused version.
    pub version: String,
    /// Which provenance check failed (`EPROVENANCE`).
    #[napi(ts_type = "StageError['check']")]
    pub check: Option<String>,
    /// Why the signature failed (`ESIGNATURE`).
    #[napi(ts_type = "StageError['reason']")]
    pub reason: Option<String>,
    /// The key the failing signature names (`ESIGNATURE`), when it names one.
    pub keyid: Option<String>,
}

impl From<&StageError> for StageRefusal {
    fn from(e: &StageError) -> Self {
        let mut r = StageRefusal {
            code: e.code().to_string(),
            message: e.to_string(),
            version: String::new(),
            check: None,
            reason: None,
            keyid: None,
        };
        for (name, value) in e.fields() {
            let Field::Str(value) = value else { continue };
            match name {
                "version" => r.version = value,
                "check" => r.check = Some(value),
                "reason" => r.reason = Some(value),
                "keyid" => r.keyid = Some(value),
                _ => {}
            }
        }
        r
    }
}

/// The pointer `current.json`.
#[napi(object)]
pub(crate) struct RuntimePointer {
    pub version: String,
    /// Absolute path of the staged `dist/cli.js`.
    pub cli_entry: String,
    /// The previously pointed version, kept as the known-good fallback.
    pub previous: Option<String>,
}

impl From<runtime_stager_core::Pointer> for RuntimePointer {
    fn from(p: runtime_stager_core::Pointer) -> Self {
        RuntimePointer {
            version: p.version,
            cli_entry: p.cli_entry,
            previous: p.previous,
        }
    }
}

impl From<Checked> for StageOutcome {
    fn from(c: Checked) -> Self {
        let refused = c.refused.as_ref().map(StageRefusal::from);
        let pending = c.pending.map(StagePending::from);
        let withdrawn = c.withdrawn.map(StageWithdrawal::from);
        match c.outcome {
            Outcome::UpToDate => StageOutcome::UpToDate {
                refused,
                pending,
                withdrawn,
            },
            Outcome::BadVersion(version) => StageOutcome::BadVersion {
                version,
                refused,
                pending,
                withdrawn,
            },
            Outcome::AlreadyStaged => StageOutcome::AlreadyStaged {
                refused,
                pending,
                withdrawn,
            },
            Outcome::Staged(version) => StageOutcome::Staged {
                version,
                refused,
                pending,
                withdrawn,
            },
        }
    }
}

/// Why a binding call failed: a coded error (an option or argument at fault, or the core's
/// answer), or a JS call (a getter, `addEventListener`) that threw while the arguments were read.
pub(super) enum ArgError {
    Stage(StageError),
    Js(Error),
}

impl From<StageError> for ArgError {
    fn from(e: StageError) -> Self {
        ArgError::Stage(e)
    }
}

impl From<Error> for ArgError {
    fn from(e: Error) -> Self {
        ArgError::Js(e)
    }
}

impl ArgError {
    /// The JS error to throw or reject with.
    pub(super) fn into_js(self, env: &Env) -> Error {
        match self {
            ArgError::Stage(e) => js_error(env, &e),
            ArgError::Js(e) => e,
        }
    }
}

/// `EINVALID_OPTION` naming the option or argument at fault: napi's own conversion errors
/// (`StringExpected`) carry no code of this package, and an app branches on `err.code`.
pub(super) fn invalid(name: &'static str, reason: impl Into<String>) -> ArgError {
    ArgError::Stage(StageError::InvalidOption {
        name,
        reason: reason.into(),
    })
}

/// Turns a core error into a JS `Error` with `code`, `hint` and the structured fields.
pub(super) fn js_error(env: &Env, e: &StageError) -> Error {
    let build = || -> Result<Error> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, e.to_string()))?;
        obj.set_named_property("code", e.code())?;
        obj.set_named_property("hint", e.hint())?;
        for (name, value) in e.fields() {
            match value {
                Field::Str(s) => obj.set_named_property(name, s)?,
                Field::Num(n) => obj.set_named_property(name, n)?,
            }
        }
        Ok(Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|err| err)
}

/// `null` in JS for `None`: an object field that is `None` would be left out (`undefined`), and
/// these fields are documented as `null`.
pub(super) fn or_null<T>(v: Option<T>) -> Either<T, Null> {
    match v {
        Some(v) => Either::A(v),
        None => Either::B(Null),
    }
}
