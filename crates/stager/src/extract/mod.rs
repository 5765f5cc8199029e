//! Safe extraction of a gzipped npm tarball into a fresh folder.
//!
//! This layer owns reading an untrusted tarball: inflating its gzip stream and unpacking its tar
//! entries into a folder it creates, within size and count limits. Entries are walked one by one
//! (never `Archive::unpack`): only regular files and directories are written, every path is
//! sanitised and its top folder stripped, sizes and counts are capped, and every read or write
//! error is fatal.
//!
//! It may use only the crate's error type and file system helpers (`crate::shared::error`,
//! `crate::shared::fsutil`). Its steps depend one way: `unpack` uses `inflate`, `headers` and `paths`;
//! those use only `limits`. The tests share `testkit`, which drives the whole extractor.

mod headers;
mod inflate;
mod limits;
mod paths;
#[cfg(test)]
mod testkit;
mod unpack;

pub use limits::ExtractLimits;
pub use unpack::extract_tgz;

pub(crate) use limits::{Extracted, HARD_MAX_ENTRIES, HARD_MAX_UNPACKED_BYTES};
pub(crate) use paths::{sanitize, windows_problem};
pub(crate) use unpack::require_folders_or_absent;
