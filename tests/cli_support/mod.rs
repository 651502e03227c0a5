//! Finding the `sea-gcp` binary from the library package's tests.

/// The `sea-gcp` binary of the workspace's `sea-gcp-cli` package, built beside this test by
/// `cargo test --workspace` (the library's own tests cannot name another package's binary).
pub fn cli_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let path = dir.join(format!("sea-gcp{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        return Some(path);
    }
    let why = format!("{} not built: run `cargo test --workspace` (scripts/test.sh does)", path.display());
    if std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{why}");
    }
    eprintln!("SKIPPED: the migrate-column CLI test: {why}");
    None
}
