#![no_main]
//! Fuzz target: see `sea_gcp::fuzzing::blob_value` for what it feeds and which properties it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sea_gcp::fuzzing::blob_value(data));
