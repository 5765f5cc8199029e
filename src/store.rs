//! The store functions: reading the pointer and the store's state, marking a version bad,
//! pruning, and recognising this package's errors.

use super::types::{
    invalid, or_null, ArgError, RuntimePointer, StageLogEntry, StagePending, StageWithdrawal,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use runtime_stager_core::user_data_dir;
use runtime_stager_core::StageError;
use runtime_stager_core::{check_version, Store};

/// A string argument, or `EINVALID_OPTION` naming it: napi's own `StringExpected` is no code of
/// this package, and an app branches on `err.code`.
pub(super) fn string_arg(
    arg: Option<Unknown<'_>>,
    name: &'static str,
) -> std::result::Result<String, ArgError> {
    match arg {
        // SAFETY: the guard checked that the value is a string.
        Some(v) if v.get_type()? == ValueType::String => Ok(unsafe { v.cast::<String>() }?),
        _ => Err(invalid(name, "must be a string")),
    }
}

/// An optional string argument: `None` when absent, `undefined` or `null`; any other type is
/// refused, naming the argument.
pub(super) fn optional_string_arg(
    arg: Option<Unknown<'_>>,
    name: &'static str,
) -> std::result::Result<Option<String>, ArgError> {
    match arg {
        None => Ok(None),
        Some(v) if matches!(v.get_type()?, ValueType::Undefined | ValueType::Null) => Ok(None),
        some => string_arg(some, name).map(Some),
    }
}

/// The store under a `userData` argument, which must be a non-empty absolute path: a relative
/// one would read and write beside the process's working directory.
pub(super) fn store_arg(arg: Option<Unknown<'_>>) -> std::result::Result<Store, ArgError> {
    let user_data = string_arg(arg, "userData")?;
    Ok(Store::new(&user_data_dir(&user_data)?))
}

/// Runs a synchronous store function on its checked arguments, every refusal thrown as a coded
/// error.
pub(super) fn sync_call<T>(
    env: &Env,
    f: impl FnOnce() -> std::result::Result<T, ArgError>,
) -> Result<T> {
    f().map_err(|e| e.into_js(env))
}

/// The pointer, when it parses and names this store's canonical `versions/<v>/dist/cli.js`;
/// else `null`. Never a version marked bad. Throws `EINVALID_OPTION` for an empty or relative
/// `userData`.
#[napi(ts_args_type = "userData: string")]
pub(crate) fn read_pointer(
    env: &Env,
    user_data: Option<Unknown<'_>>,
) -> Result<Option<RuntimePointer>> {
    sync_call(env, || {
        Ok(store_arg(user_data)?
            .read_pointer()
            .map(RuntimePointer::from))
    })
}

/// The staged CLI to run (`versions/<v>/dist/cli.js`) when the pointer is trusted and its folder
/// whole; else `null` (run the bundled runtime). Throws `EINVALID_OPTION` for an empty or
/// relative `userData`.
#[napi(ts_args_type = "userData: string")]
pub(crate) fn resolve_pointer_cli_entry(
    env: &Env,
    user_data: Option<Unknown<'_>>,
) -> Result<Option<String>> {
    sync_call(env, || {
        Ok(store_arg(user_data)?.resolve_cli_entry().map(path_string))
    })
}

/// Whether a `current.json` is there, whatever it holds: with `readPointer` returning `null`, an
/// invalid pointer file the app should remove with `clearPointer`.
#[napi(ts_args_type = "userData: string")]
pub(crate) fn pointer_file_exists(env: &Env, user_data: Option<Unknown<'_>>) -> Result<bool> {
    sync_call(env, || Ok(store_arg(user_data)?.pointer_file_exists()))
}

/// The pointer an app writes by hand: `{ version, cliEntry }`, `cliEntry` being
/// `cliEntryFor(userData, version)` (or that path joined from another spelling of `userData`, a
/// link to it; written canonical either way). Throws `EINVALID_OPTION` (`invalid semver`, `cliEntry for
/// <v> must be <path>`), `ELOCKED` after 5 s of a held store lock, `EIO`/`ENOSPC` on a failed
/// write.
#[napi(ts_args_type = "userData: string, p: RuntimePointer")]
pub(crate) fn write_pointer(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    p: Option<Unknown<'_>>,
) -> Result<()> {
    sync_call(env, || {
        let store = store_arg(user_data)?;
        let (version, cli_entry) = pointer_arg(p)?;
        Ok(store.write_pointer_checked(&version, &cli_entry)?)
    })
}

/// The `version` and `cliEntry` strings of a pointer argument.
fn pointer_arg(p: Option<Unknown<'_>>) -> std::result::Result<(String, String), ArgError> {
    let refused = || {
        invalid(
            "pointer",
            "must be an object with string `version` and `cliEntry`",
        )
    };
    let Some(p) = p.filter(|p| p.get_type().is_ok_and(|t| t == ValueType::Object)) else {
        return Err(refused());
    };
    // SAFETY: its type was checked just above.
    let obj: Object = unsafe { p.cast()? };
    let version = obj.get_named_property::<Unknown>("version")?;
    let cli_entry = obj.get_named_property::<Unknown>("cliEntry")?;
    let version = string_arg(Some(version), "version").map_err(|_| refused())?;
    let cli_entry = string_arg(Some(cli_entry), "cliEntry").map_err(|_| refused())?;
    // `previous` is the store's own choice, never taken from the caller; a wrong type is still a
    // caller's mistake worth saying.
    let previous = obj.get_named_property::<Unknown>("previous")?;
    optional_string_arg(Some(previous), "previous").map_err(|_| refused())?;
    Ok((version, cli_entry))
}

/// Removes the pointer, so the app runs its bundled runtime; a missing one is fine. Takes the
/// store lock (never the staging lock): answers at once while another process downloads.
#[napi(ts_args_type = "userData: string")]
pub(crate) fn clear_pointer(env: &Env, user_data: Option<Unknown<'_>>) -> Result<()> {
    sync_call(env, || Ok(store_arg(user_data)?.clear_pointer()?))
}

/// Removes the leftovers of interrupted staging runs, never the partial of a run in flight in
/// any process, and crashed writers' temp files. An entry of the wrong type at one of the
/// store's names (a file named `versions`, a folder named `current.json`, a FIFO or a link where
/// a file belongs) is moved aside to `<name>.misplaced-<pid>-<n>` in the store, never followed
/// nor deleted, with a `warn` entry to `opts.onLog` (called before this returns; one that throws
/// loses its entry). A missing store is nothing to do. Throws `EINVALID_OPTION`, `EIO`, and
/// `ELOCKED` when an entry must be moved and the store lock stays held for 5 s.
#[napi(
    ts_args_type = "userData: string, opts?: { onLog?: (entry: StageLogEntry) => void } | undefined | null"
)]
pub(crate) fn cleanup_partials(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    opts: Option<Unknown<'_>>,
) -> Result<()> {
    sync_call(env, || {
        let store = store_arg(user_data)?;
        let on_log = on_log_arg(opts)?;
        let done = store.cleanup_partials()?;
        if let Some(f) = on_log {
            let entries = done.moved.iter().map(|m| m.log_entry());
            for entry in entries.chain(done.undeleted.iter().map(|u| u.log_entry())) {
                if f.call(StageLogEntry::from(entry)).is_err() {
                    // The entry is lost, not the call: the exception must not surface from here.
                    let _ = super::take_pending_exception(env);
                }
            }
        }
        Ok(())
    })
}

/// The `onLog` of an optional `{ onLog? }` argument.
fn on_log_arg<'a>(
    opts: Option<Unknown<'a>>,
) -> std::result::Result<Option<Function<'a, StageLogEntry, ()>>, ArgError> {
    let Some(opts) = opts else {
        return Ok(None);
    };
    match opts.get_type()? {
        ValueType::Undefined | ValueType::Null => return Ok(None),
        ValueType::Object => {}
        _ => return Err(invalid("opts", "must be an object")),
    }
    // SAFETY: its type was checked just above.
    let obj: Object = unsafe { opts.cast()? };
    let f = obj.get_named_property::<Unknown>("onLog")?;
    match f.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        // SAFETY: its type was checked in the guard.
        ValueType::Function => Ok(Some(unsafe { f.cast()? })),
        _ => Err(invalid("onLog", "must be a function")),
    }
}

/// A name the store reads or writes, as `storeLayout` lists it.
#[napi(object)]
pub(crate) struct StoreEntry {
    /// Relative to `<userData>/runtime-store`, `/`-separated; `{version}` stands for a version.
    pub path: String,
    /// What it must be: a regular file (never a link, a FIFO or a device) or a folder (never a
    /// link to one).
    #[napi(ts_type = "'file' | 'folder'")]
    pub kind: String,
}

/// Every name the store reads or writes, with what it must be, for tools that inspect a store.
/// An entry of the wrong type directly in the store is what `readStoreStatus` reports as
/// `misplaced`, and what `cleanupPartials` and staging runs move aside.
#[napi]
pub(crate) fn store_layout() -> Vec<StoreEntry> {
    runtime_stager_core::OWNED_NAMES
        .iter()
        .map(|o| StoreEntry {
            path: o.path.to_string(),
            kind: o.kind.as_str().to_string(),
        })
        .collect()
}

/// Removes `versions/<version>`; a version that is not semver, or a folder that is not there, is
/// nothing to do. Takes the store lock (never the staging lock).
#[napi(ts_args_type = "userData: string, version: string")]
pub(crate) fn remove_version_dir(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    version: Option<Unknown<'_>>,
) -> Result<()> {
    sync_call(env, || {
        let store = store_arg(user_data)?;
        let version = string_arg(version, "version")?;
        Ok(store.remove_version(&version)?)
    })
}

/// The version a `cliEntry` was staged for, when it is this store's canonical
/// `versions/<v>/dist/cli.js` (or that path joined from another spelling of `userData`, a link to
/// it, with no empty, `.` or `..` component); else `null`.
#[napi(ts_args_type = "userData: string, cliEntry: string")]
pub(crate) fn version_from_cli_entry(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    cli_entry: Option<Unknown<'_>>,
) -> Result<Option<String>> {
    cli_entry_call(env, user_data, cli_entry, |store, cli_entry| {
        Ok(store.version_from_cli_entry(cli_entry))
    })
}

/// A store function of `(userData, cliEntry)`: both arguments checked, then `f` on the store.
pub(super) fn cli_entry_call<T>(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    cli_entry: Option<Unknown<'_>>,
    f: impl FnOnce(&runtime_stager_core::Store, &str) -> runtime_stager_core::Result<T>,
) -> Result<T> {
    sync_call(env, || {
        let store = store_arg(user_data)?;
        let cli_entry = string_arg(cli_entry, "cliEntry")?;
        Ok(f(&store, &cli_entry)?)
    })
}

/// One staged version folder, as `readStoreStatus` reports it.
#[napi(object)]
pub(crate) struct VersionOnDisk {
    pub version: String,
    /// Bytes of its files.
    pub bytes: f64,
    /// Whether it has its CLI, its native module and its completion record.
    pub whole: bool,
    /// Whether the pointer (as `readPointer` gives it) names it.
    pub pointed: bool,
    /// Whether it is the pointer's fallback (its `previous`).
    pub fallback: bool,
    /// Whether it is marked bad.
    pub bad: bool,
    /// Launches of it begun with `beginLaunch` and never confirmed.
    pub attempts: u32,
    /// Whether the app confirmed a launch of it healthy (`confirmLaunch`).
    pub confirmed: bool,
    /// Why pruning keeps it, by the rule `pruneStore` applies: the pointer names it, it is the
    /// pointed version's fallback (its `previous`, else the newest other whole version not bad),
    /// it is the newest version confirmed healthy, or it is `opts.currentVersion` (compared by
    /// precedence). Empty: the next staging run or `pruneStore` removes it.
    #[napi(ts_type = "Array<'pointed' | 'fallback' | 'confirmed' | 'running'>")]
    pub kept_because: Vec<String>,
}

/// Why and when a launch of a version failed, as `readStoreStatus` reports it.
#[napi(object)]
pub(crate) struct LaunchFailureNote {
    pub version: String,
    /// `'unconfirmed-launches'`: `beginLaunch` rolled it back after `maxUnconfirmedLaunches`
    /// launches never confirmed; `'launch-failed'`: the app reported it with `reportLaunchFailed`.
    #[napi(ts_type = "'unconfirmed-launches' | 'launch-failed'")]
    pub reason: String,
    /// The `reason` the app passed to `reportLaunchFailed`, credentials masked, cut to 300
    /// characters and an ellipsis.
    #[napi(ts_type = "string | null")]
    pub detail: Either<String, Null>,
    /// When, in ms since the Unix epoch.
    pub at: f64,
}

/// The store as a person debugging it wants to see it.
#[napi(object)]
pub(crate) struct StoreStatus {
    /// `<userData>/runtime-store`.
    pub store: String,
    /// What `readPointer` returns.
    #[napi(ts_type = "RuntimePointer | null")]
    pub pointer: Either<RuntimePointer, Null>,
    /// What `resolvePointerCliEntry` returns.
    #[napi(ts_type = "string | null")]
    pub runnable: Either<String, Null>,
    /// Staged versions, oldest first.
    pub versions: Vec<VersionOnDisk>,
    /// Bytes of everything under `versions/`.
    pub total_bytes: f64,
    pub bad_versions: Vec<String>,
    /// Why and when the newest bad versions (up to 16) failed to launch, newest first. A version
    /// marked bad with `markBadVersion` has none.
    pub launch_failures: Vec<LaunchFailureNote>,
    /// Partial folders: runs in flight, or leftovers that the next staging run removes.
    pub partials: Vec<String>,
    /// Whether a staging run holds the store lock right now.
    pub locked: bool,
    /// Entries of the wrong type at the store's own names (a folder named `current.json`, a file
    /// named `versions`, a FIFO or a link where a file belongs). Such an entry can fail every
    /// check or launch until `cleanupPartials` or the next staging run moves it aside.
    pub misplaced: Vec<MisplacedEntry>,
    /// Names in the store that such entries were moved aside to (`<name>.misplaced-<pid>-<n>`):
    /// kept, never removed by the store, for a person to look at and delete.
    pub moved_aside: Vec<String>,
    /// Folders on their way out (pruned or replaced versions, in `staging/`) that could not be
    /// deleted yet: on Windows, a file in one is still open in another process (a runtime still
    /// running from it, a scanner). Every later sweep tries again; none stops a staging run.
    pub trash: Vec<TrashFolder>,
    /// This store's place in phased rollouts (`rolloutHours`), in [0, 1): a release reaches it
    /// `rolloutBucket × rolloutHours` after the cool-down. `null` until a check with a rollout
    /// first draws it.
    #[napi(ts_type = "number | null")]
    pub rollout_bucket: Either<f64, Null>,
    /// The newest release the last check held back for this store, and when it is eligible.
    #[napi(ts_type = "StagePending | null")]
    pub pending: Either<StagePending, Null>,
    /// The last version withdrawn because its publisher deprecated it, until the deprecation is
    /// lifted.
    #[napi(ts_type = "StageWithdrawal | null")]
    pub withdrawn: Either<StageWithdrawal, Null>,
}

/// A folder on its way out that could not be deleted yet.
#[napi(object)]
pub(crate) struct TrashFolder {
    /// Its name in `runtime-store/staging/`.
    pub name: String,
    pub bytes: f64,
}

/// An entry of the wrong type at one of the store's own names.
#[napi(object)]
pub(crate) struct MisplacedEntry {
    /// Its name in `runtime-store/`.
    pub name: String,
    /// What it is (a link is never followed).
    #[napi(ts_type = "'file' | 'folder' | 'link' | 'fifo' | 'socket' | 'device' | 'other'")]
    pub found: String,
    /// What the store keeps there.
    #[napi(ts_type = "'file' | 'folder'")]
    pub expected: String,
}

/// Everything about a store at once: pointer, staged versions with sizes, wholeness and why each
/// is kept (`opts.currentVersion`: the version the app runs, which pruning keeps too), bad
/// versions, partial folders and the lock. The folders are walked off the JS thread; a bad
/// argument rejects with `EINVALID_OPTION`, as every failure does.
#[napi(
    ts_args_type = "userData: string, opts?: { currentVersion?: string | null } | undefined | null",
    ts_return_type = "Promise<StoreStatus>"
)]
pub(crate) fn read_store_status<'env>(
    env: &'env Env,
    user_data: Option<Unknown<'env>>,
    opts: Option<Unknown<'env>>,
) -> Result<PromiseRaw<'env, StoreStatus>> {
    let args = (|| -> std::result::Result<_, ArgError> {
        Ok((store_arg(user_data)?, current_version_opt(opts)?))
    })();
    settle_async(env, async move {
        let (store, current) = args?;
        let root = path_string(store.root());
        // A version that is not semver names no staged folder, as `pruneStore` reads it.
        let running = current
            .as_deref()
            .and_then(runtime_stager_core::clean_version);
        let st =
            runtime_stager_core::blocking(move || store.status_running(running.as_ref())).await?;
        Ok(store_status(root, st))
    })
}

/// The `currentVersion` of an optional `{ currentVersion? }` argument.
fn current_version_opt(opts: Option<Unknown<'_>>) -> std::result::Result<Option<String>, ArgError> {
    let Some(opts) = opts else {
        return Ok(None);
    };
    match opts.get_type()? {
        ValueType::Undefined | ValueType::Null => return Ok(None),
        ValueType::Object => {}
        _ => return Err(invalid("opts", "must be an object")),
    }
    // SAFETY: its type was checked just above.
    let obj: Object = unsafe { opts.cast()? };
    let v = obj.get_named_property::<Unknown>("currentVersion")?;
    optional_string_arg(Some(v), "currentVersion")
}

/// A problem `diagnoseStore` found, with what to do about it.
#[napi(object)]
pub(crate) struct StoreProblem {
    /// Which check found it; a stable name to branch on.
    #[napi(
        ts_type = "'pointer-refused' | 'pointer-invalid' | 'pointer-bad' | 'pointed-damaged' | 'version-damaged' | 'locked' | 'partials' | 'bad-list-refused' | 'bad-list-unreadable' | 'launch-record-refused' | 'launch-record-unreadable' | 'misplaced'"
    )]
    pub kind: String,
    /// The problem in words. Names and versions from the disk are as they are: escape control
    /// characters before printing them to a terminal.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

/// What `diagnoseStore` found worth knowing that needs no action.
#[napi(object)]
pub(crate) struct StoreNote {
    /// `'unconfirmed-launches'`: the pointed version is still on trial; `'moved-aside'`: an
    /// entry of the wrong type was moved aside from a store name and is kept.
    #[napi(ts_type = "'unconfirmed-launches' | 'moved-aside'")]
    pub kind: String,
    pub note: String,
}

/// What `diagnoseStore` found.
#[napi(object)]
pub(crate) struct StoreDiagnosis {
    /// No problem found.
    pub healthy: bool,
    pub problems: Vec<StoreProblem>,
    pub notes: Vec<StoreNote>,
}

/// Checks a store as the store itself reads it: the pointer parses and names a whole version
/// that is not bad, every staged version is whole, the lock is free, nothing stray is left,
/// `bad-versions.json` and `launches.json` are readable, nothing of the wrong type sits at a
/// name the store owns. Each problem comes with what to do about it; a pointed version still on
/// trial and what was moved aside from a store name are notes. Reads only, off the JS thread;
/// a bad argument rejects with `EINVALID_OPTION`, as every failure does.
#[napi(
    ts_args_type = "userData: string",
    ts_return_type = "Promise<StoreDiagnosis>"
)]
pub(crate) fn diagnose_store<'env>(
    env: &'env Env,
    user_data: Option<Unknown<'env>>,
) -> Result<PromiseRaw<'env, StoreDiagnosis>> {
    let store = store_arg(user_data);
    settle_async(env, async move {
        let store = store?;
        let d = runtime_stager_core::blocking(move || store.diagnose()).await?;
        Ok(StoreDiagnosis {
            healthy: d.problems.is_empty(),
            problems: d
                .problems
                .into_iter()
                .map(|p| StoreProblem {
                    kind: p.kind.as_str().into(),
                    problem: p.problem,
                    fix: p.fix,
                })
                .collect(),
            notes: d
                .notes
                .into_iter()
                .map(|n| StoreNote {
                    kind: n.kind.as_str().into(),
                    note: n.note,
                })
                .collect(),
        })
    })
}

/// A promise of `work`'s result: argument errors and failures alike reject, nothing throws.
fn settle_async<'env, T: ToNapiValue + Send + 'static>(
    env: &'env Env,
    work: impl std::future::Future<Output = std::result::Result<T, ArgError>> + Send + 'static,
) -> Result<PromiseRaw<'env, T>> {
    env.spawn_future_with_callback(async move { Ok(work.await) }, |env, r| {
        r.map_err(|e| e.into_js(env))
    })
}

/// The store's state as JS sees it.
fn store_status(store: String, st: runtime_stager_core::StoreStatus) -> StoreStatus {
    StoreStatus {
        store,
        total_bytes: st.total_bytes as f64,
        versions: st
            .versions
            .into_iter()
            .map(|v| VersionOnDisk {
                version: v.version,
                bytes: v.bytes as f64,
                whole: v.whole,
                pointed: v.pointed,
                fallback: v.fallback,
                bad: v.bad,
                attempts: v.attempts,
                confirmed: v.confirmed,
                kept_because: v
                    .kept_because
                    .iter()
                    .map(|k| k.as_str().to_string())
                    .collect(),
            })
            .collect(),
        pointer: or_null(st.pointer.map(RuntimePointer::from)),
        runnable: or_null(st.runnable.map(path_string)),
        launch_failures: st
            .launch_failures
            .into_iter()
            .map(|f| LaunchFailureNote {
                version: f.version,
                reason: f.note.reason,
                detail: or_null(f.note.detail),
                at: f.note.at as f64,
            })
            .collect(),
        bad_versions: st.bad,
        partials: st.partials,
        locked: st.locked,
        misplaced: st
            .misplaced
            .into_iter()
            .map(|m| MisplacedEntry {
                name: m.name.to_string(),
                found: m.found.as_str().to_string(),
                expected: m.expected.as_str().to_string(),
            })
            .collect(),
        moved_aside: st.moved_aside,
        trash: st
            .trash
            .into_iter()
            .map(|t| TrashFolder {
                name: t.name,
                bytes: t.bytes as f64,
            })
            .collect(),
        rollout_bucket: or_null(st.rollout.bucket),
        pending: or_null(st.rollout.pending.map(StagePending::from)),
        withdrawn: or_null(st.rollout.withdrawn.map(StageWithdrawal::from)),
    }
}

/// Whether a staging run (in any process) holds the staging lock right now. Opens nothing for
/// writing: answers on a read-only store too.
#[napi(ts_args_type = "userData: string")]
pub(crate) fn is_store_locked(env: &Env, user_data: Option<Unknown<'_>>) -> Result<bool> {
    sync_call(env, || Ok(store_arg(user_data)?.is_locked()?))
}

/// Whether `version` is marked bad.
#[napi(ts_args_type = "userData: string, version: string")]
pub(crate) fn is_bad_version(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    version: Option<Unknown<'_>>,
) -> Result<bool> {
    sync_call(env, || {
        let store = store_arg(user_data)?;
        let version = string_arg(version, "version")?;
        Ok(store.is_bad(&version))
    })
}

/// A store function of `(userData, version)`: both arguments checked (the version must be
/// semver), then `f` on the store.
fn version_call<T>(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    version: Option<Unknown<'_>>,
    f: impl FnOnce(&Store, &str) -> runtime_stager_core::Result<T>,
) -> Result<T> {
    sync_call(env, || {
        let store = store_arg(user_data)?;
        let version = string_arg(version, "version")?;
        check_version(&version)?;
        Ok(f(&store, &version)?)
    })
}

/// A path as JavaScript gets it.
pub(super) fn path_string(p: impl AsRef<std::path::Path>) -> String {
    p.as_ref().to_string_lossy().into_owned()
}

/// The folder a version is (or would be) staged in. Throws `EINVALID_OPTION` (`invalid semver`)
/// for a version that is not semver.
#[napi(ts_args_type = "userData: string, version: string")]
pub(crate) fn version_dir(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    version: Option<Unknown<'_>>,
) -> Result<String> {
    version_call(env, user_data, version, |store, v| {
        Ok(path_string(store.version_dir(v)))
    })
}

/// `versionDir(userData, version) + '.partial'`, the in-flight folder of the first, TypeScript
/// stager (this one stages under `staging/`). Throws as `versionDir` does.
#[napi(ts_args_type = "userData: string, version: string")]
pub(crate) fn partial_dir(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    version: Option<Unknown<'_>>,
) -> Result<String> {
    version_call(env, user_data, version, |store, v| {
        Ok(path_string(store.legacy_partial_dir(v)))
    })
}

/// The canonical `versions/<version>/dist/cli.js`. Throws as `versionDir` does.
#[napi(ts_args_type = "userData: string, version: string")]
pub(crate) fn cli_entry_for(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    version: Option<Unknown<'_>>,
) -> Result<String> {
    version_call(env, user_data, version, |store, v| {
        Ok(path_string(store.cli_entry(v)))
    })
}

/// Marks `version` bad (it failed to start), synchronously. When it is the pointed version, the
/// pointer rolls back to the previous known-good version if its folder is whole, else is removed
/// so the app runs its bundled runtime. Returns the version the pointer now names, or `null`.
/// Throws on any failure to record the mark (`EINVALID_OPTION`, `EIO`, `ENOSPC`, `ELOCKED`), and
/// then nothing was changed. Takes the store lock, never the staging lock: answers in
/// milliseconds while another process downloads.
#[napi(ts_args_type = "userData: string, version: string")]
pub(crate) fn mark_bad_version(
    env: &Env,
    user_data: Option<Unknown<'_>>,
    version: Option<Unknown<'_>>,
) -> Result<Option<String>> {
    version_call(env, user_data, version, |store, v| store.mark_bad(v))
}

/// What `pruneStore` did.
#[napi(object)]
pub(crate) struct PruneResult {
    /// Names removed from `versions/`: staged versions, leftovers of interrupted runs, stray files.
    pub removed: Vec<String>,
    /// Bytes freed.
    pub freed_bytes: f64,
    /// A staging run held the store, so nothing was pruned (it prunes when it finishes).
    pub busy: bool,
}

/// Removes what a staging run would: leftovers of interrupted runs and every staged version but
/// the pointed one, its fallback and `currentVersion` (the one the app runs, when given). Never
/// waits for a staging run: then it prunes nothing and says `busy`; waits at most 5 s for the
/// store lock (`ELOCKED`), never holding the staging lock meanwhile.
#[napi(
    ts_args_type = "userData: string, currentVersion?: string | undefined | null",
    ts_return_type = "Promise<PruneResult>"
)]
pub(crate) fn prune_store<'env>(
    env: &'env Env,
    user_data: Option<Unknown<'env>>,
    current_version: Option<Unknown<'env>>,
) -> Result<PromiseRaw<'env, PruneResult>> {
    let args = (|| -> std::result::Result<_, ArgError> {
        let store = store_arg(user_data)?;
        let current = match current_version {
            Some(v) if !matches!(v.get_type()?, ValueType::Undefined | ValueType::Null) => {
                Some(string_arg(Some(v), "currentVersion")?)
            }
            _ => None,
        };
        Ok((store, current))
    })();
    settle_async(env, async move {
        let (store, current) = args?;
        let running = current
            .as_deref()
            .and_then(runtime_stager_core::clean_version);
        let p = runtime_stager_core::blocking(move || store.prune_now(running.as_ref())).await?;
        Ok(PruneResult {
            removed: p.removed,
            freed_bytes: p.freed_bytes as f64,
            busy: p.busy,
        })
    })
}

/// Whether `e` is an error of this package: an object with a string `message` and a `code` this
/// package uses. Also true for an error that crossed Electron IPC as a plain object.
#[napi(ts_args_type = "e: unknown", ts_return_type = "e is StageError")]
pub(crate) fn is_stage_error(e: Unknown<'_>) -> Result<bool> {
    if e.get_type()? != ValueType::Object {
        return Ok(false);
    }
    // SAFETY: its type was checked just above.
    let obj: Object = unsafe { e.cast()? };
    let code = obj.get_named_property::<Unknown>("code")?;
    let message = obj.get_named_property::<Unknown>("message")?;
    if code.get_type()? != ValueType::String || message.get_type()? != ValueType::String {
        return Ok(false);
    }
    // SAFETY: its type was checked just above.
    let code: String = unsafe { code.cast()? };
    Ok(StageError::CODES.contains(&code.as_str()))
}

/// The whole numbers an option takes, both ends included.
#[napi(object)]
pub(crate) struct OptionRange {
    pub min: f64,
    pub max: f64,
}

impl From<runtime_stager_core::option_ranges::OptionRange> for OptionRange {
    fn from(r: runtime_stager_core::option_ranges::OptionRange) -> Self {
        // Every bound is at most 2^53 - 1, so each is an exact JS number.
        OptionRange {
            min: r.min as f64,
            max: r.max as f64,
        }
    }
}

/// The range of each whole-number option, as the addon checks it: a value outside is refused
/// with `EINVALID_OPTION`.
#[napi(object)]
pub(crate) struct OptionLimits {
    /// `timeoutMs`, `connectTimeoutMs` and `idleTimeoutMs`, in ms.
    pub timeout_ms: OptionRange,
    pub retries: OptionRange,
    /// In minutes; 0 is off.
    pub min_release_age_minutes: OptionRange,
    /// `maxBytesPerSecond`, `maxUnpackedBytes`, `maxEntries` and `maxDocumentBytes`.
    pub cap: OptionRange,
    /// `beginLaunch`'s `maxUnconfirmedLaunches`.
    pub max_unconfirmed_launches: OptionRange,
    /// `rolloutHours`; 0 is off.
    pub rollout_hours: OptionRange,
}

/// The ranges the options are checked against, for a command line or a settings screen that
/// refuses a value before the call does, without a copy of the bounds.
#[napi]
pub(crate) fn option_limits() -> OptionLimits {
    use runtime_stager_core::option_ranges as r;
    OptionLimits {
        timeout_ms: r::TIMEOUT_MS.into(),
        retries: r::RETRIES.into(),
        min_release_age_minutes: r::MIN_RELEASE_AGE_MINUTES.into(),
        cap: r::POSITIVE_CAP.into(),
        max_unconfirmed_launches: r::UNCONFIRMED_LAUNCHES.into(),
        rollout_hours: r::ROLLOUT_HOURS.into(),
    }
}

/// A version as the addon reads one the caller passes (npm's `semver.clean`: surrounding spaces
/// and a leading `v` or `=` dropped), normalised; `null` for anything that is not semver,
/// a non-string included. What `bundledVersion` and `currentVersion` accept.
#[napi(ts_args_type = "version: unknown")]
pub(crate) fn clean_version(version: Unknown<'_>) -> Result<Option<String>> {
    if version.get_type()? != ValueType::String {
        return Ok(None);
    }
    // SAFETY: its type was checked just above.
    let text: String = unsafe { version.cast()? };
    Ok(runtime_stager_core::clean_version(&text).map(|v| v.to_string()))
}
