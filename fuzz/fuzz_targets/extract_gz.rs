#![no_main]
// Arbitrary bytes as a downloaded tarball: refused with a code, never a panic, never a write
// outside the destination.
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (root, dest) = common::fresh_dest();
    let _ = runtime_stager_core::fuzzing::extract(data, &dest);
    let stray: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().collect();
    assert!(stray.len() <= 1, "wrote beside the destination");
    std::fs::remove_dir_all(&root).unwrap();
});
