//! What every layer shares: the error type and its codes, the call context (deadline, abort,
//! progress, log), the phase names, text clipping for messages (which masks the credentials of
//! URLs), RFC 3339 dates, npm's version rules and the file-system helpers.
//!
//! May use: nothing of the crate. Used by every layer.

pub(crate) mod call;
pub(crate) mod dates;
pub(crate) mod error;
pub(crate) mod fsutil;
pub(crate) mod log;
pub(crate) mod phase;
pub(crate) mod text;
pub(crate) mod version;
