//! `cargo fuzz run frame_io`: see grpcdoc::fuzzing::frame_io for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| grpcdoc::fuzzing::frame_io(data));
