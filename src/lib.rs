//! kanban-runtime-stager: checks the npm registry for a newer `kanban` runtime and stages it
//! into the desktop app's `userData`, safely and atomically.
//!
//! The core modules know nothing of Node; the `node` feature adds the thin napi binding.

// Without the binding, what only it calls (option parsing, the panic guard) looks unused; the
// default build, which has the binding, still reports dead code.
#![cfg_attr(not(feature = "node"), allow(dead_code))]

// The layers, top to bottom; each may use only those below it.
mod config;
mod extract;
mod net;
mod registry;
mod shared;
mod stage;
mod store;
mod trust;

#[cfg(feature = "node")]
mod binding;

/// Entry points for the fuzz targets in `fuzz/`: each feeds arbitrary bytes to one parser of
/// untrusted input. Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::extract::{extract_tgz, sanitize, windows_problem, ExtractLimits};
    use crate::registry::Document;
    use crate::registry::Expected;
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    /// The package document parser and everything staging reads from it.
    pub fn document(data: &[u8]) {
        let Ok(doc) = Document::parse("http://r/kanban", data) else {
            return;
        };
        for tag in ["latest", "next", ""] {
            if let Ok(v) = doc.tag_version(tag) {
                let _ = semver::Version::parse(&v);
                if let Ok(dist) = doc.dist(&v) {
                    let _ = crate::registry::rewrite_tarball_url(&dist.tarball, "http://m/");
                    let _ = dist.integrity.to_string();
                }
            }
        }
    }

    /// The SRI and shasum parsers, and a verification against the input itself.
    pub fn integrity(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        for exp in [Expected::from_sri(&text), Expected::from_shasum(&text)]
            .into_iter()
            .flatten()
        {
            let mut h = exp.hasher();
            h.update(data);
            let _ = h.verify(&exp);
            let _ = exp.to_string();
        }
    }

    /// The provenance verifier on an attestations response, a trust root and an SCT list: each
    /// must refuse, never panic or allocate without bound.
    pub fn attestations(data: &[u8]) {
        use crate::trust::provenance::{parse_sct_list, verify, Policy, Subject, TrustRoot};
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

    /// The entry-path sanitiser; whatever it accepts must stay relative and `..`-free.
    pub fn sanitize_path(data: &[u8]) {
        if let Ok(Some(rel)) = sanitize(data) {
            assert!(rel.is_relative(), "{rel:?}");
            for comp in rel.components() {
                assert!(matches!(comp, std::path::Component::Normal(_)), "{rel:?}");
                let name = comp.as_os_str().to_string_lossy();
                assert!(windows_problem(&name).is_none(), "{rel:?}");
            }
        }
    }

    /// The whole extractor on a gzipped stream, into `dest` (which must not exist). Returns the
    /// error code, if any.
    pub fn extract(tgz: &[u8], dest: &Path) -> Option<&'static str> {
        let limits = ExtractLimits {
            max_bytes: 1 << 20,
            max_entries: 256,
        };
        let bins = ["dist/cli.js".to_string()];
        extract_tgz(
            tgz,
            dest,
            limits,
            &bins,
            "http://r/x.tgz",
            &AtomicBool::new(false),
        )
        .err()
        .map(|e| e.code())
    }
}

pub use config::{Config, Limits, NetConfig, Provenance, Rollout, Trust};
pub use extract::{extract_tgz, ExtractLimits};
pub use shared::call::Control;
pub use shared::error::{Result, StageError};
pub use shared::log::{LogEntry, Value as LogValue};
pub use stage::{check_and_stage, Checked, Outcome};
pub use store::Store;
pub use trust::provenance::{verify_sigstore_bundle, Policy, Signer, TrustRoot};

/// Internals the integration tests in `tests/` drive directly: the HTTP client, the SRI string a
/// registry publishes, an error's fields, and the hook that fakes a failing disk. Not part of the
/// API.
#[doc(hidden)]
pub mod testkit {
    pub use crate::net::{Fetched, Http};
    pub use crate::registry::sri_of;
    pub use crate::shared::error::Field;
    pub use crate::shared::fsutil::Renamer;
    pub use crate::store::POINTER_FILE;
}
