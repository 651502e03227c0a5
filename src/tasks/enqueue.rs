//! [`Tasks`]: enqueue tasks (`enqueue`, `enqueue_later`), run them eagerly, or not at all.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::client::{CloudTasksClient, NewTask, TaskInfo};
use super::{Registry, RunError, Task, TaskContext, TasksSettings, dedup};
use crate::{Error, Result};

/// When a task should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// As soon as possible.
    Now,
    /// After a delay from now.
    Delay(Duration),
    /// At (or after) a time.
    At(DateTime<Utc>),
}

impl From<Duration> for When {
    fn from(d: Duration) -> Self {
        When::Delay(d)
    }
}

impl From<DateTime<Utc>> for When {
    fn from(at: DateTime<Utc>) -> Self {
        When::At(at)
    }
}

impl When {
    /// The schedule time (None for now).
    pub fn schedule_time(&self) -> Result<Option<DateTime<Utc>>> {
        match self {
            When::Now => Ok(None),
            When::At(at) => Ok(Some(*at)),
            When::Delay(d) => {
                let d = chrono::Duration::from_std(*d)
                    .map_err(|_| Error::InvalidArgument(format!("delay {d:?} is too long")))?;
                Ok(Some(Utc::now() + d))
            }
        }
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Enqueued {
    /// Cloud Tasks holds the task.
    Sent(TaskInfo),
    /// Eager execution: the task ran in-process; its output.
    Ran(serde_json::Value),
    /// `disable_execute` is set: nothing was enqueued (also logged).
    Disabled,
    /// Written to the outbox in the caller's transaction; the dispatcher sends it after commit.
    Outboxed {
        /// The Cloud Tasks task id it will be created with (the idempotency key).
        id: String,
    },
}

/// A task ready to send: where, with which id and body.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub task: &'static str,
    pub queue: String,
    pub id: Option<String>,
    pub body: Vec<u8>,
    pub schedule_time: Option<DateTime<Utc>>,
    pub dispatch_deadline: Option<Duration>,
}

pub(crate) struct Inner {
    pub settings: TasksSettings,
    pub registry: Registry,
    pub client: CloudTasksClient,
    /// Wakes this process's dispatchers (built from this `Tasks`) after a commit.
    pub wake: Arc<tokio::sync::Notify>,
}

/// The application's handle on its tasks: settings, registry and the Cloud Tasks client. Cheap to clone.
#[derive(Clone)]
pub struct Tasks {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("settings", &self.inner.settings)
            .field("registry", &self.inner.registry)
            .field("client", &self.inner.client)
            .finish()
    }
}

impl Tasks {
    /// Tasks with `settings` (validated again here), `registry` and `client`.
    pub fn new(settings: TasksSettings, registry: Registry, client: CloudTasksClient) -> Result<Self> {
        settings.validate()?;
        if settings.eager_execute {
            tracing::info!("GCP_TASKS_EAGER_EXECUTE: tasks run in-process at enqueue, nothing is sent to Cloud Tasks");
        }
        if settings.disable_execute {
            tracing::warn!("GCP_TASKS_DISABLE_EXECUTE: no task will be enqueued or run");
        }
        Ok(Self { inner: Arc::new(Inner { settings, registry, client, wake: Arc::default() }) })
    }

    /// The settings.
    pub fn settings(&self) -> &TasksSettings {
        &self.inner.settings
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The Cloud Tasks client.
    pub fn client(&self) -> &CloudTasksClient {
        &self.inner.client
    }

    /// Tell this process's [`Dispatcher`](super::Dispatcher) (one built from this `Tasks`, running
    /// [`run_until`](super::Dispatcher::run_until)) that outbox rows were committed: it claims and sends
    /// them at once instead of at its next poll. Call it after committing a transaction that used
    /// [`enqueue_in`](Self::enqueue_in), or use [`commit_and_send`](Self::commit_and_send).
    pub fn wake_dispatcher(&self) {
        self.inner.wake.notify_one();
    }

    /// Commit `txn` and, once it committed, [`wake_dispatcher`](Self::wake_dispatcher), so that the
    /// tasks it enqueued are sent right away by this process (the poll of any dispatcher is the
    /// fallback).
    pub async fn commit_and_send(&self, txn: sea_orm::DatabaseTransaction) -> Result<()> {
        txn.commit().await?;
        self.wake_dispatcher();
        Ok(())
    }

    /// Enqueue `T` with `payload` to run now.
    pub async fn enqueue<T: Task>(&self, payload: &T::Payload) -> Result<Enqueued> {
        self.enqueue_later::<T>(payload, When::Now).await
    }

    /// Enqueue `T` with `payload` to run after a delay (`Duration`) or at a time (`DateTime<Utc>`).
    pub async fn enqueue_later<T: Task>(&self, payload: &T::Payload, when: impl Into<When>) -> Result<Enqueued> {
        let when = when.into();
        if self.inner.settings.disable_execute {
            return self.short_circuit::<T>(payload).await.map(|d| d.unwrap_or(Enqueued::Disabled));
        }
        // Cloud Tasks' limits hold in every mode: a task that runs eagerly in development must not be
        // one that Cloud Tasks would refuse in production.
        let prepared = self.prepare::<T>(payload, when, false)?;
        if let Some(done) = self.short_circuit::<T>(payload).await? {
            return Ok(done);
        }
        self.send(&prepared).await.map(Enqueued::Sent)
    }

    /// Eager and disabled modes; None when the task is to be sent.
    pub(crate) async fn short_circuit<T: Task>(&self, payload: &T::Payload) -> Result<Option<Enqueued>> {
        let settings = &self.inner.settings;
        if settings.disable_execute {
            tracing::info!(task = T::NAME, "task not enqueued: GCP_TASKS_DISABLE_EXECUTE is true");
            return Ok(Some(Enqueued::Disabled));
        }
        if settings.eager_execute {
            let task = self.inner.registry.get(T::NAME).ok_or_else(|| unregistered(T::NAME))?;
            let queue = task.options().queue.unwrap_or_else(|| settings.default_queue.clone());
            let body = serde_json::to_vec(payload)
                .map_err(|e| Error::InvalidArgument(format!("task `{}` payload does not serialize: {e}", T::NAME)))?;
            let output = task.run_json(&body, TaskContext::eager(T::NAME, &queue)).await.map_err(|e| match e {
                RunError::BadPayload(m) | RunError::BadOutput(m) => {
                    Error::TaskFailed { task: T::NAME.into(), message: m }
                }
                RunError::Failed(e) => Error::TaskFailed { task: T::NAME.into(), message: e.to_string() },
            })?;
            return Ok(Some(Enqueued::Ran(output)));
        }
        Ok(None)
    }

    /// The queue, id and body of `T(payload)`. Outbox entries always get an id (the idempotency key):
    /// the dedup id for deduplicated tasks, a random one otherwise.
    pub(crate) fn prepare<T: Task>(&self, payload: &T::Payload, when: When, for_outbox: bool) -> Result<Prepared> {
        let settings = &self.inner.settings;
        let registered = self.inner.registry.get(T::NAME).ok_or_else(|| unregistered(T::NAME))?;
        let options = registered.options();
        let queue = options.queue.unwrap_or_else(|| settings.default_queue.clone());
        let affix = settings.resource_affix.as_deref();
        let id = if options.deduplicate {
            let id_of = if settings.django_gcp_compat { dedup::django_gcp_task_id } else { dedup::task_id };
            Some(id_of(payload, T::NAME, &settings.delimiter, affix)?)
        } else if for_outbox {
            let mut id = format!("{}{}{}", T::NAME, settings.delimiter, uuid::Uuid::new_v4().simple());
            if let Some(affix) = affix {
                id.push_str(&settings.delimiter);
                id.push_str(affix);
            }
            Some(id)
        } else {
            None
        };
        let body = serde_json::to_vec(payload)
            .map_err(|e| Error::InvalidArgument(format!("task `{}` payload does not serialize: {e}", T::NAME)))?;
        let schedule_time = when.schedule_time()?;
        let dispatch_deadline = options.dispatch_deadline.or(settings.dispatch_deadline);
        super::limits::check(T::NAME, &settings.task_url(T::NAME), body.len(), schedule_time, dispatch_deadline)?;
        Ok(Prepared { task: T::NAME, queue, id, body, schedule_time, dispatch_deadline })
    }

    /// The Cloud Tasks request for a prepared task.
    pub(crate) fn new_task(
        &self,
        task: &str,
        id: Option<&str>,
        body: Vec<u8>,
        schedule_time: Option<DateTime<Utc>>,
        dispatch_deadline: Option<Duration>,
    ) -> NewTask {
        let settings = &self.inner.settings;
        let mut new = NewTask::new(settings.task_url(task), body);
        new.id = id.map(str::to_owned);
        new.schedule_time = schedule_time;
        new.dispatch_deadline = dispatch_deadline;
        new.service_account = settings.invoker_service_account.clone();
        new
    }

    pub(crate) async fn send(&self, p: &Prepared) -> Result<TaskInfo> {
        let new = self.new_task(p.task, p.id.as_deref(), p.body.clone(), p.schedule_time, p.dispatch_deadline);
        let queue_path = self.inner.settings.queue_path(&p.queue);
        self.inner.client.create_task(&queue_path, &new).await.map_err(|e| match e {
            Error::DuplicateTask { id, retried, .. } => Error::DuplicateTask { task: p.task.into(), id, retried },
            other => other,
        })
    }
}

fn unregistered(name: &str) -> Error {
    Error::config(None, format!("task `{name}` is not in the registry: add it with Registry::builder().task(...)"))
}
