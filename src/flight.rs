//! Single flight: concurrent calls in one process that would stage the same thing share one run.

use crate::call::Control;
use crate::error::{Result, StageError};
use crate::stage::Outcome;
use crate::store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

/// Staging runs in flight in this process, by store and version. Concurrent calls for the same
/// version share one run instead of queueing on the store lock and re-checking one by one.
type FlightResult = Option<Result<Outcome>>;
/// The store, the version, and what the run stages (tarball, native modules, host).
type FlightKey = (PathBuf, String, String);
type Flights = HashMap<FlightKey, tokio::sync::watch::Receiver<FlightResult>>;
static FLIGHTS: LazyLock<Mutex<Flights>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Removes the in-flight entry when the leading run ends, however it ends (a dropped future too).
struct FlightEntry(FlightKey);
impl Drop for FlightEntry {
    fn drop(&mut self) {
        FLIGHTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

pub(crate) async fn single_flight<F, Fut>(
    store: &Store,
    version: &str,
    run_of: &str,
    ctl: &Control,
    run: F,
) -> Result<Outcome>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let key = (
        store.root().to_path_buf(),
        version.to_string(),
        run_of.to_string(),
    );
    loop {
        let joined = {
            let mut flights = FLIGHTS.lock().unwrap_or_else(|e| e.into_inner());
            match flights.get(&key) {
                Some(rx) => Err(rx.clone()),
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    flights.insert(key.clone(), rx);
                    Ok(tx)
                }
            }
        };
        match joined {
            Ok(tx) => {
                let _entry = FlightEntry(key.clone());
                let result = run().await;
                tx.send_replace(Some(result.clone()));
                return result;
            }
            Err(mut rx) => {
                let shared = ctl
                    .guard(version, async {
                        Ok(rx
                            .wait_for(Option::is_some)
                            .await
                            .ok()
                            .and_then(|r| r.clone()))
                    })
                    .await?;
                match shared {
                    // The leader was aborted or dropped by its own caller: this call is not, so
                    // it runs the staging itself.
                    None
                    | Some(Err(StageError::Aborted))
                    | Some(Err(StageError::Timeout {
                        phase: "staging", ..
                    })) => continue,
                    Some(result) => return result,
                }
            }
        }
    }
}
