//! `sea-gcp cleanup`: expire abandoned uploads (django-gcp's `cleanup_tmp_files`). The work is
//! [`sea_gcp::upload::cleanup`]'s.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::args::load_settings;
use sea_gcp::config::parse_duration;
use sea_gcp::upload::cleanup::{CleanupOptions, cleanup_configured_store};
use sea_gcp::{Error, Result};

/// Remove temp objects (under the ingress prefix) created more than --older-than ago, and, on local
/// stores, the partial files of abandoned uploads. Each object is deleted only if it is unchanged since
/// it was listed.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Settings file naming the stores (see sync-static --help).
    #[arg(long, env = "SEA_GCP_SETTINGS")]
    pub settings: Option<PathBuf>,
    /// Store to clean up (repeatable); default every configured store.
    #[arg(long = "store", value_name = "KEY")]
    pub stores: Vec<String>,
    /// Prefix of temp objects (repeatable).
    #[arg(long = "prefix", value_name = "PREFIX", default_value = sea_gcp::upload::DEFAULT_INGRESS_PREFIX)]
    pub prefixes: Vec<String>,
    /// Remove what is older than this (10m, 1h, 1d).
    #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = parse_age)]
    pub older_than: Duration,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_age(text: &str) -> std::result::Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

impl CleanupArgs {
    /// Clean up each store and print what was (or would be) removed; fails when a delete failed.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let settings = load_settings(self.settings.as_ref())?;
        let keys: Vec<String> = if self.stores.is_empty() {
            settings.store_keys().map(str::to_string).collect()
        } else {
            self.stores.clone()
        };
        if keys.is_empty() {
            return Err(Error::InvalidArgument("no stores configured: pass --settings FILE".into()));
        }
        let opts = CleanupOptions::default()
            .with_older_than(self.older_than)
            .with_prefixes(self.prefixes.clone())
            .with_dry_run(self.dry_run);
        let mut failed = 0;
        for key in &keys {
            let report = cleanup_configured_store(&settings, key, &opts).await?;
            writeln!(out, "cleanup: {report}")?;
            let verb = if report.dry_run { "would remove" } else { "removed" };
            for name in &report.objects {
                writeln!(out, "  {verb} object {name}")?;
            }
            for file in &report.files {
                writeln!(out, "  {verb} file {}", file.display())?;
            }
            for (name, error) in &report.failed {
                writeln!(out, "  failed {name}: {error}")?;
            }
            failed += report.failed.len();
        }
        if failed > 0 {
            return Err(Error::InvalidArgument(format!("{failed} temp object(s) could not be removed; see above")));
        }
        Ok(())
    }
}
