//! [`Registry`]: the application's tasks by name, type-erased for the worker router and `sync`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{PeriodicTask, Schedule, SubscriberTask, Subscription, Task, TaskContext, TaskOptions};
use crate::{BoxError, Error, Result};

/// What kind of task a registered name is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskKind {
    /// Enqueued by the application (`enqueue`, `enqueue_later`).
    OnDemand,
    /// Triggered by a Cloud Scheduler job.
    Periodic(Schedule),
    /// Pushed by a Pub/Sub subscription.
    Subscriber(Subscription),
}

/// Why an erased run failed.
#[derive(Debug)]
pub enum RunError {
    /// The body is not the task's payload (the worker answers 400).
    BadPayload(String),
    /// The task returned an error (500, so Cloud Tasks retries).
    Failed(BoxError),
    /// The task's output did not serialize (500).
    BadOutput(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::BadPayload(e) => write!(f, "payload does not parse: {e}"),
            RunError::Failed(e) => write!(f, "task failed: {e}"),
            RunError::BadOutput(e) => write!(f, "task output does not serialize: {e}"),
        }
    }
}

/// A registered task with its payload type erased.
#[async_trait]
pub trait ErasedTask: Send + Sync {
    /// The task's name.
    fn name(&self) -> &'static str;
    /// Its options.
    fn options(&self) -> TaskOptions;
    /// Its kind.
    fn kind(&self) -> TaskKind;
    /// Parse `body` as the payload and run.
    async fn run_json(&self, body: &[u8], ctx: TaskContext) -> Result<serde_json::Value, RunError>;
}

struct Erased<T, K> {
    task: T,
    kind: K,
}

async fn run_typed<T: Task>(task: &T, body: &[u8], ctx: TaskContext) -> Result<serde_json::Value, RunError> {
    // An empty body is the JSON `null` (Scheduler jobs without a body, `()` payloads).
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"null" } else { body };
    let payload: T::Payload = serde_json::from_slice(body).map_err(|e| RunError::BadPayload(e.to_string()))?;
    let output = task.run(payload, ctx).await.map_err(RunError::Failed)?;
    serde_json::to_value(output).map_err(|e| RunError::BadOutput(e.to_string()))
}

#[async_trait]
impl<T: Task, K: Fn(&T) -> TaskKind + Send + Sync> ErasedTask for Erased<T, K> {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn options(&self) -> TaskOptions {
        self.task.options()
    }
    fn kind(&self) -> TaskKind {
        (self.kind)(&self.task)
    }
    async fn run_json(&self, body: &[u8], ctx: TaskContext) -> Result<serde_json::Value, RunError> {
        run_typed(&self.task, body, ctx).await
    }
}

/// The registered tasks. Names are unique and URL-safe; [`RegistryBuilder::build`] checks both.
#[derive(Clone, Default)]
pub struct Registry {
    tasks: Arc<BTreeMap<&'static str, Arc<dyn ErasedTask>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("tasks", &self.tasks.keys().collect::<Vec<_>>()).finish()
    }
}

impl Registry {
    /// A builder.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The task registered as `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn ErasedTask>> {
        self.tasks.get(name)
    }

    /// Every task, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn ErasedTask>> {
        self.tasks.values()
    }

    /// The periodic tasks and their schedules.
    pub fn periodic(&self) -> Vec<(&'static str, Schedule)> {
        self.iter()
            .filter_map(|t| match t.kind() {
                TaskKind::Periodic(s) => Some((t.name(), s)),
                _ => None,
            })
            .collect()
    }

    /// The subscriber tasks and their subscriptions.
    pub fn subscribers(&self) -> Vec<(&'static str, Subscription)> {
        self.iter()
            .filter_map(|t| match t.kind() {
                TaskKind::Subscriber(s) => Some((t.name(), s)),
                _ => None,
            })
            .collect()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when no task is registered.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

/// Builder of a [`Registry`].
#[derive(Default)]
pub struct RegistryBuilder {
    tasks: Vec<Arc<dyn ErasedTask>>,
}

impl std::fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryBuilder").field("tasks", &self.tasks.len()).finish()
    }
}

impl RegistryBuilder {
    /// Register a task: on-demand, and periodic as well when it declares a
    /// [`SCHEDULE`](super::Task::SCHEDULE).
    pub fn task<T: Task>(mut self, task: T) -> Self {
        let kind = |_: &T| match T::SCHEDULE {
            Some(declared) => TaskKind::Periodic(Schedule::declared(declared)),
            None => TaskKind::OnDemand,
        };
        self.tasks.push(Arc::new(Erased { task, kind }));
        self
    }

    /// Register a periodic task with the [`Schedule`] of its [`PeriodicTask`] impl (also enqueueable on
    /// demand).
    pub fn periodic<T: PeriodicTask>(mut self, task: T) -> Self {
        self.tasks.push(Arc::new(Erased { task, kind: |t: &T| TaskKind::Periodic(t.schedule()) }));
        self
    }

    /// Register a subscriber task.
    pub fn subscriber<T: SubscriberTask>(mut self, task: T) -> Self {
        self.tasks.push(Arc::new(Erased { task, kind: |t: &T| TaskKind::Subscriber(t.subscription()) }));
        self
    }

    /// Check names (unique, `[A-Za-z0-9_-]{1,100}`) and queue ids, and build.
    pub fn build(self) -> Result<Registry> {
        let mut map = BTreeMap::new();
        for task in self.tasks {
            let name = task.name();
            let valid = !name.is_empty()
                && name.len() <= 100
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(Error::config(
                    None,
                    format!(
                        "task name {name:?} must be 1 to 100 letters, digits, `-` or `_` (it is a URL segment and part of task ids)"
                    ),
                ));
            }
            if let Some(queue) = &task.options().queue
                && !super::settings::valid_queue_id(queue)
            {
                return Err(Error::config(
                    None,
                    format!("task `{name}` names queue {queue:?}, which is not a queue id"),
                ));
            }
            if let TaskKind::Periodic(schedule) = task.kind() {
                let check = super::cron::check_cron(&schedule.cron)
                    .and_then(|_| super::cron::check_time_zone(&schedule.time_zone))
                    .and_then(|_| super::cron::check_attempt_deadline(schedule.attempt_deadline));
                if let Err(e) = check {
                    return Err(Error::config(None, format!("periodic task `{name}`: {e}")));
                }
            }
            if map.insert(name, task).is_some() {
                return Err(Error::config(
                    None,
                    format!("two tasks are registered as `{name}`: give each a unique NAME"),
                ));
            }
        }
        Ok(Registry { tasks: Arc::new(map) })
    }
}
