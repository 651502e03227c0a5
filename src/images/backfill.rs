//! `sea-gcp variants backfill`: make the variants of rows saved before a variant was declared (or while
//! tasks were disabled, or by an in-place overwrite), in the management process, with progress.
//!
//! Rows are read a page at a time in primary-key order (compared as text, which orders every key type),
//! and each value of a field with variants that lacks a declared variant is made by the same
//! [`make_variants`] the task runs: so the backfill and the task can overlap, and a rerun after an
//! interruption costs one database read per row already done and no storage call.

use std::fmt;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use super::generate::{VariantJob, VariantTarget, make_variants};
use crate::Result;
use crate::field::BlobValue;
use crate::field::cas::key_as_text;
use crate::migrate::sql::{as_text, quote as q};

/// Rows read per page.
const PAGE: u64 = 200;

/// One field's rows to backfill.
#[derive(Debug, Clone)]
pub(crate) struct BackfillTarget {
    pub(crate) store: String,
    pub(crate) table: String,
    pub(crate) column: String,
    pub(crate) target: VariantTarget,
}

/// What a backfill did, per field and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VariantBackfill {
    /// Rows read.
    pub(crate) rows: u64,
    /// Values that lacked a variant.
    pub(crate) incomplete: u64,
    /// Variant objects written.
    pub(crate) written: u64,
    /// Variant objects found already written and recorded now.
    pub(crate) found: u64,
    /// Values whose original cannot be made into a variant (not an image, corrupt, over the pixel limit).
    pub(crate) refused: u64,
    /// Values that failed, with the error (a rerun retries them).
    pub(crate) failed: Vec<(String, String)>,
}

impl fmt::Display for VariantBackfill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} row(s) read, {} lacked a variant: {} variant(s) written, {} found made, {} refused, {} failed",
            self.rows,
            self.incomplete,
            self.written,
            self.found,
            self.refused,
            self.failed.len()
        )
    }
}

/// Make the missing variants of every row of `target`; `progress` is called after each page with the
/// running totals. With `dry_run`, only count what lacks a variant.
pub(crate) async fn backfill(
    db: &impl ConnectionTrait,
    field: &BackfillTarget,
    dry_run: bool,
    progress: impl FnMut(&VariantBackfill),
) -> Result<VariantBackfill> {
    backfill_paged(db, field, dry_run, PAGE, progress).await
}

/// [`backfill`] reading `page` rows at a time.
pub(crate) async fn backfill_paged(
    db: &impl ConnectionTrait,
    field: &BackfillTarget,
    dry_run: bool,
    page: u64,
    mut progress: impl FnMut(&VariantBackfill),
) -> Result<VariantBackfill> {
    let backend = db.get_database_backend();
    let (t, c) = (q(backend, &field.table), q(backend, &field.column));
    let (key, cell) = (key_as_text(backend, &field.target.primary_key), as_text(backend, None, &field.column));
    let placeholder = if backend == DatabaseBackend::Postgres { "$1" } else { "?" };
    let mut report = VariantBackfill::default();
    let mut after: Option<String> = None;
    loop {
        let (filter, values): (String, Vec<sea_orm::Value>) = match &after {
            Some(last) => (format!("AND {key} > {placeholder}"), vec![last.clone().into()]),
            None => (String::new(), Vec::new()),
        };
        let sql = format!(
            "SELECT {key} AS pk, {cell} AS val FROM {t} WHERE {c} IS NOT NULL {filter} ORDER BY {key} LIMIT {page}"
        );
        let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let pk: String = row.try_get("", "pk")?;
            let raw: Option<String> = row.try_get("", "val")?;
            after = Some(pk.clone());
            report.rows += 1;
            let Some(value) = raw.and_then(|r| BlobValue::from_text(&r).ok()) else { continue };
            let Some(generation) = value.generation else { continue };
            if field.target.variants.iter().all(|v| value.variants.contains_key(v.name())) {
                continue;
            }
            report.incomplete += 1;
            if dry_run {
                continue;
            }
            let job = VariantJob {
                store: field.store.clone(),
                table: field.table.clone(),
                column: field.column.clone(),
                primary_key: field.target.primary_key.clone(),
                name: value.name.clone(),
                generation,
            };
            match make_variants(db, &field.target, &job).await {
                Ok(made) => {
                    report.written += made.written as u64;
                    report.found += made.found as u64;
                    report.refused += u64::from(!made.refused.is_empty());
                }
                Err(e) => report.failed.push((pk, e.to_string())),
            }
        }
        progress(&report);
        if (rows.len() as u64) < page {
            break;
        }
    }
    Ok(report)
}
