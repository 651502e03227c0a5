#![cfg(feature = "logging")]
//! A panic inside a handler is one Error Reporting line, with the request context and the panic's location.

mod logging_support;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use sea_gcp::logging::{
    PanicHookOptions, REPORTED_ERROR_EVENT_TYPE, RequestLogLayer, TraceContextLayer, TraceOptions, install_panic_hook,
};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use tower_http::catch_panic::CatchPanicLayer;

use logging_support::{Captured, assert_json, normalize, options};

#[tracing::instrument]
async fn checkout() -> &'static str {
    tracing::info!("about to fail");
    panic!("boom at line {}", line!());
}

#[tokio::test]
async fn a_panic_in_a_handler_is_reported_once_with_request_context_and_location() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(options()));
    // The previous hook too, so that a failing assertion here is still printed.
    install_panic_hook(PanicHookOptions::default().with_call_previous(true));
    let app = Router::new()
        .route("/checkout", get(checkout))
        .layer(CatchPanicLayer::new())
        .layer(RequestLogLayer::default())
        .layer(TraceContextLayer::new(TraceOptions::default().with_project_id("test-project")));
    let mut request = Request::builder()
        .uri("/checkout?cart=9")
        .header("host", "shop.example")
        .header("user-agent", "Mozilla/5.0")
        .header("x-cloud-trace-context", "105445aa7843bc8bf206b12000100000/2;o=1")
        .body(Body::empty())
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 10], 5000))));
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let lines: Vec<Value> = captured.lines();
    let reports: Vec<&Value> = lines.iter().filter(|l| l.get("@type").is_some()).collect();
    assert_eq!(reports.len(), 1, "exactly one report: {lines:#?}");
    let report = reports[0].clone();
    let message = report["message"].as_str().unwrap().to_string();
    let line: u64 = message.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(report["context"]["reportLocation"]["lineNumber"], line, "the panic's line");
    let stack = report["stack_trace"].as_str().unwrap().to_string();
    assert!(
        stack.starts_with(&format!("panicked: boom at line {line}\n\npanicked at tests/logging_panic.rs:{line}")),
        "{stack}"
    );

    let mut report = normalize(report);
    report["stack_trace"] = "<stack>".into();
    let expected = json!({
        "severity": "ERROR",
        "message": format!("panicked: boom at line {line}"),
        "logging.googleapis.com/sourceLocation": {"file": "tests/logging_panic.rs", "line": "<line>", "function": "checkout"},
        "logging.googleapis.com/trace": "projects/test-project/traces/105445aa7843bc8bf206b12000100000",
        "logging.googleapis.com/spanId": "0000000000000002",
        "logging.googleapis.com/trace_sampled": true,
        "target": "sea_gcp::panic",
        "@type": REPORTED_ERROR_EVENT_TYPE,
        "serviceContext": {"service": "orders", "version": "orders-00042"},
        "context": {
            "reportLocation": {"filePath": "tests/logging_panic.rs", "lineNumber": "<lineNumber>", "functionName": "checkout"},
            "httpRequest": {
                "method": "GET",
                "url": "http://shop.example/checkout?cart=9",
                "userAgent": "Mozilla/5.0",
                "remoteIp": "192.0.2.10",
            },
        },
        "stack_trace": "<stack>",
        "span": {"name": "checkout"},
        "spans": [{"name": "request"}, {"name": "checkout"}],
    });
    assert_json(&report, &expected);

    // The request is still logged, as a 500 at ERROR, but not as a second report.
    let last = lines.last().unwrap();
    assert_eq!(last["httpRequest"]["status"], 500);
    assert_eq!(last["severity"], "ERROR");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(lines[0]["message"], "about to fail");
    // tower-http's own ERROR line for the caught panic is a plain entry (it carries no error value).
    assert_eq!(lines[2]["target"], "tower_http::catch_panic");
    assert_eq!(lines[2]["severity"], "ERROR");
}
