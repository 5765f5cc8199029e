// Shared by the extractor targets: a fresh destination per input on a RAM disk when there is one,
// since every extracted file is flushed.
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub fn fresh_dest() -> (PathBuf, PathBuf) {
    static N: AtomicU64 = AtomicU64::new(0);
    let shm = PathBuf::from("/dev/shm");
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
    let dest = root.join("out");
    (root, dest)
}
