//! The store functions: reading the pointer and the store's state, marking a version bad,
//! pruning, and recognising this package's errors.

use super::types::{js_error, RuntimePointer};
use crate::config::user_data_dir;
use crate::error::StageError;
use crate::store::{check_version, Store};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::PathBuf;

fn sync_result<T>(env: &Env, r: std::result::Result<T, StageError>) -> Result<T> {
    r.map_err(|e| js_error(env, &e))
}

/// The store under `userData`, which must be a non-empty absolute path: a relative one would
/// read and write beside the process's working directory.
fn store_at(env: &Env, user_data: &str) -> Result<Store> {
    sync_result(env, user_data_dir(user_data)).map(|dir| Store::new(&dir))
}

/// The pointer, when it parses and names this store's canonical `versions/<v>/dist/cli.js`;
/// else `null`. Throws `EINVALID_OPTION` for an empty or relative `userData`.
#[napi]
pub fn read_pointer(env: &Env, user_data: String) -> Result<Option<RuntimePointer>> {
    Ok(store_at(env, &user_data)?
        .read_pointer()
        .map(RuntimePointer::from))
}

/// The staged CLI to run (`versions/<v>/dist/cli.js`) when the pointer is trusted and its folder
/// whole; else `null` (run the bundled runtime). Throws `EINVALID_OPTION` for an empty or
/// relative `userData`.
#[napi]
pub fn resolve_pointer_cli_entry(env: &Env, user_data: String) -> Result<Option<String>> {
    Ok(store_at(env, &user_data)?
        .resolve_cli_entry()
        .map(|p| p.to_string_lossy().into_owned()))
}

/// One staged version folder, as `readStoreStatus` reports it.
#[napi(object)]
pub struct VersionOnDisk {
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
}

/// The store as a person debugging it wants to see it.
#[napi(object)]
pub struct StoreStatus {
    /// `<userData>/kanban-runtime`.
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
    /// Partial folders: runs in flight, or leftovers that the next staging run removes.
    pub partials: Vec<String>,
    /// Whether a staging run holds the store lock right now.
    pub locked: bool,
}

/// Everything about a store at once: pointer, staged versions with sizes and wholeness, bad
/// versions, partial folders and the lock. The folders are walked off the JS thread; an empty or
/// relative `userData` still throws `EINVALID_OPTION` at once.
#[napi(ts_return_type = "Promise<StoreStatus>")]
pub fn read_store_status(env: &Env, user_data: String) -> Result<PromiseRaw<'_, StoreStatus>> {
    let store = store_at(env, &user_data)?;
    env.spawn_future_with_callback(
        async move {
            let root = store.root().to_string_lossy().into_owned();
            Ok(crate::fsutil::blocking(move || store.status())
                .await
                .map(|st| store_status(root, st)))
        },
        |env, r| r.map_err(|e| js_error(env, &e)),
    )
}

/// The store's state as JS sees it: each version says why it is kept.
fn store_status(store: String, st: crate::store::StoreStatus) -> StoreStatus {
    StoreStatus {
        store,
        total_bytes: st.total_bytes as f64,
        versions: st
            .versions
            .into_iter()
            .map(|v| VersionOnDisk {
                pointed: st.pointer.as_ref().is_some_and(|p| p.version == v.version),
                fallback: st
                    .pointer
                    .as_ref()
                    .is_some_and(|p| p.previous.as_deref() == Some(v.version.as_str())),
                bad: st.bad.contains(&v.version),
                version: v.version,
                bytes: v.bytes as f64,
                whole: v.whole,
            })
            .collect(),
        pointer: match st.pointer {
            Some(p) => Either::A(RuntimePointer::from(p)),
            None => Either::B(Null),
        },
        runnable: match st.runnable {
            Some(p) => Either::A(p.to_string_lossy().into_owned()),
            None => Either::B(Null),
        },
        bad_versions: st.bad,
        partials: st.partials,
        locked: st.locked,
    }
}

/// Whether a staging run (in any process) holds the store lock right now.
#[napi]
pub fn is_store_locked(env: &Env, user_data: String) -> Result<bool> {
    sync_result(env, store_at(env, &user_data)?.is_locked())
}

/// Whether `version` is marked bad.
#[napi]
pub fn is_bad_version(env: &Env, user_data: String, version: String) -> Result<bool> {
    Ok(store_at(env, &user_data)?.is_bad(&version))
}

/// The folder a version is (or would be) staged in. Rejects a version that is not semver.
#[napi]
pub fn version_dir(env: &Env, user_data: String, version: String) -> Result<String> {
    let store = store_at(env, &user_data)?;
    sync_result(env, check_version(&version))?;
    Ok(store.version_dir(&version).to_string_lossy().into_owned())
}

/// Marks `version` bad (it failed to start). When it is the pointed version, the pointer rolls
/// back to the previous known-good version if its folder is whole, else is removed so the app
/// runs its bundled runtime. Resolves to the version the pointer now names, or `null`. Rejects
/// with `EINVALID_OPTION` for an empty or relative `userData`, before touching any file.
#[napi(js_name = "markBadVersion", ts_return_type = "Promise<string | null>")]
pub fn mark_bad_version_checked(
    env: &Env,
    user_data: String,
    version: String,
) -> Result<PromiseRaw<'_, Option<String>>> {
    match user_data_dir(&user_data) {
        Ok(dir) => mark_bad_version(env, dir, version),
        Err(e) => {
            env.spawn_future_with_callback(async { Ok(()) }, move |env, ()| Err(js_error(env, &e)))
        }
    }
}

/// What `pruneStore` did.
#[napi(object)]
pub struct PruneResult {
    /// Names removed from `versions/`: staged versions, leftovers of interrupted runs, stray files.
    pub removed: Vec<String>,
    /// Bytes freed.
    pub freed_bytes: f64,
    /// A staging run held the store, so nothing was pruned (it prunes when it finishes).
    pub busy: bool,
}

/// Removes what a staging run would: leftovers of interrupted runs and every staged version but
/// the pointed one, its fallback and `currentVersion` (the one the app runs, when given). Never
/// waits for a staging run: then it prunes nothing and says `busy`.
#[napi(ts_return_type = "Promise<PruneResult>")]
pub fn prune_store(
    env: &Env,
    user_data: String,
    current_version: Option<String>,
) -> Result<PromiseRaw<'_, PruneResult>> {
    let dir = user_data_dir(&user_data);
    env.spawn_future_with_callback(
        async move {
            let prune = async {
                let store = Store::new(&dir?);
                let running = current_version.as_deref().and_then(crate::version::clean);
                crate::fsutil::blocking(move || store.prune_now(running.as_ref())).await
            };
            Ok(prune.await)
        },
        |env, r| match r {
            Ok(p) => Ok(PruneResult {
                removed: p.removed,
                freed_bytes: p.freed_bytes as f64,
                busy: p.busy,
            }),
            Err(e) => Err(js_error(env, &e)),
        },
    )
}

/// The work of `markBadVersion`, on a `userData` already checked.
fn mark_bad_version(
    env: &Env,
    user_data: PathBuf,
    version: String,
) -> Result<PromiseRaw<'_, Option<String>>> {
    let store = Store::new(&user_data);
    env.spawn_future_with_callback(
        async move { Ok(crate::fsutil::blocking(move || store.mark_bad(&version)).await) },
        |env, r| r.map_err(|e| js_error(env, &e)),
    )
}

/// Whether `e` is an error of this package: an object with a string `message` and a `code` this
/// package uses. Also true for an error that crossed Electron IPC as a plain object.
#[napi(ts_args_type = "e: unknown", ts_return_type = "e is StageError")]
pub fn is_stage_error(e: Unknown<'_>) -> Result<bool> {
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
