#![no_main]
// Arbitrary bytes into the integrity parser: it must refuse, never panic or allocate without bound.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| runtime_stager_core::fuzzing::integrity(data));
