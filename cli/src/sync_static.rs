//! `sea-gcp sync-static DIR --store static`: django-gcp's `collectstatic`, incremental.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::args::load_settings;
use sea_gcp::staticfiles::{self, SyncEvent, SyncOptions, UploadReason};
use sea_gcp::{Error, Result};

/// Upload new and changed files of DIR to a store (compared against one listing), in parallel.
#[derive(Debug, Args)]
pub struct SyncStaticArgs {
    /// The local directory to upload.
    pub dir: PathBuf,
    /// The store to upload to (as named in the settings; `staticfiles` is an alias of `static`).
    #[arg(long, default_value = "static")]
    pub store: String,
    /// Settings file (TOML with [stores.NAME] tables). Defaults to $SEA_GCP_SETTINGS, then
    /// ./sea-gcp.toml if present; SEA_GCP__<STORE>__<OPTION> environment variables apply on top.
    #[arg(long, env = "SEA_GCP_SETTINGS")]
    pub settings: Option<PathBuf>,
    /// Upload under this prefix of the store.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete objects under the prefix that no longer exist locally.
    #[arg(long)]
    pub delete: bool,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl SyncStaticArgs {
    /// Run the sync.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        if !self.dir.is_dir() {
            return Err(Error::InvalidArgument(format!("{} is not a directory", self.dir.display())));
        }
        let settings = load_settings(self.settings.as_ref())?;
        let store = settings.open(&self.store).await?;
        let opts = SyncOptions::default()
            .with_prefix(self.prefix.clone())
            .with_delete(self.delete)
            .with_concurrency(self.concurrency);
        let plan = staticfiles::plan(store.as_ref(), &self.dir, &opts).await?;
        let new = plan.uploads.iter().filter(|u| u.reason == UploadReason::New).count();
        let changed = plan.uploads.len() - new;
        if self.dry_run {
            for up in &plan.uploads {
                let why = if up.reason == UploadReason::New { "new" } else { "changed" };
                writeln!(out, "upload  {} ({why}, {} bytes)", up.name, up.size)?;
            }
            for name in &plan.deletes {
                writeln!(out, "delete  {name}")?;
            }
            writeln!(
                out,
                "dry run: {new} new, {changed} changed, {} unchanged, {} to delete; nothing was changed",
                plan.unchanged.len(),
                plan.deletes.len()
            )?;
            return Ok(());
        }
        let total: u64 = plan.uploads.iter().map(|u| u.size).sum();
        let bar = if self.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(total).with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .expect("valid template"),
            )
        };
        let report = staticfiles::execute(store.as_ref(), &plan, &opts, |event| match event {
            SyncEvent::Uploaded { name, bytes } => {
                bar.inc(bytes);
                bar.set_message(name);
            }
            SyncEvent::Deleted { name } => bar.set_message(format!("deleted {name}")),
        })
        .await?;
        bar.finish_and_clear();
        writeln!(
            out,
            "synced {}: {} uploaded ({new} new, {changed} changed, {} bytes), {} unchanged, {} deleted",
            self.store, report.uploaded, report.bytes, report.unchanged, report.deleted
        )?;
        Ok(())
    }
}
