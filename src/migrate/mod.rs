//! Moving a file-path column to a blob column, online: schema helpers, the metadata backfill, the swap.
//!
//! Teams coming from Django (django-gcp) or from a hand-rolled setup have a column that holds an object
//! name as text (`"reports/q3.pdf"`), or django-gcp's JSON `{"path": "reports/q3.pdf"}`. A blob column
//! holds a [`BlobValue`](crate::field::BlobValue): the name plus a cache of the object's metadata. The
//! move happens in four steps, none of which needs downtime (see `docs/migrating.md`):
//!
//! 1. **Add** a blob column next to the old one ([`schema::add_blob_column`], from a `sea-orm-migration`
//!    migration), and deploy code that writes both columns.
//! 2. **Backfill** it ([`backfill()`]): rows are read in keyset-paginated batches; the objects they name
//!    are looked up in bucket *listings* (about one storage call per 1,000 objects, never one per row);
//!    each batch is written with one `UPDATE` that only touches rows whose two columns are still what
//!    was read (so a concurrent write by the application always wins). Rows whose object is missing,
//!    whose value cannot be read, or whose blob column already names another object are recorded in a
//!    report table ([`state::REPORT_TABLE`]) and optionally a CSV, and are never overwritten with a
//!    blank. A checkpoint table ([`state::CHECKPOINT_TABLE`]) keyed by table and columns holds the last
//!    primary key of the committed prefix of batches, so an interrupted run resumes where it stopped.
//!    Re-running is harmless: rows already holding a cached value for the same object are "already done".
//! 3. **Verify** the report: empty means every row's object was found.
//! 4. **Swap** ([`swap::swap_columns`]): drop the old column and rename the blob column into its place —
//!    refused while the report lists problems or rows remain unmigrated, unless forced.
//!
//! The `sea-gcp migrate-column` command runs steps 2–4 (`crate::cli`).

pub(crate) mod backfill;
pub(crate) mod listing;
pub(crate) mod report;
pub mod schema;
pub mod source;
pub mod sql;
pub mod state;
pub(crate) mod swap;

pub use backfill::{BackfillOptions, BackfillProgress, BackfillSummary, ProgressFn, WriteMode, backfill};
pub use listing::{DEFAULT_RANGES, ListingMode};
pub use report::{ReportEntry, ReportReason};
pub use state::REPORT_TABLE;
pub use swap::{SwapOutcome, swap_columns};

use crate::{Error, Result};

/// Which column of which table is being migrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMigration {
    /// The table.
    pub table: String,
    /// The old column: an object name as text, or django-gcp's `{"path": ...}` JSON.
    pub from_column: String,
    /// The blob column to fill (may equal `from_column` after an in-place conversion with
    /// [`schema::convert_to_blob_in_place`]).
    pub to_column: String,
    /// The primary key column (a single column: integer, UUID or text). Default `id`.
    pub primary_key: String,
}

impl ColumnMigration {
    /// Migrate `table.from_column` into `table.to_column`, keyed by `id`.
    pub fn new(table: impl Into<String>, from_column: impl Into<String>, to_column: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            from_column: from_column.into(),
            to_column: to_column.into(),
            primary_key: "id".into(),
        }
    }

    /// Use `column` as the primary key.
    pub fn with_primary_key(mut self, column: impl Into<String>) -> Self {
        self.primary_key = column.into();
        self
    }

    /// `table.from_column -> table.to_column`, for messages.
    pub fn describe(&self) -> String {
        format!("{}.{} -> {}.{}", self.table, self.from_column, self.table, self.to_column)
    }

    /// Refuse empty or over-long identifiers before any SQL is built (identifiers are always quoted, so
    /// any other character is safe).
    pub fn validate(&self) -> Result<()> {
        for (what, name) in [
            ("table", &self.table),
            ("from column", &self.from_column),
            ("to column", &self.to_column),
            ("primary key", &self.primary_key),
        ] {
            if name.is_empty() || name.len() > 63 || name.contains('\0') {
                return Err(Error::InvalidArgument(format!(
                    "the {what} name {name:?} is not usable: give a non-empty identifier of at most 63 bytes"
                )));
            }
        }
        if self.primary_key == self.from_column || self.primary_key == self.to_column {
            return Err(Error::InvalidArgument(format!(
                "the primary key `{}` cannot be one of the migrated columns; pass --primary-key",
                self.primary_key
            )));
        }
        Ok(())
    }
}
