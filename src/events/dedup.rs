//! Exactly-once handling: a dedup table keyed by the delivery's identity ([`Event::dedup_key`]), written
//! in the same transaction as the handler's side effects.
//!
//! Pub/Sub delivers at least once. [`DedupTable::once`] wraps a [`TransactionalHandler`]: it opens a
//! transaction, inserts the key (`ON CONFLICT DO NOTHING`; MySQL `INSERT IGNORE`), and runs the handler
//! only when the row is new; the handler's writes and the key commit together. A redelivery finds the key
//! and is acknowledged (201) without running the handler. Two concurrent deliveries of one message: the
//! second insert waits for the first transaction (unique key) and then finds the row (PostgreSQL, MySQL;
//! SQLite serializes writers). A handler error rolls the key back with everything else, so the
//! redelivery runs it again.

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, Statement, TransactionTrait};
use sea_orm_migration::prelude::*;

use super::{Event, EventHandler, HandlerError};

/// The default table name.
pub(crate) const DEFAULT_DEDUP_TABLE: &str = "sea_gcp_event_dedup";

/// A handler that runs inside the dedup transaction.
#[async_trait]
pub trait TransactionalHandler: Send + Sync + 'static {
    /// Handle `event`, writing through `txn` (commit is the wrapper's job).
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), HandlerError>;
}

/// The dedup table of a database.
#[derive(Debug, Clone)]
pub struct DedupTable {
    db: DatabaseConnection,
    table: String,
}

fn quote(backend: DatabaseBackend, name: &str) -> String {
    match backend {
        DatabaseBackend::MySql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

impl DedupTable {
    /// The table `sea_gcp_event_dedup` in `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self::with_table(db, DEFAULT_DEDUP_TABLE)
    }

    /// Another table name (create it with [`CreateEventDedup::with_table`]).
    pub fn with_table(db: DatabaseConnection, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }

    /// Wrap `handler` so that it runs at most once per delivery identity.
    pub fn once(&self, handler: impl TransactionalHandler) -> impl EventHandler {
        Once { dedup: self.clone(), handler }
    }

    /// True when `key` was recorded.
    pub async fn contains(&self, key: &str) -> Result<bool, DbErr> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => format!("SELECT 1 FROM {} WHERE id = $1", quote(backend, &self.table)),
            _ => format!("SELECT 1 FROM {} WHERE id = ?", quote(backend, &self.table)),
        };
        Ok(self.db.query_one_raw(Statement::from_sql_and_values(backend, sql, [key.into()])).await?.is_some())
    }

    /// Insert `key` in `txn`; false when it was already there.
    async fn claim(&self, txn: &DatabaseTransaction, key: &str, kind: &str) -> Result<bool, DbErr> {
        let backend = txn.get_database_backend();
        let table = quote(backend, &self.table);
        let sql = match backend {
            DatabaseBackend::Postgres => {
                format!("INSERT INTO {table} (id, kind, received_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            }
            DatabaseBackend::MySql => format!("INSERT IGNORE INTO {table} (id, kind, received_at) VALUES (?, ?, ?)"),
            _ => format!("INSERT INTO {table} (id, kind, received_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING"),
        };
        let values = [key.into(), kind.into(), chrono::Utc::now().into()];
        Ok(txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected() == 1)
    }
}

struct Once<H> {
    dedup: DedupTable,
    handler: H,
}

#[async_trait]
impl<H: TransactionalHandler> EventHandler for Once<H> {
    async fn handle(&self, event: Event) -> Result<(), HandlerError> {
        let key = event.dedup_key().ok_or_else(|| {
            HandlerError::failed("the body is neither a Pub/Sub push nor a CloudEvent: no identity to deduplicate on")
        })?;
        let txn = self.dedup.db.begin().await?;
        if !self.dedup.claim(&txn, &key, &event.kind).await? {
            txn.commit().await?;
            tracing::info!(kind = %event.kind, reference = %event.reference, key, "redelivered event acknowledged without running its handler");
            return Ok(());
        }
        match self.handler.handle(&txn, &event).await {
            Ok(()) => {
                txn.commit().await?;
                Ok(())
            }
            Err(HandlerError::Drop(reason)) => {
                txn.commit().await?;
                Err(HandlerError::Drop(reason))
            }
            Err(e) => {
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %rollback, "dedup transaction rollback failed");
                }
                Err(e)
            }
        }
    }
}

/// The migration creating the dedup table (`id` = the 64-hex delivery key, `kind`, `received_at`).
#[derive(Debug, Clone)]
pub struct CreateEventDedup {
    table: String,
    name: String,
}

impl Default for CreateEventDedup {
    fn default() -> Self {
        Self::with_table(DEFAULT_DEDUP_TABLE)
    }
}

impl CreateEventDedup {
    /// A migration for a table named `table`.
    pub fn with_table(table: impl Into<String>) -> Self {
        let table = table.into();
        let name = if table == DEFAULT_DEDUP_TABLE {
            "m20261201_000001_create_sea_gcp_event_dedup".to_owned()
        } else {
            format!("m20261201_000001_create_event_dedup_{table}")
        };
        Self { table, name }
    }
}

impl MigrationName for CreateEventDedup {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl MigrationTrait for CreateEventDedup {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(&self.table))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("id")).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Alias::new("kind")).string_len(255).not_null())
                    .col(ColumnDef::new(Alias::new("received_at")).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new(&self.table)).if_exists().to_owned()).await
    }
}
