//! The dedup table on every database: a handler taking the transaction runs once per message id; its
//! writes and the dedup record commit together; a failed run leaves nothing and the redelivery runs.
#![cfg(all(feature = "events", feature = "orm"))]

mod events_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use sea_gcp::auth::InvokerPolicy;
use sea_gcp::events::{CreateEventDedup, DedupTable, Event, EventsRouter, HandlerError, TransactionalHandler};
use sea_gcp::pubsub::{PubSubMessage, make_pubsub_message};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, Statement};
use sea_orm_migration::{MigrationTrait, SchemaManager};

use events_support::*;

struct RecordEffect {
    table: String,
    runs: Arc<AtomicUsize>,
    fail_first: Arc<AtomicUsize>,
}

#[async_trait]
impl TransactionalHandler for RecordEffect {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), HandlerError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let id = event.pubsub()?.message_id;
        let backend = txn.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => format!("INSERT INTO {} (message_id) VALUES ($1)", self.table),
            _ => format!("INSERT INTO {} (message_id) VALUES (?)", self.table),
        };
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, [id.into()])).await?;
        if self.fail_first.load(Ordering::SeqCst) > 0 {
            self.fail_first.fetch_sub(1, Ordering::SeqCst);
            return Err(HandlerError::failed("simulated failure after the side effect"));
        }
        Ok(())
    }
}

async fn count(db: &sea_orm::DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), format!("SELECT COUNT(*) AS n FROM {table}")))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_runs_its_handler_once_on_every_database() {
    for db in databases().await {
        let suffix = unique();
        let dedup_table = format!("dedup_{suffix}");
        let effects = format!("effects_{suffix}");
        let manager = SchemaManager::new(&db.conn);
        CreateEventDedup::with_table(&dedup_table).up(&manager).await.unwrap();
        db.conn.execute_unprepared(&format!("CREATE TABLE {effects} (message_id VARCHAR(64) NOT NULL)")).await.unwrap();

        let runs = Arc::new(AtomicUsize::new(0));
        let fail_first = Arc::new(AtomicUsize::new(1));
        let dedup = DedupTable::with_table(db.conn.clone(), &dedup_table);
        let handler =
            dedup.once(RecordEffect { table: effects.clone(), runs: runs.clone(), fail_first: fail_first.clone() });
        let (listener, base) = listener().await;
        spawn(listener, EventsRouter::new(InvokerPolicy::disabled()).on("orders", handler).into_router());
        let client = reqwest::Client::new();
        let url = format!("{base}/events/orders/o-1");
        let body = serde_json::to_vec(&make_pubsub_message(
            &PubSubMessage::new(b"{}".to_vec()).with_message_id("m-1").with_subscription("projects/p/subscriptions/s"),
        ))
        .unwrap();

        // First delivery: the handler writes, then fails: nothing commits (effect and record roll back).
        assert_eq!(client.post(&url).body(body.clone()).send().await.unwrap().status(), 400, "{}", db.name);
        assert_eq!(count(&db.conn, &effects).await, 0, "{}: the failed run left nothing", db.name);
        // Redeliveries, 8 at once: exactly one runs the handler.
        let sends: Vec<_> = (0..8).map(|_| client.post(&url).body(body.clone()).send()).collect();
        for response in futures::future::join_all(sends).await {
            assert_eq!(response.unwrap().status(), 201, "{}", db.name);
        }
        // And later ones too.
        assert_eq!(client.post(&url).body(body.clone()).send().await.unwrap().status(), 201);
        assert_eq!(runs.load(Ordering::SeqCst), 2, "{}: one failed run, one committed run", db.name);
        assert_eq!(count(&db.conn, &effects).await, 1, "{}", db.name);
        assert_eq!(count(&db.conn, &dedup_table).await, 1, "{}", db.name);

        // Another message id runs again.
        let other = serde_json::to_vec(&make_pubsub_message(
            &PubSubMessage::new(b"{}".to_vec()).with_message_id("m-2").with_subscription("projects/p/subscriptions/s"),
        ))
        .unwrap();
        assert_eq!(client.post(&url).body(other).send().await.unwrap().status(), 201);
        assert_eq!(count(&db.conn, &effects).await, 2, "{}", db.name);

        CreateEventDedup::with_table(&dedup_table).down(&manager).await.unwrap();
        db.conn.execute_unprepared(&format!("DROP TABLE {effects}")).await.unwrap();
    }
}
