//! The outbox table: one row per intent of the save protocol.
//!
//! An intent is either a promotion (a temporary object becoming a destination, plus the objects it
//! replaces) or a deletion-only intent (objects a blanked field or a deleted row stopped referencing).
//! Its state is `pending` (recorded in its own committed transaction before the caller's transaction
//! touches it) or `done` (set in the caller's transaction, so it commits or rolls back with the row).
//! `temp_key` (a SHA-256 of store and temporary name) is unique: a temporary object can be in at most
//! one intent, so a second promotion of it fails.
//!
//! The table name is configurable ([`Outbox::new`]) so that several applications, or concurrent tests,
//! can share a database; the migration ([`super::migration`]) creates the default `sea_gcp_outbox`.

use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, IndexCreateStatement, Query, Table, TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, SqlErr, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::storage::ObjectParameters;
use crate::{Error, Result};

/// The default outbox table name.
pub(crate) const DEFAULT_TABLE: &str = "sea_gcp_outbox";

/// An object to delete after commit, pinned to the generation the row referenced (when known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Object name.
    pub name: String,
    /// Generation to delete; `None` for legacy values with no cached generation.
    pub generation: Option<i64>,
}

/// The state of an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentState {
    /// Recorded; the caller's transaction has not committed (yet, or ever).
    Pending,
    /// Committed with the caller's row: only after-commit work remains.
    Done,
}

impl IntentState {
    fn as_str(&self) -> &'static str {
        match self {
            IntentState::Pending => "pending",
            IntentState::Done => "done",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(IntentState::Pending),
            "done" => Ok(IntentState::Done),
            other => Err(Error::Database(DbErr::Custom(format!("unknown outbox state `{other}`")))),
        }
    }
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// Intent id (UUID v7); also the `sea-gcp-intent` tag on objects the intent creates.
    pub id: String,
    /// Store key.
    pub store: String,
    /// State.
    pub state: IntentState,
    /// The temporary object being promoted (promotions only).
    pub temp_name: Option<String>,
    /// Its generation, when known.
    pub temp_generation: Option<i64>,
    /// The destination (known once the caller's transaction marked the intent done).
    pub destination: Option<String>,
    /// The destination's generation after the copy (`None` for a deferred in-place overwrite).
    pub dest_generation: Option<i64>,
    /// The copy overwrites an existing object and so happens after the commit.
    pub overwrite: bool,
    /// Destination object parameters for a deferred copy.
    pub attributes: Option<ObjectParameters>,
    /// Objects to delete after commit (replaced, blanked, deleted-row), per the delete policy.
    pub obsolete: Vec<ObjectRef>,
    /// The entity's table.
    pub table_name: String,
    /// The blob column.
    pub column_name: String,
    /// The row's primary key, as text (for reports).
    pub row_key: Option<String>,
    /// How many times replay has looked at it.
    pub attempts: i32,
    /// The last after-commit or replay error.
    pub last_error: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last state change, Unix milliseconds (replay's grace period counts from it).
    pub updated_at: i64,
}

impl Intent {
    /// A new intent with a fresh id, in state `state`.
    pub fn new(store: &str, table: &str, column: &str, state: IntentState) -> Self {
        let now = now_millis();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            store: store.to_string(),
            state,
            temp_name: None,
            temp_generation: None,
            destination: None,
            dest_generation: None,
            overwrite: false,
            attributes: None,
            obsolete: Vec::new(),
            table_name: table.to_string(),
            column_name: column.to_string(),
            row_key: None,
            attempts: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Current time in Unix milliseconds.
pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The unique key of a temporary object: SHA-256 of `store`, NUL, `name`, in hex.
pub(crate) fn temp_key(store: &str, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(store.as_bytes());
    h.update([0u8]);
    h.update(name.as_bytes());
    hex::encode(h.finalize())
}

/// Access to an outbox table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbox {
    table: String,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new(DEFAULT_TABLE)
    }
}

const COLUMNS: [&str; 18] = [
    "id",
    "store",
    "state",
    "temp_key",
    "temp_name",
    "temp_generation",
    "destination",
    "dest_generation",
    "overwrite",
    "attributes",
    "obsolete",
    "table_name",
    "column_name",
    "row_key",
    "attempts",
    "last_error",
    "created_at",
    "updated_at",
];

fn col(name: &str) -> Alias {
    Alias::new(name)
}

impl Outbox {
    /// The outbox in table `table`.
    pub fn new(table: impl Into<String>) -> Self {
        Self { table: table.into() }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn t(&self) -> Alias {
        Alias::new(&self.table)
    }

    /// `CREATE TABLE IF NOT EXISTS` for this outbox.
    pub(crate) fn create_table_statement(&self) -> TableCreateStatement {
        Table::create()
            .table(self.t())
            .if_not_exists()
            .col(ColumnDef::new(col("id")).string_len(36).not_null().primary_key())
            .col(ColumnDef::new(col("store")).string_len(255).not_null())
            .col(ColumnDef::new(col("state")).string_len(16).not_null())
            .col(ColumnDef::new(col("temp_key")).string_len(64).null().unique_key())
            .col(ColumnDef::new(col("temp_name")).text().null())
            .col(ColumnDef::new(col("temp_generation")).big_integer().null())
            .col(ColumnDef::new(col("destination")).text().null())
            .col(ColumnDef::new(col("dest_generation")).big_integer().null())
            .col(ColumnDef::new(col("overwrite")).boolean().not_null().default(false))
            .col(ColumnDef::new(col("attributes")).text().null())
            .col(ColumnDef::new(col("obsolete")).text().not_null())
            .col(ColumnDef::new(col("table_name")).string_len(255).not_null())
            .col(ColumnDef::new(col("column_name")).string_len(255).not_null())
            .col(ColumnDef::new(col("row_key")).text().null())
            .col(ColumnDef::new(col("attempts")).integer().not_null().default(0))
            .col(ColumnDef::new(col("last_error")).text().null())
            .col(ColumnDef::new(col("created_at")).big_integer().not_null())
            .col(ColumnDef::new(col("updated_at")).big_integer().not_null())
            .to_owned()
    }

    /// The index replay scans by (`updated_at`).
    pub(crate) fn create_index_statement(&self) -> IndexCreateStatement {
        Index::create()
            .if_not_exists()
            .name(format!("idx_{}_updated_at", self.table))
            .table(self.t())
            .col(col("updated_at"))
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

    /// Insert `intent`. A second intent for the same temporary object fails with
    /// [`Error::Validation`]: the upload is already being (or has been) promoted.
    pub async fn insert<C: ConnectionTrait>(&self, db: &C, intent: &Intent, field: &str) -> Result<()> {
        let values: Vec<Value> = vec![
            intent.id.clone().into(),
            intent.store.clone().into(),
            intent.state.as_str().into(),
            intent.temp_name.as_ref().map(|n| temp_key(&intent.store, n)).into(),
            intent.temp_name.clone().into(),
            intent.temp_generation.into(),
            intent.destination.clone().into(),
            intent.dest_generation.into(),
            intent.overwrite.into(),
            attributes_json(&intent.attributes).into(),
            obsolete_json(&intent.obsolete).into(),
            intent.table_name.clone().into(),
            intent.column_name.clone().into(),
            intent.row_key.clone().into(),
            intent.attempts.into(),
            intent.last_error.clone().into(),
            intent.created_at.into(),
            intent.updated_at.into(),
        ];
        let stmt = Query::insert()
            .into_table(self.t())
            .columns(COLUMNS.iter().map(|c| col(c)))
            .values_panic(values.into_iter().map(Expr::val))
            .to_owned();
        match db.execute(&stmt).await {
            Ok(_) => Ok(()),
            // One intent per temporary object: another save holds (or held) this upload, e.g. the same
            // form submitted twice. The same answer as a ticket posted again after its save committed.
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                tracing::info!(
                    field,
                    temp = intent.temp_name.as_deref().unwrap_or(""),
                    "the upload is already being promoted (or was promoted) by another save"
                );
                Err(Error::TicketReplayed { field: field.to_string() })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Mark a pending intent done with what the caller's transaction decided. Returns false when the
    /// intent is gone or no longer pending (replay reclaimed it): the caller must roll back.
    pub(crate) async fn mark_done<C: ConnectionTrait>(&self, db: &C, intent: &Intent) -> Result<bool> {
        let stmt = Query::update()
            .table(self.t())
            .value(col("state"), IntentState::Done.as_str())
            .value(col("temp_generation"), intent.temp_generation)
            .value(col("destination"), intent.destination.clone())
            .value(col("dest_generation"), intent.dest_generation)
            .value(col("overwrite"), intent.overwrite)
            .value(col("attributes"), attributes_json(&intent.attributes))
            .value(col("obsolete"), obsolete_json(&intent.obsolete))
            .value(col("row_key"), intent.row_key.clone())
            .value(col("updated_at"), now_millis())
            .and_where(Expr::col(col("id")).eq(intent.id.clone()))
            .and_where(Expr::col(col("state")).eq(IntentState::Pending.as_str()))
            .to_owned();
        Ok(db.execute(&stmt).await?.rows_affected() == 1)
    }

    /// Delete an intent (only if it is in `only_in` state, when given). Returns the rows deleted.
    pub async fn delete<C: ConnectionTrait>(&self, db: &C, id: &str, only_in: Option<IntentState>) -> Result<u64> {
        let mut stmt = Query::delete().from_table(self.t()).and_where(Expr::col(col("id")).eq(id)).to_owned();
        if let Some(state) = only_in {
            stmt.and_where(Expr::col(col("state")).eq(state.as_str()));
        }
        Ok(db.execute(&stmt).await?.rows_affected())
    }

    /// Count an attempt and record `error` (or clear it). Taking this write is also how replay waits for a
    /// caller's transaction that holds the row.
    pub async fn touch<C: ConnectionTrait>(&self, db: &C, id: &str, error: Option<String>) -> Result<u64> {
        let stmt = Query::update()
            .table(self.t())
            .value(col("attempts"), Expr::col(col("attempts")).add(1))
            .value(col("last_error"), error)
            .and_where(Expr::col(col("id")).eq(id))
            .to_owned();
        Ok(db.execute(&stmt).await?.rows_affected())
    }

    /// One intent by id.
    pub async fn get<C: ConnectionTrait>(&self, db: &C, id: &str) -> Result<Option<Intent>> {
        let stmt = Query::select()
            .columns(COLUMNS.iter().map(|c| col(c)))
            .from(self.t())
            .and_where(Expr::col(col("id")).eq(id))
            .to_owned();
        match db.query_one(&stmt).await? {
            Some(row) => Ok(Some(read_intent(&row)?)),
            None => Ok(None),
        }
    }

    /// Every intent, oldest change first; with `older_than` (Unix ms), only those last changed before it.
    pub async fn list<C: ConnectionTrait>(&self, db: &C, older_than: Option<i64>) -> Result<Vec<Intent>> {
        let mut stmt = Query::select()
            .columns(COLUMNS.iter().map(|c| col(c)))
            .from(self.t())
            .order_by(col("updated_at"), sea_orm::sea_query::Order::Asc)
            .to_owned();
        if let Some(t) = older_than {
            stmt.and_where(Expr::col(col("updated_at")).lte(t));
        }
        db.query_all(&stmt).await?.iter().map(read_intent).collect()
    }
}

fn attributes_json(a: &Option<ObjectParameters>) -> Option<String> {
    a.as_ref().map(|a| serde_json::to_string(a).expect("object parameters serialize"))
}

fn obsolete_json(o: &[ObjectRef]) -> String {
    serde_json::to_string(o).expect("object refs serialize")
}

fn read_intent(row: &QueryResult) -> Result<Intent> {
    let g = |c: &str| -> Result<Option<String>> { Ok(row.try_get::<Option<String>>("", c)?) };
    let gi = |c: &str| -> Result<Option<i64>> { Ok(row.try_get::<Option<i64>>("", c)?) };
    let bad = |c: &str, e: serde_json::Error| Error::Database(DbErr::Json(format!("outbox column `{c}`: {e}")));
    let attributes = match g("attributes")? {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| bad("attributes", e))?),
        None => None,
    };
    let obsolete = match g("obsolete")? {
        Some(text) => serde_json::from_str(&text).map_err(|e| bad("obsolete", e))?,
        None => Vec::new(),
    };
    Ok(Intent {
        id: row.try_get("", "id")?,
        store: row.try_get("", "store")?,
        state: IntentState::parse(&row.try_get::<String>("", "state")?)?,
        temp_name: g("temp_name")?,
        temp_generation: gi("temp_generation")?,
        destination: g("destination")?,
        dest_generation: gi("dest_generation")?,
        overwrite: row.try_get("", "overwrite")?,
        attributes,
        obsolete,
        table_name: row.try_get("", "table_name")?,
        column_name: row.try_get("", "column_name")?,
        row_key: g("row_key")?,
        attempts: row.try_get("", "attempts")?,
        last_error: g("last_error")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}
