#![no_main]
// Arbitrary bytes into the provenance verifier (attestations JSON, trust root, SCT list): it must
// refuse, never panic or allocate without bound.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| runtime_stager_core::fuzzing::attestations(data));
