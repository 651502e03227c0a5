//! The app handle in local mode: the production path without a cloud. A task enqueued in a transaction
//! goes outbox → dispatcher → local Cloud Tasks (REST) → an HTTP push to the app's own worker route with
//! a signed token → verified → run, once; a rolled-back one never leaves the database; a periodic task's
//! job is created through the sync code and fires on its cron schedule; forged pushes are refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_gcp::local::oidc::TestIssuer;
use sea_gcp::pubsub::{OutgoingMessage, PubSubClient};
use sea_gcp::tasks::{EntryState, PeriodicTask, Schedule, SubscriberTask, Subscription, Task, TaskContext};
use sea_gcp::{BoxError, Gcp, Settings};
use sea_orm::{Database, TransactionTrait};
use serde_json::Value;

/// Every run: (task, payload, verified caller e-mail, retry count).
type Runs = Arc<Mutex<Vec<(String, Value, Option<String>, u32)>>>;

struct Record(Runs);

/// Note one run of task `name`.
fn record(runs: &Runs, name: &str, payload: Value, ctx: TaskContext) {
    let caller = ctx.caller.map(|c| c.email);
    runs.lock().unwrap().push((name.into(), payload, caller, ctx.retry_count));
}

#[async_trait::async_trait]
impl Task for Record {
    const NAME: &'static str = "record";
    type Payload = Value;
    type Output = ();
    async fn run(&self, payload: Value, ctx: TaskContext) -> Result<(), BoxError> {
        record(&self.0, Self::NAME, payload, ctx);
        Ok(())
    }
}

struct EveryMinute(Runs);

#[async_trait::async_trait]
impl Task for EveryMinute {
    const NAME: &'static str = "every-minute";
    type Payload = Value;
    type Output = ();
    async fn run(&self, payload: Value, ctx: TaskContext) -> Result<(), BoxError> {
        assert!(ctx.from_scheduler, "a periodic run comes from the scheduler");
        // `* * * * *` fires at whole minutes, not as soon as the job exists.
        let second = chrono::Timelike::second(&chrono::Utc::now());
        assert!(second < 10, "fired at second {second} of the minute");
        record(&self.0, Self::NAME, payload, ctx);
        Ok(())
    }
}

impl PeriodicTask for EveryMinute {
    fn schedule(&self) -> Schedule {
        Schedule::cron("* * * * *")
    }
}

fn runs_of(runs: &Runs, task: &str) -> Vec<Value> {
    runs.lock().unwrap().iter().filter(|r| r.0 == task).map(|r| r.1.clone()).collect()
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct App {
    gcp: Gcp,
    base: String,
    runs: Runs,
    _dir: tempfile::TempDir,
}

/// A local-mode app on a loopback port with the `record` and `every-minute` tasks, its background loops
/// running.
async fn start() -> (App, sea_gcp::app::Background) {
    start_with(|b, runs| b.task(Record(runs.clone())).periodic(EveryMinute(runs.clone()))).await
}

/// A local-mode app with the tasks `register` adds.
async fn start_with(
    register: impl FnOnce(sea_gcp::app::GcpBuilder, &Runs) -> sea_gcp::app::GcpBuilder,
) -> (App, sea_gcp::app::Background) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("SEA_GCP__BASE_URL".to_string(), base.clone()),
        ("SEA_GCP__STORES__MEDIA__BACKEND".into(), "local".into()),
        ("SEA_GCP__STORES__MEDIA__ROOT".into(), dir.path().join("media").display().to_string()),
    ];
    let settings = Settings::from_env_vars(vars).unwrap();
    let db = Database::connect(format!("sqlite://{}?mode=rwc", dir.path().join("app.sqlite").display())).await.unwrap();
    let runs: Runs = Arc::default();
    let gcp = register(Gcp::builder(settings, db), &runs).build().await.unwrap();
    assert!(gcp.local_cloud().is_some(), "no project and no emulator: local mode");
    sea_gcp::create_tables(gcp.db()).await.unwrap();
    let router = gcp.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let background = gcp.spawn_background();
    (App { gcp, base, runs, _dir: dir }, background)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_task_runs_once_through_the_worker_route_with_a_verified_token() {
    let (app, background) = start().await;
    let gcp = &app.gcp;
    let local = gcp.local_cloud().unwrap();

    let txn = gcp.db().begin().await.unwrap();
    gcp.enqueue_in(&txn, Record(app.runs.clone()), &serde_json::json!({"order": 1})).await.unwrap();
    gcp.commit(txn).await.unwrap();
    wait_for("the committed task", Duration::from_secs(20), || !runs_of(&app.runs, "record").is_empty()).await;

    let runs = app.runs.lock().unwrap().clone();
    let (_, payload, caller, retry) = &runs[0];
    assert_eq!(payload, &serde_json::json!({"order": 1}));
    assert_eq!(caller.as_deref(), Some(sea_gcp::local::LOCAL_INVOKER), "the worker verified the local token");
    assert_eq!(*retry, 0);
    // The push is recorded when its answer arrives, just after the task ran.
    assert_eq!(local.cloud_tasks().wait_for_dispatches(1, Duration::from_secs(10)).await, 1);
    let dispatches = local.cloud_tasks().dispatches();
    assert_eq!(dispatches.len(), 1, "one push: {dispatches:?}");
    assert_eq!(dispatches[0].status, Some(200));

    // Rolled back: nothing is written, sent or run.
    let txn = gcp.db().begin().await.unwrap();
    gcp.enqueue_in(&txn, Record(app.runs.clone()), &serde_json::json!({"order": 2})).await.unwrap();
    txn.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(runs_of(&app.runs, "record"), [serde_json::json!({"order": 1})], "ran once, the rollback never");
    assert_eq!(local.cloud_tasks().created_count(), 1);
    let outbox = gcp.task_outbox().unwrap();
    assert_eq!(outbox.count(gcp.db(), EntryState::Pending).await.unwrap(), 0);

    background.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_without_a_token_of_the_local_issuer_are_refused_and_run_nothing() {
    let (app, background) = start().await;
    let url = format!("{}/gcp/tasks/record", app.base);
    let http = reqwest::Client::new();
    // No token.
    let r = http.post(&url).json(&serde_json::json!({"forged": 1})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A well-formed token signed by a key the local JWKS does not hold, for the right audience and
    // the allowed invoker.
    let forger = TestIssuer::generate("forged-key");
    let token = forger.mint(&forger.claims(&url, sea_gcp::local::LOCAL_INVOKER));
    let r = http.post(&url).bearer_auth(token).json(&serde_json::json!({"forged": 2})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The local issuer's token for another account.
    let local = app.gcp.local_cloud().unwrap();
    let token = local.mint_token(&url, "someone-else@local-project.iam.gserviceaccount.com");
    let r = http.post(&url).bearer_auth(token).json(&serde_json::json!({"forged": 3})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // The real one runs.
    let token = local.mint_token(&url, sea_gcp::local::LOCAL_INVOKER);
    let r = http.post(&url).bearer_auth(token).json(&serde_json::json!({"real": 4})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(runs_of(&app.runs, "record"), [serde_json::json!({"real": 4})], "only the verified push ran");
    background.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_task_gets_its_job_and_fires_on_its_schedule() {
    let (app, background) = start().await;
    let local = app.gcp.local_cloud().unwrap();
    wait_for("the job", Duration::from_secs(10), || !local.scheduler().jobs().is_empty()).await;
    let jobs = local.scheduler().jobs();
    let (name, job) = jobs.iter().next().unwrap();
    assert!(name.ends_with("/jobs/every-minute"), "{name}");
    assert_eq!(job["schedule"], "* * * * *");
    assert!(background.loops().contains(&"local-scheduler"));
    // "* * * * *" fires at the next minute boundary.
    wait_for("the cron run", Duration::from_secs(75), || !runs_of(&app.runs, "every-minute").is_empty()).await;
    let runs = app.runs.lock().unwrap().clone();
    let run = runs.iter().find(|r| r.0 == "every-minute").unwrap();
    assert_eq!(run.2.as_deref(), Some(sea_gcp::local::LOCAL_INVOKER));
    background.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_management_commands() {
    let (app, background) = start().await;
    let gcp = &app.gcp;
    let mut out = Vec::new();
    assert!(!gcp.manage_args(["serve".to_string()], &mut out).await.unwrap(), "other command lines are the app's");
    assert!(out.is_empty());

    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    assert!(gcp.manage_args(args(&["sea-gcp", "settings"]), &mut out).await.unwrap());
    let text = String::from_utf8(std::mem::take(&mut out)).unwrap();
    assert!(text.contains("base_url = \"http://127.0.0.1:") && text.contains("# env SEA_GCP__BASE_URL"), "{text}");

    assert!(gcp.manage_args(args(&["sea-gcp", "tasks", "manifest"]), &mut out).await.unwrap());
    let manifest: Value = serde_json::from_slice(&std::mem::take(&mut out)).unwrap();
    assert_eq!(manifest["periodic"][0]["task"], "every-minute");

    assert!(gcp.manage_args(args(&["sea-gcp", "tasks", "sync"]), &mut out).await.unwrap());
    let text = String::from_utf8(std::mem::take(&mut out)).unwrap();
    assert!(text.contains("local mode"), "{text}");

    assert!(gcp.manage_args(args(&["sea-gcp", "migrate"]), &mut out).await.unwrap());
    let err = gcp.manage_args(args(&["sea-gcp", "tasks", "snyc"]), &mut out).await.unwrap_err().to_string();
    assert!(err.contains("unknown sea-gcp command `tasks snyc`") && err.contains("tasks sync"), "{err}");
    background.stop().await;
}

/// A subscriber task on the topic `local-orders`.
struct OnLocalOrder(Runs);

#[async_trait::async_trait]
impl Task for OnLocalOrder {
    const NAME: &'static str = "on-local-order";
    type Payload = Value;
    type Output = ();
    async fn run(&self, payload: Value, ctx: TaskContext) -> Result<(), BoxError> {
        record(&self.0, Self::NAME, payload, ctx);
        Ok(())
    }
}

impl SubscriberTask for OnLocalOrder {
    fn subscription(&self) -> Subscription {
        Subscription::topic("local-orders")
    }
}

/// `PUBSUB_EMULATOR_HOST`, or a loud skip (a failure under `SEA_GCP_REQUIRE_ALL=1`).
fn pubsub_emulator() -> Option<String> {
    match std::env::var("PUBSUB_EMULATOR_HOST") {
        Ok(host) if !host.is_empty() => Some(host),
        _ => {
            let why = "PUBSUB_EMULATOR_HOST is not set (run through scripts/test.sh)";
            assert!(
                std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() != Ok("1"),
                "the Pub/Sub emulator is required: {why}"
            );
            eprintln!("SKIPPED: local mode with the Pub/Sub emulator — {why}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_pubsub_emulator_a_published_message_runs_its_subscriber_task_with_a_verified_token() {
    let Some(host) = pubsub_emulator() else { return };
    let (app, background) = start_with(|b, runs| b.subscriber(OnLocalOrder(runs.clone()))).await;
    let pubsub = PubSubClient::emulator(&host, sea_gcp::local::LOCAL_PROJECT);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while pubsub.get_subscription("on-local-order").await.unwrap().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the push subscription was not created");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let message = OutgoingMessage::json(&serde_json::json!({"order": 7})).unwrap();
    pubsub.publish("local-orders", &[message]).await.unwrap();
    wait_for("the subscriber task", Duration::from_secs(30), || !runs_of(&app.runs, "on-local-order").is_empty()).await;
    let runs = app.runs.lock().unwrap().clone();
    let run = runs.iter().find(|r| r.0 == "on-local-order").unwrap();
    assert_eq!(run.1, serde_json::json!({"order": 7}));
    assert_eq!(run.2.as_deref(), Some(sea_gcp::local::LOCAL_INVOKER), "the worker verified the proxy's token");
    background.stop().await;
}
