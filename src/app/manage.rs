//! [`Gcp::manage`]: the application binary answers sea-gcp's management commands itself, as Django's
//! `manage.py` does, so the commands see the application's own registry (no manifest file to keep).

use super::Gcp;
use crate::{Error, Result};

/// The first argument that hands the command line to sea-gcp.
pub(super) const COMMAND: &str = "sea-gcp";

const USAGE: &str = "usage: <app> sea-gcp <command>
commands:
  settings                       print the resolved settings and where each value came from (secrets hidden)
  migrate                        create or upgrade sea-gcp's tables
  repair                         replay interrupted blob saves now
  tasks sync [--dry-run] [--cleanup]
                                 make Cloud Scheduler hold one job per periodic task (--cleanup: delete jobs
                                 carrying the resource affix that no task claims; --dry-run: only print)
  tasks manifest                 print the registry as JSON (for `sea-gcp tasks sync --manifest`)
  variants backfill [--dry-run]  make the missing variants of every row of the fields with variants, here,
                                 with progress (resumable: rows already done cost no storage call)";

impl Gcp {
    /// Answer a management command when the process was started as `<app> sea-gcp ...` and return true
    /// (the caller then exits); return false for any other command line. Call it right after `build`:
    /// `if gcp.manage().await? { return Ok(()) }`.
    pub async fn manage(&self) -> Result<bool> {
        let mut out = std::io::stdout();
        self.manage_args(std::env::args().skip(1), &mut out).await
    }

    /// [`manage`](Self::manage) with the given arguments (without the program name), writing to `out`.
    pub async fn manage_args(
        &self,
        args: impl IntoIterator<Item = String>,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<bool> {
        let args: Vec<String> = args.into_iter().collect();
        if args.first().map(String::as_str) != Some(COMMAND) {
            return Ok(false);
        }
        let words: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        let write = |out: &mut (dyn std::io::Write + Send), text: &str| {
            out.write_all(text.as_bytes()).map_err(|e| Error::config(None, format!("cannot write the output: {e}")))
        };
        match words.as_slice() {
            ["settings"] => write(out, &self.settings().describe())?,
            ["migrate"] => {
                crate::create_tables(self.db()).await?;
                write(out, "sea-gcp tables are up to date\n")?;
            }
            ["repair"] => {
                let report = self.blobs().repair().await?;
                write(out, &format!("{report}\n"))?;
            }
            #[cfg(feature = "tasks")]
            ["tasks", "manifest"] => {
                let registry = self.tasks().map(|t| t.registry().clone()).unwrap_or_default();
                let manifest = crate::tasks::sync::Manifest::from(&registry);
                let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
                write(out, &format!("{text}\n"))?;
            }
            #[cfg(feature = "tasks")]
            ["tasks", "sync", flags @ ..] => {
                let mut dry_run = false;
                let mut cleanup = false;
                for flag in flags {
                    match *flag {
                        "--dry-run" => dry_run = true,
                        "--cleanup" => cleanup = true,
                        other => return Err(Error::config(None, format!("unknown flag {other}\n{USAGE}"))),
                    }
                }
                if self.local_cloud().is_some() {
                    write(
                        out,
                        "local mode: the app's local scheduler creates its jobs at start; nothing to sync \
                         (set project_id, or [tasks] local = false, to sync Cloud Scheduler)\n",
                    )?;
                } else {
                    let plan = self.sync_schedules(dry_run, cleanup).await?;
                    for change in &plan.changes {
                        write(out, &format!("{change}\n"))?;
                    }
                    let verb = if dry_run { "would change" } else { "changed" };
                    let count = plan.changes.iter().filter(|c| !plan_noop(c)).count();
                    write(out, &format!("{verb} {count} job(s)\n"))?;
                }
            }
            #[cfg(feature = "images")]
            ["variants", "backfill", flags @ ..] => {
                let dry_run = match flags {
                    [] => false,
                    ["--dry-run"] => true,
                    other => return Err(Error::config(None, format!("unknown flag {}\n{USAGE}", other.join(" ")))),
                };
                let fields = self.blobs().variant_fields();
                if fields.is_empty() {
                    write(out, "no blob field has variants: nothing to backfill\n")?;
                }
                for field in &fields {
                    let name = format!("{}.{}", field.table, field.column);
                    let report = crate::images::backfill::backfill(self.db(), field, dry_run, |so_far| {
                        let _ = out.write_all(format!("{name}: {so_far}\n").as_bytes());
                    })
                    .await?;
                    let verb = if dry_run { "would make the variants of" } else { "made the variants of" };
                    write(out, &format!("{name}: {verb} {} value(s); {report}\n", report.incomplete))?;
                    for (pk, error) in &report.failed {
                        write(out, &format!("{name}: row {pk} failed: {error} (run again to retry)\n"))?;
                    }
                }
            }
            _ => return Err(Error::config(None, format!("unknown sea-gcp command `{}`\n{USAGE}", words.join(" ")))),
        }
        Ok(true)
    }

    /// Plan, and unless `dry_run` apply, the Scheduler jobs of the periodic tasks (against the local
    /// scheduler in local mode).
    #[cfg(feature = "tasks")]
    pub(crate) async fn sync_schedules(&self, dry_run: bool, cleanup: bool) -> Result<crate::tasks::sync::SyncPlan> {
        use crate::tasks::SchedulerClient;
        use crate::tasks::sync::{Manifest, apply, plan};
        let tasks =
            self.tasks().ok_or_else(|| Error::config(None, "no task is registered: there is nothing to sync"))?;
        let settings = tasks.settings();
        let client = if self.local_cloud().is_some() || crate::tasks::is_loopback_url(&settings.scheduler_endpoint) {
            SchedulerClient::unauthenticated(&settings.scheduler_endpoint)
        } else {
            SchedulerClient::application_default(&settings.scheduler_endpoint)?
        };
        let manifest = Manifest::from(tasks.registry());
        let planned = plan(&client, settings, &manifest, cleanup).await?;
        if !dry_run {
            apply(&client, &planned).await?;
        }
        Ok(planned)
    }
}

#[cfg(feature = "tasks")]
fn plan_noop(change: &crate::tasks::sync::Change) -> bool {
    use crate::tasks::sync::Change;
    matches!(change, Change::Unchanged(_) | Change::OtherNaming(_))
}
