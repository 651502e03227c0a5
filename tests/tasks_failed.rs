//! Poison tasks: what Cloud Tasks always refuses is refused at enqueue (before the caller commits);
//! a row Cloud Tasks refuses for good, or that runs out of attempts, moves to `failed` with its last
//! error, is reported once to Error Reporting, and can be retried or discarded. Outboxes of the old
//! shape are upgraded. On SQLite, PostgreSQL and MariaDB.

#![cfg(feature = "tasks")]

mod tasks_support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_gcp::Error;
use sea_gcp::tasks::{Dispatcher, DispatcherOptions, EntryState, RetryOptions, TaskOutbox, When};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use tasks_support::*;

fn dispatcher(h: &Harness, db: &DatabaseConnection, outbox: &TaskOutbox) -> Dispatcher {
    Dispatcher::new(h.tasks.clone(), db.clone(), outbox.clone()).with_options(
        DispatcherOptions::default()
            .with_max_attempts(3)
            .with_failure_backoff(RetryOptions::default().with_initial_backoff(Duration::ZERO)),
    )
}

/// The outbox table as the first version created it: no `failed_at`, no `claimed_until`.
fn old_shape(table: &str) -> String {
    format!(
        "CREATE TABLE {table} (id VARCHAR(500) NOT NULL PRIMARY KEY, task VARCHAR(100) NOT NULL, queue VARCHAR(100) \
         NOT NULL, body TEXT NOT NULL, schedule_time BIGINT NULL, dispatch_deadline BIGINT NULL, state VARCHAR(16) \
         NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NULL, created_at BIGINT NOT NULL, \
         next_attempt_at BIGINT NOT NULL, sent_at BIGINT NULL)"
    )
}

/// A row written the way the first version wrote them (no validation at enqueue).
async fn raw_row(db: &DatabaseConnection, table: &str, id: &str, state: &str, schedule_time: Option<i64>) {
    let now = chrono::Utc::now().timestamp_millis();
    let at = schedule_time.map(|t| t.to_string()).unwrap_or_else(|| "NULL".into());
    let sent_at = if state == "sent" { now.to_string() } else { "NULL".into() };
    db.execute_unprepared(&format!(
        "INSERT INTO {table} (id, task, queue, body, schedule_time, dispatch_deadline, state, attempts, last_error, \
         created_at, next_attempt_at, sent_at) VALUES ('{id}', 'record', '{QUEUE}', '{{\"text\":\"{id}\",\"n\":0}}', \
         {at}, NULL, '{state}', 0, NULL, {now}, {now}, {sent_at})"
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_refuses_what_cloud_tasks_always_refuses_before_the_commit() {
    let h = start("", |_| {}).await;
    let short_deadline = start("", |s| s.dispatch_deadline = Some(Duration::from_secs(5))).await;
    let long_deadline = start("", |s| s.dispatch_deadline = Some(Duration::from_secs(31 * 60))).await;
    let big = Note { text: "x".repeat(1_000_001), n: 0 };
    let small = Note { text: "fine".into(), n: 0 };
    let too_late = When::Delay(Duration::from_secs(31 * 24 * 3600));
    let is_invalid = |e: Error, what: &str| {
        assert!(matches!(e, Error::InvalidTask { .. }), "{what}: {e:?}");
        assert!(!e.is_retryable(), "{what}");
        e.to_string()
    };

    // Direct enqueue: refused before any API call.
    let calls = h.fake.api_calls();
    assert!(is_invalid(h.tasks.enqueue::<Record>(&big).await.unwrap_err(), "size").contains("1000000"));
    assert!(
        is_invalid(h.tasks.enqueue_later::<Record>(&small, too_late).await.unwrap_err(), "time").contains("30 days")
    );
    let e = short_deadline.tasks.enqueue::<Record>(&small).await.unwrap_err();
    assert!(is_invalid(e, "deadline").contains("15 s to 30 min"));
    let e = long_deadline.tasks.enqueue::<Record>(&small).await.unwrap_err();
    is_invalid(e, "deadline");
    assert_eq!(h.fake.api_calls(), calls, "nothing reached Cloud Tasks");
    // Just inside the limits is accepted.
    h.tasks.enqueue_later::<Record>(&small, When::Delay(Duration::from_secs(29 * 24 * 3600))).await.unwrap();

    for db in databases().await {
        let (db, backend) = (&db.conn, db.name);
        let outbox = TaskOutbox::new(unique("task_outbox"));
        outbox.create(db).await.unwrap();
        let txn = db.begin().await.unwrap();
        is_invalid(h.tasks.enqueue_in::<Record, _>(&txn, &outbox, &big).await.unwrap_err(), backend);
        is_invalid(h.tasks.enqueue_later_in::<Record, _>(&txn, &outbox, &small, too_late).await.unwrap_err(), backend);
        is_invalid(short_deadline.tasks.enqueue_in::<Record, _>(&txn, &outbox, &small).await.unwrap_err(), backend);
        txn.commit().await.unwrap();
        assert_eq!(outbox.census(db).await.unwrap(), (0, 0), "{backend}: no row was written");
        outbox.drop(db).await.unwrap();
    }
}

/// Captures the JSON lines of the tracing events emitted on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Error Reporting events (target `sea_gcp::error_reporting`, `gcp.report`) naming `id`.
    fn reports_of(&self, id: &str) -> usize {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["target"] == "sea_gcp::error_reporting"
                    && v["level"] == "ERROR"
                    && v["fields"]["gcp.report"] == true
                    && v["fields"]["task_id"] == id
            })
            .count()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn refused_rows_fail_once_are_reported_once_and_can_be_retried_or_discarded() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let h = start("", |_| {}).await;
    for db in databases().await {
        let (db, backend) = (&db.conn, db.name);
        let outbox = TaskOutbox::new(unique("task_outbox"));
        outbox.create(db).await.unwrap();
        let table = outbox.table().to_string();

        // A row Cloud Tasks refuses with 400 INVALID_ARGUMENT (scheduled 60 days ahead, written without
        // the enqueue check): failed after one attempt, with the error, reported once.
        let poison = format!("poison-{backend}");
        let later = chrono::Utc::now().timestamp_millis() + 60 * 24 * 3600 * 1000;
        raw_row(db, &table, &poison, "pending", Some(later)).await;
        let report = dispatcher(&h, db, &outbox).run_once().await.unwrap();
        assert_eq!((report.created, report.failed, report.gave_up), (0, 0, 1), "{backend}");
        let row = outbox.get(db, &poison).await.unwrap().unwrap();
        assert_eq!((row.state, row.attempts), (EntryState::Failed, 1), "{backend}");
        assert!(row.last_error.as_deref().unwrap().contains("INVALID_ARGUMENT"), "{backend}: {row:?}");
        assert!(row.failed_at.is_some(), "{backend}");
        // Not sent again, not reported again.
        let calls = h.fake.api_calls();
        for _ in 0..3 {
            assert_eq!(dispatcher(&h, db, &outbox).run_once().await.unwrap(), Default::default(), "{backend}");
        }
        assert_eq!(h.fake.api_calls(), calls, "{backend}: a failed row is not sent");
        assert_eq!(captured.reports_of(&poison), 1, "{backend}: reported exactly once");

        // A row that keeps failing with a retryable answer (its queue is missing) fails after
        // max_attempts (3), reported once; once the queue exists, `retry` sends it.
        let orphan = format!("orphan-{backend}");
        let missing = format!("missing-{backend}");
        raw_row(db, &table, &orphan, "pending", None).await;
        db.execute_unprepared(&format!("UPDATE {table} SET queue = '{missing}' WHERE id = '{orphan}'")).await.unwrap();
        for round in 1..=2 {
            let report = dispatcher(&h, db, &outbox).run_once().await.unwrap();
            assert_eq!((report.failed, report.gave_up), (1, 0), "{backend} round {round}");
            assert_eq!(outbox.get(db, &orphan).await.unwrap().unwrap().state, EntryState::Pending);
        }
        let report = dispatcher(&h, db, &outbox).run_once().await.unwrap();
        assert_eq!((report.failed, report.gave_up), (0, 1), "{backend}");
        let row = outbox.get(db, &orphan).await.unwrap().unwrap();
        assert_eq!((row.state, row.attempts), (EntryState::Failed, 3), "{backend}");
        assert!(row.last_error.as_deref().unwrap().contains("NOT_FOUND"), "{backend}: {row:?}");
        assert_eq!(captured.reports_of(&orphan), 1, "{backend}");

        // The API lists both; retry puts one back and it is sent; discard deletes the other.
        let failed: Vec<String> =
            outbox.list(db, EntryState::Failed, 10).await.unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(failed.len(), 2, "{backend}: {failed:?}");
        assert!(failed.contains(&poison) && failed.contains(&orphan), "{backend}");
        h.fake.create_queue(&h.settings.queue_path(&missing), Default::default());
        assert_eq!(outbox.retry(db, std::slice::from_ref(&orphan)).await.unwrap(), 1);
        let row = outbox.get(db, &orphan).await.unwrap().unwrap();
        assert_eq!((row.state, row.attempts, row.failed_at), (EntryState::Pending, 0, None), "{backend}");
        assert_eq!(dispatcher(&h, db, &outbox).run_once().await.unwrap().created, 1, "{backend}");
        assert_eq!(outbox.get(db, &orphan).await.unwrap().unwrap().state, EntryState::Sent);
        // Retry and discard touch failed rows only.
        assert_eq!(outbox.retry(db, std::slice::from_ref(&orphan)).await.unwrap(), 0, "{backend}: sent stays sent");
        assert_eq!(outbox.discard(db, &[orphan.clone(), poison.clone()]).await.unwrap(), 1, "{backend}");
        assert!(outbox.get(db, &poison).await.unwrap().is_none(), "{backend}");
        assert!(outbox.get(db, &orphan).await.unwrap().is_some(), "{backend}: the sent row is kept");
        assert_eq!(outbox.count(db, EntryState::Failed).await.unwrap(), 0, "{backend}");
        assert_eq!(captured.reports_of(&orphan), 1, "{backend}: a retried row that succeeds is not reported");
        outbox.drop(db).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_of_the_old_shape_is_upgraded_and_its_rows_are_sent() {
    let h = start("", |_| {}).await;
    for db in databases().await {
        let (db, backend) = (&db.conn, db.name);
        let outbox = TaskOutbox::new(unique("task_outbox"));
        db.execute_unprepared(&old_shape(outbox.table())).await.unwrap();
        let (pending, sent) = (format!("old-pending-{backend}"), format!("old-sent-{backend}"));
        raw_row(db, outbox.table(), &pending, "pending", None).await;
        raw_row(db, outbox.table(), &sent, "sent", None).await;
        let probe = format!("SELECT claimed_until FROM {}", outbox.table());
        assert!(db.execute_unprepared(&probe).await.is_err(), "{backend}: the old shape lacks the new columns");
        outbox.create(db).await.unwrap();
        outbox.create(db).await.unwrap(); // a second upgrade is a no-op
        let row = outbox.get(db, &pending).await.expect(backend).unwrap();
        assert_eq!((row.state, row.failed_at, row.claimed_until), (EntryState::Pending, None, 0), "{backend}");
        assert_eq!(outbox.get(db, &sent).await.unwrap().unwrap().state, EntryState::Sent, "{backend}");
        let report = dispatcher(&h, db, &outbox).run_once().await.unwrap();
        assert_eq!(report.created, 1, "{backend}");
        assert_eq!(outbox.census(db).await.unwrap(), (0, 2), "{backend}");
        outbox.drop(db).await.unwrap();
    }
}

#[tokio::test]
async fn the_migrator_upgrades_an_old_outbox() {
    use sea_orm_migration::MigratorTrait;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.sqlite").display());
    let db = sea_orm::Database::connect(&url).await.unwrap();
    let outbox = TaskOutbox::default();
    db.execute_unprepared(&old_shape(outbox.table())).await.unwrap();
    raw_row(&db, outbox.table(), "old", "pending", None).await;
    sea_gcp::tasks::TaskOutboxMigrator::up(&db, None).await.unwrap();
    let row = outbox.get(&db, "old").await.unwrap().unwrap();
    assert_eq!((row.state, row.failed_at, row.claimed_until), (EntryState::Pending, None, 0));
}
