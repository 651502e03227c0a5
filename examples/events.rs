//! An events endpoint: Pub/Sub pushes for app events, GCS notifications keeping blob caches fresh, and
//! a deduplicated handler. Run with `cargo run --example events --features events`.
//!
//! Environment: `EXTERNAL_URL` (the URL the subscriptions push to, e.g. the Cloud Run service URL;
//! default `http://127.0.0.1:$PORT`),
//! `SEA_GCP_INVOKER_EMAILS` (the push service account), `DATABASE_URL` (default: a SQLite file),
//! `PORT` (default 8080). With `EVENTS_AUTH=off` verification is disabled (local development only).

use std::sync::Arc;

use async_trait::async_trait;
use sea_gcp::auth::{InvokerPolicy, OidcVerifier};
use sea_gcp::events::{
    BlobRefresh, CreateEventDedup, DedupTable, Event, EventsRouter, HandlerError, TransactionalHandler,
};
use sea_gcp::{StoreConfig, storage};
use sea_orm::{ConnectionTrait, Database, DatabaseTransaction, Statement};
use sea_orm_migration::{MigrationTrait, SchemaManager};

/// Records each payment once, in the transaction that records the message id.
struct RecordPayment;

#[async_trait]
impl TransactionalHandler for RecordPayment {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), HandlerError> {
        let message = event.pubsub()?;
        let payment: serde_json::Value =
            message.json()?.ok_or_else(|| HandlerError::drop_event("empty payment message"))?;
        let sql = "INSERT INTO payments (message_id, body) VALUES (?, ?)";
        let values = [message.message_id.into(), payment.to_string().into()];
        txn.execute_raw(Statement::from_sql_and_values(txn.get_database_backend(), sql, values)).await?;
        Ok(())
    }
}

/// Start-up errors are printed with their message (which names the variable to set), not in debug form.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    // SQL statements at debug: an INFO log of every query drowns the app's own lines.
    tracing_subscriber::fmt().with_env_filter("info,sqlx=warn,sea_orm=warn").init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    // The audience of a push token is the URL the subscription pushes to: the port must be this one.
    let external = std::env::var("EXTERNAL_URL").unwrap_or_else(|_| format!("http://127.0.0.1:{port}"));
    let db = Database::connect(
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://events-example.sqlite?mode=rwc".into()),
    )
    .await?;
    CreateEventDedup::default().up(&SchemaManager::new(&db)).await?;
    db.execute_unprepared("CREATE TABLE IF NOT EXISTS payments (message_id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .await?;
    db.execute_unprepared("CREATE TABLE IF NOT EXISTS documents (id INTEGER PRIMARY KEY, file TEXT NULL)").await?;
    let media = storage::open("media", StoreConfig { location: "uploads".into(), ..StoreConfig::memory() }).await?;

    let policy = if std::env::var("EVENTS_AUTH").as_deref() == Ok("off") {
        InvokerPolicy::disabled()
    } else {
        InvokerPolicy::new(OidcVerifier::google(), &external).with_env_fallback()
    };
    let events = EventsRouter::new(policy)
        .on("orders", |event: Event| async move {
            let order: Option<serde_json::Value> = event.pubsub()?.json()?;
            tracing::info!(reference = %event.reference, ?order, params = ?event.parameters, "order event");
            Ok(())
        })
        .on("payments", DedupTable::new(db.clone()).once(RecordPayment))
        .on_prefix("storage.", BlobRefresh::new(db.clone(), Arc::clone(&media)).column("documents", "file"));
    println!("push endpoint for orders: {}", events.url("orders", "shop", &Default::default()));

    let app = axum::Router::new().merge(events.into_router());
    let listener = tokio::net::TcpListener::bind(format!("0.0.0.0:{port}")).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
