//! Single flight: concurrent calls in one process that would stage the same thing share one run.

use super::outcome::Outcome;
use crate::shared::call::Control;
use crate::shared::error::Budget;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::Mutex;

/// Staging runs in flight in this process, by store and version. Concurrent calls for the same
/// version share one run instead of queueing on the store lock and re-checking one by one.
type FlightResult = Option<Result<Outcome>>;
/// The store, the version, and what the run stages with which settings (see `Run::key`).
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

/// The outcome of `run` for `version`, run here or shared with a run of the same thing already in
/// flight in this process. A shared run that ended by its own caller's abort or deadline does
/// not end this call: it then runs (or joins) anew.
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
        match lead_or_join(&key) {
            Role::Lead(tx) => {
                let _entry = FlightEntry(key.clone());
                let result = run().await;
                tx.send_replace(Some(result.clone()));
                return result;
            }
            Role::Join(rx) => {
                if let Some(result) = leader_result(rx, version, ctl).await? {
                    return result;
                }
            }
        }
    }
}

/// A call's part in the run of its key.
enum Role {
    /// No run is in flight: this call runs, and publishes its result with this.
    Lead(tokio::sync::watch::Sender<FlightResult>),
    /// The result of the run in flight arrives here.
    Join(tokio::sync::watch::Receiver<FlightResult>),
}

/// This call's part in the run of `key`, registering it as the run in flight when none is.
fn lead_or_join(key: &FlightKey) -> Role {
    let mut flights = FLIGHTS.lock().unwrap_or_else(|e| e.into_inner());
    match flights.get(key) {
        Some(rx) => Role::Join(rx.clone()),
        None => {
            let (tx, rx) = tokio::sync::watch::channel(None);
            flights.insert(key.clone(), rx);
            Role::Lead(tx)
        }
    }
}

/// The leader's result to share, or `None` when this call must run the staging itself.
async fn leader_result(
    mut rx: tokio::sync::watch::Receiver<FlightResult>,
    version: &str,
    ctl: &Control,
) -> Result<FlightResult> {
    let shared = ctl
        .guard(version, async {
            Ok(rx
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|r| r.clone()))
        })
        .await?;
    Ok(match shared {
        // The leader was aborted or dropped by its own caller: this call is not, so it runs the
        // staging itself.
        None
        | Some(Err(StageError::Aborted))
        | Some(Err(StageError::Timeout {
            budget: Budget::Call,
            ..
        })) => None,
        Some(result) => Some(result),
    })
}
