//! The caller's `AbortSignal`, listened to for the length of one call.

use napi::bindgen_prelude::*;
use runtime_stager_core::AbortHandle;

/// `signal.addEventListener` / `removeEventListener`, called with (`'abort'`, listener).
type ListenerMethod<'a> = Function<'a, FnArgs<(&'static str, Function<'a, (), ()>)>, Unknown<'a>>;

/// An `abort` listener on the caller's `AbortSignal`, removed again when the call settles.
pub(super) struct SignalListener {
    signal: ObjectRef,
    callback: FunctionRef<(), ()>,
}

impl SignalListener {
    pub(super) fn attach(
        env: &Env,
        signal: &Object<'_>,
        abort: AbortHandle,
    ) -> Result<SignalListener> {
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

    pub(super) fn detach(self, env: &Env) -> Result<()> {
        let signal = self.signal.get_value(env)?;
        let callback = self.callback.borrow_back(env)?;
        let remove: ListenerMethod = signal.get_named_property("removeEventListener")?;
        remove
            .bind(signal)?
            .call(FnArgs::from(("abort", callback)))?;
        self.signal.unref(env)
    }
}
