//! `cargo fuzz run frames`: see grpcdoc::fuzzing::frames for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| grpcdoc::fuzzing::frames(data));
