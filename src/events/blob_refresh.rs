//! [`BlobRefresh`]: keeps blob-field caches true when objects change outside the app.
//!
//! On a storage event for an object of the store, every row of the configured `table.column`s whose
//! blob value names that object is brought up to date from one `head` of the live object (the event
//! says *which* object; the store says what it is now, so events arriving late, twice or out of order
//! converge on the same state):
//! - object present: the cache is refilled (generation, metageneration, size, content type, hashes,
//!   metadata, updated; the original file name is kept); rows already caching a newer generation than
//!   the live one are left alone;
//! - object gone: rows caching the deleted generation (or none) are flagged missing per
//!   [`MissingPolicy`]; rows caching a newer generation are left alone.
//!
//! Each row is written with a compare-and-set on the value read (`WHERE pk = ? AND column = <read>`),
//! so a save committing meanwhile wins. Re-running the same event changes nothing. The lookup filters on
//! the JSON `name` (or legacy `path`): for large tables add an expression index on it.

use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, Value};

use super::{Event, EventHandler, HandlerError, StorageEvent, StorageEventKind};
use crate::field::BlobValue;
use crate::storage::{GetOptions, Store};
use crate::{Error, Result};

/// What to write into a row whose object is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingPolicy {
    /// Keep the name and original file name, drop the cache (`is_cached()` becomes false, so readers
    /// and `refresh()` see that the metadata is not known to be true). The default.
    #[default]
    ClearCache,
    /// Set the column to NULL (nullable columns only).
    SetNull,
}

/// What one event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefreshReport {
    /// Rows whose cache was refilled.
    pub refreshed: usize,
    /// Rows flagged missing.
    pub missing: usize,
    /// Rows already true.
    pub unchanged: usize,
    /// Rows left alone because they hold a newer generation (or changed while this ran).
    pub skipped_newer: usize,
}

#[derive(Debug, Clone)]
struct Target {
    table: String,
    column: String,
    primary_key: String,
}

/// The opt-in refresh handler for one store's blob columns.
#[derive(Clone)]
pub struct BlobRefresh {
    db: DatabaseConnection,
    store: Arc<dyn Store>,
    targets: Vec<Target>,
    missing: MissingPolicy,
}

impl std::fmt::Debug for BlobRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRefresh")
            .field("store", &self.store.key())
            .field("targets", &self.targets)
            .field("missing", &self.missing)
            .finish()
    }
}

fn q(backend: DatabaseBackend, name: &str) -> String {
    match backend {
        DatabaseBackend::MySql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

impl BlobRefresh {
    /// Refresh rows in `db` referencing objects of `store`.
    pub fn new(db: DatabaseConnection, store: Arc<dyn Store>) -> Self {
        Self { db, store, targets: Vec::new(), missing: MissingPolicy::default() }
    }

    /// Watch `table.column` (a blob column of this store), rows addressed by the primary key `id`.
    pub fn column(self, table: impl Into<String>, column: impl Into<String>) -> Self {
        self.column_with_key(table, column, "id")
    }

    /// Watch `table.column`, rows addressed by `primary_key`.
    pub(crate) fn column_with_key(
        mut self,
        table: impl Into<String>,
        column: impl Into<String>,
        primary_key: impl Into<String>,
    ) -> Self {
        self.targets.push(Target { table: table.into(), column: column.into(), primary_key: primary_key.into() });
        self
    }

    /// What to write when the object is gone.
    pub fn with_missing_policy(mut self, policy: MissingPolicy) -> Self {
        self.missing = policy;
        self
    }

    /// The object name relative to the store's location, when `event` is about this store.
    fn relative_name(&self, event: &StorageEvent) -> Option<String> {
        let config = self.store.config();
        if event.bucket != config.bucket_name {
            return None;
        }
        let location = config.location.trim_matches('/');
        if location.is_empty() {
            return Some(event.name.clone());
        }
        event.name.strip_prefix(location).and_then(|rest| rest.strip_prefix('/')).map(str::to_owned)
    }

    /// Apply one storage event. Events for other buckets or outside the store's location change nothing.
    pub async fn apply(&self, event: &StorageEvent) -> Result<RefreshReport> {
        let mut report = RefreshReport::default();
        let Some(name) = self.relative_name(event) else { return Ok(report) };
        let live = match self.store.head(&name, GetOptions::default()).await {
            Ok(meta) => Some(meta),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        for target in &self.targets {
            for (pk, raw, current) in self.rows(target, &name).await? {
                let replacement = match &live {
                    Some(meta) => {
                        if current.generation.is_some_and(|g| g > meta.generation) {
                            report.skipped_newer += 1;
                            continue;
                        }
                        let mut fresh = BlobValue::from_meta(meta, current.original_name.clone());
                        fresh.name = current.name.clone();
                        fresh.keep_analysis_of(&current);
                        if fresh == current {
                            report.unchanged += 1;
                            continue;
                        }
                        Some(fresh)
                    }
                    None => {
                        let deleted = matches!(event.kind, StorageEventKind::Delete | StorageEventKind::Archive)
                            .then_some(event.generation)
                            .unwrap_or(i64::MAX);
                        if current.generation.is_some_and(|g| g > deleted) {
                            report.skipped_newer += 1;
                            continue;
                        }
                        match self.missing {
                            MissingPolicy::SetNull => None,
                            MissingPolicy::ClearCache => {
                                let mut cleared = BlobValue::uncached(current.name.clone());
                                cleared.original_name = current.original_name.clone();
                                if cleared == current {
                                    report.unchanged += 1;
                                    continue;
                                }
                                Some(cleared)
                            }
                        }
                    }
                };
                let is_missing = live.is_none();
                if self.write(target, &pk, &raw, replacement).await? {
                    if is_missing {
                        report.missing += 1;
                    } else {
                        report.refreshed += 1;
                    }
                } else {
                    report.skipped_newer += 1;
                }
            }
        }
        tracing::info!(store = self.store.key(), name, kind = ?event.kind, ?report, "blob caches refreshed from a storage event");
        Ok(report)
    }

    /// Rows of `target` whose value names `name`: (primary key as text, the raw cell text, the value).
    async fn rows(&self, target: &Target, name: &str) -> Result<Vec<(String, String, BlobValue)>> {
        let backend = self.db.get_database_backend();
        let (t, c, k) = (q(backend, &target.table), q(backend, &target.column), q(backend, &target.primary_key));
        let sql = match backend {
            DatabaseBackend::Postgres => format!(
                "SELECT {k}::text AS pk, {c}::text AS val FROM {t} WHERE COALESCE({c}->>'name', {c}->>'path') = $1"
            ),
            DatabaseBackend::MySql => format!(
                "SELECT CAST({k} AS CHAR) AS pk, CAST({c} AS CHAR) AS val FROM {t} \
                 WHERE COALESCE(JSON_UNQUOTE(JSON_EXTRACT({c}, '$.name')), JSON_UNQUOTE(JSON_EXTRACT({c}, '$.path'))) = ?"
            ),
            _ => format!(
                "SELECT CAST({k} AS TEXT) AS pk, {c} AS val FROM {t} \
                 WHERE COALESCE(json_extract({c}, '$.name'), json_extract({c}, '$.path')) = ?"
            ),
        };
        let rows = self.db.query_all_raw(Statement::from_sql_and_values(backend, sql, [name.into()])).await?;
        let mut out = Vec::new();
        for row in rows {
            let pk: String = row.try_get("", "pk")?;
            let raw: String = row.try_get("", "val")?;
            match BlobValue::from_text(&raw) {
                Ok(value) => out.push((pk, raw, value)),
                Err(message) => {
                    tracing::warn!(table = %target.table, column = %target.column, row = pk, message, "corrupt blob value left alone")
                }
            }
        }
        Ok(out)
    }

    /// Compare-and-set one row; false when the row changed since it was read.
    async fn write(&self, target: &Target, pk: &str, raw: &str, value: Option<BlobValue>) -> Result<bool> {
        let backend = self.db.get_database_backend();
        let (t, c, k) = (q(backend, &target.table), q(backend, &target.column), q(backend, &target.primary_key));
        let sql = match backend {
            DatabaseBackend::Postgres => format!("UPDATE {t} SET {c} = $1 WHERE {k}::text = $2 AND {c}::text = $3"),
            DatabaseBackend::MySql => {
                format!("UPDATE {t} SET {c} = ? WHERE CAST({k} AS CHAR) = ? AND CAST({c} AS CHAR) = ?")
            }
            _ => format!("UPDATE {t} SET {c} = ? WHERE CAST({k} AS TEXT) = ? AND {c} = ?"),
        };
        let new: Value = match value {
            Some(v) => v.into(),
            None => Value::Json(None),
        };
        let result =
            self.db.execute_raw(Statement::from_sql_and_values(backend, sql, [new, pk.into(), raw.into()])).await?;
        Ok(result.rows_affected() == 1)
    }
}

#[async_trait]
impl EventHandler for BlobRefresh {
    async fn handle(&self, event: Event) -> std::result::Result<(), HandlerError> {
        let change = event.storage()?;
        if self.relative_name(&change).is_none() {
            return Err(HandlerError::drop_event(format!(
                "gs://{}/{} is not in store `{}`",
                change.bucket,
                change.name,
                self.store.key()
            )));
        }
        self.apply(&change).await?;
        Ok(())
    }
}
