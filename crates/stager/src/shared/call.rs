//! The call's context: its overall deadline, its abort switch, and where its progress and log
//! entries go. Every step of one call holds a clone.

use super::error::{Budget, Result, StageError};
use super::log::{Level, LogEntry, LogSink, Value};
use super::phase::Phase;
use super::text::redact_credentials;
use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub downloaded: u64,
    /// The tarball's size when the server sent a Content-Length.
    pub total: Option<u64>,
}

pub(crate) type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// The overall deadline, the abort switch and the progress sink shared by every step of one call.
#[derive(Clone)]
pub struct Control {
    deadline: Instant,
    total: Duration,
    abort: watch::Receiver<bool>,
    // Keeps the channel open when no one else holds the sender.
    _keep: Arc<watch::Sender<bool>>,
    progress: Option<ProgressSink>,
    log: Option<LogSink>,
    /// The phase last reported, shared by every clone: a deadline that expires names it.
    phase: Arc<AtomicU8>,
}

/// The handle that aborts a call.
#[derive(Clone)]
pub struct AbortHandle(Arc<watch::Sender<bool>>);

impl AbortHandle {
    pub fn abort(&self) {
        self.0.send_replace(true);
    }
}

impl Control {
    pub fn new(total: Duration) -> (Control, AbortHandle) {
        let (tx, rx) = watch::channel(false);
        let tx = Arc::new(tx);
        let ctl = Control {
            deadline: Instant::now() + total,
            total,
            abort: rx,
            _keep: tx.clone(),
            progress: None,
            log: None,
            phase: Arc::new(AtomicU8::new(Phase::Resolving as u8)),
        };
        (ctl, AbortHandle(tx))
    }

    pub fn with_progress(mut self, sink: ProgressSink) -> Control {
        self.progress = Some(sink);
        self
    }

    pub fn with_log(mut self, sink: LogSink) -> Control {
        self.log = Some(sink);
        self
    }

    /// Sends a log entry to the call's log sink, if it has one. Its values are clipped, so they
    /// show no credentials; the message is masked here too, whatever it was made of.
    pub fn log(&self, level: Level, message: impl Into<String>, fields: &[(&'static str, Value)]) {
        if let Some(sink) = &self.log {
            let message = message.into();
            let message = match redact_credentials(&message) {
                Cow::Borrowed(_) => message,
                Cow::Owned(masked) => masked,
            };
            sink(LogEntry {
                level,
                message,
                fields: fields.to_vec(),
            });
        }
    }

    pub fn report(&self, phase: Phase, downloaded: u64, total: Option<u64>) {
        self.phase.store(phase as u8, Ordering::Relaxed);
        if let Some(sink) = &self.progress {
            sink(Progress {
                phase,
                downloaded,
                total,
            });
        }
    }

    /// The phase last reported (`resolving` before any).
    pub fn phase(&self) -> Phase {
        Phase::from_index(self.phase.load(Ordering::Relaxed))
    }

    pub fn is_aborted(&self) -> bool {
        *self.abort.borrow()
    }

    /// Whether the overall deadline has passed; no retry starts after it.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Runs `fut` until it finishes, the deadline passes (`ETIMEDOUT` with the call's budget and
    /// the phase the call was in), or the call is aborted (`EABORTED`), whichever comes first.
    pub async fn guard<T>(&self, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let mut abort = self.abort.clone();
        tokio::select! {
            r = fut => r,
            _ = tokio::time::sleep_until(self.deadline) => Err(StageError::Timeout {
                url: what.to_string(),
                phase: self.phase(),
                budget: Budget::Call,
                ms: self.total.as_millis() as u64,
            }),
            _ = abort.wait_for(|a| *a) => Err(StageError::Aborted),
        }
    }

    /// For a wait on a blocking thread, checked between its tries: `EABORTED` once the call is
    /// aborted, `ETIMEDOUT` (the call's budget, the phase the call was in) once its deadline has
    /// passed.
    pub fn check(&self, what: &str) -> Result<()> {
        if self.is_aborted() {
            return Err(StageError::Aborted);
        }
        if self.expired() {
            return Err(StageError::Timeout {
                url: what.to_string(),
                phase: self.phase(),
                budget: Budget::Call,
                ms: self.total.as_millis() as u64,
            });
        }
        Ok(())
    }

    /// Sleeps for `d`, cut short by the deadline or an abort.
    pub async fn sleep(&self, what: &str, d: Duration) -> Result<()> {
        self.guard(what, async {
            tokio::time::sleep(d).await;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn guard_times_out_and_aborts() {
        let (ctl, _h) = Control::new(Duration::from_millis(50));
        let e = ctl
            .guard("u", async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), "ETIMEDOUT");

        let (ctl, h) = Control::new(Duration::from_secs(60));
        let c2 = ctl.clone();
        let t = tokio::spawn(async move { c2.sleep("u", Duration::from_secs(30)).await });
        h.abort();
        assert_eq!(t.await.unwrap().unwrap_err().code(), "EABORTED");
        assert!(ctl.is_aborted());
    }

    #[tokio::test]
    async fn the_deadline_names_the_call_budget_and_the_phase_last_reported() {
        let (ctl, _h) = Control::new(Duration::from_millis(20));
        assert_eq!(ctl.phase(), Phase::Resolving);
        // A clone reports; the original's guard sees it.
        ctl.clone().report(Phase::WaitingForLock, 0, None);
        let e = ctl
            .sleep("1.2.3", Duration::from_secs(5))
            .await
            .unwrap_err();
        match &e {
            StageError::Timeout {
                url,
                phase,
                budget,
                ms,
            } => {
                assert_eq!(url, "1.2.3");
                assert_eq!(*phase, Phase::WaitingForLock);
                assert_eq!(*budget, Budget::Call);
                assert_eq!(*ms, 20);
            }
            other => panic!("expected ETIMEDOUT, got {other}"),
        }
    }

    #[test]
    fn a_log_entry_never_shows_the_credentials_of_a_url() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let (ctl, _h) = Control::new(Duration::from_secs(5));
        let ctl = ctl.with_log(Arc::new(move |e: LogEntry| sink.lock().unwrap().push(e)));
        let url = "http://user:secret@r/kanban?token=secret";
        ctl.log(
            Level::Warn,
            format!("retrying {url} after ENETWORK"),
            &[("url", url.into())],
        );
        let entries = seen.lock().unwrap();
        assert_eq!(
            entries[0].message,
            "retrying http://***@r/kanban?token=*** after ENETWORK"
        );
        assert_eq!(
            entries[0].fields,
            [("url", Value::Str("http://***@r/kanban?token=***".into()))]
        );
    }
}
