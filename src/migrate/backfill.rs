//! The backfill: fill a blob column from a path column, in batches, from bucket listings.
//!
//! The run is a pipeline. One reader pages through the table in primary-key order (keyset pagination:
//! `WHERE pk > last ORDER BY pk LIMIT n`, so every page costs the same however deep it is); up to
//! `concurrency` batches look their objects up at once ([`Resolver`], spawned tasks); one writer commits
//! the batches in key order, each in its own transaction with its report rows and the new checkpoint.
//!
//! Per row, the decision is:
//!
//! | old column            | blob column                         | outcome                              |
//! |-----------------------|-------------------------------------|--------------------------------------|
//! | NULL / empty          | anything                            | blank (nothing written)              |
//! | not a usable name     | anything                            | reported `invalid`                   |
//! | name N                | not a blob value                    | reported `invalid`                   |
//! | name N                | a value naming another object       | reported `conflict`, kept            |
//! | name N                | a cached value naming N             | already done                         |
//! | name N, object exists | NULL, or an uncached value naming N | **written**                          |
//! | name N, no object     | NULL, or an uncached value naming N | reported `missing`, row untouched    |
//!
//! An absent name is confirmed with a `head` unless an earlier run reported the same row missing for
//! the same path ([`BackfillOptions::recheck_missing`] probes those again too).
//!
//! A write lands only if both columns still hold what was read (see [`super::sql::update_batch`]);
//! otherwise the row is counted as "changed during the run" and picked up by the next run.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};

use super::ColumnMigration;
use super::listing::{ListingMode, Resolver};
use super::report::{self, ReportEntry, ReportReason};
use super::source::{Destination, PkValue, SourceName, SourceRow, parse_destination, parse_source};
use super::sql::{self, RowWrite};
use super::state::{self, Checkpoint};
use crate::field::BlobValue;
use crate::storage::Store;
use crate::storage::counting::{CallCounts, CountingStore};
use crate::{Error, Result};

/// How a batch's rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// One `UPDATE` per batch (per 1,000 rows), joining the table to the batch's values.
    #[default]
    Batched,
    /// One `UPDATE` per row (slower; kept to measure against).
    PerRow,
}

impl std::str::FromStr for WriteMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "batched" => Ok(WriteMode::Batched),
            "per-row" => Ok(WriteMode::PerRow),
            other => Err(format!("unknown write mode {other:?}: use `batched` or `per-row`")),
        }
    }
}

/// What a running [`backfill()`] reports to [`BackfillOptions::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackfillProgress {
    /// Rows this run will read (reported once, before the first batch).
    Total(u64),
    /// A batch finished: `rows` read in it, and the run's counts so far.
    Batch {
        /// Rows read in this batch.
        rows: u64,
        /// Rows migrated so far in this run.
        migrated: u64,
        /// Rows whose object is missing so far in this run.
        missing: u64,
    },
}

/// A callback that receives [`BackfillProgress`] (drive a progress bar, log, export a metric).
#[derive(Clone)]
pub struct ProgressFn(Arc<dyn Fn(BackfillProgress) + Send + Sync>);

impl ProgressFn {
    /// Wrap a callback.
    pub fn new(f: impl Fn(BackfillProgress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    fn report(&self, event: BackfillProgress) {
        (self.0)(event)
    }
}

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn")
    }
}

/// Options of [`backfill()`].
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Rows per batch (one read, one listing, one write). Default 1,000.
    pub batch_size: u64,
    /// Batches looking their objects up at once. Default 4.
    pub concurrency: usize,
    /// Read and look up everything, write nothing (no update, no report or checkpoint rows). The CSV is
    /// still written when asked for. A dry run always starts from the first row.
    pub dry_run: bool,
    /// Also write the report as CSV here (the whole report of this migration, earlier runs included).
    pub report_csv: Option<PathBuf>,
    /// How objects are looked up.
    pub listing: ListingMode,
    /// Name ranges of one wide prefix listed at once (`Shared` mode; 1: one chain of pages). Default 16.
    pub listing_ranges: usize,
    /// How rows are written.
    pub writes: WriteMode,
    /// Stop after this many batches (the run can be resumed; also how tests interrupt a run).
    pub max_batches: Option<u64>,
    /// Ignore the checkpoint and start from the first row.
    pub restart: bool,
    /// Confirm again, with one `head` each, rows an earlier run reported missing for the same path.
    /// Off by default: such rows are looked for in the batch's listing only (an object that appeared
    /// since is still found), so a run that changes nothing makes no request per missing row.
    pub recheck_missing: bool,
    /// Called with the row total and after each batch (the CLI drives its progress bar with it).
    pub progress: Option<ProgressFn>,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            concurrency: 4,
            dry_run: false,
            report_csv: None,
            listing: ListingMode::default(),
            listing_ranges: super::listing::DEFAULT_RANGES,
            writes: WriteMode::default(),
            max_batches: None,
            restart: false,
            recheck_missing: false,
            progress: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillSummary {
    /// Rows read.
    pub rows: u64,
    /// Rows written (in a dry run: that would be written).
    pub migrated: u64,
    /// Rows whose blob column already held a cached value for the same object.
    pub already_done: u64,
    /// Rows whose old column is NULL or empty.
    pub blank: u64,
    /// Rows whose object does not exist (reported, untouched).
    pub missing: u64,
    /// Of `missing`: rows an earlier run had reported missing for the same path, not probed again
    /// (see [`BackfillOptions::recheck_missing`]).
    pub missing_not_rechecked: u64,
    /// Rows whose value names no usable object, or whose blob column holds garbage (reported).
    pub invalid: u64,
    /// Rows whose blob column names another object (reported, kept).
    pub conflicts: u64,
    /// Rows changed by someone else between read and write (not written; the next run takes them).
    pub changed_during_run: u64,
    /// Batches committed (or, in a dry run, looked up).
    pub batches: u64,
    /// The key this run resumed after, when it resumed.
    pub resumed_after: Option<String>,
    /// True when every row was read (false after `max_batches`).
    pub completed: bool,
    /// True for a dry run.
    pub dry_run: bool,
    /// Storage calls made.
    pub storage_calls: CallCounts,
    /// Rows in the report of this migration after the run (earlier runs' rows included).
    pub report_rows: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl BackfillSummary {
    /// Rows read per second.
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.rows as f64 / secs } else { 0.0 }
    }

    fn add(&mut self, c: &BatchPlan) {
        self.rows += c.rows;
        self.already_done += c.already_done;
        self.blank += c.blank;
        self.missing_not_rechecked += c.missing_not_rechecked;
        for e in &c.report {
            match e.reason {
                ReportReason::Missing => self.missing += 1,
                ReportReason::Invalid => self.invalid += 1,
                ReportReason::Conflict => self.conflicts += 1,
            }
        }
    }
}

/// One batch, looked up and ready to write.
#[derive(Debug, Default)]
struct BatchPlan {
    rows: u64,
    pks: Vec<String>,
    last_pk: Option<PkValue>,
    writes: Vec<RowWrite>,
    report: Vec<ReportEntry>,
    already_done: u64,
    blank: u64,
    missing_not_rechecked: u64,
}

/// Fill `m.to_column` from `m.from_column` with the metadata of the objects in `store`.
///
/// Resumes after the checkpoint a previous interrupted run left (unless `opts.restart`); a run that
/// starts from the first row clears this migration's report first, so the report always describes the
/// latest full pass.
pub async fn backfill(
    db: &DatabaseConnection,
    store: Arc<dyn Store>,
    m: &ColumnMigration,
    opts: &BackfillOptions,
) -> Result<BackfillSummary> {
    let started = Instant::now();
    m.validate()?;
    if opts.batch_size == 0 || opts.concurrency == 0 {
        return Err(Error::InvalidArgument("--batch-size and --concurrency must be at least 1".into()));
    }
    let backend = db.get_database_backend();
    let pg_type = check_columns(db, m).await?;

    let mut summary = BackfillSummary { dry_run: opts.dry_run, ..BackfillSummary::default() };
    let mut after: Option<PkValue> = None;
    // Rows reported missing by an earlier run (key → path), read before the report is cleared.
    let known_missing: Arc<HashMap<String, Option<String>>> =
        Arc::new(if opts.recheck_missing || !state::tables_exist(db).await? {
            HashMap::new()
        } else {
            state::read_report(db, m)
                .await?
                .into_iter()
                .filter(|e| e.reason == ReportReason::Missing)
                .map(|e| (e.pk, e.path))
                .collect()
        });
    if !opts.dry_run {
        state::ensure_tables(db).await?;
        match state::read_checkpoint(db, m).await? {
            Some(cp) if !cp.completed && !opts.restart && cp.last_pk.is_some() => {
                summary.resumed_after = cp.last_pk.as_ref().map(PkValue::to_text);
                after = cp.last_pk;
            }
            _ => state::clear_report(db, m).await?,
        }
    }

    if let Some(progress) = &opts.progress {
        let total = db.query_one_raw(sql::count_after(m, backend, after.as_ref())).await?;
        progress.report(BackfillProgress::Total(total.map(|r| state::read_count(&r)).transpose()?.unwrap_or(0)));
    }

    let counting = Arc::new(CountingStore::new(store));
    let resolver = Arc::new(Resolver::new(counting.clone(), opts.listing).with_ranges(opts.listing_ranges));
    let store_key = counting.key().to_string();
    let mut in_flight: FuturesOrdered<Task<Result<BatchPlan>>> = FuturesOrdered::new();
    let mut dry_report: Vec<ReportEntry> = Vec::new();
    let mut exhausted = false;
    let mut dispatched = 0u64;
    loop {
        while !exhausted && in_flight.len() < opts.concurrency && opts.max_batches.is_none_or(|max| dispatched < max) {
            let page = db.query_all_raw(sql::select_page(m, backend, after.as_ref(), opts.batch_size)).await?;
            let rows = page
                .iter()
                .map(SourceRow::read)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::InvalidArgument(format!("reading {}: {e}", m.describe())))?;
            if (rows.len() as u64) < opts.batch_size {
                exhausted = true;
            }
            let Some(last) = rows.last() else { break };
            after = Some(last.pk.clone());
            dispatched += 1;
            let (resolver, store_key, known) = (resolver.clone(), store_key.clone(), known_missing.clone());
            in_flight
                .push_back(Task(tokio::spawn(async move { plan_batch(&resolver, &store_key, &known, rows).await })));
        }
        let Some(joined) = in_flight.next().await else { break };
        let plan = joined.map_err(|e| Error::InvalidArgument(format!("a backfill batch panicked: {e}")))??;
        summary.add(&plan);
        summary.batches += 1;
        if opts.dry_run {
            summary.migrated += plan.writes.len() as u64;
            dry_report.extend(plan.report);
        } else {
            let written = write_batch(db, m, backend, pg_type.as_deref(), opts.writes, &plan).await?;
            summary.migrated += written;
            summary.changed_during_run += plan.writes.len() as u64 - written;
        }
        if let Some(progress) = &opts.progress {
            progress.report(BackfillProgress::Batch {
                rows: plan.rows,
                migrated: summary.migrated,
                missing: summary.missing,
            });
        }
    }
    summary.completed = exhausted;

    if opts.dry_run {
        summary.report_rows = dry_report.len() as u64;
        if let Some(path) = &opts.report_csv {
            report::write_csv(path, &dry_report)?;
        }
    } else {
        if summary.completed {
            state::write_checkpoint(db, m, &Checkpoint { last_pk: after, completed: true }).await?;
        }
        let entries = state::read_report(db, m).await?;
        summary.report_rows = entries.len() as u64;
        if let Some(path) = &opts.report_csv {
            report::write_csv(path, &entries)?;
        }
    }
    summary.storage_calls = counting.counts();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Check that both columns exist; return the blob column's type on PostgreSQL (to cast the new values
/// to it).
async fn check_columns(db: &DatabaseConnection, m: &ColumnMigration) -> Result<Option<String>> {
    let backend = db.get_database_backend();
    let mut pg_type = None;
    for (column, hint) in [
        (&m.from_column, "check --from-column"),
        (&m.to_column, "add it first: sea_gcp::migrate::schema::add_blob_column in a migration"),
    ] {
        let row = db.query_one_raw(sql::column_type_query(m, backend, column)).await?;
        let Some(row) = row else {
            return Err(Error::InvalidArgument(format!(
                "column `{column}` does not exist in table `{}` ({}); {hint}",
                m.table,
                state::backend_name(backend)
            )));
        };
        if column == &m.to_column && backend == DbBackend::Postgres {
            pg_type = Some(row.try_get_by_index::<String>(0)?);
        }
    }
    Ok(pg_type)
}

/// Decide every row of a batch, looking the needed objects up with listings.
async fn plan_batch(
    resolver: &Resolver,
    store_key: &str,
    known_missing: &HashMap<String, Option<String>>,
    rows: Vec<SourceRow>,
) -> Result<BatchPlan> {
    let mut plan = BatchPlan {
        rows: rows.len() as u64,
        pks: rows.iter().map(|r| r.pk.to_text()).collect(),
        last_pk: rows.last().map(|r| r.pk.clone()),
        ..BatchPlan::default()
    };
    let mut wanted: Vec<(SourceRow, String, Option<String>)> = Vec::new();
    for row in rows {
        let report =
            |reason, detail: String| ReportEntry { pk: row.pk.to_text(), path: row.from.clone(), reason, detail };
        let dst = parse_destination(row.to.as_deref());
        match (parse_source(row.from.as_deref()), dst) {
            (_, Destination::Corrupt(e)) => {
                plan.report.push(report(ReportReason::Invalid, format!("the blob column is not a blob value: {e}")))
            }
            (SourceName::Blank, _) => plan.blank += 1,
            (SourceName::Invalid(e), _) => plan.report.push(report(ReportReason::Invalid, e)),
            (SourceName::Name(name, _), Destination::Value(v)) if v.name != name => plan
                .report
                .push(report(ReportReason::Conflict, format!("the blob column names another object: {:?}", v.name))),
            (SourceName::Name(_, _), Destination::Value(v)) if v.is_cached() => plan.already_done += 1,
            (SourceName::Name(name, legacy), dst) => {
                let original = match dst {
                    Destination::Value(v) => v.original_name,
                    _ => legacy.and_then(|v| v.original_name.clone()),
                };
                wanted.push((row, name, original));
            }
        }
    }
    let mut names: Vec<String> = wanted.iter().map(|(_, n, _)| n.clone()).collect();
    names.sort();
    names.dedup();
    // A name is left unprobed only when every row wanting it was reported missing for the same path.
    let reported = |row: &SourceRow| known_missing.get(&row.pk.to_text()).is_some_and(|path| *path == row.from);
    let mut unprobed: HashSet<String> =
        wanted.iter().filter(|(r, _, _)| reported(r)).map(|(_, n, _)| n.clone()).collect();
    for (row, name, _) in &wanted {
        if !reported(row) {
            unprobed.remove(name);
        }
    }
    let found = resolver.resolve_skipping(&names, &unprobed).await?;
    for (row, name, original) in wanted {
        match found.get(&name) {
            Some(meta) => {
                let value = BlobValue::from_meta(meta, original);
                plan.writes.push(RowWrite {
                    pk: row.pk,
                    old_from: row.from,
                    old_to: row.to,
                    new: value.to_json().to_string(),
                });
            }
            None if unprobed.contains(&name) => {
                plan.missing_not_rechecked += 1;
                plan.report.push(ReportEntry {
                    pk: row.pk.to_text(),
                    path: row.from,
                    reason: ReportReason::Missing,
                    detail: format!(
                        "no object {name:?} in store `{store_key}` (not in the listing; reported missing before, \
                         not probed again: --recheck-missing)"
                    ),
                })
            }
            None => plan.report.push(ReportEntry {
                pk: row.pk.to_text(),
                path: row.from,
                reason: ReportReason::Missing,
                detail: format!("no object {name:?} in store `{store_key}`"),
            }),
        }
    }
    Ok(plan)
}

/// Commit one batch: its writes, its report rows, the checkpoint. Returns the rows written.
async fn write_batch(
    db: &DatabaseConnection,
    m: &ColumnMigration,
    backend: DbBackend,
    pg_type: Option<&str>,
    mode: WriteMode,
    plan: &BatchPlan,
) -> Result<u64> {
    let txn = db.begin().await?;
    let mut written = 0;
    match mode {
        WriteMode::Batched => {
            for chunk in plan.writes.chunks(1000) {
                written += txn.execute_raw(sql::update_batch(m, backend, chunk, pg_type)).await?.rows_affected();
            }
        }
        WriteMode::PerRow => {
            for row in &plan.writes {
                written += txn.execute_raw(sql::update_one(m, backend, row, pg_type)).await?.rows_affected();
            }
        }
    }
    state::replace_report_rows(&txn, m, &plan.pks, &plan.report).await?;
    state::write_checkpoint(&txn, m, &Checkpoint { last_pk: plan.last_pk.clone(), completed: false }).await?;
    txn.commit().await?;
    Ok(written)
}

/// A spawned batch that is cancelled when dropped (a failed run stops its other lookups).
struct Task<T>(tokio::task::JoinHandle<T>);

impl<T> Future for Task<T> {
    type Output = std::result::Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
