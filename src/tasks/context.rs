//! [`TaskContext`]: what a running task knows about its delivery.

use chrono::{DateTime, Utc};

#[cfg(feature = "oidc")]
use crate::auth::VerifiedCaller;

/// The delivery of one task run: from Cloud Tasks' `X-CloudTasks-*` headers (read only after the token
/// verified), Scheduler's `X-CloudScheduler*` headers, or the in-process run of eager mode.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct TaskContext {
    /// The registered task's name (`send-welcome`).
    pub task: String,
    /// The Cloud Tasks task id (`X-CloudTasks-TaskName`), or the Scheduler job for periodic runs.
    pub task_name: Option<String>,
    /// The queue id (`X-CloudTasks-QueueName`).
    pub queue: Option<String>,
    /// How many times this task was retried (`X-CloudTasks-TaskRetryCount`; 0 on the first attempt).
    pub retry_count: u32,
    /// How many times the task received a response from the worker (`X-CloudTasks-TaskExecutionCount`).
    pub execution_count: u32,
    /// When the task was scheduled to run (`X-CloudTasks-TaskETA`).
    pub eta: Option<DateTime<Utc>>,
    /// Why the previous attempt failed (`X-CloudTasks-TaskRetryReason`), on retries.
    pub retry_reason: Option<String>,
    /// The previous attempt's HTTP status (`X-CloudTasks-TaskPreviousResponse`), on retries.
    pub previous_response: Option<u16>,
    /// True for a periodic run triggered by Cloud Scheduler (`X-CloudScheduler: true`).
    pub from_scheduler: bool,
    /// True when the task runs in-process (eager execution).
    pub eager: bool,
    /// The verified caller (None in eager mode or with authentication disabled).
    #[cfg(feature = "oidc")]
    pub caller: Option<VerifiedCaller>,
    /// The pushed Pub/Sub message, for subscriber tasks.
    #[cfg(feature = "pubsub")]
    pub message: Option<crate::pubsub::PubSubMessage>,
}

impl TaskContext {
    /// The context of an in-process (eager) run of `task`.
    pub fn eager(task: &str, queue: &str) -> Self {
        Self { task: task.into(), queue: Some(queue.into()), eager: true, ..Self::default() }
    }

    /// Read `X-CloudTasks-*` and `X-CloudScheduler*` headers. Call only after the request's token verified:
    /// the headers are the caller's word.
    pub(crate) fn from_headers(task: &str, headers: &axum::http::HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(0);
        let eta = text("x-cloudtasks-tasketa").and_then(|v| v.trim().parse::<f64>().ok()).and_then(|secs| {
            DateTime::from_timestamp(
                secs.trunc() as i64,
                ((secs.fract()) * 1e9).round().clamp(0.0, 999_999_999.0) as u32,
            )
        });
        let from_scheduler = text("x-cloudscheduler").is_some_and(|v| v == "true");
        Self {
            task: task.into(),
            task_name: text("x-cloudtasks-taskname").or_else(|| text("x-cloudscheduler-jobname")),
            queue: text("x-cloudtasks-queuename"),
            retry_count: number("x-cloudtasks-taskretrycount"),
            execution_count: number("x-cloudtasks-taskexecutioncount"),
            eta,
            retry_reason: text("x-cloudtasks-taskretryreason"),
            previous_response: text("x-cloudtasks-taskpreviousresponse").and_then(|v| v.parse().ok()),
            from_scheduler,
            eager: false,
            #[cfg(feature = "oidc")]
            caller: None,
            #[cfg(feature = "pubsub")]
            message: None,
        }
    }
}
