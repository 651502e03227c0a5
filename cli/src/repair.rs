//! `sea-gcp repair`: replay the blob-field outbox (finish committed saves, undo abandoned ones).
//! See [`sea_gcp::promote::replay`] and `docs/blob-field.md`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use sea_orm::Database;

use crate::args::load_settings;
use sea_gcp::promote::Outbox;
use sea_gcp::storage::Store;
use sea_gcp::{Error, Result};

/// Finish or undo interrupted blob saves recorded in the outbox. Safe to run at any time: intents
/// touched within the grace period (saves still in flight) are left alone.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Database URL (postgres://, mysql://, sqlite://).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Settings file naming the stores the outbox refers to (see sync-static --help).
    #[arg(long, env = "SEA_GCP_SETTINGS")]
    pub settings: Option<PathBuf>,
    /// Leave intents younger than this (10s, 10m, 1h).
    #[arg(long, default_value = "10m")]
    pub grace: String,
    /// The outbox table.
    #[arg(long, default_value = "sea_gcp_outbox")]
    pub outbox_table: String,
}

impl RepairArgs {
    /// Run the replay and print its report; fails when something was left behind.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let grace = sea_gcp::config::parse_duration(&self.grace)?;
        let settings = load_settings(self.settings.as_ref())?;
        let mut stores: Vec<Arc<dyn Store>> = Vec::new();
        for key in settings.store_keys() {
            stores.push(settings.open(key).await?);
        }
        let db = Database::connect(&self.database_url).await?;
        let report =
            sea_gcp::promote::replay_outbox(&db, &Outbox::new(self.outbox_table.clone()), &stores, grace).await?;
        writeln!(out, "repair: {report}")?;
        for (id, error) in &report.failed {
            writeln!(out, "  failed {id}: {error}")?;
        }
        for (id, store) in &report.unknown_store {
            writeln!(out, "  intent {id} names store `{store}`, which the settings do not define")?;
        }
        if report.is_clean() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "{} intent(s) left in the outbox; fix the cause above and run repair again",
                report.failed.len() + report.unknown_store.len()
            )))
        }
    }
}
