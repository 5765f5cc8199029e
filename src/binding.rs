//! The napi binding: options in, outcomes and coded errors out. No logic of its own.
// Under `cargo test` napi's macros register nothing, so the exports look unused.
#![cfg_attr(test, allow(dead_code))]

use crate::call::{AbortHandle, Control, Progress};
use crate::config::{
    absolute, user_data_dir, Config, EnvDefaults, Options, ProvenanceInput, RegistryKeyInput,
};
use crate::error::{catching_panics, Field, StageError};
use crate::log::{LogEntry, Value as LogValue};
use crate::stage::{self, Outcome};
use crate::store::{check_version, Store};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::Arc;

// Types only: it keeps the documented `StageOptions` interface in index.d.ts, while
// `checkAndStageLatestRuntime` reads the object itself (`OptionsReader`) so that a wrong type or
// an out-of-range number rejects with EINVALID_OPTION naming the option, instead of napi's
// conversion throwing synchronously or wrapping `-1` / `NaN` / `2**32 + 5` into a `u32`.
#[allow(dead_code)]
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
    /// Budget for the whole call, retries and lock wait included, in ms: a whole number from 1
    /// to 86400000 (24 h). Default: 600000 (10 min).
    pub timeout_ms: Option<u32>,
    /// Budget for each TCP + TLS connection, in ms: a whole number from 1 to 86400000.
    /// Default: 10000.
    pub connect_timeout_ms: Option<u32>,
    /// Longest wait for the next byte of a response, in ms: a whole number from 1 to 86400000.
    /// Default: 30000.
    pub idle_timeout_ms: Option<u32>,
    /// Retries after a transient failure (connect error, reset, 408, 429, 5xx): 0 to 10.
    /// Default: 3.
    pub retries: Option<u32>,
    /// Proxy for every request: a URL (`http://host:port`) or what Electron's
    /// `session.resolveProxy()` returns (`PROXY host:port; DIRECT`). Default: `HTTPS_PROXY` /
    /// `HTTP_PROXY` / `NO_PROXY` from the environment, else direct.
    pub proxy: Option<String>,
    /// Extra PEM certificates to trust beside the operating system's store. Default: none.
    pub ca: Option<Either<String, Vec<String>>>,
    /// Bearer token sent to the registry's own host only. Default: none.
    pub auth_token: Option<String>,
    /// Cap on the unpacked size of the tarball, in bytes: a positive whole number. Default: twice
    /// the registry's `dist.unpackedSize` plus 1 MiB, else 512 MiB; never above 1 GiB.
    pub max_unpacked_bytes: Option<i64>,
    /// Cap on the number of tarball entries: a positive whole number. Default: twice the
    /// registry's `dist.fileCount` plus 64, else 20000; never above 100000.
    pub max_entries: Option<u32>,
    /// Cap on the size of the registry's package document, in bytes: a positive integer.
    /// Default: 8 MiB (8388608); `kanban`'s document is ~10 KB. A larger document rejects with
    /// `code: 'ETOO_LARGE'` and `limit: 'document'`.
    pub max_document_bytes: Option<f64>,
    /// Release-age cool-down in minutes: a version published less than this long ago (by the
    /// full document's `time`) is not staged, and the newest release that is old enough, not
    /// deprecated, not newer than the tag's version and not a prerelease (unless the tag's is)
    /// is considered instead. A version without a `time` counts as too young. 0 to 527040
    /// (366 days). Default: 0 (off, and then only the smaller abbreviated document is fetched).
    pub min_release_age_minutes: Option<u32>,
    /// The registry's signing keys, as its `/-/npm/v1/keys` serves them; they replace the
    /// embedded keys. A signature that is present and does not verify with one of them (or
    /// whose key expired before the version was published) rejects with `code: 'ESIGNATURE'`.
    /// Default: the public npm registry's keys, embedded.
    pub registry_keys: Option<Vec<RegistryKeyOption>>,
    /// Also refuse (`ESIGNATURE`) a version that carries no registry signature. Many mirrors
    /// strip `dist.signatures`, hence opt-in. Default: false.
    pub require_signatures: Option<bool>,
    /// The Node version the runtime will run on: a runtime whose `engines.node` excludes it, or
    /// whose `node-pty` range excludes the bundled node-pty's version, rejects with
    /// `code: 'EINCOMPATIBLE'`. Default: the Node version of this process (Electron's Node in
    /// Electron).
    pub host_node_version: Option<String>,
    /// Stage a version only when its npm provenance attestation proves that a GitHub Actions run
    /// of `repository` (and of `workflowPath` when given) built exactly this tarball; otherwise
    /// reject with `code: 'EPROVENANCE'` before anything is downloaded. Default: not checked (no
    /// attestation is requested).
    pub provenance: Option<ProvenanceOptions>,
    /// The text of a Sigstore `trusted_root.json` whose Fulcio CAs and Rekor keys replace the
    /// embedded ones, at most 1 MiB. Default: Sigstore's public-good trust root, embedded.
    pub sigstore_trust_root: Option<String>,
    /// Most tarball bytes read per second, so a background update leaves bandwidth for the
    /// user: a positive integer. Default: none (no cap).
    pub max_bytes_per_second: Option<f64>,
    /// Aborts the call: it rejects promptly with `code: 'EABORTED'`, removes this run's partial
    /// folder and leaves the pointer and every staged version as they were (the tarball bytes received
    /// so far are kept for the next call to resume). Default: none.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'a>>,
    /// Called with progress while the call runs (phase, bytes downloaded, tarball size). It never
    /// keeps the process alive, and calls that would land after the JS environment is gone (exit,
    /// window reload) are dropped. A callback that throws loses that event and the call goes on;
    /// nothing reaches `uncaughtException`. Default: none.
    #[napi(ts_type = "(progress: StageProgress) => void")]
    pub on_progress: Option<Function<'a, StageProgress, ()>>,
    /// Called with what the stager decided and why: the tag and version resolved, each guard's
    /// answer, retries with their reason and delay, lock waits, what was swept or pruned. Same
    /// delivery rules as `onProgress`. Default: none.
    #[napi(ts_type = "(entry: StageLogEntry) => void")]
    pub on_log: Option<Function<'a, StageLogEntry, ()>>,
}

/// One registry signing key, as an entry of the registry's `/-/npm/v1/keys`.
#[allow(dead_code)]
#[napi(object)]
pub struct RegistryKeyOption {
    /// The key's id as `dist.signatures` names it (`SHA256:...`).
    pub keyid: String,
    /// `'ecdsa-sha2-nistp256'`, the only type the registry uses.
    pub keytype: Option<String>,
    /// `'ecdsa-sha2-nistp256'`.
    pub scheme: Option<String>,
    /// The public key: base64 of its SPKI DER.
    pub key: String,
    /// When the key was retired (ISO 8601): it verifies only versions published before.
    #[napi(ts_type = "string | null")]
    pub expires: Option<String>,
}

/// Who must have built a version (`provenance` option).
#[napi(object)]
pub struct ProvenanceOptions {
    /// The GitHub repository, `owner/name`.
    pub repository: String,
    /// The workflow file that must have built it, e.g. `.github/workflows/publish.yml`.
    /// Default: any workflow of the repository.
    pub workflow_path: Option<String>,
}

/// A log entry of `checkAndStageLatestRuntime`: what it decided and why.
#[napi(object)]
pub struct StageLogEntry {
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

/// Why a call could not start: a bad option, or a JS call (a getter, `addEventListener`) that
/// threw. Either way the returned promise rejects; nothing throws synchronously.
enum StartError {
    Stage(StageError),
    Js(Error),
}

impl From<StageError> for StartError {
    fn from(e: StageError) -> Self {
        StartError::Stage(e)
    }
}

impl From<Error> for StartError {
    fn from(e: Error) -> Self {
        StartError::Js(e)
    }
}

fn invalid(name: &'static str, reason: &str) -> StartError {
    StartError::Stage(StageError::InvalidOption {
        name,
        reason: reason.into(),
    })
}

const REGISTRY_KEYS: &str = "registryKeys";

/// The options object, read property by property with a type check on each. `undefined` and
/// `null` both mean "not given", as they did with napi's own conversion. Only the JS types are
/// checked here; ranges, defaults and parsing are `Config::resolve`'s.
struct OptionsReader<'env> {
    obj: Object<'env>,
}

impl<'env> OptionsReader<'env> {
    fn new(opts: Option<Unknown<'env>>) -> std::result::Result<Self, StartError> {
        match opts {
            Some(v) if v.get_type()? == ValueType::Object => Ok(OptionsReader {
                // SAFETY: the value's type was just checked to be an object.
                obj: unsafe { v.cast::<Object>() }?,
            }),
            _ => Err(invalid("opts", "must be an options object")),
        }
    }

    /// Every option `Config::resolve` takes, in the order of `StageOptions`.
    fn read(&self) -> std::result::Result<Options, StartError> {
        Ok(Options {
            user_data: self.string("userData")?,
            current_version: self.string("currentVersion")?,
            native_deps_source: self.string("nativeDepsSource")?,
            registry: self.string("registry")?,
            package_name: self.string("packageName")?,
            dist_tag: self.string("distTag")?,
            timeout_ms: self.number("timeoutMs")?,
            connect_timeout_ms: self.number("connectTimeoutMs")?,
            idle_timeout_ms: self.number("idleTimeoutMs")?,
            retries: self.number("retries")?,
            proxy: self.string("proxy")?,
            ca: self.ca()?,
            auth_token: self.string("authToken")?,
            max_bytes_per_second: self.number("maxBytesPerSecond")?,
            max_unpacked_bytes: self.number("maxUnpackedBytes")?,
            max_entries: self.number("maxEntries")?,
            max_document_bytes: self.number("maxDocumentBytes")?,
            min_release_age_minutes: self.number("minReleaseAgeMinutes")?,
            registry_keys: self.registry_keys()?,
            require_signatures: self.boolean("requireSignatures")?,
            host_node_version: self.string("hostNodeVersion")?,
            provenance: self.provenance()?,
            sigstore_trust_root: self.string("sigstoreTrustRoot")?,
        })
    }

    fn get(&self, name: &'static str) -> std::result::Result<Option<Unknown<'env>>, StartError> {
        let v: Unknown<'env> = self.obj.get_named_property(name)?;
        Ok(match v.get_type()? {
            ValueType::Undefined | ValueType::Null => None,
            _ => Some(v),
        })
    }

    /// The property when it has the JS type `ty`, else the error `wrong` makes.
    fn typed<T: FromNapiValue>(
        &self,
        name: &'static str,
        ty: ValueType,
        wrong: impl FnOnce() -> StartError,
    ) -> std::result::Result<Option<T>, StartError> {
        match self.get(name)? {
            None => Ok(None),
            // SAFETY: the value's type was just checked to be `ty`, the JS type of `T`.
            Some(v) if v.get_type()? == ty => Ok(Some(unsafe { v.cast() }?)),
            Some(_) => Err(wrong()),
        }
    }

    fn string(&self, name: &'static str) -> std::result::Result<Option<String>, StartError> {
        self.typed(name, ValueType::String, || {
            invalid(name, "must be a string")
        })
    }

    fn number(&self, name: &'static str) -> std::result::Result<Option<f64>, StartError> {
        self.typed(name, ValueType::Number, || {
            invalid(name, "must be a number")
        })
    }

    fn boolean(&self, name: &'static str) -> std::result::Result<Option<bool>, StartError> {
        self.typed(name, ValueType::Boolean, || {
            invalid(name, "must be a boolean")
        })
    }

    /// A callback option: a function, or absent.
    fn callback<T: ToNapiValue + JsValuesTupleIntoVec>(
        &self,
        name: &'static str,
    ) -> std::result::Result<Option<Function<'env, T, ()>>, StartError> {
        self.typed(name, ValueType::Function, || {
            invalid(name, "must be a function")
        })
    }

    /// `ca`: one PEM string or an array of them.
    fn ca(&self) -> std::result::Result<Option<Vec<String>>, StartError> {
        let Some(v) = self.get("ca")? else {
            return Ok(None);
        };
        let not_pem = || invalid("ca", "must be a PEM string or an array of PEM strings");
        match v.get_type()? {
            // SAFETY: the value's type was just checked to be a string.
            ValueType::String => Ok(Some(vec![unsafe { v.cast() }?])),
            ValueType::Object if v.is_array()? => {
                // SAFETY: the value was just checked to be an array.
                let items: Vec<Unknown> = unsafe { v.cast() }?;
                items
                    .into_iter()
                    .map(|item| match item.get_type()? {
                        // SAFETY: the item's type was just checked to be a string.
                        ValueType::String => Ok(unsafe { item.cast() }?),
                        _ => Err(not_pem()),
                    })
                    .collect::<std::result::Result<_, _>>()
                    .map(Some)
            }
            _ => Err(not_pem()),
        }
    }

    /// `registryKeys`: an array of key objects whose fields are strings.
    fn registry_keys(&self) -> std::result::Result<Option<Vec<RegistryKeyInput>>, StartError> {
        let Some(v) = self.get(REGISTRY_KEYS)? else {
            return Ok(None);
        };
        if v.get_type()? != ValueType::Object || !v.is_array()? {
            return Err(invalid(REGISTRY_KEYS, "must be an array of key objects"));
        }
        // SAFETY: the value was just checked to be an array.
        let items: Vec<Unknown> = unsafe { v.cast() }?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| registry_key(i, item))
            .collect::<std::result::Result<_, _>>()
            .map(Some)
    }

    /// `provenance`: `{ repository, workflowPath? }`.
    fn provenance(&self) -> std::result::Result<Option<ProvenanceInput>, StartError> {
        let Some(v) = self.get("provenance")? else {
            return Ok(None);
        };
        if v.get_type()? != ValueType::Object || v.is_array()? {
            return Err(invalid(
                "provenance",
                "must be an object `{ repository, workflowPath? }`",
            ));
        }
        // SAFETY: the value's type was just checked to be an object.
        let inner = OptionsReader {
            obj: unsafe { v.cast() }?,
        };
        let field = |name, full| {
            inner.typed(name, ValueType::String, || {
                invalid(full, "must be a string")
            })
        };
        Ok(Some(ProvenanceInput {
            repository: field("repository", "provenance.repository")?,
            workflow_path: field("workflowPath", "provenance.workflowPath")?,
        }))
    }

    /// `signal`: anything shaped like an `AbortSignal` (`aborted` boolean, both listener methods),
    /// so a polyfill works too.
    fn signal(&self) -> std::result::Result<Option<Object<'env>>, StartError> {
        let Some(v) = self.get("signal")? else {
            return Ok(None);
        };
        let not_signal = || invalid("signal", "must be an AbortSignal");
        if v.get_type()? != ValueType::Object {
            return Err(not_signal());
        }
        // SAFETY: the value's type was just checked to be an object.
        let obj: Object<'env> = unsafe { v.cast() }?;
        let type_of = |name: &str| -> Result<ValueType> {
            obj.get_named_property::<Unknown>(name)?.get_type()
        };
        if type_of("aborted")? != ValueType::Boolean
            || type_of("addEventListener")? != ValueType::Function
            || type_of("removeEventListener")? != ValueType::Function
        {
            return Err(not_signal());
        }
        Ok(Some(obj))
    }
}

/// `registryKeys`, one entry: an object whose fields are strings.
fn registry_key(i: usize, item: Unknown<'_>) -> std::result::Result<RegistryKeyInput, StartError> {
    if item.get_type()? != ValueType::Object {
        return Err(invalid(
            REGISTRY_KEYS,
            &format!("entry {i} is not an object"),
        ));
    }
    // SAFETY: the item's type was just checked to be an object.
    let entry = OptionsReader {
        obj: unsafe { item.cast() }?,
    };
    let field = |name: &'static str| {
        entry.typed(name, ValueType::String, || {
            invalid(
                REGISTRY_KEYS,
                &format!("entry {i}: `{name}` must be a string"),
            )
        })
    };
    Ok(RegistryKeyInput {
        keyid: field("keyid")?,
        keytype: field("keytype")?,
        scheme: field("scheme")?,
        key: field("key")?,
        expires: field("expires")?,
    })
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
/// runs on the addon's async runtime and file work on its blocking pool. Never throws: every
/// failure, a bad option included, rejects with an `Error` whose `code` is one of the documented
/// codes.
#[napi(
    ts_args_type = "opts: StageOptions",
    ts_return_type = "Promise<StageOutcome>"
)]
pub fn check_and_stage_latest_runtime<'env>(
    env: &'env Env,
    opts: Option<Unknown<'env>>,
) -> Result<PromiseRaw<'env, StageOutcome>> {
    match start(env, opts) {
        Ok(promise) => Ok(promise),
        Err(e) => rejected(env, e),
    }
}

fn start<'env>(
    env: &'env Env,
    opts: Option<Unknown<'env>>,
) -> std::result::Result<PromiseRaw<'env, StageOutcome>, StartError> {
    let opts = OptionsReader::new(opts)?;
    let options = opts.read()?;
    let v = env.get_node_version()?;
    let defaults = EnvDefaults {
        host_node_version: Some(nodejs_semver::Version::new(
            u64::from(v.major),
            u64::from(v.minor),
            u64::from(v.patch),
            Vec::new(),
            Vec::new(),
        )),
        ..EnvDefaults::from_process()
    };
    let config = Config::resolve(options, &defaults)?;
    let signal = opts.signal()?;
    let on_log = match opts.callback::<StageLogEntry>("onLog")? {
        // Weak, like onProgress: a pending log call must not keep Node or Electron alive.
        Some(f) => Some(
            f.build_threadsafe_function::<StageLogEntry>()
                .weak::<true>()
                .callee_handled::<false>()
                .build()?,
        ),
        None => None,
    };
    let on_progress = match opts.callback::<StageProgress>("onProgress")? {
        // Weak: a pending progress callback must not keep Node or Electron alive.
        Some(f) => Some(
            f.build_threadsafe_function::<StageProgress>()
                .weak::<true>()
                .callee_handled::<false>()
                .build()?,
        ),
        None => None,
    };
    let (mut ctl, abort) = Control::new(config.net.total_timeout);
    if let Some(tsfn) = on_progress {
        ctl = ctl.with_progress(Arc::new(move |p: Progress| {
            // Non-blocking, status ignored: a closing environment refuses the call, harmlessly.
            // With a return-value handler napi hands a throw from the callback to that handler
            // instead of raising it as an uncaught exception (the Electron main process would
            // die): the handler drops it, so a faulty callback loses its event, not the call.
            let _ = tsfn.call_with_return_value(
                StageProgress {
                    phase: p.phase.as_str().to_string(),
                    downloaded_bytes: p.downloaded as f64,
                    total_bytes: p.total.map(|t| t as f64),
                },
                ThreadsafeFunctionCallMode::NonBlocking,
                |_thrown_or_returned, _env| Ok(()),
            );
        }));
    }
    if let Some(tsfn) = on_log {
        ctl = ctl.with_log(Arc::new(move |e: LogEntry| {
            // Delivered as onProgress is: non-blocking, and a throwing callback loses its entry.
            let _ = tsfn.call_with_return_value(
                StageLogEntry::from(e),
                ThreadsafeFunctionCallMode::NonBlocking,
                |_thrown_or_returned, _env| Ok(()),
            );
        }));
    }
    // Electron tears JS contexts down (worker exit, window reload) while calls may be in flight:
    // abort them then, so the store lock is released now rather than after the download.
    let teardown = env.add_env_cleanup_hook(abort.clone(), |abort| abort.abort())?;
    let listener = match signal.map(|s| SignalListener::attach(env, &s, abort)) {
        None => None,
        Some(Ok(listener)) => Some(listener),
        Some(Err(e)) => {
            // The call does not start, so it needs no teardown either.
            let _ = env.remove_env_cleanup_hook(teardown);
            return Err(e.into());
        }
    };
    let promise = env.spawn_future_with_callback(
        async move {
            let store = Store::new(&config.user_data);
            let run = stage::check_and_stage(&config, &store, &ctl);
            Ok(catching_panics("staging", run).await)
        },
        move |env, result| {
            env.remove_env_cleanup_hook(teardown)?;
            // Detach from the signal so a long-lived signal does not keep this call's state. A
            // signal whose removeEventListener throws must not turn the outcome into an error.
            if let Some(listener) = listener {
                let _ = listener.detach(env);
            }
            match result {
                Ok(outcome) => Ok(StageOutcome::from(outcome)),
                Err(e) => Err(js_error(env, &e)),
            }
        },
    )?;
    Ok(promise)
}

/// A promise already rejected with why the call could not start.
fn rejected<'env>(env: &'env Env, e: StartError) -> Result<PromiseRaw<'env, StageOutcome>> {
    // A JS exception (a throwing getter or `addEventListener`) may still be pending: take it,
    // so it becomes the rejection and nothing is thrown when this function returns.
    let pending = take_pending_exception(env);
    env.spawn_future_with_callback(async { Ok(()) }, move |env, ()| {
        Err(match e {
            StartError::Stage(e) => js_error(env, &e),
            StartError::Js(e) => pending.unwrap_or(e),
        })
    })
}

/// The pending JS exception, cleared, if there is one.
fn take_pending_exception(env: &Env) -> Option<Error> {
    let mut pending = false;
    // SAFETY: called on the JS thread with this call's live env; both calls are allowed while
    // an exception is pending.
    unsafe {
        if napi::sys::napi_is_exception_pending(env.raw(), &mut pending)
            != napi::sys::Status::napi_ok
            || !pending
        {
            return None;
        }
        let mut exception = std::ptr::null_mut();
        if napi::sys::napi_get_and_clear_last_exception(env.raw(), &mut exception)
            != napi::sys::Status::napi_ok
        {
            return None;
        }
        Some(Error::from(Unknown::from_raw_unchecked(
            env.raw(),
            exception,
        )))
    }
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
        if signal.get_named_property::<bool>("aborted")? {
            abort.abort();
        }
        let callback = env.create_function_from_closure::<(), (), _>("onAbort", move |_| {
            abort.abort();
            Ok(())
        })?;
        let add: ListenerMethod = signal.get_named_property("addEventListener")?;
        // `bind` + `call`: `call` takes a thrown exception off the env and returns it as the error.
        add.bind(signal)?.call(FnArgs::from(("abort", callback)))?;
        Ok(SignalListener {
            signal: signal.create_ref()?,
            callback: callback.create_ref()?,
        })
    }

    fn detach(self, env: &Env) -> Result<()> {
        let signal = self.signal.get_value(env)?;
        let callback = self.callback.borrow_back(env)?;
        let remove: ListenerMethod = signal.get_named_property("removeEventListener")?;
        remove
            .bind(signal)?
            .call(FnArgs::from(("abort", callback)))?;
        self.signal.unref(env)
    }
}

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
/// versions, partial folders and the lock.
#[napi]
pub fn read_store_status(env: &Env, user_data: String) -> Result<StoreStatus> {
    let store = store_at(env, &user_data)?;
    let st = sync_result(env, store.status())?;
    Ok(StoreStatus {
        store: store.root().to_string_lossy().into_owned(),
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
    })
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
        Ok(_) => mark_bad_version(env, user_data, version),
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
pub fn mark_bad_version(
    env: &Env,
    user_data: String,
    version: String,
) -> Result<PromiseRaw<'_, Option<String>>> {
    let store = Store::new(&absolute(&user_data));
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
