//! Supply-chain protections: what may be staged, decided from the registry's document (the
//! release-age cool-down, the registry's signatures, the compatibility guard) and from the
//! attestations (Sigstore provenance).
//!
//! May use: `registry` (the document it judges) and `shared`. Used by `config` and `stage`.

mod compat;
mod cooldown;
pub(crate) use runtime_stager_provenance as provenance;
mod signatures;

pub(crate) use compat::{check_compat, still_refused, Compat};
pub(crate) use cooldown::{
    all_newer_deprecated, candidate_below, cooled_candidate, held_back, rollout_ms, Delay,
};
pub(crate) use signatures::{
    key_from_json, needs_publish_time, public_keys, verify_signatures, RegistryKey, Signed,
};
