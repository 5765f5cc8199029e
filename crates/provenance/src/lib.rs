//! Sigstore provenance verification, for npm attestations and standalone bundles: a version is
//! trusted only when its SLSA provenance attestation (a Sigstore bundle) proves that a GitHub
//! Actions run of the expected repository built exactly this tarball, with a certificate from a
//! trusted Fulcio CA and an entry in a trusted Rekor log. It depends on no other crate of the
//! workspace.
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

/// Sigstore test material: a test Fulcio CA, leaves, log keys and bundles. Not part of the API.
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod testkit;

pub use bundle::{verify_sigstore_bundle, Signer};
pub use policy::{Policy, PolicyError};
pub use root::{RootError, TrustRoot};

pub use bundle::{verify, MAX_ATTESTATIONS_BYTES};
pub use dsse::Subject;
pub use encoding::{pem_certificates, rfc3339_ms, NotBase64, PemError};
pub use refusal::Check;
pub use root::{MAX_TRUST_ROOT_BYTES, PUBLIC_GOOD as PUBLIC_GOOD_TRUST_ROOT};
use sct::parse_sct_list;

/// Entry point for the fuzz target `attestations`. Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{parse_sct_list, verify, Policy, Subject, TrustRoot};

    /// The verifier on an attestations response, a trust root and an SCT list: each must
    /// refuse, never panic or allocate without bound.
    pub fn attestations(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let _ = TrustRoot::from_json(&text);
        let _ = parse_sct_list(data);
        let Ok(root) = TrustRoot::public_good() else {
            return;
        };
        let policy = Policy {
            repository: "kanban-org/kanban".into(),
            workflow_path: Some(".github/workflows/publish.yml".into()),
            git_ref: None,
        };
        let subject = Subject {
            name: "kanban",
            version: "1.0.0",
            sha512: &[0; 64],
        };
        assert!(verify(data, &subject, &policy, &root).is_err());
    }
}
