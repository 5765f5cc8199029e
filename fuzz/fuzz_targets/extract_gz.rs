#![no_main]
// Arbitrary bytes as a downloaded tarball: refused with a code, never a panic, never a write
// outside the destination.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| runtime_stager_core::fuzzing::extract_fresh(data));
