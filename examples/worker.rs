//! A Cloud Run worker for sea-gcp tasks: the verified worker router, an app route that enqueues inside
//! its database transaction, and the outbox dispatcher.
//!
//! On Cloud Run:
//!
//! ```text
//! GCP_PROJECT_ID=my-project GCP_TASKS_DEFAULT_QUEUE_NAME=primary \
//! GCP_TASKS_DOMAIN=https://worker-abc123-ew.a.run.app \
//! GCP_TASKS_INVOKER_SERVICE_ACCOUNT=tasks-invoker@my-project.iam.gserviceaccount.com \
//! GCP_TASKS_RESOURCE_AFFIX=shop-prod DATABASE_URL=postgres://... PORT=8080 \
//!   cargo run --example worker --features tasks
//! ```
//!
//! Locally, against a Cloud Tasks emulator or fake on a loopback address (no credentials are sent to
//! it, and none are fetched): `GCP_TASKS_EMULATOR_TARGET=http://127.0.0.1:8123`, plus the project,
//! queue and domain variables above. Without `DATABASE_URL` the example uses the SQLite file
//! `worker-example.sqlite`.
//!
//! `POST /orders {"customer": "ada"}` inserts an order and enqueues `send-receipt` in the same
//! transaction; Cloud Tasks then calls `POST /tasks/send-receipt` with an OIDC token for the invoker
//! account, which the router verifies before running the task. `nightly-report` is a periodic task
//! (`sea-gcp tasks sync` creates its Scheduler job).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use sea_gcp::BoxError;
use sea_gcp::auth::OidcVerifier;
use sea_gcp::tasks::{
    CloudTasksClient, Dispatcher, PeriodicTask, Registry, Schedule, Task, TaskContext, TaskOutbox, Tasks,
    TasksSettings, WorkerOptions,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Serialize, Deserialize)]
struct Receipt {
    order_id: i64,
    customer: String,
}

struct SendReceipt;

#[async_trait::async_trait]
impl Task for SendReceipt {
    const NAME: &'static str = "send-receipt";
    type Payload = Receipt;
    type Output = Value;
    async fn run(&self, receipt: Receipt, ctx: TaskContext) -> Result<Value, BoxError> {
        tracing::info!(order = receipt.order_id, retry = ctx.retry_count, "sending receipt to {}", receipt.customer);
        Ok(json!({"sent": receipt.order_id}))
    }
}

struct NightlyReport;

#[async_trait::async_trait]
impl Task for NightlyReport {
    const NAME: &'static str = "nightly-report";
    type Payload = Value;
    type Output = ();
    async fn run(&self, _: Value, ctx: TaskContext) -> Result<(), BoxError> {
        tracing::info!(from_scheduler = ctx.from_scheduler, "building the nightly report");
        Ok(())
    }
}

impl PeriodicTask for NightlyReport {
    fn schedule(&self) -> Schedule {
        Schedule::cron("0 3 * * *").with_time_zone("Europe/London").with_attempt_deadline(Duration::from_secs(600))
    }
}

#[derive(Clone)]
struct App {
    tasks: Tasks,
    db: DatabaseConnection,
    outbox: TaskOutbox,
}

#[derive(Deserialize)]
struct NewOrder {
    customer: String,
}

async fn create_order(State(app): State<App>, Json(order): Json<NewOrder>) -> Result<Json<Value>, StatusCode> {
    let fail = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "order failed");
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let txn = app.db.begin().await.map_err(|e| fail(&e))?;
    let order_id = chrono::Utc::now().timestamp_micros();
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        txn.get_database_backend(),
        "INSERT INTO orders (id, customer) VALUES ($1, $2)",
        [order_id.into(), order.customer.clone().into()],
    ))
    .await
    .map_err(|e| fail(&e))?;
    let receipt = Receipt { order_id, customer: order.customer };
    let enqueued = app.tasks.enqueue_in::<SendReceipt, _>(&txn, &app.outbox, &receipt).await.map_err(|e| fail(&e))?;
    txn.commit().await.map_err(|e| fail(&e))?;
    Ok(Json(json!({"order_id": order_id, "task": format!("{enqueued:?}")})))
}

/// Start-up errors are printed with their message (which names the variable to set), not in debug form.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    // SQL statements at debug: an INFO log of every query drowns the app's own lines.
    tracing_subscriber::fmt().with_env_filter("info,sqlx=warn,sea_orm=warn").init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let settings = TasksSettings::from_env()?;
    let registry = Registry::builder().task(SendReceipt).periodic(NightlyReport).build()?;
    // A loopback emulator target gets no credentials; Google's endpoint gets Application Default ones.
    let client = if settings.uses_fake_endpoint() {
        CloudTasksClient::unauthenticated(&settings.cloud_tasks_endpoint)
    } else {
        CloudTasksClient::application_default(&settings.cloud_tasks_endpoint)?
    };
    let tasks = Tasks::new(settings, registry, client)?;
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://worker-example.sqlite?mode=rwc".into());
    let db = sea_orm::Database::connect(&url).await.map_err(|e| {
        format!("cannot open the database at DATABASE_URL ({e}); set DATABASE_URL to a reachable database")
    })?;
    db.execute_unprepared("CREATE TABLE IF NOT EXISTS orders (id BIGINT PRIMARY KEY, customer TEXT NOT NULL)").await?;
    let outbox = TaskOutbox::default();
    outbox.create(&db).await?; // or run sea_gcp::tasks::migration::CreateTaskOutbox in your migrator

    let dispatcher = Dispatcher::new(tasks.clone(), db.clone(), outbox.clone());
    tokio::spawn(async move { dispatcher.run_until(std::future::pending()).await });

    let worker = tasks.worker_router(OidcVerifier::google(), WorkerOptions::default())?;
    let app =
        axum::Router::new().route("/orders", post(create_order)).with_state(App { tasks, db, outbox }).merge(worker);
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = tokio::net::TcpListener::bind(format!("0.0.0.0:{port}"))
        .await
        .map_err(|e| format!("cannot listen on port {port} ({e}); set PORT to a free port"))?;
    axum::serve(listener, app).await?;
    Ok(())
}
