//! The napi binding: options in, outcomes and coded errors out. No logic of its own: `options`
//! reads the JS options into the core's `Options`, `types` is what goes back to JS, `signal` the
//! caller's `AbortSignal`, `store` the store functions; this file starts a staging call.

mod launch;
mod options;
mod signal;
mod store;
mod types;
mod verify;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::CleanupEnvHook;
use napi_derive::napi;
use options::OptionsReader;
use runtime_stager_core::catching_panics;
use runtime_stager_core::LogEntry;
use runtime_stager_core::Store;
use runtime_stager_core::{AbortHandle, Control, Progress};
use runtime_stager_core::{Config, EnvDefaults};
use signal::SignalListener;
use std::sync::Arc;
use types::{js_error, ArgError, StageLogEntry, StageOutcome, StageProgress};

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
) -> std::result::Result<PromiseRaw<'env, StageOutcome>, ArgError> {
    let opts = OptionsReader::new(opts)?;
    let config = Config::resolve(opts.read()?, &env_defaults(env)?)?;
    let signal = opts.signal()?;
    let in_flight = InFlight::default();
    let (ctl, abort) = control(&opts, &config, &in_flight)?;
    let watch = Watch::attach(env, signal, abort)?;
    Ok(spawn(env, config, ctl, watch, in_flight)?)
}

/// The environment's defaults, and the Node version the runtime will run on: the same Node as
/// the app (Electron's own, in Electron).
fn env_defaults(env: &Env) -> Result<EnvDefaults> {
    let v = env.get_node_version()?;
    Ok(EnvDefaults {
        host_node_version: Some(nodejs_semver::Version::new(
            u64::from(v.major),
            u64::from(v.minor),
            u64::from(v.patch),
            Vec::new(),
            Vec::new(),
        )),
        ..EnvDefaults::from_process()
    })
}

/// A JS callback the staging run calls from its own threads. Weak: a pending call must not keep
/// Node or Electron alive.
type Callback<T> = ThreadsafeFunction<T, (), T, Status, false, true>;

fn callback<T: 'static + JsValuesTupleIntoVec>(f: Function<'_, T, ()>) -> Result<Callback<T>> {
    f.build_threadsafe_function::<T>()
        .weak::<true>()
        .callee_handled::<false>()
        .build()
}

/// The `onLog` and `onProgress` entries of one call queued for the JS thread and not yet
/// handed to their callback. They travel on a queue of their own, which the JS thread may serve
/// after the promise's settlement: the call waits for them, so a caller sees every entry of a
/// call before its outcome or its error.
#[derive(Clone, Default)]
struct InFlight(Arc<Entries>);

#[derive(Default)]
struct Entries {
    /// Queued and not yet handed to their callback.
    pending: std::sync::atomic::AtomicUsize,
    /// Woken when `pending` falls to zero.
    drained: tokio::sync::Notify,
}

impl InFlight {
    fn queued(&self) {
        self.0
            .pending
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn handed(&self) {
        if self
            .0
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.0.drained.notify_waiters();
        }
    }

    /// Once every queued entry is handed over, or after `limit`: a closing environment may
    /// never serve the queue, and the promise must still settle.
    async fn drained(&self, limit: std::time::Duration) {
        let wait = async {
            loop {
                let notified = self.0.drained.notified();
                if self.0.pending.load(std::sync::atomic::Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

/// Non-blocking, status ignored: a closing environment refuses the call, harmlessly. With a
/// return-value handler napi hands a throw from the callback to that handler instead of raising
/// it as an uncaught exception (the Electron main process would die): the handler drops it, so a
/// faulty callback loses its event, not the call.
fn deliver<T: 'static + JsValuesTupleIntoVec>(
    callback: &Callback<T>,
    value: T,
    in_flight: &InFlight,
) {
    in_flight.queued();
    let handed = in_flight.clone();
    let status = callback.call_with_return_value(
        value,
        ThreadsafeFunctionCallMode::NonBlocking,
        move |_thrown_or_returned, _env| {
            handed.handed();
            Ok(())
        },
    );
    if status != Status::Ok {
        in_flight.handed();
    }
}

/// The call's deadline and abort handle, with the `onProgress` and `onLog` callbacks attached.
fn control(
    opts: &OptionsReader<'_>,
    config: &Config,
    in_flight: &InFlight,
) -> std::result::Result<(Control, AbortHandle), ArgError> {
    let on_log = opts.callback::<StageLogEntry>("onLog")?.map(callback);
    let on_log = on_log.transpose()?;
    let on_progress = opts.callback::<StageProgress>("onProgress")?.map(callback);
    let on_progress = on_progress.transpose()?;
    let (mut ctl, abort) = Control::new(config.net.total_timeout);
    if let Some(f) = on_progress {
        let in_flight = in_flight.clone();
        ctl = ctl.with_progress(Arc::new(move |p: Progress| {
            deliver(&f, p.into(), &in_flight)
        }));
    }
    if let Some(f) = on_log {
        let in_flight = in_flight.clone();
        ctl = ctl.with_log(Arc::new(move |e: LogEntry| {
            deliver(&f, e.into(), &in_flight)
        }));
    }
    Ok((ctl, abort))
}

/// What aborts a running call besides its deadline: the teardown of its JS context, and its
/// signal when it has one. Both are let go when the call settles.
struct Watch {
    teardown: CleanupEnvHook<AbortHandle>,
    listener: Option<SignalListener>,
}

impl Watch {
    fn attach(env: &Env, signal: Option<Object<'_>>, abort: AbortHandle) -> Result<Watch> {
        // Electron tears JS contexts down (worker exit, window reload) while calls may be in
        // flight: abort them then, so the store lock is released now rather than after the
        // download.
        let teardown = env.add_env_cleanup_hook(abort.clone(), |abort| abort.abort())?;
        let listener = match signal.map(|s| SignalListener::attach(env, &s, abort)) {
            None => None,
            Some(Ok(listener)) => Some(listener),
            Some(Err(e)) => {
                // The call does not start, so it needs no teardown either.
                let _ = env.remove_env_cleanup_hook(teardown);
                return Err(e);
            }
        };
        Ok(Watch { teardown, listener })
    }

    fn detach(self, env: &Env) -> Result<()> {
        env.remove_env_cleanup_hook(self.teardown)?;
        // Detach from the signal so a long-lived signal does not keep this call's state. A
        // signal whose removeEventListener throws must not turn the outcome into an error.
        if let Some(listener) = self.listener {
            let _ = listener.detach(env);
        }
        Ok(())
    }
}

/// Runs the staging on the addon's runtime; the promise settles on the JS thread.
fn spawn<'env>(
    env: &'env Env,
    config: Config,
    ctl: Control,
    watch: Watch,
    in_flight: InFlight,
) -> Result<PromiseRaw<'env, StageOutcome>> {
    env.spawn_future_with_callback(
        async move {
            let store = Store::new(&config.user_data);
            let run = runtime_stager_core::check_and_stage(&config, &store, &ctl);
            let result = catching_panics("staging", run).await;
            // A second is far more than a JS thread that is serving the queue needs; a thread
            // that is not (its environment closing) must not hold the settlement longer.
            in_flight.drained(std::time::Duration::from_secs(1)).await;
            Ok(result)
        },
        move |env, result| {
            watch.detach(env)?;
            match result {
                Ok(outcome) => Ok(StageOutcome::from(outcome)),
                Err(e) => Err(js_error(env, &e)),
            }
        },
    )
}

/// A promise already rejected with why the call could not start (a bad option, or a JS call that
/// threw): nothing throws synchronously.
fn rejected<'env>(env: &'env Env, e: ArgError) -> Result<PromiseRaw<'env, StageOutcome>> {
    // A JS exception (a throwing getter or `addEventListener`) may still be pending: take it,
    // so it becomes the rejection and nothing is thrown when this function returns.
    let pending = take_pending_exception(env);
    env.spawn_future_with_callback(async { Ok(()) }, move |env, ()| {
        Err(match e {
            ArgError::Stage(e) => js_error(env, &e),
            ArgError::Js(e) => pending.unwrap_or(e),
        })
    })
}

/// The pending JS exception, cleared, if there is one.
pub(crate) fn take_pending_exception(env: &Env) -> Option<Error> {
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
