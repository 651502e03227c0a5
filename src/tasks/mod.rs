//! Background tasks on Cloud Tasks, Cloud Scheduler and Pub/Sub (feature `tasks`): django-gcp's tasks
//! for axum and SeaORM, with a transactional outbox.
//!
//! - [`Task`], [`PeriodicTask`], [`SubscriberTask`] and the [`Registry`]: named tasks with typed payloads.
//! - [`TasksSettings`]: django-gcp's `GCP_TASKS_*` settings, checked at start-up.
//! - [`Tasks`]: `enqueue`, `enqueue_later` (a delay or a time), deduplicated tasks ([`task_id`]), eager and
//!   disabled modes, `publish` for subscriber tasks.
//! - [`Tasks::enqueue_in`]: enqueue inside the caller's database transaction (the [`TaskOutbox`], created by
//!   `migration::CreateTaskOutbox`); the [`Dispatcher`] sends committed entries, each exactly once.
//! - [`worker_router`]: `POST /tasks/{name}` and `POST /subscriber-tasks/{name}`, OIDC-verified.
//! - [`CloudTasksClient`]: the Cloud Tasks REST calls (why REST: `docs/tasks.md`).
//!
//! ```no_run
//! use sea_gcp::tasks::{Registry, Task, TaskContext, Tasks, TasksSettings, CloudTasksClient};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize)] struct Welcome { user_id: i64 }
//! # struct SendWelcome;
//! # #[async_trait::async_trait]
//! # impl Task for SendWelcome {
//! #     const NAME: &'static str = "send-welcome";
//! #     type Payload = Welcome;
//! #     type Output = ();
//! #     async fn run(&self, _: Welcome, _: TaskContext) -> Result<(), sea_gcp::BoxError> { Ok(()) }
//! # }
//! # async fn demo() -> sea_gcp::Result<()> {
//! let settings = TasksSettings::from_env()?;
//! let registry = Registry::builder().task(SendWelcome).build()?;
//! let client = CloudTasksClient::application_default(&settings.cloud_tasks_endpoint)?;
//! let tasks = Tasks::new(settings, registry, client)?;
//! tasks.enqueue::<SendWelcome>(&Welcome { user_id: 7 }).await?;
//! tasks.enqueue_later::<SendWelcome>(&Welcome { user_id: 8 }, std::time::Duration::from_secs(600)).await?;
//! # Ok(()) }
//! ```

mod client;
mod context;
pub(crate) mod cron;
mod dedup;
mod dispatcher;
mod enqueue;
pub(crate) mod limits;
pub(crate) mod migration;
mod outbox;
mod publish;
mod registry;
mod router;
mod scheduler;
mod settings;
pub(crate) use settings::is_loopback_url;
pub mod sync;
pub mod sync_subscriptions;
mod task;

pub use client::{CloudTasksClient, NewTask, RetryOptions, TaskInfo};
pub use context::TaskContext;
pub use dedup::{canonical_json, django_gcp_json, task_id};
pub use dispatcher::{DispatchReport, Dispatcher, DispatcherOptions, SentBatch};
pub use enqueue::{Enqueued, Tasks, When};
pub use migration::TaskOutboxMigrator;
pub use outbox::{DEFAULT_TASK_OUTBOX, EntryState, OutboxEntry, TaskOutbox};
pub use publish::PublishOutcome;
pub use registry::{ErasedTask, Registry, RegistryBuilder, RunError, TaskKind};
pub use router::{WorkerOptions, worker_router};
pub use scheduler::{Job, SchedulerClient};
pub use settings::TasksSettings;
pub(crate) use settings::{CLOUD_TASKS_ENDPOINT, SCHEDULER_ENDPOINT};
pub use task::{PeriodicTask, Schedule, SubscriberTask, Subscription, Task, TaskOptions};
