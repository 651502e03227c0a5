//! `sea-gcp tasks outbox list|retry|discard` through the built binary, on a SQLite outbox.

use std::process::Command;

use sea_gcp::tasks::{EntryState, TaskOutbox};
use sea_orm::{ConnectionTrait, Database};

fn outbox_cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sea-gcp"))
        .args(["tasks", "outbox", "--table", "cli_outbox"])
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn outbox_lists_retries_and_discards_failed_entries() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("o.sqlite").display());
    let db = Database::connect(&url).await.unwrap();
    let outbox = TaskOutbox::new("cli_outbox");
    outbox.create(&db).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for (id, state, error) in [
        ("bad-1", "failed", "'cloudtasks failed with HTTP 400: INVALID_ARGUMENT: too far ahead'"),
        ("bad-2", "failed", "'cloudtasks failed with HTTP 404: NOT_FOUND: queue'"),
        ("fine", "pending", "NULL"),
    ] {
        db.execute_unprepared(&format!(
            "INSERT INTO cli_outbox (id, task, queue, body, state, attempts, last_error, created_at, \
             next_attempt_at, failed_at) VALUES ('{id}', 'mail', 'default', '{{}}', '{state}', 3, {error}, {now}, \
             {now}, {now})"
        ))
        .await
        .unwrap();
    }

    let (ok, out, err) = outbox_cli(&url, &["list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("bad-1\tmail\t3 attempts\t") && lines[0].ends_with("too far ahead"), "{out}");
    assert!(!out.contains("fine"), "pending rows are not listed: {out}");

    let (ok, out, err) = outbox_cli(&url, &["retry", "bad-1"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1 entry back to pending");
    assert_eq!(outbox.get(&db, "bad-1").await.unwrap().unwrap().state, EntryState::Pending);

    // An id that names no failed entry is an error, and changes nothing.
    let (ok, _, err) = outbox_cli(&url, &["discard", "fine"]);
    assert!(!ok && err.contains("tasks outbox list"), "{err}");
    assert!(outbox.get(&db, "fine").await.unwrap().is_some());
    // Neither ids nor --all: refused by the parser.
    assert!(!outbox_cli(&url, &["retry"]).0);

    let (ok, out, err) = outbox_cli(&url, &["discard", "--all"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1 entry deleted");
    assert!(outbox.get(&db, "bad-2").await.unwrap().is_none());
    assert_eq!(outbox.census(&db).await.unwrap(), (2, 0), "bad-1 and fine are pending");
    let (ok, out, _) = outbox_cli(&url, &["list"]);
    assert!(ok && out.contains("no failed entries"), "{out}");
}
