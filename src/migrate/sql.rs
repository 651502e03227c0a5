//! The SQL the backfill sends, per database: quoting, placeholders, casts to text, and the one-statement
//! batch `UPDATE`.
//!
//! Values are always bound, never spliced; identifiers are always quoted (`"x"` on PostgreSQL and SQLite,
//! `` `x` `` on MySQL/MariaDB) with the quote character doubled inside.
//!
//! The batch `UPDATE` joins the table to the batch given as a derived table of
//! `(pk, old_from, old_to, new)` rows and writes `new` only where both columns still hold, as text,
//! exactly what was read: an application writing the row meanwhile always wins, and the row is picked up
//! by the next run. PostgreSQL and SQLite take `VALUES` lists (`UPDATE ... FROM`); MySQL and MariaDB a
//! `UNION ALL` of `SELECT`s (the two disagree on `VALUES` row constructors) in a multi-table `UPDATE`.

use sea_orm::{DbBackend, Statement, Value};

use super::ColumnMigration;
use super::source::PkValue;

/// Quote an identifier for `backend`.
pub fn quote(backend: DbBackend, ident: &str) -> String {
    match backend {
        DbBackend::MySql => format!("`{}`", ident.replace('`', "``")),
        _ => format!("\"{}\"", ident.replace('"', "\"\"")),
    }
}

/// Placeholders for one statement: `$1, $2, ...` on PostgreSQL, `?` elsewhere.
#[derive(Debug)]
pub struct Params {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Params {
    /// No values yet.
    pub fn new(backend: DbBackend) -> Self {
        Self { backend, values: Vec::new() }
    }

    /// Bind `value` and return its placeholder.
    pub fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_string(),
        }
    }

    /// The statement `sql` with the bound values.
    pub fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

/// `column` (qualified by `alias` when given) as text: `x::text`, `CAST(x AS CHAR)`, or `x` on SQLite.
pub fn as_text(backend: DbBackend, alias: Option<&str>, column: &str) -> String {
    let col = match alias {
        Some(a) => format!("{a}.{}", quote(backend, column)),
        None => quote(backend, column),
    };
    match backend {
        DbBackend::Postgres => format!("{col}::text"),
        DbBackend::MySql => format!("CAST({col} AS CHAR)"),
        _ => col,
    }
}

/// Null-safe equality of two text expressions, byte for byte (MySQL collations would otherwise equate
/// `A.txt` and `a.txt`).
pub(crate) fn text_same(backend: DbBackend, left: &str, right: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("{left} IS NOT DISTINCT FROM {right}"),
        DbBackend::MySql => format!("CAST({left} AS BINARY) <=> CAST({right} AS BINARY)"),
        _ => format!("{left} IS {right}"),
    }
}

/// One keyset page: `pk, from as text, to as text` of up to `limit` rows after `after`, in key order.
pub(crate) fn select_page(m: &ColumnMigration, backend: DbBackend, after: Option<&PkValue>, limit: u64) -> Statement {
    let mut p = Params::new(backend);
    let pk = quote(backend, &m.primary_key);
    let filter = match after {
        Some(last) => format!(" WHERE {pk} > {}", p.bind(last.to_value())),
        None => String::new(),
    };
    let limit = p.bind(limit as i64);
    let sql = format!(
        "SELECT {pk}, {}, {} FROM {}{filter} ORDER BY {pk} LIMIT {limit}",
        as_text(backend, None, &m.from_column),
        as_text(backend, None, &m.to_column),
        quote(backend, &m.table),
    );
    p.statement(sql)
}

/// `COUNT(*)` of the rows after `after` (for the progress bar).
pub(crate) fn count_after(m: &ColumnMigration, backend: DbBackend, after: Option<&PkValue>) -> Statement {
    let mut p = Params::new(backend);
    let filter = match after {
        Some(last) => format!(" WHERE {} > {}", quote(backend, &m.primary_key), p.bind(last.to_value())),
        None => String::new(),
    };
    let sql = format!("SELECT COUNT(*) FROM {}{filter}", quote(backend, &m.table));
    p.statement(sql)
}

/// One row to write: its key, the two column values as read (text), and the new blob value (JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowWrite {
    /// Primary key.
    pub pk: PkValue,
    /// The old column as read.
    pub old_from: Option<String>,
    /// The blob column as read.
    pub old_to: Option<String>,
    /// The value to write (JSON text).
    pub new: String,
}

/// How the new value is cast on PostgreSQL: to the blob column's own type (`jsonb`, `json`, `text`).
fn pg_cast(placeholder: String, pg_type: Option<&str>) -> String {
    match pg_type {
        Some(t) => format!("CAST({placeholder} AS {t})"),
        None => placeholder,
    }
}

/// One `UPDATE` writing every row of `rows` whose columns are unchanged since they were read.
/// `pg_type` is the blob column's PostgreSQL type (`jsonb`, `json`, `text`; ignored elsewhere).
pub fn update_batch(m: &ColumnMigration, backend: DbBackend, rows: &[RowWrite], pg_type: Option<&str>) -> Statement {
    let mut p = Params::new(backend);
    let table = quote(backend, &m.table);
    let pk = quote(backend, &m.primary_key);
    let to = quote(backend, &m.to_column);
    let guards = format!(
        "{} AND {}",
        text_same(backend, &as_text(backend, Some("t"), &m.from_column), "v.old_from"),
        text_same(backend, &as_text(backend, Some("t"), &m.to_column), "v.old_to"),
    );
    let sql = match backend {
        DbBackend::MySql => {
            let selects: Vec<String> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let (a, b, c, d) = (
                        p.bind(r.pk.to_value()),
                        p.bind(r.old_from.clone()),
                        p.bind(r.old_to.clone()),
                        p.bind(r.new.clone()),
                    );
                    if i == 0 {
                        format!("SELECT {a} AS pk, {b} AS old_from, {c} AS old_to, {d} AS new_value")
                    } else {
                        format!("SELECT {a}, {b}, {c}, {d}")
                    }
                })
                .collect();
            format!(
                "UPDATE {table} AS t JOIN ({}) AS v ON t.{pk} = v.pk SET t.{to} = v.new_value WHERE {guards}",
                selects.join(" UNION ALL ")
            )
        }
        DbBackend::Postgres => {
            let values: Vec<String> = rows
                .iter()
                .map(|r| {
                    let (a, b, c) = (p.bind(r.pk.to_value()), p.bind(r.old_from.clone()), p.bind(r.old_to.clone()));
                    let d = pg_cast(p.bind(r.new.clone()), pg_type);
                    format!("({a}, {b}, {c}, {d})")
                })
                .collect();
            format!(
                "UPDATE {table} AS t SET {to} = v.new_value FROM (VALUES {}) AS v(pk, old_from, old_to, new_value) \
                 WHERE t.{pk} = v.pk AND {guards}",
                values.join(", ")
            )
        }
        _ => {
            let values: Vec<String> = rows
                .iter()
                .map(|r| {
                    let (a, b, c, d) = (
                        p.bind(r.pk.to_value()),
                        p.bind(r.old_from.clone()),
                        p.bind(r.old_to.clone()),
                        p.bind(r.new.clone()),
                    );
                    format!("({a}, {b}, {c}, {d})")
                })
                .collect();
            format!(
                "UPDATE {table} AS t SET {to} = v.new_value FROM (SELECT column1 AS pk, column2 AS old_from, \
                 column3 AS old_to, column4 AS new_value FROM (VALUES {})) AS v WHERE t.{pk} = v.pk AND {guards}",
                values.join(", ")
            )
        }
    };
    p.statement(sql)
}

/// One `UPDATE` for one row (the per-row write mode, kept to measure the batch statement against).
pub fn update_one(m: &ColumnMigration, backend: DbBackend, row: &RowWrite, pg_type: Option<&str>) -> Statement {
    let mut p = Params::new(backend);
    let new = p.bind(row.new.clone());
    let new = if backend == DbBackend::Postgres { pg_cast(new, pg_type) } else { new };
    let pk = p.bind(row.pk.to_value());
    let old_from = p.bind(row.old_from.clone());
    let old_to = p.bind(row.old_to.clone());
    let sql = format!(
        "UPDATE {} AS t SET {} = {new} WHERE t.{} = {pk} AND {} AND {}",
        quote(backend, &m.table),
        quote(backend, &m.to_column),
        quote(backend, &m.primary_key),
        text_same(backend, &as_text(backend, Some("t"), &m.from_column), &old_from),
        text_same(backend, &as_text(backend, Some("t"), &m.to_column), &old_to),
    );
    p.statement(sql)
}

/// The blob column's type on PostgreSQL (`jsonb`, `json`, `text`, ...), or `None` when the column does
/// not exist. Other databases: `Some("")` when the column exists.
pub(crate) fn column_type_query(m: &ColumnMigration, backend: DbBackend, column: &str) -> Statement {
    let mut p = Params::new(backend);
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = to_regclass({}) \
             AND a.attname = {} AND NOT a.attisdropped",
            p.bind(quote(backend, &m.table)),
            p.bind(column.to_string())
        ),
        DbBackend::MySql => format!(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {} \
             AND COLUMN_NAME = {}",
            p.bind(m.table.clone()),
            p.bind(column.to_string())
        ),
        _ => format!(
            "SELECT type FROM pragma_table_info({}) WHERE name = {}",
            p.bind(m.table.clone()),
            p.bind(column.to_string())
        ),
    };
    p.statement(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes_identifiers() {
        assert_eq!(quote(DbBackend::Postgres, "we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote(DbBackend::MySql, "we`ird"), "`we``ird`");
    }

    #[test]
    fn batch_update_binds_everything() {
        let m = ColumnMigration::new("docs", "file", "blob");
        let rows = vec![
            RowWrite { pk: PkValue::Int(1), old_from: Some("a".into()), old_to: None, new: "{}".into() },
            RowWrite { pk: PkValue::Int(2), old_from: Some("b".into()), old_to: None, new: "{}".into() },
        ];
        for backend in [DbBackend::Postgres, DbBackend::MySql, DbBackend::Sqlite] {
            let stmt = update_batch(&m, backend, &rows, Some("jsonb"));
            assert_eq!(stmt.values.as_ref().map(|v| v.0.len()), Some(8), "{backend:?}");
            assert!(!stmt.sql.contains("'a'"), "values are bound, not spliced: {}", stmt.sql);
        }
        let pg = update_batch(&m, DbBackend::Postgres, &rows, Some("jsonb")).sql;
        assert!(pg.contains("CAST($4 AS jsonb)") && pg.contains("$8"), "{pg}");
    }
}
