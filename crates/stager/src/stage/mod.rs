//! The staging algorithm: one check resolves the version to stage and runs the guards before any
//! download (signatures, provenance, compatibility); one run stages it under the staging lock
//! (download, verify, extract, native modules, rename, repoint); concurrent calls that would
//! stage the same thing share one run.
//!
//! May use: `net`, `trust`, `registry`, `store`, `extract`, `config` and `shared`. Used by the
//! binding.

mod check;
mod document;
mod finish;
mod flight;
mod guards;
mod install;
mod outcome;
mod plan;
mod rollout;
mod run;

pub use check::check_and_stage;
pub use outcome::{Checked, Outcome};
