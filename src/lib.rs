//! kanban-runtime-stager: checks the npm registry for a newer `kanban` runtime and stages it
//! into the desktop app's `userData`, safely and atomically.
//!
//! The core modules know nothing of Node; the `node` feature adds the thin napi binding.

pub mod config;
pub mod doccache;
pub mod error;
pub mod extract;
pub mod fsutil;
pub mod http;
pub mod integrity;
pub mod registry;
pub mod resume;
pub mod stage;
pub mod store;
pub mod version;

#[cfg(feature = "node")]
mod binding;

pub use error::{Result, StageError};
pub use stage::{check_and_stage, Outcome};
pub use store::Store;
