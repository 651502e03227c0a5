#![cfg(feature = "logging")]
//! Golden tests of the Cloud Logging lines, through the tower layers with each trace header form.

mod logging_support;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path};
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use sea_gcp::logging::{
    LoggingOptions, RequestLogLayer, TraceContext, TraceContextLayer, TraceOptions, TrustedProxies,
};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use logging_support::{Captured, assert_json, normalize, options};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[derive(Debug, thiserror::Error)]
#[error("saving order {0} failed")]
struct SaveError(u64, #[source] std::io::Error);

#[derive(Debug, thiserror::Error)]
#[error("request failed")]
struct HandlerError(#[source] SaveError);

async fn place(Path(id): Path<u64>) -> &'static str {
    let span = tracing::info_span!("handler", user = "u-1", labels.tenant = "acme");
    let _entered = span.enter();
    tracing::info!(
        order = id,
        amount = 12.5,
        paid = true,
        delta = -3,
        customer = "Zoë \"Z\"\n",
        labels.channel = "web",
        labels.attempt = 2,
        insert_id = "order-42",
        "order placed"
    );
    "ok"
}

async fn fail() -> StatusCode {
    let e = SaveError(7, std::io::Error::other("disk full"));
    sea_gcp::report_error!(&e);
    // Logged again on its way out (wrapped): same root cause, so not a second report.
    let wrapped = HandlerError(e);
    tracing::error!(error = &wrapped as &dyn std::error::Error, "handler failed");
    StatusCode::INTERNAL_SERVER_ERROR
}

/// Two different errors whose root causes print the same text, and one error logged twice.
async fn two_failures() -> StatusCode {
    let first = SaveError(1, std::io::Error::other("disk full"));
    let second = SaveError(2, std::io::Error::other("disk full"));
    sea_gcp::report_error!(&first);
    sea_gcp::report_error!(&second);
    let a = std::io::Error::other("timed out");
    let b = std::io::Error::other("timed out");
    tracing::error!(error = &a as &dyn std::error::Error, "a");
    tracing::error!(error = &b as &dyn std::error::Error, "b");
    tracing::error!(error = &a as &dyn std::error::Error, "a again");
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn severities() -> StatusCode {
    tracing::info!(severity = "NOTICE", "n");
    tracing::error!(severity = "CRITICAL", "c");
    tracing::error!(severity = "alert", "a");
    tracing::error!(severity = %sea_gcp::logging::Severity::Emergency, "e");
    tracing::warn!(severity = "LOUD", "unknown names leave the level's severity");
    tracing::debug!("d");
    StatusCode::NOT_FOUND
}

fn app(options: TraceOptions) -> Router {
    Router::new()
        .route("/orders/{id}", post(place))
        .route("/fail", get(fail))
        .route("/severities", get(severities))
        .route("/two-failures", get(two_failures))
        .route("/hello", get(|| async { "hello" }))
        .route("/nothing", get(|| async { (StatusCode::NO_CONTENT, "not sent") }))
        .layer(RequestLogLayer::default())
        .layer(TraceContextLayer::new(options))
}

fn trace_options() -> TraceOptions {
    TraceOptions::default().with_project_id("test-project").with_trusted_proxies(TrustedProxies::Hops(1))
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: &'static str) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "shop.example")
        .header("x-forwarded-proto", "https")
        .header("user-agent", "curl/8.5")
        .header("referer", "https://shop.example/cart")
        // A spoofed entry first, then the one Cloud Run's front end appended.
        .header("x-forwarded-for", "10.9.9.9, 203.0.113.7");
    if !body.is_empty() {
        builder = builder.header("content-length", body.len());
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let mut request = builder.body(Body::from(body)).unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([169, 254, 1, 1], 40000))));
    request
}

async fn run(options: TraceOptions, request: Request<Body>) -> (StatusCode, Vec<Value>) {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(self::options()));
    let response = app(options).oneshot(request).await.unwrap();
    (response.status(), captured.lines().into_iter().map(normalize).collect())
}

fn trace_fields(span_id: &str, sampled: bool) -> Value {
    json!({
        "logging.googleapis.com/trace": format!("projects/test-project/traces/{TRACE}"),
        "logging.googleapis.com/spanId": span_id,
        "logging.googleapis.com/trace_sampled": sampled,
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

fn order_line(trace: Value) -> Value {
    merge(
        json!({
            "severity": "INFO",
            "message": "order placed",
            "logging.googleapis.com/sourceLocation":
                {"file": "tests/logging_lines.rs", "line": "<line>", "function": "logging_lines"},
            "logging.googleapis.com/insertId": "order-42",
            "logging.googleapis.com/labels": {"tenant": "acme", "channel": "web", "attempt": "2"},
            "target": "logging_lines",
            "order": 42,
            "amount": 12.5,
            "paid": true,
            "delta": -3,
            "customer": "Zoë \"Z\"\n",
            "span": {"name": "handler", "user": "u-1"},
            "spans": [{"name": "request"}, {"name": "handler", "user": "u-1"}],
        }),
        trace,
    )
}

/// `httpRequest.requestSize`: the request line, the headers every [`request`] sends, `extra` (more header
/// lines, the body), as HTTP/1.1 writes them.
fn request_size(request_line: &str, extra: &[&str]) -> String {
    let common = [
        "host: shop.example\r\n",
        "x-forwarded-proto: https\r\n",
        "user-agent: curl/8.5\r\n",
        "referer: https://shop.example/cart\r\n",
        "x-forwarded-for: 10.9.9.9, 203.0.113.7\r\n",
        "\r\n",
    ];
    let n = request_line.len() + common.iter().chain(extra).map(|s| s.len()).sum::<usize>();
    n.to_string()
}

/// `httpRequest.responseSize` of the `"ok"` the order handler answers.
const OK_RESPONSE: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 2\r\n\r\nok";

fn request_line(trace: Value, severity: &str, method: &str, path: &str, status: u16, sizes: (String, &str)) -> Value {
    let http = json!({
        "requestMethod": method,
        "requestUrl": format!("https://shop.example{path}"),
        "status": status,
        "requestSize": sizes.0,
        "responseSize": sizes.1.len().to_string(),
        "latency": "<latency>",
        "userAgent": "curl/8.5",
        "remoteIp": "203.0.113.7",
        "referer": "https://shop.example/cart",
        "protocol": "HTTP/1.1",
    });
    merge(
        json!({
            "severity": severity,
            "message": format!("{method} {path} {status}"),
            "logging.googleapis.com/sourceLocation": {
                "file": "src/logging/request_log.rs", "line": "<line>", "function": "sea_gcp::logging::request_log"
            },
            "httpRequest": http,
            "target": "sea_gcp::request",
            "span": {"name": "request"},
            "spans": [{"name": "request"}],
        }),
        trace,
    )
}

#[tokio::test]
async fn every_field_with_traceparent() {
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let req = request("POST", "/orders/42?x=1", &[("traceparent", &traceparent)], "abc");
    let (status, lines) = run(trace_options(), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let trace = trace_fields("00f067aa0ba902b7", true);
    assert_json(&lines[0], &order_line(trace.clone()));
    assert_json(
        &lines[1],
        &request_line(
            trace,
            "INFO",
            "POST",
            "/orders/42?x=1",
            200,
            (
                request_size(
                    "POST /orders/42?x=1 HTTP/1.1\r\n",
                    &["content-length: 3\r\n", &format!("traceparent: {traceparent}\r\n"), "abc"],
                ),
                OK_RESPONSE,
            ),
        ),
    );
}

#[tokio::test]
async fn x_cloud_trace_context_with_a_decimal_span_id() {
    let header = format!("{TRACE}/12345678901234567890;o=1");
    let (_, lines) =
        run(trace_options(), request("POST", "/orders/42", &[("x-cloud-trace-context", &header)], "")).await;
    let trace = trace_fields("ab54a98ceb1f0ad2", true);
    assert_json(&lines[0], &order_line(trace.clone()));
    let size = request_size("POST /orders/42 HTTP/1.1\r\n", &[&format!("x-cloud-trace-context: {header}\r\n")]);
    assert_json(&lines[1], &request_line(trace, "INFO", "POST", "/orders/42", 200, (size, OK_RESPONSE)));

    // Small decimal ids are zero-padded to 16 hex digits; o=0 is unsampled.
    let header = format!("{TRACE}/1;o=0");
    let (_, lines) =
        run(trace_options(), request("POST", "/orders/42", &[("x-cloud-trace-context", &header)], "")).await;
    assert_json(&lines[0], &order_line(trace_fields("0000000000000001", false)));
}

#[tokio::test]
async fn unsampled_traceparent_and_precedence() {
    // traceparent wins over X-Cloud-Trace-Context when both are sent (Cloud Run sends both).
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-00");
    let cloud = "105445aa7843bc8bf206b12000100000/1;o=1";
    let headers = [("traceparent", traceparent.as_str()), ("x-cloud-trace-context", cloud)];
    let (_, lines) = run(trace_options(), request("POST", "/orders/42", &headers, "")).await;
    assert_json(&lines[0], &order_line(trace_fields("00f067aa0ba902b7", false)));
    // An invalid traceparent falls back to X-Cloud-Trace-Context.
    let headers =
        [("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"), ("x-cloud-trace-context", cloud)];
    let (_, lines) = run(trace_options(), request("POST", "/orders/42", &headers, "")).await;
    assert_eq!(
        lines[0]["logging.googleapis.com/trace"],
        "projects/test-project/traces/105445aa7843bc8bf206b12000100000"
    );
    assert_eq!(lines[0]["logging.googleapis.com/spanId"], "0000000000000001");
}

#[tokio::test]
async fn no_trace_header_means_no_trace_fields() {
    let (_, lines) = run(trace_options(), request("POST", "/orders/42", &[], "")).await;
    assert_json(&lines[0], &order_line(json!({})));
    let size = request_size("POST /orders/42 HTTP/1.1\r\n", &[]);
    assert_json(&lines[1], &request_line(json!({}), "INFO", "POST", "/orders/42", 200, (size, OK_RESPONSE)));
}

#[tokio::test]
async fn explicit_severities_and_status_classes() {
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let (status, lines) =
        run(trace_options(), request("GET", "/severities", &[("traceparent", &traceparent)], "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let got: Vec<(&str, &str)> =
        lines.iter().map(|l| (l["severity"].as_str().unwrap(), l["message"].as_str().unwrap())).collect();
    assert_eq!(
        got,
        [
            ("NOTICE", "n"),
            ("CRITICAL", "c"),
            ("ALERT", "a"),
            ("EMERGENCY", "e"),
            ("WARNING", "unknown names leave the level's severity"),
            ("DEBUG", "d"),
            ("WARNING", "GET /severities 404"),
        ]
    );
    // An unknown name is kept, under a key that cannot override the severity.
    assert_eq!(lines[4]["invalid_severity"], "LOUD");
    assert!(lines[0].get("invalid_severity").is_none());
    assert!(lines.iter().all(|l| l.get("@type").is_none()), "no severity alone makes an error report");
}

#[tokio::test]
async fn an_error_is_reported_once_with_the_request_context() {
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let (status, lines) = run(trace_options(), request("GET", "/fail", &[("traceparent", &traceparent)], "")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let trace = trace_fields("00f067aa0ba902b7", true);
    let spans = json!({"span": {"name": "request"}, "spans": [{"name": "request"}]});
    let report = merge(
        merge(
            json!({
                "severity": "ERROR",
                "message": "saving order 7 failed",
                "logging.googleapis.com/sourceLocation":
                    {"file": "tests/logging_lines.rs", "line": "<line>", "function": "logging_lines"},
                "target": "sea_gcp::error_reporting",
                "error": "saving order 7 failed",
                "@type": "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent",
                "serviceContext": {"service": "orders", "version": "orders-00042"},
                "context": {
                    "reportLocation":
                        {"filePath": "tests/logging_lines.rs", "lineNumber": "<lineNumber>", "functionName": "logging_lines"},
                    "httpRequest": {
                        "method": "GET",
                        "url": "https://shop.example/fail",
                        "userAgent": "curl/8.5",
                        "referrer": "https://shop.example/cart",
                        "remoteIp": "203.0.113.7",
                    },
                },
                "stack_trace": "saving order 7 failed\n\nCaused by:\n    disk full",
            }),
            trace.clone(),
        ),
        spans.clone(),
    );
    assert_json(&lines[0], &report);
    // The same root cause logged again: a plain ERROR line.
    let again = merge(
        merge(
            json!({
                "severity": "ERROR",
                "message": "handler failed",
                "logging.googleapis.com/sourceLocation":
                    {"file": "tests/logging_lines.rs", "line": "<line>", "function": "logging_lines"},
                "target": "logging_lines",
                "error": "request failed",
            }),
            trace.clone(),
        ),
        spans,
    );
    assert_json(&lines[1], &again);
    let size = request_size("GET /fail HTTP/1.1\r\n", &[&format!("traceparent: {traceparent}\r\n")]);
    let response = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n";
    assert_json(&lines[2], &request_line(trace, "ERROR", "GET", "/fail", 500, (size, response)));
    assert_eq!(lines.iter().filter(|l| l.get("@type").is_some()).count(), 1);
}

#[tokio::test]
async fn different_errors_with_the_same_text_are_each_reported() {
    let (_, lines) = run(trace_options(), request("GET", "/two-failures", &[], "")).await;
    let reports: Vec<&str> =
        lines.iter().filter(|l| l.get("@type").is_some()).map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(reports, ["saving order 1 failed", "saving order 2 failed", "a", "b"], "{lines:#?}");
    let again = lines.iter().find(|l| l["message"] == "a again").unwrap();
    assert!(again.get("@type").is_none(), "the same error object logged again is not a second report");
}

#[tokio::test]
async fn sizes_count_headers_and_only_the_bytes_sent() {
    async fn sizes(method: &str, uri: &str) -> Value {
        let captured = Captured::default();
        let _guard = tracing::subscriber::set_default(captured.subscriber(options()));
        let request = Request::builder().method(method).uri(uri).header("host", "a").body(Body::empty()).unwrap();
        app(trace_options()).oneshot(request).await.unwrap();
        let line = captured.lines().pop().unwrap();
        line["httpRequest"].clone()
    }
    let request_size = |line: &str| (line.len() + "host: a\r\n\r\n".len()).to_string();
    let hello = sizes("GET", "/hello").await;
    assert_eq!(hello["requestSize"], request_size("GET /hello HTTP/1.1\r\n"));
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n";
    assert_eq!(hello["responseSize"], (head.len() + "content-length: 5\r\n\r\nhello".len()).to_string());
    // A 204 and a HEAD response carry no body, whatever the handler's body says.
    let nothing = sizes("GET", "/nothing").await;
    assert_eq!(nothing["status"], 204);
    let head_204 = "HTTP/1.1 204 No Content\r\ncontent-type: text/plain; charset=utf-8\r\n\r\n";
    assert_eq!(nothing["responseSize"], head_204.len().to_string());
    let head_only = sizes("HEAD", "/hello").await;
    assert_eq!(head_only["requestSize"], request_size("HEAD /hello HTTP/1.1\r\n"));
    let size: usize = head_only["responseSize"].as_str().unwrap().parse().unwrap();
    assert!(size < head.len() + "content-length: 5\r\n\r\nhello".len() && size >= head.len() + 2, "{head_only}");
}

#[tokio::test]
async fn a_failed_project_id_lookup_is_retried_after_a_backoff() {
    use sea_gcp::testing::metadata_server::{FakeMetadata, FakeMetadataServer};
    let server = FakeMetadataServer::start(FakeMetadata::default().with_failures("project/project-id", 1)).await;
    let options = TraceOptions::default()
        .with_metadata(server.client())
        .with_project_id_retry(std::time::Duration::from_millis(300));
    let app = app(options);
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let trace_of = |app: Router| {
        let traceparent = traceparent.clone();
        async move {
            let captured = Captured::default();
            let _guard = tracing::subscriber::set_default(captured.subscriber(self::options()));
            app.oneshot(request("POST", "/orders/1", &[("traceparent", &traceparent)], "")).await.unwrap();
            let lines = captured.lines();
            lines.iter().find(|l| l["message"] == "order placed").unwrap()["logging.googleapis.com/trace"].clone()
        }
    };
    // The first lookup fails: a bare id, and no lookup again until the backoff has passed.
    assert_eq!(trace_of(app.clone()).await, TRACE);
    assert_eq!(trace_of(app.clone()).await, TRACE);
    assert_eq!(server.requests_for("project/project-id"), 1);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let full = format!("projects/test-project/traces/{TRACE}");
    assert_eq!(trace_of(app.clone()).await, full.as_str());
    assert_eq!(trace_of(app.clone()).await, full.as_str());
    assert_eq!(server.requests_for("project/project-id"), 2, "a found id is kept");
}

#[test]
fn outside_a_request_errors_are_reported_every_time() {
    let captured = Captured::default();
    tracing::subscriber::with_default(captured.subscriber(LoggingOptions::default().with_span_list(false)), || {
        let e = std::io::Error::other("cache down");
        tracing::error!(error = &e as &dyn std::error::Error, attempt = 1u64);
        tracing::error!(error = &e as &dyn std::error::Error, attempt = 2u64);
        tracing::warn!(error = &e as &dyn std::error::Error, "a warning with an error is not a report");
    });
    let lines: Vec<Value> = captured.lines().into_iter().map(normalize).collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines[..2].iter().enumerate() {
        assert_eq!(line["message"], "cache down", "an error without a message is the message");
        assert_eq!(line["attempt"], i as u64 + 1);
        assert_eq!(line["@type"], sea_gcp::logging::REPORTED_ERROR_EVENT_TYPE);
        assert_eq!(line["context"]["reportLocation"]["functionName"], "logging_lines");
        assert!(line["context"].get("httpRequest").is_none());
        assert!(line.get("logging.googleapis.com/trace").is_none());
        assert!(line.get("span").is_none() && line.get("spans").is_none());
    }
    assert!(lines[2].get("@type").is_none());
    assert_eq!(lines[2]["severity"], "WARNING");
}

#[test]
fn trace_headers_are_parsed_strictly() {
    let ok = TraceContext::from_traceparent(&format!("00-{TRACE}-00f067aa0ba902b7-01")).unwrap();
    assert_eq!(ok.span_id.as_deref(), Some("00f067aa0ba902b7"));
    for bad in [
        // W3C: uppercase hex digits make the header invalid, in any part.
        &format!("00-{TRACE}-00F067AA0BA902B7-01"),
        &format!("00-{}-00f067aa0ba902b7-01", TRACE.to_uppercase()),
        &format!("00-{TRACE}-00f067aa0ba902b7-0A"),
        &format!("0A-{TRACE}-00f067aa0ba902b7-01"),
        "",
        "00-xyz",
        &format!("ff-{TRACE}-00f067aa0ba902b7-01"),
        &format!("00-{TRACE}-0000000000000000-01"),
        &format!("00-{TRACE}-00f067aa0ba902b7-01-extra"),
        &format!("00-{TRACE}-00f067aa0ba902b-01"),
    ] {
        assert_eq!(TraceContext::from_traceparent(bad), None, "{bad}");
    }
    // A later version may carry more parts.
    assert!(TraceContext::from_traceparent(&format!("01-{TRACE}-00f067aa0ba902b7-01-more")).is_some());
    let no_span = TraceContext::from_cloud_trace_context(TRACE).unwrap();
    assert_eq!((no_span.span_id, no_span.sampled), (None, false));
    let max = TraceContext::from_cloud_trace_context(&format!("{TRACE}/18446744073709551615;o=1")).unwrap();
    assert_eq!(max.span_id.as_deref(), Some("ffffffffffffffff"));
    for bad in ["nothex/1;o=1", &format!("{TRACE}x/1"), "00000000000000000000000000000000/1"] {
        assert_eq!(TraceContext::from_cloud_trace_context(bad), None, "{bad}");
    }
    assert_eq!(TraceContext::from_cloud_trace_context(&format!("{TRACE}/99999999999999999999")).unwrap().span_id, None);
    // Decimal digits only: no sign, no space.
    for span in ["+5", "-5", " 5", "5 ", "0x5"] {
        let parsed = TraceContext::from_cloud_trace_context(&format!("{TRACE}/{span};o=1")).unwrap();
        assert_eq!(parsed.span_id, None, "{span}");
        assert!(parsed.sampled);
    }
}

#[tokio::test]
async fn remote_ip_trusts_only_the_configured_proxies() {
    let spoofed = [("x-forwarded-for", "6.6.6.6")];
    // No trusted proxy: the peer, whatever the header says.
    let (_, lines) =
        run(TraceOptions::default().with_project_id("p"), request("POST", "/orders/1", &spoofed, "")).await;
    assert_eq!(lines[1]["httpRequest"]["remoteIp"], "169.254.1.1");
    // Networks: entries inside them are skipped from the right.
    let nets = TrustedProxies::Networks(vec!["169.254.0.0/16".parse().unwrap(), "203.0.113.0/24".parse().unwrap()]);
    let (_, lines) =
        run(TraceOptions::default().with_trusted_proxies(nets), request("POST", "/orders/1", &[], "")).await;
    assert_eq!(lines[1]["httpRequest"]["remoteIp"], "10.9.9.9");
    // Two hops (a load balancer in front of Cloud Run).
    let (_, lines) = run(
        TraceOptions::default().with_trusted_proxies(TrustedProxies::Hops(2)),
        request("POST", "/orders/1", &[], ""),
    )
    .await;
    assert_eq!(lines[1]["httpRequest"]["remoteIp"], "10.9.9.9");
}
