//! Shared fixtures of the tasks suites: a worker with recording tasks behind the verified router, the
//! Cloud Tasks fake and the fake JWKS, all on loopback.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_gcp::BoxError;
use sea_gcp::tasks::{
    CloudTasksClient, PeriodicTask, Registry, Schedule, Task, TaskContext, TaskOptions, Tasks, TasksSettings,
    WorkerOptions,
};
use sea_gcp::testing::cloud_tasks::{FakeCloudTasks, QueueConfig};
use sea_gcp::testing::oidc::{FakeJwks, TestIssuer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const PROJECT: &str = "test-project";
pub const QUEUE: &str = "default";
pub const INVOKER: &str = "invoker@test-project.iam.gserviceaccount.com";

/// Every run of every task: (task, payload, context).
pub type Runs = Arc<Mutex<Vec<(String, Value, TaskContext)>>>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Note {
    pub text: String,
    #[serde(default)]
    pub n: i64,
}

/// Records its runs; answers `{"echo": text}`.
pub struct Record(pub Runs);

#[async_trait::async_trait]
impl Task for Record {
    const NAME: &'static str = "record";
    type Payload = Note;
    type Output = Value;
    async fn run(&self, payload: Note, ctx: TaskContext) -> Result<Value, BoxError> {
        self.0.lock().unwrap().push((Self::NAME.into(), serde_json::to_value(&payload)?, ctx));
        Ok(json!({"echo": payload.text}))
    }
}

/// Deduplicated by payload.
pub struct Dedup(pub Runs);

#[async_trait::async_trait]
impl Task for Dedup {
    const NAME: &'static str = "dedup";
    type Payload = Value;
    type Output = ();
    fn options(&self) -> TaskOptions {
        TaskOptions::default().with_deduplicate(true)
    }
    async fn run(&self, payload: Value, ctx: TaskContext) -> Result<(), BoxError> {
        self.0.lock().unwrap().push((Self::NAME.into(), payload, ctx));
        Ok(())
    }
}

/// Fails while its retry count is below `n`.
pub struct Flaky(pub Runs);

#[async_trait::async_trait]
impl Task for Flaky {
    const NAME: &'static str = "flaky";
    type Payload = u32;
    type Output = u32;
    async fn run(&self, fail_until: u32, ctx: TaskContext) -> Result<u32, BoxError> {
        let retry = ctx.retry_count;
        self.0.lock().unwrap().push((Self::NAME.into(), json!(fail_until), ctx));
        if retry < fail_until {
            return Err(format!("secret detail: database password hunter2 rejected on try {retry}").into());
        }
        Ok(retry)
    }
}

/// A periodic task.
pub struct Nightly(pub Runs);

#[async_trait::async_trait]
impl Task for Nightly {
    const NAME: &'static str = "nightly";
    type Payload = Value;
    type Output = ();
    async fn run(&self, payload: Value, ctx: TaskContext) -> Result<(), BoxError> {
        self.0.lock().unwrap().push((Self::NAME.into(), payload, ctx));
        Ok(())
    }
}

impl PeriodicTask for Nightly {
    fn schedule(&self) -> Schedule {
        Schedule::cron("0 3 * * *").with_time_zone("Europe/Paris").with_attempt_deadline(Duration::from_secs(300))
    }
}

/// A subscriber task on topic `orders`.
pub struct OnOrder(pub Runs);

#[async_trait::async_trait]
impl Task for OnOrder {
    const NAME: &'static str = "on-order";
    type Payload = Note;
    type Output = Value;
    async fn run(&self, payload: Note, ctx: TaskContext) -> Result<Value, BoxError> {
        let id = ctx.message.as_ref().map(|m| m.message_id.clone());
        self.0.lock().unwrap().push((Self::NAME.into(), serde_json::to_value(&payload)?, ctx));
        Ok(json!({"message_id": id}))
    }
}

impl sea_gcp::tasks::SubscriberTask for OnOrder {
    fn subscription(&self) -> sea_gcp::tasks::Subscription {
        sea_gcp::tasks::Subscription::topic("orders").with_ordering(true)
    }
}

pub fn registry(runs: &Runs) -> Registry {
    Registry::builder()
        .task(Record(runs.clone()))
        .task(Dedup(runs.clone()))
        .task(Flaky(runs.clone()))
        .periodic(Nightly(runs.clone()))
        .subscriber(OnOrder(runs.clone()))
        .build()
        .unwrap()
}

/// A worker app, the fake Cloud Tasks and the JWKS it verifies against.
pub struct Harness {
    pub issuer: Arc<TestIssuer>,
    pub jwks: FakeJwks,
    pub fake: FakeCloudTasks,
    pub tasks: Tasks,
    pub runs: Runs,
    pub worker_url: String,
    pub settings: TasksSettings,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Harness {
    /// The queue path of the default queue.
    pub fn queue_path(&self) -> String {
        self.settings.queue_path(QUEUE)
    }

    /// Runs of `task` so far.
    pub fn runs_of(&self, task: &str) -> Vec<(Value, TaskContext)> {
        self.runs.lock().unwrap().iter().filter(|(t, _, _)| t == task).map(|(_, p, c)| (p.clone(), c.clone())).collect()
    }

    /// Wait until `task` ran `n` times (or 10 s passed).
    pub async fn wait_runs(&self, task: &str, n: usize) -> usize {
        for _ in 0..1000 {
            let count = self.runs_of(task).len();
            if count >= n {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.runs_of(task).len()
    }
}

/// Start everything; the worker router is mounted under `prefix` ("" or "/internal").
pub async fn start(prefix: &str, configure: impl FnOnce(&mut TasksSettings)) -> Harness {
    let issuer = Arc::new(TestIssuer::generate("tasks-key"));
    let jwks = FakeJwks::start(&[&issuer]).await;
    let fake = FakeCloudTasks::start(issuer.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let worker_url = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = TasksSettings::default();
    settings.default_queue = QUEUE.into();
    settings.tasks_domain = format!("{worker_url}{prefix}");
    settings.project_id = Some(PROJECT.into());
    settings.invoker_service_account = Some(INVOKER.into());
    settings.cloud_tasks_endpoint = fake.url();
    configure(&mut settings);
    settings.validate().unwrap();
    fake.create_queue(
        &settings.queue_path(QUEUE),
        QueueConfig::default().with_backoff(Duration::from_millis(50), Duration::from_millis(200)),
    );
    let runs: Runs = Arc::default();
    let client = CloudTasksClient::unauthenticated(fake.url());
    let tasks = Tasks::new(settings.clone(), registry(&runs), client).unwrap();
    let worker = tasks.worker_router(jwks.verifier(), WorkerOptions::default()).unwrap();
    let app = if prefix.is_empty() { worker } else { axum::Router::new().nest(prefix, worker) };
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Harness { issuer, jwks, fake, tasks, runs, worker_url, settings, server }
}

#[path = "../db_support/mod.rs"]
mod db_support;
#[allow(unused_imports)]
pub use db_support::{TestDb, databases, skip_or_fail};

/// A table name unique to this test run.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}
