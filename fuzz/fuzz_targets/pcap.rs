//! `cargo fuzz run pcap`: see grpcdoc::fuzzing::pcap for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| grpcdoc::fuzzing::pcap(data));
