#![no_main]
//! Fuzz target: see `sea_gcp::fuzzing::upload_sniff` for what it feeds and which properties it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sea_gcp::fuzzing::upload_sniff(data));
