//! The [`Task`] trait, its options, and the kinds: on-demand, [`PeriodicTask`] and [`SubscriberTask`].

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::TaskContext;
use crate::BoxError;

/// A unit of background work with a stable name (its URL is `{tasks_domain}/tasks/{NAME}`), a typed
/// payload and an async `run`.
///
/// ```
/// use sea_gcp::tasks::{Task, TaskContext};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Welcome { user_id: i64 }
///
/// struct SendWelcome;
///
/// #[async_trait::async_trait]
/// impl Task for SendWelcome {
///     const NAME: &'static str = "send-welcome";
///     type Payload = Welcome;
///     type Output = serde_json::Value;
///     async fn run(&self, payload: Welcome, ctx: TaskContext) -> Result<Self::Output, sea_gcp::BoxError> {
///         Ok(serde_json::json!({"sent_to": payload.user_id, "attempt": ctx.retry_count}))
///     }
/// }
/// ```
#[async_trait]
pub trait Task: Send + Sync + 'static {
    /// The stable name: the URL segment and registry key (`[A-Za-z0-9_-]`, at most 100 characters).
    /// Renaming a task orphans tasks already queued under the old name.
    const NAME: &'static str;
    /// What `enqueue` takes and `run` receives (sent as JSON).
    type Payload: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What `run` returns (answered as JSON with 200).
    type Output: Serialize + Send + 'static;

    /// A schedule makes the task periodic as well as on-demand: unix-cron, in UTC unless prefixed with
    /// a time zone the way cron does (`"CRON_TZ=Europe/London 0 3 * * *"`). Cloud Scheduler runs it (the
    /// app's `sea-gcp tasks sync` creates the job; the local scheduler fires it in local mode). For an
    /// attempt deadline or a body, implement [`PeriodicTask`] and register with `periodic` instead.
    const SCHEDULE: Option<&'static str> = None;

    /// Queue, deduplication and dispatch deadline (default: the default queue, not deduplicated).
    fn options(&self) -> TaskOptions {
        TaskOptions::default()
    }

    /// Do the work. An error makes the worker answer 500 (with no detail; the detail is logged), so Cloud
    /// Tasks retries per the queue's retry configuration.
    async fn run(&self, payload: Self::Payload, ctx: TaskContext) -> Result<Self::Output, BoxError>;
}

/// Per-task options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskOptions {
    /// The queue id (default: [`TasksSettings::default_queue`](super::TasksSettings::default_queue)).
    pub queue: Option<String>,
    /// Name each task by its payload (see [`task_id`](super::task_id)) so an identical payload enqueued
    /// again within Cloud Tasks' de-duplication window fails with [`Error::DuplicateTask`](crate::Error).
    pub deduplicate: bool,
    /// How long Cloud Tasks waits for the worker (15 s to 30 min; default the queue's, 10 min).
    pub dispatch_deadline: Option<Duration>,
}

impl TaskOptions {
    /// Set [`TaskOptions::queue`].
    pub fn with_queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    /// Set [`TaskOptions::deduplicate`].
    pub fn with_deduplicate(mut self, deduplicate: bool) -> Self {
        self.deduplicate = deduplicate;
        self
    }
    /// Set [`TaskOptions::dispatch_deadline`].
    pub fn with_dispatch_deadline(mut self, deadline: Duration) -> Self {
        self.dispatch_deadline = Some(deadline);
        self
    }
}

/// When a periodic task runs: a Cloud Scheduler job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Schedule {
    /// unix-cron (five fields: minute hour day-of-month month day-of-week), e.g. `0 3 * * *`.
    pub cron: String,
    /// IANA time zone of the schedule (default `UTC`).
    pub time_zone: String,
    /// How long Scheduler waits for the worker (15 s to 30 min; default 3 min, Scheduler's).
    pub attempt_deadline: Duration,
    /// The JSON body Scheduler posts (the task's payload; default `{}`).
    pub body: serde_json::Value,
    /// The job's description.
    pub description: Option<String>,
}

impl Schedule {
    /// A schedule with `cron`, in UTC, Scheduler's 3-minute attempt deadline and an empty object body.
    pub fn cron(cron: impl Into<String>) -> Self {
        Self {
            cron: cron.into(),
            time_zone: "UTC".into(),
            attempt_deadline: Duration::from_secs(180),
            body: serde_json::json!({}),
            description: None,
        }
    }
    /// A [`Task::SCHEDULE`]: unix-cron, optionally prefixed `CRON_TZ=<IANA zone> `.
    pub fn declared(text: &str) -> Self {
        let text = text.trim();
        match text.strip_prefix("CRON_TZ=").and_then(|rest| rest.split_once(char::is_whitespace)) {
            Some((zone, cron)) => Self::cron(cron.trim()).with_time_zone(zone),
            None => Self::cron(text),
        }
    }

    /// Set [`Schedule::time_zone`].
    pub fn with_time_zone(mut self, tz: impl Into<String>) -> Self {
        self.time_zone = tz.into();
        self
    }
    /// Set [`Schedule::attempt_deadline`].
    pub fn with_attempt_deadline(mut self, deadline: Duration) -> Self {
        self.attempt_deadline = deadline;
        self
    }
    /// Set [`Schedule::body`] from a payload.
    pub fn with_payload<P: Serialize>(mut self, payload: &P) -> Self {
        self.body = serde_json::to_value(payload).unwrap_or(serde_json::Value::Null);
        self
    }
    /// Set [`Schedule::description`].
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// A task Cloud Scheduler triggers on a [`Schedule`] (`sea-gcp tasks sync` creates the job).
pub trait PeriodicTask: Task {
    /// The schedule.
    fn schedule(&self) -> Schedule;
}

/// Where a subscriber task's messages come from: a Pub/Sub topic and the push subscription `sync` creates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// The topic id (created by `sync` when missing).
    pub topic: String,
    /// Deliver messages with the same ordering key in order.
    pub enable_message_ordering: bool,
    /// Seconds Pub/Sub waits for the push endpoint's answer (10..600; default 60).
    pub ack_deadline_seconds: u32,
}

impl Subscription {
    /// A subscription to `topic`, unordered, 60 s ack deadline.
    pub fn topic(topic: impl Into<String>) -> Self {
        Self { topic: topic.into(), enable_message_ordering: false, ack_deadline_seconds: 60 }
    }
    /// Set [`Subscription::enable_message_ordering`].
    pub fn with_ordering(mut self, ordering: bool) -> Self {
        self.enable_message_ordering = ordering;
        self
    }
    /// Set [`Subscription::ack_deadline_seconds`].
    pub fn with_ack_deadline_seconds(mut self, seconds: u32) -> Self {
        self.ack_deadline_seconds = seconds;
        self
    }
}

/// A task that runs for each message Pub/Sub pushes from its [`Subscription`]'s topic (route
/// `{tasks_domain}/subscriber-tasks/{NAME}`). Its payload is the message's JSON data.
pub trait SubscriberTask: Task {
    /// The topic and subscription settings.
    fn subscription(&self) -> Subscription;
}
