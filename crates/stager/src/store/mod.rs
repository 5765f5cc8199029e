//! The runtime store under `<userData>/runtime-store/`: its layout (the TypeScript stager's files,
//! ours beside them), the pointer, the bad and incompatible lists, the two locks, the kept
//! download bytes, launch health, the rollout record and withdrawals, pruning, status, and entries of the wrong type at its names,
//! moved aside. Every read of a store file is capped and takes regular files only; every write
//! is atomic.
//!
//! May use: `shared` only. Used by `net`, `stage` and the binding.

mod diagnose;
mod heal;
mod kept;
pub(crate) mod launches;
mod layout;
mod lists;
mod locks;
mod pointer;
mod prune;
mod rollback;
mod rollout;
mod status;
mod whole;

#[cfg(test)]
pub(crate) mod tests;

pub use diagnose::{Diagnosis, Note, NoteKind, Problem, ProblemKind};
pub(crate) use heal::MovedAside;
#[cfg(test)]
pub(crate) use kept::{kept_version, MAX_KEPT_AGE};
pub(crate) use kept::{now_secs, read_sidecar, Sidecar, Validator};
pub use layout::{check_version, OWNED_NAMES};
pub use layout::{Store, POINTER_FILE};
pub(crate) use layout::{CACHE_FILE, CLI_ENTRY, NATIVE_MODULE};
pub(crate) use lists::IncompatibleEntry;
pub(crate) use locks::{LockWait, StagingGuard, StagingLock, StoreLock};
pub use pointer::Pointer;
pub(crate) use prune::Swept;
pub(crate) use rollout::draw_bucket;
pub use rollout::{PendingNote, WithdrawnNote};
pub use status::{KeptBecause, LaunchFailure, StoreStatus, VersionOnDisk};
pub(crate) use whole::{read_record, write_record, CompletionRecord};
