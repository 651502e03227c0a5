//! `sync`: make Cloud Scheduler hold one job per periodic task (and, with `cleanup`, no other job carrying
//! the application's affix). Plans first; applying the plan twice changes nothing the second time.

use std::fmt;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cron::{check_attempt_deadline, check_cron, check_time_zone};
use super::scheduler::{Job, SchedulerClient};
use super::{Registry, Schedule, TasksSettings};
use crate::{Error, Result};

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Create the job.
    Create(Job),
    /// Patch these fields of the job.
    Update(Job, Vec<&'static str>),
    /// The job is as wanted.
    Unchanged(Job),
    /// Delete the job (cleanup: it carries our affix and no task claims it).
    Delete(String),
    /// Reported, never changed: a job carrying the affix where the other naming puts it (a prefix,
    /// django-gcp's `{affix}{delimiter}{task}`, unless `django_gcp_compat` is set), so it fires beside
    /// ours and cleanup cannot see it. Delete it, or set `GCP_TASKS_DJANGO_GCP_COMPAT` to adopt it.
    OtherNaming(String),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Create(j) => write!(f, "create    scheduler job {} ({} {})", j.id(), j.schedule, j.time_zone),
            Change::Update(j, mask) => write!(f, "update    scheduler job {} ({})", j.id(), mask.join(", ")),
            Change::Unchanged(j) => write!(f, "unchanged scheduler job {}", j.id()),
            Change::Delete(name) => {
                write!(f, "delete    scheduler job {}", name.rsplit('/').next().unwrap_or_default())
            }
            Change::OtherNaming(name) => write!(
                f,
                "note      scheduler job {} carries the affix in the other naming's place (django-gcp puts it \
                 first, sea-gcp last; GCP_TASKS_DJANGO_GCP_COMPAT chooses): it is not managed here and still \
                 fires; delete it (gcloud scheduler jobs delete) or switch the naming",
                name.rsplit('/').next().unwrap_or_default()
            ),
        }
    }
}

/// The plan of a sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncPlan {
    /// The changes, in order.
    pub changes: Vec<Change>,
}

impl SyncPlan {
    /// True when applying changes nothing.
    pub fn is_noop(&self) -> bool {
        self.changes.iter().all(|c| matches!(c, Change::Unchanged(_) | Change::OtherNaming(_)))
    }
}

/// What `sync` needs to know about an application's tasks, as JSON: the application writes it
/// (`Manifest::from(&registry)`, e.g. behind a `--print-task-manifest` flag) and `sea-gcp tasks sync
/// --manifest FILE` reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// The periodic tasks.
    #[serde(default)]
    pub periodic: Vec<PeriodicEntry>,
    /// The subscriber tasks (listed for reference; `sync` does not manage their subscriptions yet).
    #[serde(default)]
    pub subscribers: Vec<SubscriberEntry>,
}

/// A periodic task in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodicEntry {
    /// The task's name.
    pub task: String,
    /// unix-cron schedule.
    pub cron: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Attempt deadline in seconds.
    pub attempt_deadline_seconds: u64,
    /// The body Scheduler posts.
    #[serde(default)]
    pub body: serde_json::Value,
    /// The job's description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A subscriber task in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberEntry {
    /// The task's name.
    pub task: String,
    /// The topic id.
    pub topic: String,
    /// Ordered delivery.
    #[serde(default)]
    pub enable_message_ordering: bool,
}

impl From<&Registry> for Manifest {
    fn from(registry: &Registry) -> Self {
        Self {
            periodic: registry
                .periodic()
                .into_iter()
                .map(|(task, s)| PeriodicEntry {
                    task: task.into(),
                    cron: s.cron,
                    time_zone: s.time_zone,
                    attempt_deadline_seconds: s.attempt_deadline.as_secs(),
                    body: s.body,
                    description: s.description,
                })
                .collect(),
            subscribers: registry
                .subscribers()
                .into_iter()
                .map(|(task, s)| SubscriberEntry {
                    task: task.into(),
                    topic: s.topic,
                    enable_message_ordering: s.enable_message_ordering,
                })
                .collect(),
        }
    }
}

impl Manifest {
    /// Read a manifest from JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::config(None, format!("task manifest is not valid JSON: {e}")))
    }

    fn schedules(&self) -> Vec<(&str, Schedule)> {
        self.periodic
            .iter()
            .map(|p| {
                let mut s = Schedule::cron(&p.cron)
                    .with_time_zone(&p.time_zone)
                    .with_attempt_deadline(Duration::from_secs(p.attempt_deadline_seconds));
                s.body = p.body.clone();
                s.description = p.description.clone();
                (p.task.as_str(), s)
            })
            .collect()
    }
}

/// The job of each periodic task in `manifest` (ids from [`TasksSettings::job_id`]), checked.
pub fn desired_jobs(manifest: &Manifest, settings: &TasksSettings) -> Result<Vec<Job>> {
    let parent =
        format!("projects/{}/locations/{}", settings.project_id.as_deref().unwrap_or_default(), settings.region);
    let mut jobs = Vec::new();
    for (task, schedule) in manifest.schedules() {
        let invalid = |m: String| Error::config(None, format!("periodic task `{task}`: {m}"));
        check_cron(&schedule.cron).map_err(invalid)?;
        check_time_zone(&schedule.time_zone).map_err(invalid)?;
        check_attempt_deadline(schedule.attempt_deadline).map_err(invalid)?;
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("Content-Type".to_string(), "application/json".to_string());
        jobs.push(Job {
            name: format!("{parent}/jobs/{}", settings.job_id(task)),
            description: schedule.description.clone(),
            schedule: schedule.cron.clone(),
            time_zone: schedule.time_zone.clone(),
            attempt_deadline: schedule.attempt_deadline,
            uri: settings.task_url(task),
            body: serde_json::to_vec(&schedule.body).unwrap_or_default(),
            headers,
            service_account: settings.invoker_service_account.clone(),
        });
    }
    Ok(jobs)
}

/// Compare the wanted jobs with Scheduler's. With `cleanup`, jobs carrying the affix that no task claims
/// are deleted; without an affix, cleanup is refused (nothing tells our jobs from others'). With an
/// affix, jobs carrying it in the other naming's place are reported ([`Change::OtherNaming`]).
pub async fn plan(
    client: &SchedulerClient,
    settings: &TasksSettings,
    manifest: &Manifest,
    cleanup: bool,
) -> Result<SyncPlan> {
    if cleanup && settings.resource_affix.is_none() {
        return Err(Error::config(
            None,
            "cleanup needs GCP_TASKS_RESOURCE_AFFIX: without an affix the jobs this application created cannot be told apart from others, so none are deleted",
        ));
    }
    let wanted = desired_jobs(manifest, settings)?;
    let mut changes = Vec::new();
    for job in &wanted {
        changes.push(match client.get_job(&job.name).await? {
            None => Change::Create(job.clone()),
            Some(current) => {
                let mask = job.differences(&current);
                if mask.is_empty() { Change::Unchanged(job.clone()) } else { Change::Update(job.clone(), mask) }
            }
        });
    }
    if settings.resource_affix.is_some() {
        let parent =
            format!("projects/{}/locations/{}", settings.project_id.as_deref().unwrap_or_default(), settings.region);
        for job in client.list_jobs(&parent, 100).await? {
            if wanted.iter().any(|w| w.name == job.name) {
                continue;
            }
            if cleanup && settings.job_carries_affix(job.id()) {
                changes.push(Change::Delete(job.name));
            } else if settings.job_carries_affix_elsewhere(job.id()) {
                changes.push(Change::OtherNaming(job.name));
            }
        }
    }
    Ok(SyncPlan { changes })
}

/// Apply `plan`.
pub async fn apply(client: &SchedulerClient, plan: &SyncPlan) -> Result<()> {
    for change in &plan.changes {
        match change {
            Change::Create(job) => {
                client.create_job(job).await?;
            }
            Change::Update(job, mask) => {
                client.patch_job(job, mask).await?;
            }
            Change::Unchanged(_) | Change::OtherNaming(_) => {}
            Change::Delete(name) => {
                client.delete_job(name).await?;
            }
        }
    }
    Ok(())
}
