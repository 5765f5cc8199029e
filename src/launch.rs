//! Launch health for the app's start-up path: what to launch (recording a trial), confirming a
//! runtime that came up, reporting one that did not. Synchronous: each answers in milliseconds.

use super::store::{
    cli_entry_call, optional_string_arg, path_string, store_arg, string_arg, sync_call,
};
use super::types::{invalid, or_null, ArgError, RuntimePointer};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use runtime_stager_core::launch::{self, DEFAULT_MAX_UNCONFIRMED};

/// A version `beginLaunch` rolled back before it chose what to launch.
#[napi(object)]
pub(crate) struct LaunchRollback {
    /// The version marked bad.
    pub version: String,
    /// `'unconfirmed-launches'`: it had `maxUnconfirmedLaunches` launches that were never
    /// confirmed.
    pub reason: String,
}

/// What to launch.
#[napi(object)]
pub(crate) struct LaunchDecision {
    /// The staged CLI to run; `null`: run the bundled runtime.
    pub cli_entry: Either<String, Null>,
    /// The version that runs (the bundled one when `cliEntry` is `null`).
    pub version: String,
    /// Which unconfirmed launch of this version this is (1 for the first); 0 for the bundled
    /// runtime and for a confirmed version, which are no trial.
    pub attempt: u32,
    /// Set when a version was rolled back first; tell the user once.
    pub rolled_back: Option<LaunchRollback>,
}

/// What `reportLaunchFailed` did.
#[napi(object)]
pub(crate) struct LaunchFailure {
    /// The version the failed `cliEntry` belongs to, now marked bad; `null` for a path outside
    /// the store's layout (nothing was changed).
    pub failed_version: Either<String, Null>,
    /// The pointer afterwards.
    pub pointer: Either<RuntimePointer, Null>,
}

/// The `{ bundledVersion, maxUnconfirmedLaunches? }` argument.
fn launch_opts(opts: Option<Unknown<'_>>) -> std::result::Result<(semver::Version, u32), ArgError> {
    let Some(opts) = opts.filter(|o| o.get_type().is_ok_and(|t| t == ValueType::Object)) else {
        return Err(invalid(
            "opts",
            "must be an object with a string `bundledVersion`",
        ));
    };
    // SAFETY: its type was checked just above.
    let obj: Object = unsafe { opts.cast()? };
    let bundled = string_arg(
        obj.get_named_property::<Unknown>("bundledVersion").ok(),
        "bundledVersion",
    )?;
    let bundled = runtime_stager_core::clean_version(&bundled)
        .ok_or_else(|| invalid("bundledVersion", format!("invalid semver: {bundled}")))?;
    let range = runtime_stager_core::option_ranges::UNCONFIRMED_LAUNCHES;
    let out_of_range = format!("must be an integer from {} to {}", range.min, range.max);
    let max = match obj.get_named_property::<Unknown>("maxUnconfirmedLaunches") {
        Ok(v) if matches!(v.get_type()?, ValueType::Undefined | ValueType::Null) => {
            DEFAULT_MAX_UNCONFIRMED
        }
        Ok(v) if v.get_type()? == ValueType::Number => {
            // SAFETY: its type was checked in the guard.
            let n: f64 = unsafe { v.cast()? };
            if n.fract() != 0.0 || !(range.min as f64..=range.max as f64).contains(&n) {
                return Err(invalid("maxUnconfirmedLaunches", out_of_range));
            }
            n as u32
        }
        _ => return Err(invalid("maxUnconfirmedLaunches", out_of_range)),
    };
    Ok((bundled, max))
}

/// For the app's start-up path: decides what to launch with the app's rule (the pointed version
/// when it is newer than `bundledVersion` and its folder whole; a stale, invalid or unrunnable
/// pointer is removed) and durably records one launch attempt for it before it returns. A
/// version with `maxUnconfirmedLaunches` (default 2) attempts never confirmed is marked bad and
/// rolled back first, to the newest confirmed version still whole, else to the bundled runtime.
/// Throws `EINVALID_OPTION`, `ELOCKED`, `EIO`, `ENOSPC`.
#[napi(
    ts_args_type = "userData: string, opts: { bundledVersion: string; maxUnconfirmedLaunches?: number }"
)]
pub(crate) fn begin_launch(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    opts: Option<Unknown<'_>>,
) -> Result<LaunchDecision> {
    sync_call(env, || {
        let store = store_arg(user_data)?;
        let (bundled, max) = launch_opts(opts)?;
        let l = launch::begin(&store, &bundled, max)?;
        Ok(LaunchDecision {
            cli_entry: or_null(l.cli_entry.map(path_string)),
            version: l.version,
            attempt: l.attempt,
            rolled_back: l.rolled_back.map(|r| LaunchRollback {
                version: r.version,
                reason: r.reason.into(),
            }),
        })
    })
}

/// What `beginLaunch` would launch, recording nothing: a stale, invalid or unrunnable pointer is
/// still removed. For a background check, which must never count as a launch.
#[napi(ts_args_type = "userData: string, opts: { bundledVersion: string }")]
pub(crate) fn resolve_launch(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    opts: Option<Unknown<'_>>,
) -> Result<Option<RuntimePointer>> {
    sync_call(env, || {
        let store = store_arg(user_data)?;
        let (bundled, _) = launch_opts(opts)?;
        Ok(launch::resolve(&store, &bundled)?.map(RuntimePointer::from))
    })
}

/// The runtime started from `cliEntry` is healthy: its attempts are cleared and it becomes a
/// confirmed version, the rollback target of choice, which pruning always keeps. Returns its
/// version, or `null` for a path outside the store or a version that is bad or no longer whole.
#[napi(ts_args_type = "userData: string, cliEntry: string")]
pub(crate) fn confirm_launch(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    cli_entry: Option<Unknown<'_>>,
) -> Result<Option<String>> {
    cli_entry_call(env, user_data, cli_entry, launch::confirm)
}

/// The start that launched `cliEntry` on trial ended cleanly: the app is quitting normally, no
/// failure was reported for it and it was not confirmed. Its launch is taken back, flushed before
/// this returns, so a user who quits before the runtime is confirmed never counts against it:
/// only starts that die, are killed or hang until force-quit count towards
/// `maxUnconfirmedLaunches`. Call it once per trial launch (`attempt` > 0), on the app's way out.
/// Returns the version, or `null` when there was nothing to take back (a path outside the store,
/// a confirmed or bad version). Throws `EINVALID_OPTION`, `ELOCKED`, `EIO`, `ENOSPC`.
#[napi(ts_args_type = "userData: string, cliEntry: string")]
pub(crate) fn end_launch(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    cli_entry: Option<Unknown<'_>>,
) -> Result<Option<String>> {
    cli_entry_call(env, user_data, cli_entry, launch::end)
}

/// The runtime started from `cliEntry` failed to come up: its version (from `cliEntry`, never
/// from the pointer) is marked bad, the pointer rolled back only while it still names that
/// version, and the folder removed once the mark is recorded. Throws when the mark cannot be
/// recorded, and then nothing changed. `reason` (an exit code, an error) is kept, masked and
/// clipped, with the failure's time, for `readStoreStatus`'s `launchFailures`.
#[napi(ts_args_type = "userData: string, cliEntry: string, reason?: string")]
pub(crate) fn report_launch_failed(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    cli_entry: Option<Unknown<'_>>,
    reason: Option<Unknown<'_>>,
) -> Result<LaunchFailure> {
    sync_call(env, || {
        let store = store_arg(user_data)?;
        let cli_entry = string_arg(cli_entry, "cliEntry")?;
        let reason = optional_string_arg(reason, "reason")?;
        let f = launch::report_failed(&store, &cli_entry, reason.as_deref())?;
        Ok(LaunchFailure {
            failed_version: or_null(f.failed_version),
            pointer: or_null(f.pointer.map(RuntimePointer::from)),
        })
    })
}
