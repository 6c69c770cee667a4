//! `cargo fuzz run fault_spec`: see grpcdoc::fuzzing::fault_spec for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| grpcdoc::fuzzing::fault_spec(data));
