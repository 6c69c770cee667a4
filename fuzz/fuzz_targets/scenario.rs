//! `cargo fuzz run scenario`: see grpcdoc::fuzzing::scenario for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| grpcdoc::fuzzing::scenario(data));
