//! `sea-gcp tasks sync`: create or update the Cloud Scheduler jobs of an application's periodic tasks and
//! the Pub/Sub push subscriptions (and topics) of its subscriber tasks, from the task manifest the
//! application writes; print the plan, and with `--cleanup` delete the jobs and subscriptions carrying the
//! resource affix that no task claims. Settings come from the `GCP_TASKS_*` variables; Pub/Sub is the
//! emulator at `PUBSUB_EMULATOR_HOST` when that is set.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use sea_gcp::pubsub::PubSubClient;
use sea_gcp::tasks::sync::{Manifest, apply, desired_jobs, plan};
use sea_gcp::tasks::sync_subscriptions::{apply_subscriptions, desired_subscriptions, plan_subscriptions};
use sea_gcp::tasks::{SchedulerClient, TasksSettings};
use sea_gcp::{Error, Result};

/// `sea-gcp tasks ...`.
#[derive(Debug, Args)]
pub struct TasksArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TasksCommand,
}

/// The `tasks` subcommands.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Create or update the Scheduler jobs of periodic tasks and the push subscriptions of subscriber
    /// tasks; --cleanup deletes stale ones with our affix.
    Sync(TasksSyncArgs),
    /// The task outbox's failed entries: list, retry or discard them.
    Outbox(crate::tasks_outbox::OutboxArgs),
}

impl TasksArgs {
    /// Run the subcommand.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        match self.command {
            TasksCommand::Sync(args) => args.run(out).await,
            TasksCommand::Outbox(args) => args.run(out).await,
        }
    }
}

/// Flags of `sea-gcp tasks sync`.
#[derive(Debug, Args)]
pub struct TasksSyncArgs {
    /// The task manifest (JSON) the application writes from its task registry.
    #[arg(long, value_name = "FILE", env = "SEA_GCP_TASK_MANIFEST")]
    pub manifest: PathBuf,
    /// Print the jobs and subscriptions the manifest asks for, and change nothing. Calls no Google API
    /// and needs no credentials (use --plan to compare with what exists).
    #[arg(long, conflicts_with_all = ["plan", "cleanup"])]
    pub dry_run: bool,
    /// Compare with the jobs and subscriptions that exist (read-only calls) and print what a sync would
    /// change, without changing it.
    #[arg(long)]
    pub plan: bool,
    /// Also delete jobs whose names carry GCP_TASKS_RESOURCE_AFFIX and that no task claims.
    #[arg(long)]
    pub cleanup: bool,
    /// The worker's base URL the jobs call (overrides GCP_TASKS_DOMAIN).
    #[arg(long, value_name = "URL")]
    pub tasks_domain: Option<String>,
}

impl TasksSyncArgs {
    /// Plan, print, and apply unless --dry-run.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        if let Some(domain) = &self.tasks_domain {
            vars.retain(|(k, _)| k != "GCP_TASKS_DOMAIN");
            vars.push(("GCP_TASKS_DOMAIN".into(), domain.clone()));
        }
        let settings = TasksSettings::for_sync_from_vars(vars)?;
        let text = std::fs::read_to_string(&self.manifest).map_err(|e| {
            Error::config(None, format!("cannot read the task manifest {}: {e}", self.manifest.display()))
        })?;
        let manifest = Manifest::from_json(&text)?;
        if self.dry_run {
            for job in desired_jobs(&manifest, &settings)? {
                writeln!(
                    out,
                    "want      scheduler job {} ({} {}) -> {}",
                    job.id(),
                    job.schedule,
                    job.time_zone,
                    job.uri
                )?;
            }
            for subscription in desired_subscriptions(&manifest, &settings) {
                writeln!(
                    out,
                    "want      push subscription {} (topic {}) -> {}",
                    subscription.name, subscription.topic, subscription.push_endpoint
                )?;
            }
            writeln!(out, "dry run: nothing read or changed (--plan compares with what exists)")?;
            return Ok(());
        }
        let client = if is_loopback(&settings.scheduler_endpoint) {
            SchedulerClient::unauthenticated(&settings.scheduler_endpoint)
        } else {
            SchedulerClient::application_default(&settings.scheduler_endpoint)?
        };
        let planned = plan(&client, &settings, &manifest, self.cleanup).await?;
        for change in &planned.changes {
            writeln!(out, "{change}")?;
        }
        let subscriptions = if manifest.subscribers.is_empty() {
            None
        } else {
            let project = settings.project_id.clone().unwrap_or_default();
            let pubsub = PubSubClient::from_env(project)?;
            let planned = plan_subscriptions(&pubsub, &settings, &manifest, self.cleanup).await?;
            for change in &planned.changes {
                writeln!(out, "{change}")?;
            }
            Some((pubsub, planned))
        };
        if self.plan {
            writeln!(out, "plan only: nothing changed")?;
            return Ok(());
        }
        apply(&client, &planned).await?;
        let mut noop = planned.is_noop();
        if let Some((pubsub, planned)) = &subscriptions {
            apply_subscriptions(pubsub, planned).await?;
            noop &= planned.is_noop();
        }
        writeln!(out, "{}", if noop { "nothing to change" } else { "applied" })?;
        Ok(())
    }
}

fn is_loopback(endpoint: &str) -> bool {
    url::Url::parse(endpoint).ok().and_then(|u| u.host_str().map(str::to_owned)).is_some_and(|h| {
        h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || h == "[::1]"
    })
}
