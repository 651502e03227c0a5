//! The V4 signing conformance vectors (`tests/data/conformance/`), shared by the library's signing tests
//! and the CLI's (which includes this file with `#[path]` from `cli/tests/`).
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// `tests/data/conformance` of the repository, from the library's package or the CLI's (`cli/`).
pub fn conformance_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [manifest.join("tests/data/conformance"), manifest.join("../tests/data/conformance")];
    let found = candidates.iter().find(|dir| dir.join("v4_signatures.json").is_file());
    found
        .cloned()
        .unwrap_or_else(|| panic!("conformance vectors missing: expected v4_signatures.json in one of {candidates:?}"))
}

/// A JSON file of the conformance directory.
pub fn read_json(name: &str) -> Value {
    let path = conformance_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Google's vectors (vendored unchanged) plus this project's extra signed-URL cases
/// (`extra_v4_signatures.json`: payload hash, hosts with ports), in one document.
pub fn vectors() -> Value {
    let mut v = read_json("v4_signatures.json");
    let extra = read_json("extra_v4_signatures.json");
    let cases = v["signingV4Tests"].as_array_mut().expect("signingV4Tests");
    let extra_cases = extra["signingV4Tests"].as_array().expect("extra signingV4Tests");
    assert!(!extra_cases.is_empty());
    cases.extend(extra_cases.iter().cloned());
    v
}

/// `expiration` is a number in current upstream files and a string in older ones.
pub fn expiration_secs(case: &Value) -> u64 {
    let e = &case["expiration"];
    e.as_u64().or_else(|| e.as_str().and_then(|s| s.parse().ok())).expect("expiration in seconds")
}

/// The vectors' dummy service-account key.
pub fn key_path() -> PathBuf {
    conformance_dir().join("test_service_account.not-a-test.json")
}
