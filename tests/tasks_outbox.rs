//! Transactional enqueue on SQLite, PostgreSQL and MariaDB: a task enqueued in a rolled-back transaction
//! never runs; a committed one runs exactly once, also when the dispatcher is stopped between commit and
//! dispatch or between dispatch and mark-sent and a new one takes over.

#![cfg(feature = "tasks")]

mod tasks_support;

use std::time::Duration;

use sea_gcp::tasks::{Dispatcher, DispatcherOptions, Enqueued, EntryState, RetryOptions, TaskOutbox};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::json;
use tasks_support::*;

fn dispatcher(h: &Harness, db: &DatabaseConnection, outbox: &TaskOutbox) -> Dispatcher {
    Dispatcher::new(h.tasks.clone(), db.clone(), outbox.clone()).with_options(
        DispatcherOptions::default()
            .with_poll_interval(Duration::from_millis(20))
            .with_failure_backoff(RetryOptions::default().with_initial_backoff(Duration::ZERO)),
    )
}

async fn enqueue_committed(
    h: &Harness,
    db: &DatabaseConnection,
    outbox: &TaskOutbox,
    orders: &str,
    text: &str,
) -> String {
    let txn = db.begin().await.unwrap();
    txn.execute_unprepared(&format!("INSERT INTO {orders} (note) VALUES ('{text}')")).await.unwrap();
    let Enqueued::Outboxed { id } =
        h.tasks.enqueue_in::<Record, _>(&txn, outbox, &Note { text: text.into(), n: 0 }).await.unwrap()
    else {
        panic!("not outboxed")
    };
    txn.commit().await.unwrap();
    id
}

async fn suite(h: &Harness, db: &DatabaseConnection, backend: &str) {
    let outbox = TaskOutbox::new(unique("task_outbox"));
    outbox.create(db).await.unwrap();
    let orders = unique("orders");
    let id_col = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "id SERIAL PRIMARY KEY",
        sea_orm::DbBackend::MySql => "id INTEGER AUTO_INCREMENT PRIMARY KEY",
        _ => "id INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    db.execute_unprepared(&format!("CREATE TABLE {orders} ({id_col}, note VARCHAR(100) NOT NULL)")).await.unwrap();
    let created_before = h.fake.created_count();

    // 1. Rolled back: never sent.
    let txn = db.begin().await.unwrap();
    txn.execute_unprepared(&format!("INSERT INTO {orders} (note) VALUES ('rolled-back')")).await.unwrap();
    let rolled = format!("{backend}-rolled-back");
    h.tasks.enqueue_in::<Record, _>(&txn, &outbox, &Note { text: rolled.clone(), n: 0 }).await.unwrap();
    txn.rollback().await.unwrap();
    let report = dispatcher(h, db, &outbox).run_once().await.unwrap();
    assert_eq!(report.created, 0, "{backend}");
    assert_eq!(outbox.census(db).await.unwrap(), (0, 0), "{backend}: the row rolled back with the transaction");

    // 2. Committed and dispatched.
    let plain = format!("{backend}-plain");
    let id = enqueue_committed(h, db, &outbox, &orders, &plain).await;
    assert!(id.starts_with("record--"), "{id}");
    let report = dispatcher(h, db, &outbox).run_once().await.unwrap();
    assert_eq!((report.created, report.duplicates), (1, 0), "{backend}");
    assert_eq!(outbox.get(db, &id).await.unwrap().unwrap().state, EntryState::Sent);

    // 3. Stopped between commit and dispatch: a new dispatcher sends it, once.
    let before_dispatch = format!("{backend}-killed-before-dispatch");
    let _first = dispatcher(h, db, &outbox); // never runs: the process "died"
    enqueue_committed(h, db, &outbox, &orders, &before_dispatch).await;
    drop(_first);
    let report = dispatcher(h, db, &outbox).run_once().await.unwrap();
    assert_eq!((report.created, report.duplicates), (1, 0), "{backend}");

    // 4. Stopped between dispatch and mark-sent: the re-send is refused as a duplicate and counted sent.
    let before_mark = format!("{backend}-killed-before-mark");
    let id = enqueue_committed(h, db, &outbox, &orders, &before_mark).await;
    // Its claim lease is zero: the rows of a claimer that died are taken over once its lease ran out.
    let first = Dispatcher::new(h.tasks.clone(), db.clone(), outbox.clone())
        .with_options(DispatcherOptions::default().with_claim_lease(Duration::ZERO));
    let batch = first.send_due().await.unwrap();
    assert_eq!(batch.created, vec![id.clone()], "{backend}");
    drop((first, batch)); // died before `mark`
    assert_eq!(outbox.get(db, &id).await.unwrap().unwrap().state, EntryState::Pending);
    let report = dispatcher(h, db, &outbox).run_once().await.unwrap();
    assert_eq!((report.created, report.duplicates), (0, 1), "{backend}");
    assert_eq!(outbox.census(db).await.unwrap(), (0, 3), "{backend}");
    assert_eq!(dispatcher(h, db, &outbox).run_once().await.unwrap().created, 0, "nothing left");
    assert_eq!(h.fake.created_count() - created_before, 3, "{backend}: three tasks created in all");

    // 5. A deduplicated payload already in the outbox is a DuplicateTask inside the transaction.
    let txn = db.begin().await.unwrap();
    h.tasks.enqueue_in::<Dedup, _>(&txn, &outbox, &json!({"b": backend, "a": 1})).await.unwrap();
    txn.commit().await.unwrap();
    let txn = db.begin().await.unwrap();
    let err = h.tasks.enqueue_in::<Dedup, _>(&txn, &outbox, &json!({"a": 1, "b": backend})).await.unwrap_err();
    assert!(err.is_duplicate_task(), "{backend}: {err:?}");
    txn.rollback().await.unwrap();

    // 6. The dispatcher loop sends what a later transaction commits; each committed task ran once.
    let looped = format!("{backend}-loop");
    let running = dispatcher(h, db, &outbox);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move { running.run_until(async { stopped.await.unwrap_or(()) }).await });
    enqueue_committed(h, db, &outbox, &orders, &looped).await;
    for text in [&plain, &before_dispatch, &before_mark, &looped] {
        let mut runs = 0;
        for _ in 0..500 {
            runs = h.runs_of("record").iter().filter(|(p, _)| p["text"] == text.as_str()).count();
            if runs > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(runs, 1, "{backend}: `{text}` ran {runs} times");
    }
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let texts: Vec<String> =
        h.runs_of("record").iter().map(|(p, _)| p["text"].as_str().unwrap_or_default().to_string()).collect();
    assert!(!texts.contains(&rolled), "{backend}: the rolled-back task never ran");
    for text in [&plain, &before_dispatch, &before_mark, &looped] {
        assert_eq!(texts.iter().filter(|t| *t == text).count(), 1, "{backend}: `{text}` exactly once");
    }
    outbox.drop(db).await.unwrap();
    db.execute_unprepared(&format!("DROP TABLE {orders}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_enqueue_dispatches_exactly_once_on_every_backend() {
    let h = start("", |_| {}).await;
    for db in databases().await {
        suite(&h, &db.conn, db.name).await;
    }
}

#[tokio::test]
async fn migration_creates_the_outbox() {
    use sea_orm_migration::MigratorTrait;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.sqlite").display());
    let db = sea_orm::Database::connect(&url).await.unwrap();
    sea_gcp::tasks::TaskOutboxMigrator::up(&db, None).await.unwrap();
    let outbox = TaskOutbox::default();
    assert_eq!(outbox.census(&db).await.unwrap(), (0, 0));
    sea_gcp::tasks::TaskOutboxMigrator::down(&db, None).await.unwrap();
    assert!(outbox.census(&db).await.is_err(), "down drops the table");
}

#[tokio::test]
async fn a_failed_send_stays_pending_and_is_retried() {
    let h = start("", |_| {}).await;
    let dbs = databases().await;
    let db = &dbs[0].conn;
    let outbox = TaskOutbox::new(unique("task_outbox"));
    outbox.create(db).await.unwrap();
    let orders = unique("orders");
    db.execute_unprepared(&format!("CREATE TABLE {orders} (id INTEGER PRIMARY KEY AUTOINCREMENT, note VARCHAR(100))"))
        .await
        .unwrap();
    // The queue is missing (404): the row stays pending with the error.
    h.fake.create_queue(&h.queue_path(), Default::default());
    let id = enqueue_committed(&h, db, &outbox, &orders, "retry-me").await;
    let fake_missing = sea_gcp::testing::cloud_tasks::FakeCloudTasks::start(h.issuer.clone()).await;
    let tasks = sea_gcp::tasks::Tasks::new(
        h.settings.clone(),
        h.tasks.registry().clone(),
        sea_gcp::tasks::CloudTasksClient::unauthenticated(fake_missing.url()),
    )
    .unwrap();
    let d = Dispatcher::new(tasks, db.clone(), outbox.clone()).with_options(
        DispatcherOptions::default().with_failure_backoff(RetryOptions::default().with_initial_backoff(Duration::ZERO)),
    );
    let report = d.run_once().await.unwrap();
    assert_eq!(report.failed, 1);
    let row = outbox.get(db, &id).await.unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (EntryState::Pending, 1));
    assert!(row.last_error.unwrap().contains("NOT_FOUND"));
    // Once the queue exists the same dispatcher sends it.
    fake_missing.create_queue(&h.queue_path(), Default::default());
    let report = d.run_once().await.unwrap();
    assert_eq!(report.created, 1);
}

/// django-gcp hashes `json.dumps(kwargs)`; with `django_gcp_compat` a deduplicated task gets the id
/// django-gcp gives the same payload (checked against CPython's output), so a task enqueued by both
/// during a migration is refused as a duplicate; by default the id is the canonical-JSON one.
#[tokio::test]
async fn django_gcp_compat_ids_match_django_gcp() {
    let payload = json!({"a": 1, "b": "café"});
    // CPython: hashlib.sha256(json.dumps({"a": 1, "b": "café"}).encode()).hexdigest()[:8]
    let python = "e550fea5--dedup--shop";
    let h = start("", |s| {
        s.resource_affix = Some("shop".into());
        s.django_gcp_compat = true;
    })
    .await;
    let sea_gcp::tasks::Enqueued::Sent(info) = h.tasks.enqueue::<Dedup>(&payload).await.unwrap() else {
        panic!("not sent")
    };
    assert_eq!(info.id(), python);
    let err = h.tasks.enqueue::<Dedup>(&payload).await.unwrap_err();
    assert!(err.is_duplicate_task(), "{err:?}");
    let db = &databases().await[0].conn;
    let outbox = TaskOutbox::new(unique("task_outbox"));
    outbox.create(db).await.unwrap();
    let Enqueued::Outboxed { id } = h.tasks.enqueue_in::<Dedup, _>(db, &outbox, &payload).await.unwrap() else {
        panic!("not outboxed")
    };
    assert_eq!(id, python);
    let default = start("", |s| s.resource_affix = Some("shop".into())).await;
    let Enqueued::Sent(info) = default.tasks.enqueue::<Dedup>(&payload).await.unwrap() else { panic!("not sent") };
    assert_ne!(info.id(), python, "the default hashes canonical JSON");
    assert_eq!(info.id(), sea_gcp::tasks::task_id(&payload, "dedup", "--", Some("shop")).unwrap());
}
