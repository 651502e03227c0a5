//! `sea-gcp tasks outbox list|retry|discard`: the task-outbox rows that were given up (`failed`: Cloud
//! Tasks refused them for good, or they ran out of send attempts), with their last error; put them back
//! to be sent, or delete them.

use std::io::Write;

use clap::{Args, Subcommand};
use sea_orm::Database;

use sea_gcp::tasks::{DEFAULT_TASK_OUTBOX, EntryState, TaskOutbox};
use sea_gcp::{Error, Result};

/// `sea-gcp tasks outbox ...`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// The database holding the outbox.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The outbox table.
    #[arg(long, default_value = DEFAULT_TASK_OUTBOX)]
    pub table: String,
    /// What to do.
    #[command(subcommand)]
    pub command: OutboxCommand,
}

/// The `tasks outbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List failed entries: id, task, attempts, when it failed, last error.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Put failed entries back to be sent (their attempts start again).
    Retry(Selection),
    /// Delete failed entries: their tasks never run.
    Discard(Selection),
}

/// Which failed entries.
#[derive(Debug, Args)]
pub struct Selection {
    /// Entry ids (as `list` prints them).
    #[arg(value_name = "ID", required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<String>,
    /// Every failed entry.
    #[arg(long)]
    pub all: bool,
}

impl OutboxArgs {
    /// Run the subcommand.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let db = Database::connect(&self.database_url).await?;
        let outbox = TaskOutbox::new(&self.table);
        match self.command {
            OutboxCommand::List { limit } => {
                let rows = outbox.list(&db, EntryState::Failed, limit).await?;
                if rows.is_empty() {
                    writeln!(out, "no failed entries in {}", self.table)?;
                }
                for row in rows {
                    let when = row
                        .failed_at
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default();
                    let error = row.last_error.unwrap_or_default().replace('\n', " ");
                    writeln!(out, "{}\t{}\t{} attempts\t{when}\t{error}", row.id, row.task, row.attempts)?;
                }
            }
            OutboxCommand::Retry(selection) => {
                let ids = selection.ids(&db, &outbox).await?;
                let moved = outbox.retry(&db, &ids).await?;
                writeln!(out, "{moved} entr{} back to pending", if moved == 1 { "y" } else { "ies" })?;
                not_failed(&ids, moved)?;
            }
            OutboxCommand::Discard(selection) => {
                let ids = selection.ids(&db, &outbox).await?;
                let deleted = outbox.discard(&db, &ids).await?;
                writeln!(out, "{deleted} entr{} deleted", if deleted == 1 { "y" } else { "ies" })?;
                not_failed(&ids, deleted)?;
            }
        }
        Ok(())
    }
}

impl Selection {
    async fn ids(self, db: &sea_orm::DatabaseConnection, outbox: &TaskOutbox) -> Result<Vec<String>> {
        if !self.all {
            return Ok(self.ids);
        }
        Ok(outbox.list(db, EntryState::Failed, u64::MAX >> 1).await?.into_iter().map(|r| r.id).collect())
    }
}

/// Named ids that were not failed entries are an error (after the others were handled).
fn not_failed(ids: &[String], done: u64) -> Result<()> {
    if done < ids.len() as u64 {
        return Err(Error::InvalidArgument(format!(
            "{} of the {} ids named no failed entry (run `sea-gcp tasks outbox list` to see them)",
            ids.len() as u64 - done,
            ids.len()
        )));
    }
    Ok(())
}
