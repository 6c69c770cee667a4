//! `cargo fuzz run wire`: see grpcdoc::fuzzing::wire for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| grpcdoc::fuzzing::wire(data));
