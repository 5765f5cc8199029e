#![no_main]
// Arbitrary tar entry paths into the sanitiser: what it accepts stays inside the folder.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| runtime_stager_core::fuzzing::sanitize_path(data));
