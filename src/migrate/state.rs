//! The backfill's own tables: the checkpoint (where to resume) and the report (what was not migrated).
//!
//! Both are keyed by `(table_name, from_column, to_column)`, so several columns can be migrated at once
//! and in any order. They are created on first use with portable DDL (`VARCHAR`, `TEXT`, `INTEGER`).
//! The report and the checkpoint of a batch are written in the batch's own transaction, together with
//! its `UPDATE`: after a crash, the checkpoint never runs ahead of the data.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::ColumnMigration;
use super::report::{ReportEntry, ReportReason};
use super::source::PkValue;
use super::sql::{Params, quote};
use crate::{Error, Result};

/// The report table: one row per `(table, from, to, pk)` that was not migrated.
pub const REPORT_TABLE: &str = "sea_gcp_migrate_report";

/// The checkpoint table: one row per `(table, from, to)`.
pub const CHECKPOINT_TABLE: &str = "sea_gcp_migrate_checkpoint";

/// Where a previous run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last primary key of the committed prefix of batches (`None`: nothing committed yet).
    pub last_pk: Option<PkValue>,
    /// True when that run read every row.
    pub completed: bool,
}

/// Create the two tables if they do not exist.
pub(crate) async fn ensure_tables(db: &impl ConnectionTrait) -> Result<()> {
    let b = db.get_database_backend();
    let key = |b| {
        format!(
            "{} VARCHAR(128) NOT NULL, {} VARCHAR(128) NOT NULL, {} VARCHAR(128) NOT NULL",
            quote(b, "table_name"),
            quote(b, "from_column"),
            quote(b, "to_column")
        )
    };
    let report = format!(
        "CREATE TABLE IF NOT EXISTS {} ({}, row_pk VARCHAR(255) NOT NULL, path TEXT NULL, reason VARCHAR(16) NOT NULL, \
         detail TEXT NOT NULL, recorded_at VARCHAR(40) NOT NULL, PRIMARY KEY (table_name, from_column, to_column, row_pk))",
        quote(b, REPORT_TABLE),
        key(b)
    );
    let checkpoint = format!(
        "CREATE TABLE IF NOT EXISTS {} ({}, last_pk VARCHAR(255) NULL, pk_kind VARCHAR(8) NULL, completed INTEGER NOT NULL, \
         updated_at VARCHAR(40) NOT NULL, PRIMARY KEY (table_name, from_column, to_column))",
        quote(b, CHECKPOINT_TABLE),
        key(b)
    );
    for sql in [report, checkpoint] {
        // Two runs creating the tables at the same moment can collide on PostgreSQL's catalog (a unique
        // violation on pg_type); the second attempt then sees the table.
        if db.execute_unprepared(&sql).await.is_err() {
            db.execute_unprepared(&sql).await?;
        }
    }
    Ok(())
}

/// Whether the state tables exist (a dry run reads them only if they do).
pub async fn tables_exist(db: &impl ConnectionTrait) -> Result<bool> {
    let b = db.get_database_backend();
    let sql = format!("SELECT COUNT(*) FROM {} WHERE 1 = 0", quote(b, CHECKPOINT_TABLE));
    Ok(db.query_one_raw(Statement::from_string(b, sql)).await.is_ok())
}

fn key_filter(m: &ColumnMigration, p: &mut Params) -> String {
    format!(
        "table_name = {} AND from_column = {} AND to_column = {}",
        p.bind(m.table.clone()),
        p.bind(m.from_column.clone()),
        p.bind(m.to_column.clone())
    )
}

/// The checkpoint of `m`, if a run left one.
pub async fn read_checkpoint(db: &impl ConnectionTrait, m: &ColumnMigration) -> Result<Option<Checkpoint>> {
    let b = db.get_database_backend();
    let mut p = Params::new(b);
    let sql = format!(
        "SELECT last_pk, pk_kind, completed FROM {} WHERE {}",
        quote(b, CHECKPOINT_TABLE),
        key_filter(m, &mut p)
    );
    let Some(row) = db.query_one_raw(p.statement(sql)).await? else { return Ok(None) };
    let last: Option<String> = row.try_get_by_index(0)?;
    let kind: Option<String> = row.try_get_by_index(1)?;
    let completed: i64 = row.try_get_by_index::<i64>(2).or_else(|_| row.try_get_by_index::<i32>(2).map(i64::from))?;
    let last_pk = match (last, kind) {
        (Some(text), Some(kind)) => Some(PkValue::from_checkpoint(&kind, &text).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "the checkpoint of {} holds an unreadable key {text:?} ({kind}); delete its row from {CHECKPOINT_TABLE} \
                 or pass --restart",
                m.describe()
            ))
        })?),
        _ => None,
    };
    Ok(Some(Checkpoint { last_pk, completed: completed != 0 }))
}

/// Record the checkpoint of `m` (replacing any previous one).
pub(crate) async fn write_checkpoint(db: &impl ConnectionTrait, m: &ColumnMigration, cp: &Checkpoint) -> Result<()> {
    delete_checkpoint(db, m).await?;
    let b = db.get_database_backend();
    let mut p = Params::new(b);
    let sql = format!(
        "INSERT INTO {} (table_name, from_column, to_column, last_pk, pk_kind, completed, updated_at) \
         VALUES ({}, {}, {}, {}, {}, {}, {})",
        quote(b, CHECKPOINT_TABLE),
        p.bind(m.table.clone()),
        p.bind(m.from_column.clone()),
        p.bind(m.to_column.clone()),
        p.bind(cp.last_pk.as_ref().map(PkValue::to_text)),
        p.bind(cp.last_pk.as_ref().map(|k| k.kind().to_string())),
        p.bind(i32::from(cp.completed)),
        p.bind(now()),
    );
    db.execute_raw(p.statement(sql)).await?;
    Ok(())
}

/// Forget the checkpoint of `m`.
pub async fn delete_checkpoint(db: &impl ConnectionTrait, m: &ColumnMigration) -> Result<()> {
    let b = db.get_database_backend();
    let mut p = Params::new(b);
    let sql = format!("DELETE FROM {} WHERE {}", quote(b, CHECKPOINT_TABLE), key_filter(m, &mut p));
    db.execute_raw(p.statement(sql)).await?;
    Ok(())
}

/// Forget every report row of `m` (a fresh pass re-checks every row).
pub async fn clear_report(db: &impl ConnectionTrait, m: &ColumnMigration) -> Result<()> {
    let b = db.get_database_backend();
    let mut p = Params::new(b);
    let sql = format!("DELETE FROM {} WHERE {}", quote(b, REPORT_TABLE), key_filter(m, &mut p));
    db.execute_raw(p.statement(sql)).await?;
    Ok(())
}

/// Replace the report rows of the keys `pks` of `m` with `entries` (a batch re-run after a crash writes
/// its rows again; they replace, not duplicate, the first attempt's).
pub(crate) async fn replace_report_rows(
    db: &impl ConnectionTrait,
    m: &ColumnMigration,
    pks: &[String],
    entries: &[ReportEntry],
) -> Result<()> {
    let b = db.get_database_backend();
    for chunk in pks.chunks(1000) {
        let mut p = Params::new(b);
        let filter = key_filter(m, &mut p);
        let list: Vec<String> = chunk.iter().map(|k| p.bind(k.clone())).collect();
        let sql = format!("DELETE FROM {} WHERE {filter} AND row_pk IN ({})", quote(b, REPORT_TABLE), list.join(", "));
        db.execute_raw(p.statement(sql)).await?;
    }
    let recorded = now();
    for chunk in entries.chunks(500) {
        let mut p = Params::new(b);
        let rows: Vec<String> = chunk
            .iter()
            .map(|e| {
                format!(
                    "({}, {}, {}, {}, {}, {}, {}, {})",
                    p.bind(m.table.clone()),
                    p.bind(m.from_column.clone()),
                    p.bind(m.to_column.clone()),
                    p.bind(e.pk.clone()),
                    p.bind(e.path.clone()),
                    p.bind(e.reason.as_str().to_string()),
                    p.bind(e.detail.clone()),
                    p.bind(recorded.clone()),
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} (table_name, from_column, to_column, row_pk, path, reason, detail, recorded_at) VALUES {}",
            quote(b, REPORT_TABLE),
            rows.join(", ")
        );
        db.execute_raw(p.statement(sql)).await?;
    }
    Ok(())
}

/// Every report row of `m`, shortest key first, then in text order (numeric order for integer keys).
pub async fn read_report(db: &impl ConnectionTrait, m: &ColumnMigration) -> Result<Vec<ReportEntry>> {
    let b = db.get_database_backend();
    let mut p = Params::new(b);
    let sql = format!(
        "SELECT row_pk, path, reason, detail FROM {} WHERE {} ORDER BY LENGTH(row_pk), row_pk",
        quote(b, REPORT_TABLE),
        key_filter(m, &mut p)
    );
    let rows = db.query_all_raw(p.statement(sql)).await?;
    rows.iter()
        .map(|r| {
            let reason: String = r.try_get_by_index(2)?;
            Ok(ReportEntry {
                pk: r.try_get_by_index(0)?,
                path: r.try_get_by_index(1)?,
                reason: ReportReason::parse(&reason).unwrap_or(ReportReason::Invalid),
                detail: r.try_get_by_index(3)?,
            })
        })
        .collect()
}

/// How many report rows `m` has (0 when the report table does not exist yet).
pub async fn report_count(db: &impl ConnectionTrait, m: &ColumnMigration) -> Result<u64> {
    if !tables_exist(db).await? {
        return Ok(0);
    }
    let b = db.get_database_backend();
    let mut p = Params::new(b);
    let sql = format!("SELECT COUNT(*) FROM {} WHERE {}", quote(b, REPORT_TABLE), key_filter(m, &mut p));
    let row = db.query_one_raw(p.statement(sql)).await?;
    Ok(row.map(|r| read_count(&r)).transpose()?.unwrap_or(0))
}

/// A `COUNT(*)` column, whatever integer type the database returns it as.
pub(crate) fn read_count(row: &sea_orm::QueryResult) -> Result<u64> {
    let n = row
        .try_get_by_index::<i64>(0)
        .or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from))
        .or_else(|_| row.try_get_by_index::<u64>(0).map(|v| v as i64))?;
    Ok(n.max(0) as u64)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The backend's name, for messages.
pub(crate) fn backend_name(b: DbBackend) -> &'static str {
    match b {
        DbBackend::Postgres => "PostgreSQL",
        DbBackend::MySql => "MySQL/MariaDB",
        _ => "SQLite",
    }
}
