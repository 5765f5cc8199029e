//! The network: the HTTP client (proxies, CA, redirects that never downgrade, timeouts), the
//! retry policy, the bandwidth throttle, the tarball download with its resume protocol, and the
//! package document cached in the store.
//!
//! May use: `config` (the network settings), `registry` (URL rules), `store` (kept bytes, the
//! cache file) and `shared`. Used by `stage`.

pub(crate) mod doccache;
mod download;
mod http;
pub(crate) mod resume;
mod retry;
mod throttle;

pub(crate) use download::{
    append_kept, discard_kept, open_tarball, read_kept, Opened, Tarball, REPLAY_CHUNK,
};
pub use http::{Fetched, Http};
pub(crate) use resume::Kept;
pub(crate) use retry::{Attempt, RetryPolicy};
pub(crate) use throttle::Throttle;
