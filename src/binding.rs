//! The napi binding: options in, outcomes and coded errors out. No logic of its own.
// Under `cargo test` napi's macros register nothing, so the exports look unused.
#![cfg_attr(test, allow(dead_code))]

use crate::config::{
    normalize_registry, Config, EnvDefaults, Limits, NetConfig, DEFAULT_PACKAGE, DEFAULT_TAG,
    PUBLIC_REGISTRY,
};
use crate::error::{Field, StageError};
use crate::http::{AbortHandle, Control, Progress};
use crate::stage::{self, Outcome};
use crate::store::{check_version, Store};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Options of `checkAndStageLatestRuntime`.
#[napi(object)]
pub struct StageOptions<'a> {
    /// The app's `userData` folder (`app.getPath('userData')`); the store lives in
    /// `<userData>/kanban-runtime/`.
    pub user_data: String,
    /// The runtime version the app runs now. A value that is not semver counts as older than any
    /// release.
    pub current_version: String,
    /// Folder holding the app's bundled `node-pty/`, copied into every staged version.
    pub native_deps_source: String,
    /// Registry base URL. Default: `npm_config_registry` from the environment, else
    /// `https://registry.npmjs.org/`.
    pub registry: Option<String>,
    /// Package to stage. Default: `'kanban'`.
    pub package_name: Option<String>,
    /// Dist-tag to follow. Default: `'latest'`.
    pub dist_tag: Option<String>,
    /// Budget for the whole call, retries and lock wait included, in ms. Default: 600000 (10 min).
    pub timeout_ms: Option<u32>,
    /// Budget for each TCP + TLS connection, in ms. Default: 10000.
    pub connect_timeout_ms: Option<u32>,
    /// Longest wait for the next byte of a response, in ms. Default: 30000.
    pub idle_timeout_ms: Option<u32>,
    /// Retries after a transient failure (connect error, reset, 408, 429, 5xx). Default: 3.
    pub retries: Option<u32>,
    /// Proxy for every request: a URL (`http://host:port`) or what Electron's
    /// `session.resolveProxy()` returns (`PROXY host:port; DIRECT`). Default: `HTTPS_PROXY` /
    /// `HTTP_PROXY` / `NO_PROXY` from the environment, else direct.
    pub proxy: Option<String>,
    /// Extra PEM certificates to trust beside the operating system's store. Default: none.
    pub ca: Option<Either<String, Vec<String>>>,
    /// Bearer token sent to the registry's own host only. Default: none.
    pub auth_token: Option<String>,
    /// Cap on the unpacked size of the tarball, in bytes. Default: twice the registry's
    /// `dist.unpackedSize` plus 1 MiB, else 512 MiB; never above 1 GiB.
    pub max_unpacked_bytes: Option<i64>,
    /// Cap on the number of tarball entries. Default: twice the registry's `dist.fileCount`
    /// plus 64, else 20000; never above 100000.
    pub max_entries: Option<u32>,
    /// Cap on the size of the registry's package document, in bytes: a positive integer.
    /// Default: 8 MiB (8388608); `kanban`'s document is ~10 KB. A larger document rejects with
    /// `code: 'ETOO_LARGE'` and `limit: 'document'`.
    pub max_document_bytes: Option<f64>,
    /// Most tarball bytes read per second, so a background update leaves bandwidth for the
    /// user: a positive integer. Default: none (no cap).
    pub max_bytes_per_second: Option<f64>,
    /// Aborts the call: it rejects promptly with `code: 'EABORTED'`, removes this run's partial
    /// folder and leaves the store as it was. Default: none.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'a>>,
    /// Called with progress while the call runs (phase, bytes downloaded, tarball size). It never
    /// keeps the process alive, and calls that would land after the JS environment is gone (exit,
    /// window reload) are dropped. Default: none.
    #[napi(ts_type = "(progress: StageProgress) => void")]
    pub on_progress: Option<Function<'a, StageProgress, ()>>,
}

/// A progress event of `checkAndStageLatestRuntime`.
#[napi(object)]
#[derive(Clone)]
pub struct StageProgress {
    #[napi(ts_type = "'resolving' | 'waiting-for-lock' | 'downloading' | 'finishing'")]
    pub phase: String,
    /// Tarball bytes received so far.
    pub downloaded_bytes: f64,
    /// The tarball's size, when the registry sent a Content-Length.
    pub total_bytes: Option<f64>,
}

/// What `checkAndStageLatestRuntime` resolved to.
#[napi(discriminant = "kind", discriminant_case = "kebab-case")]
pub enum StageOutcome {
    /// The running runtime is as new as the registry's.
    UpToDate,
    /// The newest version is marked bad; nothing was staged.
    BadVersion { version: String },
    /// The pointer already names the newest version and its folder is whole.
    AlreadyStaged,
    /// The newest version was staged and the pointer now names it.
    Staged { version: String },
}

/// The pointer `current.json`.
#[napi(object)]
pub struct RuntimePointer {
    pub version: String,
    /// Absolute path of the staged `dist/cli.js`.
    pub cli_entry: String,
    /// The previously pointed version, kept as the known-good fallback.
    pub previous: Option<String>,
}

impl From<crate::store::Pointer> for RuntimePointer {
    fn from(p: crate::store::Pointer) -> Self {
        RuntimePointer {
            version: p.version,
            cli_entry: p.cli_entry,
            previous: p.previous,
        }
    }
}

impl From<Outcome> for StageOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::UpToDate => StageOutcome::UpToDate,
            Outcome::BadVersion(version) => StageOutcome::BadVersion { version },
            Outcome::AlreadyStaged => StageOutcome::AlreadyStaged,
            Outcome::Staged(version) => StageOutcome::Staged { version },
        }
    }
}

fn ms(v: Option<u32>, default: Duration) -> Duration {
    v.map(|ms| Duration::from_millis(ms as u64))
        .unwrap_or(default)
}

fn to_config(opts: StageOptions<'_>, env: EnvDefaults) -> std::result::Result<Config, StageError> {
    let required = |name: &'static str, v: &str| {
        if v.trim().is_empty() {
            Err(StageError::InvalidOption {
                name,
                reason: "must be a non-empty string".into(),
            })
        } else {
            Ok(())
        }
    };
    required("userData", &opts.user_data)?;
    required("nativeDepsSource", &opts.native_deps_source)?;
    let registry_raw = opts
        .registry
        .filter(|r| !r.trim().is_empty())
        .or(env.registry)
        .unwrap_or_else(|| PUBLIC_REGISTRY.to_string());
    let registry =
        normalize_registry(&registry_raw).map_err(|reason| StageError::InvalidOption {
            name: "registry",
            reason,
        })?;
    let defaults = NetConfig::default();
    let net = NetConfig {
        connect_timeout: ms(opts.connect_timeout_ms, defaults.connect_timeout),
        idle_timeout: ms(opts.idle_timeout_ms, defaults.idle_timeout),
        total_timeout: ms(opts.timeout_ms, defaults.total_timeout),
        retries: opts.retries.unwrap_or(defaults.retries),
        proxy: opts.proxy,
        env_proxy: env.proxy,
        ca: match opts.ca {
            None => Vec::new(),
            Some(Either::A(one)) => vec![one],
            Some(Either::B(many)) => many,
        },
        auth_token: opts.auth_token.filter(|t| !t.is_empty()),
        max_bytes_per_second: rate_cap(opts.max_bytes_per_second)?,
        ..defaults
    };
    let max_unpacked_bytes = match opts.max_unpacked_bytes {
        Some(n) if n <= 0 => {
            return Err(StageError::InvalidOption {
                name: "maxUnpackedBytes",
                reason: "must be positive".into(),
            })
        }
        n => n.map(|n| n as u64),
    };
    Ok(Config {
        user_data: absolute(&opts.user_data),
        current_version: opts.current_version,
        native_deps_source: absolute(&opts.native_deps_source),
        registry,
        package_name: opts
            .package_name
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_PACKAGE.into()),
        dist_tag: opts
            .dist_tag
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| DEFAULT_TAG.into()),
        net,
        limits: Limits {
            max_unpacked_bytes,
            max_entries: opts.max_entries.map(u64::from),
            max_document_bytes: document_cap(opts.max_document_bytes)?,
        },
    })
}

/// The store's paths are absolute so the pointer's `cliEntry` is too, whatever the cwd.
fn absolute(p: &str) -> PathBuf {
    std::path::absolute(Path::new(p)).unwrap_or_else(|_| PathBuf::from(p))
}

/// Turns a core error into a JS `Error` with `code` and the structured fields.
fn js_error(env: &Env, e: &StageError) -> Error {
    let build = || -> Result<Error> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, e.to_string()))?;
        obj.set_named_property("code", e.code())?;
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

/// Checks the registry for a newer runtime and stages it. Never blocks the JS thread: the network
/// runs on the addon's async runtime and file work on its blocking pool. Rejects with an `Error`
/// whose `code` is one of the documented codes.
#[napi(ts_return_type = "Promise<StageOutcome>")]
pub fn check_and_stage_latest_runtime<'env>(
    env: &'env Env,
    mut opts: StageOptions<'env>,
) -> Result<PromiseRaw<'env, StageOutcome>> {
    let signal = opts.signal.take();
    let on_progress = match opts.on_progress.take() {
        // Weak: a pending progress callback must not keep Node or Electron alive.
        Some(f) => Some(
            f.build_threadsafe_function::<StageProgress>()
                .weak::<true>()
                .callee_handled::<false>()
                .build()?,
        ),
        None => None,
    };
    let config = to_config(opts, EnvDefaults::from_process());
    let total = config
        .as_ref()
        .map(|c| c.net.total_timeout)
        .unwrap_or_default();
    let (mut ctl, abort) = Control::new(total);
    if let Some(tsfn) = on_progress {
        ctl = ctl.with_progress(Arc::new(move |p: Progress| {
            // Non-blocking, result ignored: a closing environment refuses the call, harmlessly.
            let _ = tsfn.call(
                StageProgress {
                    phase: p.phase.as_str().to_string(),
                    downloaded_bytes: p.downloaded as f64,
                    total_bytes: p.total.map(|t| t as f64),
                },
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        }));
    }
    // Electron tears JS contexts down (worker exit, window reload) while calls may be in flight:
    // abort them then, so the store lock is released now rather than after the download.
    let teardown = env.add_env_cleanup_hook(abort.clone(), |abort| abort.abort())?;
    let listener = match &signal {
        Some(signal) => Some(SignalListener::attach(env, signal, abort)?),
        None => None,
    };
    env.spawn_future_with_callback(
        async move {
            let config = match config {
                Ok(c) => c,
                Err(e) => return Ok(Err(e)),
            };
            let store = Store::new(&config.user_data);
            Ok(stage::check_and_stage(&config, &store, &ctl).await)
        },
        move |env, result| {
            env.remove_env_cleanup_hook(teardown)?;
            // Detach from the signal so a long-lived signal does not keep this call's state.
            if let Some(listener) = listener {
                listener.detach(env)?;
            }
            match result {
                Ok(outcome) => Ok(StageOutcome::from(outcome)),
                Err(e) => Err(js_error(env, &e)),
            }
        },
    )
}

/// `signal.addEventListener` / `removeEventListener`, called with (`'abort'`, listener).
type ListenerMethod<'a> = Function<'a, FnArgs<(&'static str, Function<'a, (), ()>)>, Unknown<'a>>;

/// An `abort` listener on the caller's `AbortSignal`, removed again when the call settles.
struct SignalListener {
    signal: ObjectRef,
    callback: FunctionRef<(), ()>,
}

impl SignalListener {
    fn attach(env: &Env, signal: &Object<'_>, abort: AbortHandle) -> Result<SignalListener> {
        if signal
            .get_named_property::<Option<bool>>("aborted")?
            .unwrap_or(false)
        {
            abort.abort();
        }
        let callback = env.create_function_from_closure::<(), (), _>("onAbort", move |_| {
            abort.abort();
            Ok(())
        })?;
        let add: ListenerMethod = signal.get_named_property("addEventListener")?;
        add.apply(signal, FnArgs::from(("abort", callback)))?;
        Ok(SignalListener {
            signal: signal.create_ref()?,
            callback: callback.create_ref()?,
        })
    }

    fn detach(self, env: &Env) -> Result<()> {
        let signal = self.signal.get_value(env)?;
        let callback = self.callback.borrow_back(env)?;
        let remove: ListenerMethod = signal.get_named_property("removeEventListener")?;
        remove.apply(signal, FnArgs::from(("abort", callback)))?;
        self.signal.unref(env)
    }
}

fn sync_result<T>(env: &Env, r: std::result::Result<T, StageError>) -> Result<T> {
    r.map_err(|e| js_error(env, &e))
}

/// The pointer, when it parses and names this store's canonical `versions/<v>/dist/cli.js`;
/// else `null`.
#[napi]
pub fn read_pointer(user_data: String) -> Option<RuntimePointer> {
    Store::new(&absolute(&user_data))
        .read_pointer()
        .map(RuntimePointer::from)
}

/// The staged CLI to run (`versions/<v>/dist/cli.js`) when the pointer is trusted and its folder
/// whole; else `null` (run the bundled runtime).
#[napi]
pub fn resolve_pointer_cli_entry(user_data: String) -> Option<String> {
    Store::new(&absolute(&user_data))
        .resolve_cli_entry()
        .map(|p| p.to_string_lossy().into_owned())
}

/// One staged version folder, as `readStoreStatus` reports it.
#[napi(object)]
pub struct VersionOnDisk {
    pub version: String,
    /// Bytes of its files.
    pub bytes: f64,
    /// Whether it has its CLI, its native module and its completion record.
    pub whole: bool,
}

/// The store as a person debugging it wants to see it.
#[napi(object)]
pub struct StoreStatus {
    /// `<userData>/kanban-runtime`.
    pub store: String,
    pub pointer: Option<RuntimePointer>,
    /// What `resolvePointerCliEntry` returns.
    pub runnable: Option<String>,
    /// Staged versions, oldest first.
    pub versions: Vec<VersionOnDisk>,
    pub bad_versions: Vec<String>,
    /// Partial folders: runs in flight, or leftovers that the next staging run removes.
    pub partials: Vec<String>,
    /// Whether a staging run holds the store lock right now.
    pub locked: bool,
}

/// Everything about a store at once: pointer, staged versions with sizes and wholeness, bad
/// versions, partial folders and the lock.
#[napi]
pub fn read_store_status(env: &Env, user_data: String) -> Result<StoreStatus> {
    let store = Store::new(&absolute(&user_data));
    let st = sync_result(env, store.status())?;
    Ok(StoreStatus {
        store: store.root().to_string_lossy().into_owned(),
        pointer: st.pointer.map(RuntimePointer::from),
        runnable: st.runnable.map(|p| p.to_string_lossy().into_owned()),
        versions: st
            .versions
            .into_iter()
            .map(|v| VersionOnDisk {
                version: v.version,
                bytes: v.bytes as f64,
                whole: v.whole,
            })
            .collect(),
        bad_versions: st.bad,
        partials: st.partials,
        locked: st.locked,
    })
}

/// Whether a staging run (in any process) holds the store lock right now.
#[napi]
pub fn is_store_locked(env: &Env, user_data: String) -> Result<bool> {
    sync_result(env, Store::new(&absolute(&user_data)).is_locked())
}

/// Whether `version` is marked bad.
#[napi]
pub fn is_bad_version(user_data: String, version: String) -> bool {
    Store::new(&absolute(&user_data)).is_bad(&version)
}

/// The folder a version is (or would be) staged in. Rejects a version that is not semver.
#[napi]
pub fn version_dir(env: &Env, user_data: String, version: String) -> Result<String> {
    sync_result(env, check_version(&version))?;
    Ok(Store::new(&absolute(&user_data))
        .version_dir(&version)
        .to_string_lossy()
        .into_owned())
}

/// Marks `version` bad (it failed to start). When it is the pointed version, the pointer rolls
/// back to the previous known-good version if its folder is whole, else is removed so the app
/// runs its bundled runtime. Resolves to the version the pointer now names, or `null`.
#[napi(ts_return_type = "Promise<string | null>")]
pub fn mark_bad_version(
    env: &Env,
    user_data: String,
    version: String,
) -> Result<PromiseRaw<'_, Option<String>>> {
    let store = Store::new(&absolute(&user_data));
    env.spawn_future_with_callback(
        async move { Ok(stage::blocking(move || store.mark_bad(&version)).await) },
        |env, r| r.map_err(|e| js_error(env, &e)),
    )
}

/// `maxDocumentBytes` checked: a positive whole number JS can represent exactly.
fn document_cap(opt: Option<f64>) -> crate::error::Result<u64> {
    match opt {
        None => Ok(crate::config::DEFAULT_MAX_DOCUMENT_BYTES),
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= 9007199254740991.0 => {
            Ok(n as u64)
        }
        Some(_) => Err(StageError::InvalidOption {
            name: "maxDocumentBytes",
            reason: "must be a positive integer".into(),
        }),
    }
}

/// `maxBytesPerSecond` checked: absent, or a positive whole number JS can represent exactly.
fn rate_cap(opt: Option<f64>) -> crate::error::Result<Option<u64>> {
    match opt {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= 9007199254740991.0 => {
            Ok(Some(n as u64))
        }
        Some(_) => Err(StageError::InvalidOption {
            name: "maxBytesPerSecond",
            reason: "must be a positive integer".into(),
        }),
    }
}
