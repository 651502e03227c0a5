//! Several dispatchers on one outbox (a service scaled out to many instances): each due row is sent by
//! one dispatcher, the rows a dead claimer held are taken over after its lease, and a commit wakes the
//! enqueuing process's dispatcher at once. On SQLite, PostgreSQL and MariaDB.

#![cfg(feature = "tasks")]

mod tasks_support;

use std::time::Duration;

use sea_gcp::tasks::{Dispatcher, DispatcherOptions, EntryState, TaskOutbox};
use sea_orm::{DatabaseConnection, TransactionTrait};
use tasks_support::*;

fn dispatcher(h: &Harness, db: &DatabaseConnection, outbox: &TaskOutbox, options: DispatcherOptions) -> Dispatcher {
    Dispatcher::new(h.tasks.clone(), db.clone(), outbox.clone()).with_options(options)
}

async fn commit_rows(h: &Harness, db: &DatabaseConnection, outbox: &TaskOutbox, backend: &str, n: usize) {
    for chunk in 0..n.div_ceil(100) {
        let txn = db.begin().await.unwrap();
        for i in chunk * 100..((chunk + 1) * 100).min(n) {
            let note = Note { text: format!("{backend}-{i}"), n: i as i64 };
            h.tasks.enqueue_in::<Record, _>(&txn, outbox, &note).await.unwrap();
        }
        txn.commit().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_send_each_row_once_and_take_over_a_dead_claimers_rows() {
    let h = start("", |_| {}).await;
    h.fake.set_paused(&h.queue_path(), true); // hold the tasks: count creates, not runs
    for db in databases().await {
        let (db, backend) = (&db.conn, db.name);
        let outbox = TaskOutbox::new(unique("task_outbox"));
        outbox.create(db).await.unwrap();

        // 1. Two dispatchers racing over 600 committed rows in small rounds: every row is created
        //    once, and no create is refused as a duplicate (no row was sent by both).
        let n = 600;
        commit_rows(&h, db, &outbox, backend, n).await;
        let (created, refused) = (h.fake.created_count(), h.fake.refused_duplicates());
        let options = DispatcherOptions::default().with_batch_size(25).with_concurrency(8);
        let (a, b) = (dispatcher(&h, db, &outbox, options.clone()), dispatcher(&h, db, &outbox, options));
        let drain = |d: Dispatcher| async move {
            let mut sent = 0;
            loop {
                let report = d.run_once().await.unwrap();
                assert_eq!((report.failed, report.gave_up), (0, 0));
                if report.created + report.duplicates == 0 {
                    return sent;
                }
                sent += report.created + report.duplicates;
            }
        };
        let (sent_a, sent_b) = tokio::join!(tokio::spawn(drain(a)), tokio::spawn(drain(b)));
        let (sent_a, sent_b) = (sent_a.unwrap(), sent_b.unwrap());
        assert_eq!(sent_a + sent_b, n, "{backend}: {sent_a} + {sent_b}");
        assert!(sent_a > 0 && sent_b > 0, "{backend}: both dispatchers took part ({sent_a}, {sent_b})");
        assert_eq!(h.fake.created_count() - created, n as u64, "{backend}: each row created once");
        assert_eq!(h.fake.refused_duplicates() - refused, 0, "{backend}: no row sent by both");
        assert_eq!(outbox.census(db).await.unwrap(), (0, n as u64), "{backend}");

        // 2. A claimer that dies after claiming: its rows are left alone while its lease runs, then
        //    another dispatcher takes them over, once.
        commit_rows(&h, db, &outbox, &format!("{backend}-dead"), 50).await;
        let now = chrono::Utc::now().timestamp_millis();
        let held = outbox.claim(db, now, 1_500, 1000).await.unwrap();
        assert_eq!(held.len(), 50, "{backend}");
        assert!(held.iter().all(|r| r.claimed_until == now + 1_500), "{backend}");
        let survivor = dispatcher(&h, db, &outbox, DispatcherOptions::default());
        assert_eq!(survivor.run_once().await.unwrap().created, 0, "{backend}: claimed rows are not taken");
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        let report = survivor.run_once().await.unwrap();
        assert_eq!((report.created, report.duplicates), (50, 0), "{backend}: taken over after the lease");
        assert_eq!(survivor.run_once().await.unwrap().created, 0, "{backend}");
        for row in held {
            assert_eq!(outbox.get(db, &row.id).await.unwrap().unwrap().state, EntryState::Sent, "{backend}");
        }
        outbox.drop(db).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_send_wakes_the_dispatcher_before_its_poll() {
    let h = start("", |_| {}).await;
    h.fake.set_paused(&h.queue_path(), true);
    for db in databases().await {
        let (db, backend) = (&db.conn, db.name);
        let outbox = TaskOutbox::new(unique("task_outbox"));
        outbox.create(db).await.unwrap();
        // A poll interval of an hour: only the wake can send the row during this test.
        let d = dispatcher(&h, db, &outbox, DispatcherOptions::default().with_poll_interval(Duration::from_secs(3600)));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(async move { d.run_until(async { stopped.await.unwrap_or(()) }).await });
        tokio::time::sleep(Duration::from_millis(200)).await; // its first round found nothing; it sleeps
        let created = h.fake.created_count();
        let txn = db.begin().await.unwrap();
        h.tasks.enqueue_in::<Record, _>(&txn, &outbox, &Note { text: format!("{backend}-woken"), n: 0 }).await.unwrap();
        h.tasks.commit_and_send(txn).await.unwrap();
        let mut sent = false;
        for _ in 0..500 {
            if h.fake.created_count() > created {
                sent = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(sent, "{backend}: the commit woke the dispatcher");
        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
        outbox.drop(db).await.unwrap();
    }
}
