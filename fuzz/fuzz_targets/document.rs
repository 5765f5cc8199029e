#![no_main]
// Arbitrary bytes into the document parser: it must refuse, never panic or allocate without bound.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kanban_runtime_stager::fuzzing::document(data));
