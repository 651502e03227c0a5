#![cfg(feature = "logging")]
//! Lines from concurrent requests, interleaved on several threads, carry their own request's trace.

mod logging_support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::Request;
use axum::routing::get;
use sea_gcp::logging::{RequestLogLayer, TraceContextLayer, TraceOptions};
use tower::ServiceExt as _;

use logging_support::{Captured, options};

async fn work(Path(n): Path<u32>) -> String {
    for step in 0..3u32 {
        tracing::info!(n, step, "working");
        // Yield so that requests interleave and move between worker threads.
        tokio::time::sleep(Duration::from_millis(u64::from((n * 7 + step) % 5))).await;
    }
    format!("done {n}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_keep_their_own_trace_ids() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(captured.subscriber(options())).unwrap();
    let app = Router::new()
        .route("/work/{n}", get(work))
        .layer(RequestLogLayer::default())
        .layer(TraceContextLayer::new(TraceOptions::default().with_project_id("p")));
    let calls: Vec<_> = (0..40u32)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move {
                let header = if n % 2 == 0 {
                    format!("00-{:032x}-{:016x}-01", u128::from(n) + 1, u64::from(n) + 1)
                } else {
                    format!("{:032x}/{};o=1", u128::from(n) + 1, u64::from(n) + 1)
                };
                let name = if n % 2 == 0 { "traceparent" } else { "x-cloud-trace-context" };
                let request =
                    Request::builder().uri(format!("/work/{n}")).header(name, header).body(Body::empty()).unwrap();
                app.oneshot(request).await.unwrap()
            })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().status().is_success());
    }
    let lines = captured.lines();
    assert_eq!(lines.len(), 40 * 4, "three lines and a request log per request");
    for line in &lines {
        let n: u64 = match line.get("n") {
            Some(n) => n.as_u64().unwrap(),
            None => line["httpRequest"]["requestUrl"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap(),
        };
        assert_eq!(
            line["logging.googleapis.com/trace"],
            format!("projects/p/traces/{:032x}", u128::from(n) + 1),
            "{line}"
        );
        assert_eq!(line["logging.googleapis.com/spanId"], format!("{:016x}", n + 1), "{line}");
    }
}
