//! The GCS emulator the test script starts (fake-gcs-server, `STORAGE_EMULATOR_HOST`).

/// The emulator's base URL, or `None` with a loud `SKIPPED:` line naming `what` when it is not running;
/// with `SEA_GCP_REQUIRE_ALL=1` (CI) a missing emulator fails the test instead.
pub fn storage_emulator(what: &str) -> Option<String> {
    match std::env::var("STORAGE_EMULATOR_HOST") {
        Ok(host) if !host.is_empty() => Some(host.trim_end_matches('/').to_string()),
        _ if std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() == Ok("1") => {
            panic!("STORAGE_EMULATOR_HOST is not set but SEA_GCP_REQUIRE_ALL=1: run scripts/test.sh")
        }
        _ => {
            // Written to the real stderr (not the captured one) so that the skip is visible.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {what} — STORAGE_EMULATOR_HOST is not set (scripts/test.sh starts fake-gcs-server)"
            );
            None
        }
    }
}
