//! kanban-runtime-stager: checks the npm registry for a newer `kanban` runtime and stages it
//! into the desktop app's `userData`, safely and atomically.
//!
//! The core: it knows nothing of Node. The napi binding (the workspace's root package) converts
//! JavaScript options into [`Options`], and outcomes and [`StageError`]s back; it reaches the
//! core only through what this file exports.

// The layers, top to bottom; each may use only those below it.
mod config;
mod extract;
mod net;
mod registry;
mod shared;
mod stage;
mod store;
mod trust;

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

    /// The provenance verifier on an attestations response, a trust root and an SCT list.
    pub use runtime_stager_provenance::fuzzing::attestations;

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

    /// The extractor on a gzipped stream, into a fresh destination (on a RAM disk when there is
    /// one, since every extracted file is flushed); panics if anything was written beside it.
    pub fn extract_fresh(tgz: &[u8]) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let shm = std::path::PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!(
            "krs-fuzz-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root).unwrap();
        let _ = extract(tgz, &root.join("out"));
        let stray = std::fs::read_dir(&root).unwrap().flatten().count();
        assert!(stray <= 1, "wrote beside the destination");
        std::fs::remove_dir_all(&root).unwrap();
    }
}

pub use config::{
    user_data_dir, Config, EnvDefaults, Limits, NetConfig, Options, Provenance, ProvenanceInput,
    RegistryKeyInput, Rollout, Secret, Trust,
};
/// The extractor alone, for the benchmark's floor (inflate, untar and durable writes with no
/// network or store). Not part of the API.
#[doc(hidden)]
pub use extract::{extract_tgz, ExtractLimits};

/// The range of each whole-number option, as the option checks apply them.
pub mod option_ranges {
    pub use crate::config::{
        OptionRange, MIN_RELEASE_AGE_MINUTES, POSITIVE_CAP, RETRIES, ROLLOUT_HOURS, TIMEOUT_MS,
        UNCONFIRMED_LAUNCHES,
    };
}
pub use shared::call::{AbortHandle, Control, Progress};
pub use shared::error::{
    catching_panics, Check, CompatGuard, Field, Limit, Op, Result, SignatureReason, StageError,
};
pub use shared::fsutil::blocking;
pub use shared::log::{LogEntry, Value as LogValue};
pub use shared::version::clean as clean_version;
pub use stage::{check_and_stage, Checked, Outcome};
pub use store::{
    check_version, PendingNote, Pointer, Store, StoreStatus, WithdrawnNote, OWNED_NAMES,
};
pub use store::{
    Diagnosis, KeptBecause, LaunchFailure, Note, NoteKind, Problem, ProblemKind, VersionOnDisk,
};

/// Launch health: what the app's start-up asks of the store (which runtime to launch, a trial
/// begun, confirmed, ended or failed).
pub mod launch {
    pub use crate::store::launches::{
        begin, confirm, end, report_failed, resolve, Failure, FailureNote, Launch, LaunchRecord,
        RolledBack, DEFAULT_MAX_UNCONFIRMED,
    };
}

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
