//! The call's context: its overall deadline, its abort switch, and where its progress and log
//! entries go. Every step of one call holds a clone.

use crate::error::{Result, StageError};
use crate::log::{Level, LogEntry, LogSink, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What a call is doing, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Resolving,
    WaitingForLock,
    Downloading,
    Finishing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolving => "resolving",
            Phase::WaitingForLock => "waiting-for-lock",
            Phase::Downloading => "downloading",
            Phase::Finishing => "finishing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub downloaded: u64,
    /// The tarball's size when the server sent a Content-Length.
    pub total: Option<u64>,
}

pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

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

    /// Sends a log entry to the call's log sink, if it has one.
    pub fn log(&self, level: Level, message: impl Into<String>, fields: &[(&'static str, Value)]) {
        if let Some(sink) = &self.log {
            sink(LogEntry {
                level,
                message: message.into(),
                fields: fields.to_vec(),
            });
        }
    }

    pub fn report(&self, phase: Phase, downloaded: u64, total: Option<u64>) {
        if let Some(sink) = &self.progress {
            sink(Progress {
                phase,
                downloaded,
                total,
            });
        }
    }

    pub fn is_aborted(&self) -> bool {
        *self.abort.borrow()
    }

    /// Whether the overall deadline has passed; no retry starts after it.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Runs `fut` until it finishes, the deadline passes (`ETIMEDOUT`), or the call is aborted
    /// (`EABORTED`), whichever comes first.
    pub async fn guard<T>(&self, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let mut abort = self.abort.clone();
        tokio::select! {
            r = fut => r,
            _ = tokio::time::sleep_until(self.deadline) => Err(StageError::Timeout {
                url: what.to_string(),
                phase: "staging",
                ms: self.total.as_millis() as u64,
            }),
            _ = abort.wait_for(|a| *a) => Err(StageError::Aborted),
        }
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
}
