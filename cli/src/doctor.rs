//! `sea-gcp doctor`: check a store's bucket for what direct uploads and blob fields need.
//! See [`sea_gcp::upload::doctor`] and `docs/direct-uploads.md`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::args::load_settings;
use sea_gcp::config::BackendConfig;
use sea_gcp::upload::doctor::{DoctorExpectations, Severity, check_bucket, fetch_bucket};
use sea_gcp::{Error, Result};

/// Read a bucket's CORS, versioning, access control and lifecycle rules and say what is wrong.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The store to check.
    #[arg(long, default_value = "media")]
    pub store: String,
    /// Settings file (see sync-static --help).
    #[arg(long, env = "SEA_GCP_SETTINGS")]
    pub settings: Option<PathBuf>,
    /// Origin the application is served from (repeatable), e.g. https://app.example.com.
    #[arg(long = "origin")]
    pub origins: Vec<String>,
    /// The ingress prefix of the blob fields (relative to the store's location).
    #[arg(long, default_value = "_tmp/")]
    pub ingress_prefix: String,
    /// A field uses a -versioned overwrite mode: versioning must be on.
    #[arg(long)]
    pub versioned: bool,
}

impl DoctorArgs {
    /// Check and print one line per finding; fails when any finding is an error.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let settings = load_settings(self.settings.as_ref())?;
        let config = settings.store_config(&self.store)?;
        if config.backend != BackendConfig::Gcs {
            writeln!(out, "store `{}` is not on GCS: nothing to check", self.store)?;
            return Ok(());
        }
        let mut expect = DoctorExpectations::for_store(config, &self.ingress_prefix, self.origins.clone())?;
        expect.needs_versioning = self.versioned;
        let facts = fetch_bucket(config).await?;
        let findings = check_bucket(&facts, &expect);
        for f in &findings {
            let tag = match f.severity {
                Severity::Ok => "ok     ",
                Severity::Warning => "warning",
                Severity::Error => "error  ",
            };
            writeln!(out, "{tag} {:<15} {}", f.check, f.message)?;
        }
        let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
        if errors > 0 {
            return Err(Error::InvalidArgument(format!(
                "bucket `{}` has {errors} problem(s) that break direct uploads; see above",
                config.bucket_name
            )));
        }
        Ok(())
    }
}
