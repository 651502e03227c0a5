//! `sea-gcp migrate-column`: backfill a blob column from a path column, then optionally swap them.
//! See [`sea_gcp::migrate`] and `docs/migrating.md`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use sea_orm::Database;

use crate::args::load_settings;
use sea_gcp::migrate::{self, BackfillOptions, BackfillProgress, ColumnMigration, ListingMode, ProgressFn, WriteMode};
use sea_gcp::storage::StoreOp;
use sea_gcp::{Error, Result};

/// Fill a blob column from a path column (text or django-gcp `{"path": ...}` JSON) with the objects'
/// metadata from bucket listings; resumable, idempotent, online.
#[derive(Debug, Args)]
pub struct MigrateColumnArgs {
    /// Database URL (postgres://, mysql://, sqlite://).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// The table.
    #[arg(long)]
    pub table: String,
    /// The old column, holding object names (or `{"path": ...}`).
    #[arg(long)]
    pub from_column: String,
    /// The blob column to fill (add it first with a migration; equal to --from-column after an in-place
    /// conversion).
    #[arg(long)]
    pub to_column: String,
    /// The store holding the objects (as named in the settings).
    #[arg(long, default_value = "media")]
    pub store: String,
    /// Settings file (TOML with [stores.NAME] tables). Defaults to $SEA_GCP_SETTINGS, then
    /// ./sea-gcp.toml if present; SEA_GCP__<STORE>__<OPTION> environment variables apply on top.
    #[arg(long, env = "SEA_GCP_SETTINGS")]
    pub settings: Option<PathBuf>,
    /// The primary key column (integer, UUID or text).
    #[arg(long, default_value = "id")]
    pub primary_key: String,
    /// Rows per batch (one read, one listing, one UPDATE).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: u64,
    /// Batches looking their objects up at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Look everything up and report, write nothing to the table.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the report (rows not migrated) as CSV to this file.
    #[arg(long)]
    pub report_csv: Option<PathBuf>,
    /// `shared` (keep listings and answer later batches from them) or `per-batch`.
    #[arg(long, default_value = "shared")]
    pub listing: ListingMode,
    /// With `--listing shared`: list a wide prefix in up to this many name ranges at once (1: one page
    /// after another).
    #[arg(long, default_value_t = migrate::DEFAULT_RANGES, value_parser = clap::value_parser!(usize))]
    pub listing_ranges: usize,
    /// `batched` (one UPDATE per batch) or `per-row`.
    #[arg(long, default_value = "batched")]
    pub writes: WriteMode,
    /// Stop after this many batches; run again to resume from the checkpoint.
    #[arg(long)]
    pub max_batches: Option<u64>,
    /// Ignore the checkpoint and start from the first row.
    #[arg(long)]
    pub restart: bool,
    /// Probe again (one `head` each) rows an earlier run reported missing for the same path; by
    /// default they are only looked for in the batch's listing.
    #[arg(long)]
    pub recheck_missing: bool,
    /// After the backfill, drop the old column and rename the blob column to its name — only if the
    /// report is empty and every row is migrated.
    #[arg(long)]
    pub swap: bool,
    /// With --swap: swap even if the report lists rows (their old paths stay in the report table).
    #[arg(long, requires = "swap")]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl MigrateColumnArgs {
    /// Run the backfill (and the swap when asked), then print the summary.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let m =
            ColumnMigration::new(&self.table, &self.from_column, &self.to_column).with_primary_key(&self.primary_key);
        m.validate()?;
        if self.swap && self.dry_run {
            return Err(Error::InvalidArgument("--swap cannot be combined with --dry-run".into()));
        }
        let settings = load_settings(self.settings.as_ref())?;
        let store = settings.open(&self.store).await?;
        let db = Database::connect(&self.database_url).await?;
        let bar = if self.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows {per_sec} eta {eta} {msg}",
                )
                .expect("valid template"),
            )
        };
        let opts = BackfillOptions {
            batch_size: self.batch_size,
            concurrency: self.concurrency,
            dry_run: self.dry_run,
            report_csv: self.report_csv.clone(),
            listing: self.listing,
            listing_ranges: self.listing_ranges,
            writes: self.writes,
            max_batches: self.max_batches,
            restart: self.restart,
            recheck_missing: self.recheck_missing,
            progress: Some(progress_bar(&bar)),
        };
        let s = migrate::backfill(&db, store, &m, &opts).await?;
        bar.finish_and_clear();

        let verb = if s.dry_run { "dry run of" } else { "migrate-column" };
        writeln!(out, "{verb} {} (store {})", m.describe(), self.store)?;
        if let Some(after) = &s.resumed_after {
            writeln!(out, "  resumed after {} = {after}", m.primary_key)?;
        }
        let migrated = if s.dry_run { "would migrate:" } else { "migrated:" };
        writeln!(out, "  rows read:          {}", s.rows)?;
        writeln!(out, "  {migrated:<19} {}", s.migrated)?;
        writeln!(out, "  already done:       {}", s.already_done)?;
        writeln!(out, "  blank:              {}", s.blank)?;
        if s.missing_not_rechecked > 0 {
            writeln!(
                out,
                "  missing:            {} ({} reported before, not probed again: --recheck-missing)",
                s.missing, s.missing_not_rechecked
            )?;
        } else {
            writeln!(out, "  missing:            {}", s.missing)?;
        }
        writeln!(out, "  invalid:            {}", s.invalid)?;
        writeln!(out, "  conflicts:          {}", s.conflicts)?;
        if s.changed_during_run > 0 {
            writeln!(out, "  changed during run: {} (run again to pick them up)", s.changed_during_run)?;
        }
        let c = &s.storage_calls;
        writeln!(
            out,
            "  storage calls:      {} (list {}, head {})",
            c.remote(),
            c.get(StoreOp::List),
            c.get(StoreOp::Head)
        )?;
        writeln!(
            out,
            "  elapsed:            {:.2}s ({:.0} rows/s, {} batches)",
            s.elapsed.as_secs_f64(),
            s.rows_per_second(),
            s.batches
        )?;
        let where_ = if s.dry_run { String::new() } else { format!(" in table {}", migrate::REPORT_TABLE) };
        let csv = self.report_csv.as_ref().map(|p| format!(", CSV {}", p.display())).unwrap_or_default();
        writeln!(out, "  report:             {} row(s){where_}{csv}", s.report_rows)?;
        if s.completed {
            writeln!(out, "status: complete")?;
        } else {
            writeln!(out, "status: stopped after {} batch(es); run again to resume", s.batches)?;
        }
        if self.swap {
            if !s.completed {
                return Err(Error::InvalidArgument(
                    "not swapping: the backfill did not read every row (run it to completion first)".into(),
                ));
            }
            let outcome = migrate::swap_columns(&db, &m, self.force).await?;
            let forced = if outcome.forced {
                format!(" (forced: {} report row(s), {} unmigrated row(s))", outcome.report_rows, outcome.unmigrated)
            } else {
                String::new()
            };
            writeln!(
                out,
                "swapped: dropped {}.{}, renamed {} to {}{forced}",
                m.table, m.from_column, m.to_column, m.from_column
            )?;
        }
        Ok(())
    }
}

/// Drive `bar` from the backfill's progress events.
fn progress_bar(bar: &indicatif::ProgressBar) -> ProgressFn {
    let bar = bar.clone();
    ProgressFn::new(move |event| match event {
        BackfillProgress::Total(total) => bar.set_length(total),
        BackfillProgress::Batch { rows, migrated, missing } => {
            bar.inc(rows);
            bar.set_message(format!("{migrated} migrated, {missing} missing"));
        }
        _ => {}
    })
}
