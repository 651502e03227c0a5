//! `sea-gcp settings`: every resolved setting and where it came from (file, variable, default), secrets
//! hidden. An application answering management commands (`Gcp::manage`) prints the same from its own
//! settings.

use std::io::Write;

use clap::Args;
use sea_gcp::{Error, Result};

/// Arguments of `sea-gcp settings`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// The settings file (default: `$SEA_GCP_SETTINGS`, else `./sea-gcp.toml` when present).
    #[arg(long)]
    pub settings: Option<std::path::PathBuf>,
}

impl SettingsArgs {
    /// Print the settings.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let settings = match &self.settings {
            Some(path) => sea_gcp::Settings::from_file(path)?,
            None => sea_gcp::Settings::load()?,
        };
        out.write_all(settings.describe().as_bytes())
            .map_err(|e| Error::config(None, format!("cannot write the settings: {e}")))
    }
}
