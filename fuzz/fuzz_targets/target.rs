//! `cargo fuzz run target`: see grpcdoc::fuzzing::target for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| grpcdoc::fuzzing::target(data));
