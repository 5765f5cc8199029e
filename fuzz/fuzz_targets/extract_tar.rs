#![no_main]
// Arbitrary bytes as the tar inside the gzip (stored, not compressed, so the fuzzer's mutations
// reach the tar headers directly): refused with a code, never a panic.
use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut enc = GzEncoder::new(Vec::new(), Compression::none());
    enc.write_all(data).unwrap();
    let tgz = enc.finish().unwrap();
    let (root, dest) = common::fresh_dest();
    let _ = runtime_stager_core::fuzzing::extract(&tgz, &dest);
    let stray: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().collect();
    assert!(stray.len() <= 1, "wrote beside the destination");
    std::fs::remove_dir_all(&root).unwrap();
});
