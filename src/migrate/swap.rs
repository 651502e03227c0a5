//! The last step: drop the old column and rename the blob column into its place.
//!
//! Refused while this migration's report lists rows (missing objects, unreadable values, conflicts) or
//! rows remain whose old column names an object and whose blob column is still NULL — dropping the old
//! column would then lose track of those files. `force` swaps anyway (the report table keeps the
//! reported rows' old paths).
//!
//! PostgreSQL and SQLite run the two `ALTER TABLE`s in one transaction; MySQL and MariaDB (10.5+) run
//! one `ALTER TABLE ... DROP COLUMN ..., RENAME COLUMN ...`, which is atomic.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

use super::ColumnMigration;
use super::sql::{as_text, quote};
use super::state;
use crate::{Error, Result};

/// What a swap found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapOutcome {
    /// Rows in the migration's report when the swap ran.
    pub report_rows: u64,
    /// Rows whose old column was set and blob column NULL when the swap ran.
    pub unmigrated: u64,
    /// True when the swap went ahead despite the two counts above.
    pub forced: bool,
}

/// Drop `m.from_column` and rename `m.to_column` to its name — only when nothing would be lost, or when
/// `force` is set.
pub async fn swap_columns(db: &DatabaseConnection, m: &ColumnMigration, force: bool) -> Result<SwapOutcome> {
    m.validate()?;
    if m.from_column == m.to_column {
        return Err(Error::InvalidArgument(format!(
            "{} was converted in place; there is no second column to swap",
            m.describe()
        )));
    }
    let b = db.get_database_backend();
    let report_rows = state::report_count(db, m).await?;
    let from_text = as_text(b, None, &m.from_column);
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE {from_text} IS NOT NULL AND {from_text} <> '' AND {} IS NULL",
        quote(b, &m.table),
        quote(b, &m.to_column)
    );
    let row = db.query_one_raw(Statement::from_string(b, sql)).await?;
    let unmigrated = row.map(|r| state::read_count(&r)).transpose()?.unwrap_or(0);
    let forced = report_rows > 0 || unmigrated > 0;
    if forced && !force {
        return Err(Error::InvalidArgument(format!(
            "refusing to swap {}: {report_rows} row(s) in the report (missing objects, unreadable values or \
             conflicts; see table {} or --report-csv) and {unmigrated} row(s) not migrated yet. Fix them and run \
             the backfill again, or pass --force to swap anyway (the old column's values are then dropped)",
            m.describe(),
            state::REPORT_TABLE
        )));
    }
    let (table, from, to) = (quote(b, &m.table), quote(b, &m.from_column), quote(b, &m.to_column));
    match b {
        DbBackend::MySql => {
            db.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN {from}, RENAME COLUMN {to} TO {from}"))
                .await?;
        }
        _ => {
            let txn = db.begin().await?;
            txn.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN {from}")).await?;
            txn.execute_unprepared(&format!("ALTER TABLE {table} RENAME COLUMN {to} TO {from}")).await?;
            txn.commit().await?;
        }
    }
    if state::tables_exist(db).await? {
        state::delete_checkpoint(db, m).await?;
    }
    Ok(SwapOutcome { report_rows, unmigrated, forced })
}
