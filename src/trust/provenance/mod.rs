//! Sigstore provenance verification, for npm attestations and standalone bundles: a version is
//! trusted only when its SLSA provenance attestation (a Sigstore bundle) proves that a GitHub
//! Actions run of the expected repository built exactly this tarball, with a certificate from a
//! trusted Fulcio CA and an entry in a trusted Rekor log. It may use the crate's error and shared
//! helpers and `crate::trust`'s date helpers, nothing else of the crate.
//!
//! Files, each importing only files after it: `bundle` (the entry points), `tlog`, `timestamp`,
//! `sct`, `policy`, `material`, `dsse`, `certificate`, `root`, `keys`, `oids`, `encoding`,
//! `refusal`; `testkit` (tests only) imports none.

mod bundle;
mod certificate;
mod dsse;
mod encoding;
mod keys;
mod material;
mod oids;
mod policy;
mod refusal;
mod root;
mod sct;
mod timestamp;
mod tlog;

#[cfg(test)]
pub(crate) mod testkit;

pub use bundle::{verify_sigstore_bundle, Signer};
pub use policy::Policy;
pub use root::TrustRoot;

pub(crate) use bundle::{verify, MAX_ATTESTATIONS_BYTES};
pub(crate) use dsse::Subject;
pub(crate) use refusal::Check;
pub(crate) use root::MAX_TRUST_ROOT_BYTES;
pub(crate) use sct::parse_sct_list;
