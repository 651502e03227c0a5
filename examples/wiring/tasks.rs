//! The wiring of an on-demand task enqueued inside a request's transaction plus a periodic task
//! (`scripts/count-wiring.py` counts what lies outside the `// app {` ... `// }` blocks).

use axum::{Router, extract::State, routing::post};
use sea_gcp::tasks::{Task, TaskContext};
use sea_gcp::{BoxError, Gcp};

// app {
struct SendReceipt;

#[async_trait::async_trait]
impl Task for SendReceipt {
    const NAME: &'static str = "send-receipt";
    type Payload = i64;
    type Output = ();
    async fn run(&self, order: i64, _: TaskContext) -> Result<(), BoxError> {
        println!("receipt for order {order}");
        Ok(())
    }
}

struct NightlyReport;

#[async_trait::async_trait]
impl Task for NightlyReport {
    const NAME: &'static str = "nightly-report";
    // }
    const SCHEDULE: Option<&'static str> = Some("CRON_TZ=Europe/London 0 3 * * *");
    // app {
    type Payload = serde_json::Value;
    type Output = ();
    async fn run(&self, _: serde_json::Value, _: TaskContext) -> Result<(), BoxError> {
        println!("nightly report");
        Ok(())
    }
}

async fn order(State(gcp): State<Gcp>) -> Result<&'static str, axum::response::Response> {
    let fail = axum::response::IntoResponse::into_response;
    // }
    let txn = gcp.begin().await.map_err(fail)?;
    // app { ... the order's own rows, written in `txn` ...
    // }
    gcp.enqueue_in(&txn, SendReceipt, &42).await.map_err(fail)?;
    gcp.commit(txn).await.map_err(fail)?;
    // app {
    Ok("ordered")
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let db = sea_orm::Database::connect("sqlite::memory:").await?;
    // }
    let gcp = Gcp::load(db)?.task(SendReceipt).task(NightlyReport).create_tables().build().await?;
    if gcp.manage().await? {
        return Ok(());
    }
    let app = Router::new().route("/orders", post(order)).with_state(gcp.clone()).merge(gcp.router());
    let background = gcp.spawn_background();
    // app {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
    axum::serve(listener, app).await?;
    // }
    background.stop().await;
    // app {
    Ok(())
}
// }
