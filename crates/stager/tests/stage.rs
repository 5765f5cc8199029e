//! Whole staging runs against a loopback registry.

mod common;

use common::{ctl, env, Server};
use runtime_stager_core::testkit::{sri_of, Renamer, POINTER_FILE};
use runtime_stager_core::{
    check_and_stage, Config, LogEntry, LogValue, Outcome, StageError, Store,
};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One staging run that must succeed, and its outcome.
async fn stage(cfg: &Config, store: &Store) -> Outcome {
    check_and_stage(cfg, store, &ctl()).await.unwrap().outcome
}

#[tokio::test(flavor = "multi_thread")]
async fn outcomes_in_order_with_one_download() {
    let reg = Server::registry("2.0.0", None).await;
    let e = env(&reg.url, "1.0.0");
    let store = Store::new(&e.cfg.user_data);
    let out = stage(&e.cfg, &store).await;
    assert_eq!(out, Outcome::Staged("2.0.0".into()));
    assert!(store.is_whole("2.0.0"));
    assert_eq!(store.resolve_cli_entry(), Some(store.cli_entry("2.0.0")));
    assert_eq!(
        std::fs::read_to_string(store.cli_entry("2.0.0")).unwrap(),
        "console.log('2.0.0')"
    );
    let again = stage(&e.cfg, &store).await;
    assert_eq!(again, Outcome::AlreadyStaged);

    let mut newer = e.cfg.clone();
    newer.current_version = "2.0.0".into();
    assert_eq!(
        check_and_stage(&newer, &store, &ctl())
            .await
            .unwrap()
            .outcome,
        Outcome::UpToDate
    );
    store.mark_bad("2.0.0").unwrap();
    assert_eq!(
        stage(&e.cfg, &store).await,
        Outcome::BadVersion("2.0.0".into())
    );
    assert_eq!(reg.tarball_requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_what_it_decided_and_why() {
    let reg = Server::registry("2.0.0", None).await;
    let e = env(&reg.url, "1.0.0");
    let store = Store::new(&e.cfg.user_data);
    std::fs::create_dir_all(store.versions_dir()).unwrap();
    std::fs::write(store.versions_dir().join("notes.partial"), "x").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let logged = ctl().with_log(Arc::new(move |e: LogEntry| sink.lock().unwrap().push(e)));
    check_and_stage(&e.cfg, &store, &logged).await.unwrap();
    let entries = seen.lock().unwrap().clone();
    let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "dist-tag latest of kanban names 2.0.0",
            "no registry signature (not required)",
            "staging 2.0.0",
            "removed leftovers of interrupted runs: notes.partial",
            "pointed at 2.0.0",
        ]
    );
    assert!(entries[0]
        .fields
        .contains(&("version", LogValue::Str("2.0.0".into()))));
    seen.lock().unwrap().clear();
    let mut current = e.cfg.clone();
    current.current_version = "v2.0.0".into();
    check_and_stage(&current, &store, &logged).await.unwrap();
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        last.message,
        "up to date: 2.0.0 is not newer than the running 2.0.0"
    );
}

/// Fails renames onto `current.json`, as a full disk or a held file would.
struct PointerRenameFails;
impl Renamer for PointerRenameFails {
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if to.ends_with(POINTER_FILE) {
            return Err(io::Error::from_raw_os_error(28));
        }
        std::fs::rename(from, to)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pointer_failure_is_repaired_without_a_second_download() {
    let reg = Server::registry("2.0.0", None).await;
    let e = env(&reg.url, "1.0.0");
    let failing = Store::with_renamer(&e.cfg.user_data, Arc::new(PointerRenameFails));
    let err = check_and_stage(&e.cfg, &failing, &ctl()).await.unwrap_err();
    assert_eq!(err.code(), "ENOSPC");
    assert!(failing.is_whole("2.0.0"));
    assert_eq!(failing.read_pointer(), None);

    let store = Store::new(&e.cfg.user_data);
    let out = stage(&e.cfg, &store).await;
    assert_eq!(out, Outcome::Staged("2.0.0".into()));
    assert_eq!(store.read_pointer().unwrap().version, "2.0.0");
    assert_eq!(reg.tarball_requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn integrity_mismatch_retries_once_and_leaves_nothing() {
    let reg = Server::registry("2.0.0", Some(sri_of(b"something else"))).await;
    let e = env(&reg.url, "1.0.0");
    let store = Store::new(&e.cfg.user_data);
    let err = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap_err();
    assert!(
        matches!(&err, StageError::Integrity { expected, .. } if *expected == sri_of(b"something else")),
        "{err}"
    );
    assert_eq!(reg.tarball_requests(), 2);
    assert!(!store.partial_dir("2.0.0").exists());
    assert!(!store.version_dir("2.0.0").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn non_semver_tag_rejects_before_touching_the_disk() {
    let reg = Server::registry("not-a-version", None).await;
    let e = env(&reg.url, "1.0.0");
    let store = Store::new(&e.cfg.user_data);
    let err = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap_err();
    assert_eq!(err.code(), "EINVALID_VERSION");
    assert!(!e.cfg.user_data.exists());
}
