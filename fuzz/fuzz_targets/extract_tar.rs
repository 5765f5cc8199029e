#![no_main]
// Arbitrary bytes as the tar inside the gzip (stored, not compressed, so the fuzzer's mutations
// reach the tar headers directly): refused with a code, never a panic.
use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut enc = GzEncoder::new(Vec::new(), Compression::none());
    enc.write_all(data).unwrap();
    runtime_stager_core::fuzzing::extract_fresh(&enc.finish().unwrap());
});
