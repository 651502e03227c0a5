//! Rows of a blob column found by object name, and compare-and-set writes of their values: how code
//! running outside a save (storage-notification refresh, variant generation) changes a row without
//! overwriting a save that committed meanwhile.
//!
//! The lookup filters on the JSON `name` (or django-gcp's legacy `path`); for large tables add an
//! expression index on it. A write is `UPDATE .. SET col = new WHERE pk = ? AND col = <the text read>`,
//! so it changes nothing when the row changed since it was read.

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};

use super::BlobValue;
use crate::Result;
use crate::migrate::sql::{as_text, quote as q};

/// A blob column: `table.column`, rows addressed by the single-column primary key `primary_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) table: String,
    pub(crate) column: String,
    pub(crate) primary_key: String,
}

/// One row's value as read: the primary key and the cell as text, and the parsed value.
#[derive(Debug, Clone)]
pub(crate) struct RowValue {
    pub(crate) pk: String,
    pub(crate) raw: String,
    pub(crate) value: BlobValue,
}

/// The primary key `key` as text on every backend. SQLite casts it too: keys are compared with, and
/// ordered as, text.
pub(crate) fn key_as_text(backend: DatabaseBackend, key: &str) -> String {
    match backend {
        DatabaseBackend::Postgres | DatabaseBackend::MySql => as_text(backend, None, key),
        _ => format!("CAST({} AS TEXT)", q(backend, key)),
    }
}

/// The rows of `target` whose value names the object `name`. Corrupt values are logged and left out.
pub(crate) async fn rows_naming(db: &impl ConnectionTrait, target: &Column, name: &str) -> Result<Vec<RowValue>> {
    let backend = db.get_database_backend();
    let (t, c) = (q(backend, &target.table), q(backend, &target.column));
    let (pk, val) = (key_as_text(backend, &target.primary_key), as_text(backend, None, &target.column));
    let named = match backend {
        DatabaseBackend::Postgres => format!("COALESCE({c}->>'name', {c}->>'path') = $1"),
        DatabaseBackend::MySql => format!(
            "COALESCE(JSON_UNQUOTE(JSON_EXTRACT({c}, '$.name')), JSON_UNQUOTE(JSON_EXTRACT({c}, '$.path'))) = ?"
        ),
        _ => format!("COALESCE(json_extract({c}, '$.name'), json_extract({c}, '$.path')) = ?"),
    };
    let sql = format!("SELECT {pk} AS pk, {val} AS val FROM {t} WHERE {named}");
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, [name.into()])).await?;
    let mut out = Vec::new();
    for row in rows {
        let pk: String = row.try_get("", "pk")?;
        let raw: String = row.try_get("", "val")?;
        match BlobValue::from_text(&raw) {
            Ok(value) => out.push(RowValue { pk, raw, value }),
            Err(message) => {
                tracing::warn!(table = %target.table, column = %target.column, row = pk, message, "corrupt blob value left alone")
            }
        }
    }
    Ok(out)
}

/// Write `value` (NULL for `None`) into the row `pk` of `target` if its cell still reads `raw`; false
/// when the row changed since it was read (or is gone).
pub(crate) async fn compare_and_set(
    db: &impl ConnectionTrait,
    target: &Column,
    pk: &str,
    raw: &str,
    value: Option<&BlobValue>,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let (t, c) = (q(backend, &target.table), q(backend, &target.column));
    let (key_text, cell_text) = (key_as_text(backend, &target.primary_key), as_text(backend, None, &target.column));
    let (p1, p2, p3) = if backend == DatabaseBackend::Postgres { ("$1", "$2", "$3") } else { ("?", "?", "?") };
    let sql = format!("UPDATE {t} SET {c} = {p1} WHERE {key_text} = {p2} AND {cell_text} = {p3}");
    let new: Value = match value {
        Some(v) => v.clone().into(),
        None => Value::Json(None),
    };
    let result = db.execute_raw(Statement::from_sql_and_values(backend, sql, [new, pk.into(), raw.into()])).await?;
    Ok(result.rows_affected() == 1)
}
