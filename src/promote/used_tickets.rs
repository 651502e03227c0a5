//! The used-ticket table: a ticket promotes at most once for its whole lifetime.
//!
//! The outbox keeps a temporary name unique only while its intent lives; after the commit the temp
//! object and the intent are deleted, while the ticket (and its create-only upload URL) stays valid
//! until it expires. The save therefore records the ticket's nonce (as a SHA-256) in this table, in
//! the same transaction that writes the row: a second save with the same ticket hits the primary key
//! and fails with [`Error::TicketReplayed`] (409 `ticket_replayed`), and its transaction rolls back.
//! Records are kept until the ticket's expiry and pruned after ([`UsedTicketTable::prune`], also run
//! now and then by saves).
//!
//! The table is named after the outbox: `sea_gcp_used_tickets` for the default outbox, else
//! `<outbox table>_used_tickets`. The migration [`CreateUsedTickets`](super::migration::CreateUsedTickets)
//! creates it.

use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, IndexCreateStatement, Query, Table, TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, SqlErr};
use sha2::{Digest, Sha256};

use super::outbox::{self, Outbox};
use crate::field::{BlobValue, PendingUpload};
use crate::{Error, Result};

/// The used-ticket table of the default outbox.
pub(crate) const DEFAULT_TABLE: &str = "sea_gcp_used_tickets";

/// One save in this many prunes expired records (in a task of its own, outside the save's transaction).
const PRUNE_EVERY: u32 = 64;

/// Access to the used-ticket table that belongs to an outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedTicketTable {
    table: String,
}

impl Default for UsedTicketTable {
    fn default() -> Self {
        Self::for_outbox(&Outbox::default())
    }
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// The record key of a nonce: SHA-256 hex (fixed length; the nonce itself is not stored).
pub(crate) fn ticket_key(nonce: &str) -> String {
    hex::encode(Sha256::digest(nonce.as_bytes()))
}

impl UsedTicketTable {
    /// The table that belongs to `outbox` (see the module docs for the name).
    pub fn for_outbox(outbox: &Outbox) -> Self {
        let table = if outbox.table() == outbox::DEFAULT_TABLE {
            DEFAULT_TABLE.to_string()
        } else {
            format!("{}_used_tickets", outbox.table())
        };
        Self { table }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn t(&self) -> Alias {
        Alias::new(&self.table)
    }

    /// `CREATE TABLE IF NOT EXISTS` for this table.
    pub(crate) fn create_table_statement(&self) -> TableCreateStatement {
        Table::create()
            .table(self.t())
            .if_not_exists()
            .col(ColumnDef::new(col("ticket_key")).string_len(64).not_null().primary_key())
            .col(ColumnDef::new(col("store")).string_len(255).not_null())
            .col(ColumnDef::new(col("field")).string_len(255).not_null())
            .col(ColumnDef::new(col("expires_at")).big_integer().not_null())
            .col(ColumnDef::new(col("used_at")).big_integer().not_null())
            .to_owned()
    }

    /// The index pruning scans by (`expires_at`).
    pub(crate) fn create_index_statement(&self) -> IndexCreateStatement {
        Index::create()
            .if_not_exists()
            .name(format!("idx_{}_expires_at", self.table))
            .table(self.t())
            .col(col("expires_at"))
            .to_owned()
    }

    /// Create the table and its index if they do not exist (what the migration runs; handy in tests).
    pub async fn create<C: ConnectionTrait>(&self, db: &C) -> Result<()> {
        crate::schema::create_table_and_index(db, &self.create_table_statement(), &self.create_index_statement()).await
    }

    /// Drop the table if it exists.
    pub async fn drop<C: ConnectionTrait>(&self, db: &C) -> Result<()> {
        crate::schema::drop_table(db, &self.table).await
    }

    /// Record the ticket `nonce` as used (in the caller's transaction `db`). `Ok(false)` when it was
    /// recorded before: a replay.
    pub async fn record<C: ConnectionTrait>(
        &self,
        db: &C,
        nonce: &str,
        store: &str,
        field: &str,
        expires: i64,
    ) -> Result<bool> {
        let stmt = Query::insert()
            .into_table(self.t())
            .columns(["ticket_key", "store", "field", "expires_at", "used_at"].map(col))
            .values_panic([
                Expr::val(ticket_key(nonce)),
                Expr::val(store),
                Expr::val(field),
                Expr::val(expires),
                Expr::val(chrono::Utc::now().timestamp()),
            ])
            .to_owned();
        match db.execute(&stmt).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
            Err(e) => Err(Error::Database(sea_orm::DbErr::Custom(format!(
                "could not record the upload ticket in `{}` (run the migration CreateUsedTickets, or \
                 UsedTicketTable::create): {e}",
                self.table
            )))),
        }
    }

    /// Is `nonce` recorded?
    pub async fn contains<C: ConnectionTrait>(&self, db: &C, nonce: &str) -> Result<bool> {
        let stmt = Query::select()
            .column(col("ticket_key"))
            .from(self.t())
            .and_where(Expr::col(col("ticket_key")).eq(ticket_key(nonce)))
            .to_owned();
        Ok(db.query_one(&stmt).await?.is_some())
    }

    /// Delete records of tickets that expired before `now_unix` (they can no longer be posted).
    /// Returns how many were deleted.
    pub async fn prune<C: ConnectionTrait>(&self, db: &C, now_unix: i64) -> Result<u64> {
        let stmt = Query::delete().from_table(self.t()).and_where(Expr::col(col("expires_at")).lt(now_unix)).to_owned();
        Ok(db.execute(&stmt).await?.rows_affected())
    }

    /// How many records there are.
    pub async fn count<C: ConnectionTrait>(&self, db: &C) -> Result<u64> {
        let stmt = Query::select().expr(Expr::col(col("ticket_key")).count()).from(self.t()).to_owned();
        let row = db.query_one(&stmt).await?;
        Ok(row.map(|r| r.try_get_by_index::<i64>(0)).transpose()?.unwrap_or(0) as u64)
    }
}

/// The save protocol's step for one promoted upload that came with a ticket, in the row's
/// transaction `txn`: check the promoted size against the declared size, then record the ticket's
/// nonce. A recorded nonce fails the save with [`Error::TicketReplayed`]. Uploads without a ticket
/// (server-side uploads) pass unchanged.
pub(crate) async fn record<C: ConnectionTrait>(
    txn: &C,
    db: &DatabaseConnection,
    outbox: &Outbox,
    store: &str,
    field: &str,
    upload: &PendingUpload,
    promoted: Option<&BlobValue>,
) -> Result<()> {
    let Some(ticket) = &upload.ticket else { return Ok(()) };
    if let Some(size) = promoted.and_then(|v| v.size)
        && size > ticket.declared_size
    {
        return Err(Error::Validation {
            field: field.to_string(),
            message: format!(
                "the upload is {size} bytes, but {} bytes were declared for its ticket; upload the file again",
                ticket.declared_size
            ),
        });
    }
    let table = UsedTicketTable::for_outbox(outbox);
    if !table.record(txn, &ticket.nonce, store, field, ticket.expires).await? {
        return Err(Error::TicketReplayed { field: field.to_string() });
    }
    if crate::random::one_in(PRUNE_EVERY) {
        let db = db.clone();
        tokio::spawn(async move {
            if let Err(e) = table.prune(&db, chrono::Utc::now().timestamp()).await {
                tracing::warn!(table = table.table(), "pruning used tickets failed: {e}");
            }
        });
    }
    Ok(())
}
