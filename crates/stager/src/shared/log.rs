//! What the stager decided and why, for an app's log (`onLog`) and the CLI's `--verbose`: the tag
//! and version resolved, each guard's answer, retries with their reason and delay, lock waits,
//! what was swept or pruned. Strings from outside are clipped like error messages.

use super::text::clip;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
        }
    }
}

/// A field's value: a string (clipped) or a number.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(clip(s))
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Str(clip(s))
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Num(n as f64)
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Num(n as f64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub level: Level,
    pub message: String,
    pub fields: Vec<(&'static str, Value)>,
}

pub(crate) type LogSink = Arc<dyn Fn(LogEntry) + Send + Sync>;
