//! The store's own tests, and the fakes other layers' tests stage with.

use super::kept::read_sidecar;
use super::layout::*;
use super::locks::*;
use super::whole::*;
use crate::shared::error::Result;
use std::fs::{self, File};
use std::path::Path;

/// A store in a fresh temp folder, which lives as long as the returned `TempDir`.
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path());
    (tmp, store)
}

/// `f`'s result, with the store lock held.
fn locked<T>(store: &Store, f: impl FnOnce(&StoreLock) -> Result<T>) -> T {
    store.with_store_lock(&LockWait::Bounded, f).unwrap()
}

/// `f`'s result, with the staging lock held.
fn staged<T>(store: &Store, f: impl FnOnce(&StagingLock) -> Result<T>) -> T {
    let mut file = store.staging_lock_file().unwrap();
    let guard = file.try_lock().unwrap().unwrap();
    f(&guard).unwrap()
}

/// What pruning all but `keep` and `running` removes, with both locks held.
fn prune(store: &Store, keep: &[&str], running: Option<&semver::Version>) -> Vec<String> {
    staged(store, |staging| {
        store.with_store_lock(&LockWait::Bounded, |lock| {
            store.prune(staging, lock, keep, running)
        })
    })
}

/// Lays out a whole staged version as a staging run would leave it.
pub(crate) fn stage_fake(store: &Store, version: &str) {
    let dir = store.version_dir(version);
    fs::create_dir_all(dir.join("dist")).unwrap();
    fs::create_dir_all(dir.join("node_modules/node-pty")).unwrap();
    fs::write(dir.join("dist/cli.js"), "cli").unwrap();
    write_record(
        &dir,
        &CompletionRecord {
            version: version.into(),
            integrity: "sha512-x".into(),
            files: 1,
            bytes: 3,
        },
    )
    .unwrap();
}

/// A store in a fresh folder with `versions` staged whole and the pointer on `pointed`, with no
/// `previous`.
pub(crate) fn store_with(versions: &[&str], pointed: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    for version in versions {
        stage_fake(&store, version);
    }
    store
        .with_store_lock(&LockWait::Bounded, |l| {
            store.write_pointer(l, pointed, None)
        })
        .unwrap();
    (dir, store)
}

#[test]
fn pointer_round_trip_and_trust_rules() {
    let (_tmp, store) = temp_store();
    assert_eq!(store.read_pointer(), None);
    fs::create_dir_all(store.root()).unwrap();
    locked(&store, |l| store.write_pointer(l, "1.0.0", Some("0.9.0")));
    let p = store.read_pointer().unwrap();
    assert_eq!(p.version, "1.0.0");
    assert_eq!(Path::new(&p.cli_entry), store.cli_entry("1.0.0"));
    assert_eq!(p.previous.as_deref(), Some("0.9.0"));
    // Not whole yet: no CLI to run.
    assert_eq!(store.resolve_cli_entry(), None);
    stage_fake(&store, "1.0.0");
    assert_eq!(store.resolve_cli_entry(), Some(store.cli_entry("1.0.0")));

    // A cliEntry pointing anywhere else is not trusted.
    let evil = serde_json::json!({"version":"1.0.0","cliEntry":"/tmp/evil.js"});
    fs::write(store.pointer_path(), evil.to_string()).unwrap();
    assert_eq!(store.read_pointer(), None);
    let dotted = format!(
        "{}/../1.0.0/dist/cli.js",
        store.version_dir("1.0.0").display()
    );
    let evil = serde_json::json!({"version":"1.0.0","cliEntry":dotted});
    fs::write(store.pointer_path(), evil.to_string()).unwrap();
    assert_eq!(store.read_pointer(), None);
    fs::write(store.pointer_path(), "{").unwrap();
    assert_eq!(store.read_pointer(), None);
}

#[test]
fn whole_requires_cli_native_and_record() {
    let (_tmp, store) = temp_store();
    stage_fake(&store, "1.0.0");
    assert!(store.is_whole("1.0.0"));
    fs::remove_dir_all(store.version_dir("1.0.0").join("node_modules/node-pty")).unwrap();
    assert!(!store.is_whole("1.0.0"));
    stage_fake(&store, "1.0.0");
    fs::remove_file(store.version_dir("1.0.0").join(COMPLETE_FILE)).unwrap();
    assert!(!store.is_whole("1.0.0"));
    stage_fake(&store, "1.0.0");
    fs::remove_file(store.cli_entry("1.0.0")).unwrap();
    assert!(!store.is_whole("1.0.0"));
}

#[test]
fn mark_bad_rolls_back_to_previous_or_clears() {
    let (_tmp, store) = temp_store();
    stage_fake(&store, "1.0.0");
    stage_fake(&store, "1.1.0");
    locked(&store, |l| store.write_pointer(l, "1.1.0", Some("1.0.0")));
    // Not the pointed version: only marked.
    assert_eq!(
        locked(&store, |l| store.mark_bad_and_roll_back(l, "0.5.0")).as_deref(),
        Some("1.1.0")
    );
    assert!(store.is_bad("0.5.0"));
    assert_eq!(
        locked(&store, |l| store.mark_bad_and_roll_back(l, "1.1.0")).as_deref(),
        Some("1.0.0")
    );
    assert_eq!(store.read_pointer().unwrap().version, "1.0.0");
    assert_eq!(
        locked(&store, |l| store.mark_bad_and_roll_back(l, "1.0.0")),
        None
    );
    assert_eq!(store.read_pointer(), None);
    assert_eq!(store.bad_versions(), ["0.5.0", "1.0.0", "1.1.0"]);
}

#[test]
fn sweep_removes_partials_and_temps_only() {
    let (_tmp, store) = temp_store();
    stage_fake(&store, "1.0.0");
    fs::create_dir_all(store.partial_dir("2.0.0").join("x")).unwrap();
    // A crashed pointer writer's temp file (its writers hold the store lock, which the sweep
    // takes); the document cache's, old (crashed) and fresh (being written, without a lock).
    fs::write(store.root().join(".current.json.tmp-1"), "x").unwrap();
    let old = store.root().join(".package-document.cache.tmp-1-1");
    fs::write(&old, "x").unwrap();
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let f = File::options().write(true).open(&old).unwrap();
    f.set_modified(an_hour_ago).unwrap();
    let fresh = store.root().join(".package-document.cache.tmp-2-1");
    fs::write(&fresh, "x").unwrap();
    staged(&store, |s| store.sweep_stale(s, &LockWait::Bounded, None));
    assert!(!store.partial_dir("2.0.0").exists());
    assert!(!store.root().join(".current.json.tmp-1").exists());
    assert!(!old.exists());
    assert!(fresh.exists());
    assert!(store.is_whole("1.0.0"));
}

#[test]
fn prune_keeps_named_versions() {
    let (_tmp, store) = temp_store();
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        stage_fake(&store, v);
    }
    let removed = prune(&store, &["1.2.0", "1.1.0"], None);
    assert_eq!(removed, ["1.0.0"]);
    // Under the store lock the folder is only renamed aside; it is deleted after.
    let trash = |store: &Store| {
        fs::read_dir(store.staging_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".trash-")
            })
            .count()
    };
    assert_eq!(trash(&store), 1);
    staged(&store, |s| {
        store.empty_trash(s);
        Ok(())
    });
    assert_eq!(trash(&store), 0);
    assert!(store.is_whole("1.1.0") && store.is_whole("1.2.0"));
    assert!(!store.version_dir("1.0.0").exists());
}

#[test]
fn lock_excludes_a_second_holder() {
    let (_tmp, store) = temp_store();
    let mut a = store.staging_lock_file().unwrap();
    let mut b = store.staging_lock_file().unwrap();
    assert!(!store.is_locked().unwrap());
    let g = a.try_lock().unwrap().unwrap();
    assert!(b.try_lock().unwrap().is_none());
    assert!(store.is_locked().unwrap());
    drop(g);
    assert!(b.try_lock().unwrap().is_some());
}

#[test]
fn status_lists_versions_partials_and_bad() {
    let (_tmp, store) = temp_store();
    stage_fake(&store, "1.10.0");
    stage_fake(&store, "1.9.0");
    fs::remove_file(store.cli_entry("1.9.0")).unwrap();
    fs::create_dir_all(store.partial_dir("2.0.0")).unwrap();
    locked(&store, |l| store.write_pointer(l, "1.10.0", Some("1.9.0")));
    locked(&store, |l| store.add_bad(l, "1.8.0"));
    let st = store.status().unwrap();
    assert_eq!(st.pointer.unwrap().version, "1.10.0");
    assert_eq!(st.runnable, Some(store.cli_entry("1.10.0")));
    let v: Vec<_> = st
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.whole))
        .collect();
    assert_eq!(v, [("1.9.0", false), ("1.10.0", true)]);
    assert!(st.versions[1].bytes > 0);
    assert_eq!(st.partials, ["2.0.0.partial"]);
    assert_eq!(st.bad, ["1.8.0"]);
    assert!(!st.locked);
}

#[test]
fn a_bad_version_is_never_returned_as_the_pointer() {
    let (_tmp, store) = temp_store();
    stage_fake(&store, "1.0.0");
    stage_fake(&store, "2.0.0");
    locked(&store, |l| store.write_pointer(l, "2.0.0", Some("1.0.0")));
    // Marked bad behind the pointer's back (as by a process that died before the rollback).
    fs::write(store.root().join(BAD_FILE), r#"["2.0.0"]"#).unwrap();
    let p = store.read_pointer().unwrap();
    assert_eq!((p.version.as_str(), p.previous), ("1.0.0", None));
    assert_eq!(store.resolve_cli_entry(), Some(store.cli_entry("1.0.0")));
    // Fallback bad too, or not runnable: nothing.
    fs::write(store.root().join(BAD_FILE), r#"["2.0.0","1.0.0"]"#).unwrap();
    assert_eq!(store.read_pointer(), None);
    assert_eq!(store.resolve_cli_entry(), None);
    // A bad previous is hidden, and never written.
    fs::write(store.root().join(BAD_FILE), r#"["1.0.0"]"#).unwrap();
    assert_eq!(store.read_pointer().unwrap().previous, None);
    locked(&store, |l| store.write_pointer(l, "2.0.0", Some("1.0.0")));
    assert_eq!(store.read_pointer_file().unwrap().previous, None);
}

#[test]
fn marking_the_fallback_bad_drops_it_from_the_pointer() {
    let (_tmp, store) = temp_store();
    stage_fake(&store, "1.0.0");
    stage_fake(&store, "2.0.0");
    locked(&store, |l| store.write_pointer(l, "2.0.0", Some("1.0.0")));
    assert_eq!(store.mark_bad("1.0.0").unwrap().as_deref(), Some("2.0.0"));
    let p = store.read_pointer_file().unwrap();
    assert_eq!((p.version.as_str(), p.previous), ("2.0.0", None));
}

#[test]
fn mark_bad_does_not_wait_for_a_staging_run() {
    let (_tmp, store) = temp_store();
    stage_fake(&store, "1.0.0");
    locked(&store, |l| store.write_pointer(l, "1.0.0", None));
    let mut staging = store.staging_lock_file().unwrap();
    let _held = staging.try_lock().unwrap().unwrap();
    // Would deadlock (same thread) if marking took the staging lock.
    assert_eq!(store.mark_bad("1.0.0").unwrap(), None);
    assert!(store.is_bad("1.0.0"));
    assert!(store.is_locked().unwrap());
}

#[test]
fn stray_files_in_versions_are_swept_and_pruned() {
    let (_tmp, store) = temp_store();
    stage_fake(&store, "1.0.0");
    for name in ["notes.partial", "0.9.0", "2.0.0.partial", "README"] {
        fs::write(store.versions_dir().join(name), "x").unwrap();
    }
    let st = store.status().unwrap();
    assert_eq!(st.versions.len(), 1);
    assert_eq!(
        st.partials,
        ["0.9.0", "2.0.0.partial", "README", "notes.partial"]
    );
    staged(&store, |s| store.sweep_stale(s, &LockWait::Bounded, None));
    let left: Vec<_> = fs::read_dir(store.versions_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["1.0.0"]);
    // A file named like a version is pruned as a file.
    fs::write(store.versions_dir().join("0.8.0"), "x").unwrap();
    assert_eq!(prune(&store, &["1.0.0"], None), ["0.8.0"]);
}

#[test]
fn prune_keeps_the_running_version_by_precedence() {
    let (_tmp, store) = temp_store();
    for v in ["1.0.0+build.7", "1.1.0", "1.2.0"] {
        stage_fake(&store, v);
    }
    let running = crate::shared::version::clean("v1.0.0");
    let removed = prune(&store, &["1.2.0"], running.as_ref());
    assert_eq!(removed, ["1.1.0"]);
    assert!(store.is_whole("1.0.0+build.7"));
}

/// A version folder as the original TypeScript stager left it: no completion record.
pub(crate) fn stage_legacy(store: &Store, version: &str) {
    let dir = store.version_dir(version);
    fs::create_dir_all(dir.join("dist")).unwrap();
    fs::create_dir_all(dir.join("node_modules/node-pty")).unwrap();
    fs::write(dir.join("dist/cli.js"), "cli").unwrap();
    let manifest = serde_json::json!({ "name": "kanban", "version": version });
    fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
}

#[cfg(unix)]
#[test]
fn a_legacy_manifest_is_read_as_a_small_regular_file_only() {
    let (_tmp, store) = temp_store();
    stage_legacy(&store, "1.0.0");
    assert!(store.is_legacy_whole("1.0.0"));
    let manifest = store.version_dir("1.0.0").join("package.json");
    // A FIFO would wait for a writer forever; a link to /dev/zero would never end.
    fs::remove_file(&manifest).unwrap();
    mkfifo(&manifest);
    let started = std::time::Instant::now();
    assert!(!store.is_legacy_whole("1.0.0"));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
    assert!(!store.is_legacy_whole("1.0.0"));
    fs::remove_file(&manifest).unwrap();
    let big = format!(r#"{{"version":"1.0.0","pad":"{}"}}"#, "x".repeat(2 << 20));
    fs::write(&manifest, big).unwrap();
    assert!(!store.is_legacy_whole("1.0.0"));
}

#[test]
fn folders_of_the_original_implementation_are_adopted() {
    let (_tmp, store) = temp_store();
    stage_legacy(&store, "1.0.0");
    fs::create_dir_all(store.root()).unwrap();
    let legacy = serde_json::json!({
        "version": "1.0.0",
        "cliEntry": store.cli_entry("1.0.0"),
    });
    fs::write(store.pointer_path(), legacy.to_string()).unwrap();
    assert!(!store.is_whole("1.0.0") && store.is_legacy_whole("1.0.0"));
    assert_eq!(store.resolve_cli_entry(), Some(store.cli_entry("1.0.0")));
    staged(&store, |s| store.adopt_legacy(s, "1.0.0", "sha512-x"));
    assert!(store.is_whole("1.0.0"));
    let record = read_record(&store.version_dir("1.0.0")).unwrap();
    assert_eq!((record.files, record.integrity.as_str()), (2, "sha512-x"));

    // Not the original's rule: wrong version in package.json, no node-pty, or a record of
    // ours that does not match (a half-written folder of ours is never adopted).
    stage_legacy(&store, "2.0.0");
    fs::write(
        store.version_dir("2.0.0").join("package.json"),
        r#"{"version":"2.0.1"}"#,
    )
    .unwrap();
    assert!(!store.is_runnable("2.0.0"));
    stage_legacy(&store, "3.0.0");
    fs::remove_dir_all(store.version_dir("3.0.0").join("node_modules")).unwrap();
    assert!(!store.is_runnable("3.0.0"));
    stage_legacy(&store, "4.0.0");
    fs::write(store.version_dir("4.0.0").join(COMPLETE_FILE), "{}").unwrap();
    assert!(!store.is_runnable("4.0.0"));
}

#[test]
fn prune_now_keeps_pointed_fallback_and_running_and_waits_for_no_one() {
    let (_tmp, store) = temp_store();
    for v in ["1.0.0", "1.1.0", "1.2.0", "2.0.0"] {
        stage_fake(&store, v);
    }
    fs::create_dir_all(store.partial_dir("3.0.0")).unwrap();
    locked(&store, |l| store.write_pointer(l, "2.0.0", Some("1.2.0")));
    let running = crate::shared::version::clean("1.0.0");
    {
        let mut staging = store.staging_lock_file().unwrap();
        let _held = staging.try_lock().unwrap().unwrap();
        let busy = store.prune_now(running.as_ref()).unwrap();
        assert!(busy.busy && busy.removed.is_empty());
    }
    let report = store.prune_now(running.as_ref()).unwrap();
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, ["1.1.0", "3.0.0.partial"]);
    assert!(report.freed_bytes > 0 && !report.busy);
    for v in ["1.0.0", "1.2.0", "2.0.0"] {
        assert!(store.is_whole(v), "{v}");
    }
}

#[test]
fn sweep_keeps_only_the_fresh_download_of_the_version_being_staged() {
    use crate::net::resume::begin;
    use crate::store::{now_secs, Sidecar, Validator, MAX_KEPT_AGE};
    let (_tmp, store) = temp_store();
    fs::create_dir_all(store.staging_dir()).unwrap();
    let keep = |version: &str, age: u64| {
        let sidecar = Sidecar {
            url: "http://r/k.tgz".into(),
            integrity: "sha512-x".into(),
            validator: Validator::Etag("\"1\"".into()),
            size: Some(10),
            time: now_secs() - age,
        };
        begin(&store, version, &sidecar).unwrap();
        fs::write(store.kept_path(version), "12345").unwrap();
    };
    let kept =
        |version: &str| store.kept_path(version).exists() && store.sidecar_path(version).exists();
    keep("2.0.0", 0);
    keep("1.5.0", 0);
    staged(&store, |s| {
        store.sweep_stale(s, &LockWait::Bounded, Some("2.0.0"))
    });
    // Superseded: another version's bytes go; the version being staged keeps its own.
    assert!(kept("2.0.0"));
    assert!(!store.kept_path("1.5.0").exists() && !store.sidecar_path("1.5.0").exists());
    // Older than a week.
    keep("2.0.0", MAX_KEPT_AGE.as_secs());
    staged(&store, |s| {
        store.sweep_stale(s, &LockWait::Bounded, Some("2.0.0"))
    });
    assert!(!kept("2.0.0"));
    // Marked bad.
    keep("2.0.0", 0);
    locked(&store, |l| store.add_bad(l, "2.0.0"));
    staged(&store, |s| {
        store.sweep_stale(s, &LockWait::Bounded, Some("2.0.0"))
    });
    assert!(!kept("2.0.0"));
    // Already staged.
    stage_fake(&store, "3.0.0");
    keep("3.0.0", 0);
    staged(&store, |s| {
        store.sweep_stale(s, &LockWait::Bounded, Some("3.0.0"))
    });
    assert!(!kept("3.0.0") && store.is_whole("3.0.0"));
    // A kept file without its sidecar is never resumed, so never kept.
    keep("4.0.0", 0);
    fs::remove_file(store.sidecar_path("4.0.0")).unwrap();
    staged(&store, |s| {
        store.sweep_stale(s, &LockWait::Bounded, Some("4.0.0"))
    });
    assert!(!store.kept_path("4.0.0").exists());
}

#[test]
fn versions_must_be_semver() {
    assert!(check_version("1.2.3-beta.1").is_ok());
    assert!(check_version("../../etc").is_err());
    assert!(check_version("1.0").is_err());
}

/// Every name of `OWNED_NAMES`, spelled for `version`, is where the store's own paths put it.
#[test]
fn the_owned_names_are_the_paths_the_store_uses() {
    let (_tmp, store) = temp_store();
    let v = "1.2.3";
    let listed: Vec<std::path::PathBuf> = OWNED_NAMES
        .iter()
        .map(|o| store.root().join(o.path.replace("{version}", v)))
        .collect();
    let used = [
        store.pointer_path(),
        store.root().join(BAD_FILE),
        store.root().join(INCOMPATIBLE_FILE),
        store.root().join(LAUNCH_FILE),
        store.root().join(LOCK_FILE),
        store.root().join(STORE_LOCK_FILE),
        store.root().join(CACHE_FILE),
        store.rollout_path(),
        store.versions_dir(),
        store.staging_dir(),
        store.kept_path(v),
        store.sidecar_path(v),
        store.version_dir(v).join(COMPLETE_FILE),
        store.version_dir(v).join("package.json"),
    ];
    assert_eq!(listed, used);
}

/// What a test puts at a store name in place of what belongs there.
#[cfg(unix)]
#[derive(Debug, Clone, Copy)]
enum Hostile {
    Fifo,
    DevZero,
    Folder,
    /// A sparse file far past every cap: reading it whole would take minutes and gigabytes.
    Oversized,
}

#[cfg(unix)]
fn put_hostile(path: &Path, what: Hostile) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    crate::shared::fsutil::remove_tree(path).unwrap();
    match what {
        Hostile::Fifo => {
            mkfifo(path);
        }
        Hostile::DevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        Hostile::Folder => fs::create_dir(path).unwrap(),
        Hostile::Oversized => File::create(path).unwrap().set_len(8 << 30).unwrap(),
    }
}

/// Every name the store reads, with a FIFO, a link to /dev/zero, a folder or an oversized file in
/// its place: every reader of the store returns at once, treating it as absent or damaged, or
/// with a coded error; none waits on the FIFO or reads the file whole.
#[cfg(unix)]
#[test]
fn every_read_of_a_store_name_is_bounded() {
    use std::sync::mpsc;
    use std::time::Duration;
    for owned in OWNED_NAMES {
        for what in [
            Hostile::Fifo,
            Hostile::DevZero,
            Hostile::Folder,
            Hostile::Oversized,
        ] {
            let (tmp, store) = temp_store();
            stage_fake(&store, "1.0.0");
            locked(&store, |l| store.write_pointer(l, "1.0.0", None));
            fs::create_dir_all(store.staging_dir()).unwrap();
            let path = store.root().join(owned.path.replace("{version}", "1.0.0"));
            put_hostile(&path, what);
            let (tx, rx) = mpsc::channel();
            let store2 = store.clone();
            std::thread::spawn(move || {
                let s = &store2;
                let _ = s.read_pointer();
                let _ = s.read_pointer_file();
                let _ = s.resolve_cli_entry();
                let _ = s.pointer_file_exists();
                let _ = s.bad_versions();
                let _ = s.read_bad_list();
                let _ = s.incompatible_versions();
                let _ = s.launch_record();
                let _ = s.is_whole("1.0.0");
                let _ = s.is_legacy_whole("1.0.0");
                let _ = read_sidecar(&s.sidecar_path("1.0.0"));
                let _ = crate::net::doccache::read(s, "http://r/kanban", 1 << 20);
                let _ = s.is_locked();
                let _ = s.status();
                let _ = s.with_store_lock(&LockWait::Now, |_| Ok(()));
                if let Ok(mut file) = s.staging_lock_file() {
                    if let Ok(Some(staging)) = file.try_lock() {
                        let _ = crate::net::resume::load(s, "1.0.0", "http://r/k.tgz", "sha512-x");
                        let _ = s.sweep_stale(&staging, &LockWait::Now, Some("1.0.0"));
                    }
                }
                let _ = s.cleanup_partials();
                let _ = tx.send(());
            });
            // Far above what the calls take on a slow disk; a FIFO would wait forever.
            let done = rx.recv_timeout(Duration::from_secs(20));
            assert!(done.is_ok(), "{} as {what:?}: a call hung", owned.path);
            drop(tmp);
        }
    }
}

/// A link at `versions` or `staging` names something outside the store: pruning and the sweeps
/// neither delete nor move what it names.
#[cfg(unix)]
#[test]
fn pruning_and_sweeping_never_follow_a_link_at_a_store_folder() {
    let (tmp, store) = temp_store();
    let outside = tmp.path().join("outside");
    fs::create_dir_all(outside.join("9.0.0")).unwrap();
    fs::create_dir_all(outside.join("9.1.0.partial")).unwrap();
    fs::write(outside.join("notes"), "mine").unwrap();
    fs::create_dir_all(store.root()).unwrap();
    std::os::unix::fs::symlink(&outside, store.versions_dir()).unwrap();
    std::os::unix::fs::symlink(&outside, store.staging_dir()).unwrap();
    let report = store.prune_now(None).unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    staged(&store, |staging| {
        store.sweep_stale(staging, &LockWait::Bounded, None)?;
        store.sweep_legacy_partials()
    });
    let mut left: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["9.0.0", "9.1.0.partial", "notes"]);
}

/// Makes `path` impossible to delete (or, for a folder, to move to another folder) until the
/// guard drops: Linux's immutable attribute, as close as Linux comes to a file another process
/// holds open on Windows. Needs root and an ext4-like file system, as the test machines have.
struct Held(std::path::PathBuf);

fn hold(path: &Path) -> Held {
    let ok = std::process::Command::new("chattr")
        .arg("+i")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "chattr +i {} (the tests run as root on ext4)",
        path.display()
    );
    Held(path.to_path_buf())
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_folder_that_cannot_be_deleted_yet_is_kept_as_trash_and_stops_nothing() {
    let (_tmp, store) = temp_store();
    for v in ["0.5.0", "1.0.0", "2.0.0", "3.0.0"] {
        stage_fake(&store, v);
    }
    locked(&store, |l| store.write_pointer(l, "3.0.0", Some("2.0.0")));
    // A runtime still running from 1.0.0 holds a file in it.
    let mut held = hold(&store.version_dir("1.0.0").join("dist/cli.js"));
    // Removing it succeeds once it is gone from its name; what cannot be deleted stays as trash.
    store.remove_version("1.0.0").unwrap();
    assert!(!store.version_dir("1.0.0").exists());
    let trash = store.status().unwrap().trash;
    assert_eq!(trash.len(), 1, "{trash:?}");
    assert!(is_trash(&trash[0].name) && trash[0].bytes > 0);
    // The held file moved with its folder.
    held.0 = store.staging_dir().join(&trash[0].name).join("dist/cli.js");
    // Every later sweep, the cleanup and pruning succeed around it, and say what they left.
    let done = store.cleanup_partials().unwrap();
    assert_eq!(done.undeleted.len(), 1);
    assert_eq!(done.undeleted[0].name, trash[0].name);
    let swept = staged(&store, |s| store.sweep_stale(s, &LockWait::Bounded, None));
    assert_eq!(swept.undeleted.len(), 1);
    let report = store.prune_now(None).unwrap();
    assert_eq!(report.removed, ["0.5.0"]);
    assert!(store.is_whole("3.0.0"));
    assert_eq!(store.status().unwrap().trash.len(), 1);
    // Once the holder lets go, the next sweep deletes it.
    drop(held);
    let done = store.cleanup_partials().unwrap();
    assert!(done.undeleted.is_empty());
    assert!(store.status().unwrap().trash.is_empty());
    assert!(fs::read_dir(store.staging_dir()).unwrap().next().is_none());
}

/// Every file under `dir` with its bytes, by relative path.
fn listing(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_folder_that_cannot_be_moved_aside_is_ebusy_and_left_as_it_was() {
    let (_tmp, store) = temp_store();
    stage_fake(&store, "1.0.0");
    fs::create_dir_all(store.staging_dir()).unwrap();
    let before = listing(&store.version_dir("1.0.0"));
    let held = hold(&store.version_dir("1.0.0"));
    let err = staged(&store, |s| Ok(store.discard_version(s, "1.0.0"))).unwrap_err();
    assert_eq!(err.code(), "EBUSY");
    assert!(err.fields().iter().any(|(k, _)| *k == "path"));
    drop(held);
    assert!(store.is_whole("1.0.0"));
    assert_eq!(listing(&store.version_dir("1.0.0")), before);
    assert!(fs::read_dir(store.staging_dir()).unwrap().next().is_none());
    // Once released, it moves aside and is deleted.
    staged(&store, |s| store.discard_version(s, "1.0.0"));
    assert!(!store.version_dir("1.0.0").exists());
}

#[test]
fn a_partial_that_cannot_be_deleted_yet_frees_its_name_for_the_next_attempt() {
    let (_tmp, store) = temp_store();
    let partial = store.partial_dir("1.0.0");
    fs::create_dir_all(partial.join("dist")).unwrap();
    fs::write(partial.join("dist/cli.js"), "half").unwrap();
    let mut held = hold(&partial.join("dist/cli.js"));
    let swept = staged(&store, |s| store.sweep_stale(s, &LockWait::Bounded, None));
    assert!(!partial.exists(), "the name is free");
    assert_eq!(swept.undeleted.len(), 1);
    let name = &swept.undeleted[0].name;
    assert!(
        name.starts_with("1.0.0.partial") && is_trash(name),
        "{name}"
    );
    assert_eq!(store.status().unwrap().trash.len(), 1);
    held.0 = store.staging_dir().join(name).join("dist/cli.js");
    drop(held);
    assert!(store.cleanup_partials().unwrap().undeleted.is_empty());
    assert!(store.status().unwrap().trash.is_empty());
}

/// Makes a FIFO at `path` with the system's `mkfifo`: the core has no `unsafe`, not even in tests.
#[cfg(unix)]
pub(crate) fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}
