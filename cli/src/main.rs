//! The `sea-gcp` command line (package `sea-gcp-cli`): a thin layer of clap arguments and progress bars
//! over the library's operations.
//!
//! One file per subcommand; [`Command`] lists them. To add one (`doctor`, `repair`, ...): write
//! `cli/src/<name>.rs` with a clap `Args` struct and an `async fn run(self, out: &mut dyn Write) ->
//! Result<()>`, add a variant to [`Command`] and a line to [`Command::run`]. Shared flags live in
//! [`args`]. Errors are returned as [`sea_gcp::Error`]; [`main`] prints them as one line on stderr and exits
//! non-zero (1 for a failed command, 2 for bad usage).

mod args;
mod cleanup;
mod doctor;
mod download;
mod migrate_column;
mod post_policy;
mod repair;
mod settings;
mod sign_url;
mod sync_static;
mod tasks_outbox;
mod tasks_sync;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use sea_gcp::Result;

/// `sea-gcp`: Google Cloud Storage tools for sea-gcp applications.
#[derive(Debug, Parser)]
#[command(name = "sea-gcp", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a V4 signed URL for gs://BUCKET/OBJECT (flags as in `gcloud storage sign-url`).
    SignUrl(sign_url::SignUrlArgs),
    /// Print a V4 POST policy for gs://BUCKET/OBJECT as JSON: {"url": ..., "fields": {...}}.
    PostPolicy(post_policy::PostPolicyArgs),
    /// Upload new and changed files of a directory to a store (django-gcp's collectstatic).
    SyncStatic(sync_static::SyncStaticArgs),
    /// Download an object to a file, in parallel slices when it is large, with its CRC32C checked.
    Download(download::DownloadArgs),
    /// Finish or undo interrupted blob saves (replay the outbox).
    Repair(repair::RepairArgs),
    /// Check a bucket's CORS, versioning, access control and lifecycle for direct uploads.
    Doctor(doctor::DoctorArgs),
    /// Remove abandoned uploads: temp objects under the ingress prefix, and a local store's stale temp files.
    Cleanup(cleanup::CleanupArgs),
    /// Backfill a blob column from a path column (metadata from bucket listings), then optionally swap them.
    MigrateColumn(migrate_column::MigrateColumnArgs),
    /// Print every resolved setting and where it came from (file, variable, default); secrets hidden.
    Settings(settings::SettingsArgs),
    /// Background tasks: `tasks sync` creates the Scheduler jobs of periodic tasks; `tasks outbox` lists,
    /// retries or discards failed outbox entries.
    Tasks(tasks_sync::TasksArgs),
}

impl Command {
    /// Run the subcommand, writing its output to `out`.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        match self {
            Command::SignUrl(args) => args.run(out).await,
            Command::PostPolicy(args) => args.run(out).await,
            Command::SyncStatic(args) => args.run(out).await,
            Command::Download(args) => args.run(out).await,
            Command::Repair(args) => args.run(out).await,
            Command::Doctor(args) => args.run(out).await,
            Command::MigrateColumn(args) => args.run(out).await,
            Command::Cleanup(args) => args.run(out).await,
            Command::Settings(args) => args.run(out).await,
            Command::Tasks(args) => args.run(out).await,
        }
    }
}

/// One line: newlines in a message become spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The binary's entry point: parse arguments, run, report errors as one line on stderr.
fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (please report it): {}", one_line(&info.to_string()));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(2);
            }
            // The first paragraph is the message (and, for missing arguments, their names).
            let rendered = e.render().to_string();
            let first: Vec<&str> =
                rendered.lines().skip_while(|l| l.trim().is_empty()).take_while(|l| !l.trim().is_empty()).collect();
            let message = one_line(&first.join(" "));
            let message = if message.is_empty() { "error: bad arguments".to_string() } else { message };
            eprintln!("{message} (see --help)");
            return ExitCode::from(2);
        }
    };
    // Library logs (retries, skipped files) on stderr; RUST_LOG=sea_gcp=debug shows more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(cli.command.run(&mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            ExitCode::from(1)
        }
    }
}
