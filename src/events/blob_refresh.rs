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
use sea_orm::DatabaseConnection;

use super::{Event, EventHandler, HandlerError, StorageEvent, StorageEventKind};
use crate::field::BlobValue;
use crate::field::cas::{Column, RowValue, compare_and_set, rows_naming};
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

/// The opt-in refresh handler for one store's blob columns.
#[derive(Clone)]
pub struct BlobRefresh {
    db: DatabaseConnection,
    store: Arc<dyn Store>,
    targets: Vec<Column>,
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
        self.targets.push(Column { table: table.into(), column: column.into(), primary_key: primary_key.into() });
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
        // Variants of a generation the rows no longer hold: deleted once no row records them.
        let mut stale_variants: Vec<String> = Vec::new();
        for target in &self.targets {
            for RowValue { pk, raw, value: current } in rows_naming(&self.db, target, &name).await? {
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
                let dropped: Vec<String> = current
                    .variants
                    .values()
                    .filter(|v| {
                        replacement.as_ref().is_none_or(|r| !r.variants.values().any(|kept| kept.name == v.name))
                    })
                    .map(|v| v.name.clone())
                    .collect();
                if compare_and_set(&self.db, target, &pk, &raw, replacement.as_ref()).await? {
                    stale_variants.extend(dropped);
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
        stale_variants.sort();
        stale_variants.dedup();
        if !stale_variants.is_empty() {
            let mut still_recorded = std::collections::BTreeSet::new();
            for target in &self.targets {
                for row in rows_naming(&self.db, target, &name).await? {
                    still_recorded.extend(row.value.variants.into_values().map(|v| v.name));
                }
            }
            for variant in stale_variants.iter().filter(|v| !still_recorded.contains(*v)) {
                crate::promote::steps::delete_quietly(self.store.as_ref(), variant, None).await?;
            }
        }
        tracing::info!(store = self.store.key(), name, kind = ?event.kind, ?report, "blob caches refreshed from a storage event");
        Ok(report)
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
