#![cfg(feature = "logging")]
//! What user fields cannot do to a line: take a special field's key, write a key twice, or make the line
//! too long for Cloud Logging; and the service context every report carries.

mod logging_support;

use sea_gcp::logging::{DEFAULT_MAX_LINE_BYTES, LoggingOptions, REPORTED_ERROR_EVENT_TYPE};
use serde_json::{Value, json};

use logging_support::{Captured, normalize, options, parse_strict};

fn capture(options: LoggingOptions, f: impl FnOnce()) -> Vec<Value> {
    let captured = Captured::default();
    tracing::subscriber::with_default(captured.subscriber(options), f);
    captured.lines()
}

#[test]
fn the_test_parser_refuses_duplicate_keys() {
    assert!(parse_strict(r#"{"a":1,"b":{"c":1,"c":2}}"#).is_err());
    assert!(parse_strict(r#"{"a":1,"a":1}"#).is_err());
    assert!(parse_strict(r#"[{"a":1},{"a":1}]"#).is_ok());
}

#[test]
fn user_fields_cannot_forge_special_fields() {
    let lines = capture(options(), || {
        let span = tracing::info_span!("request", gcp.trace = "projects/real/traces/abc");
        let _entered = span.enter();
        tracing::info!(
            time = "x",
            httpRequest = "y",
            "logging.googleapis.com/trace" = "projects/forged/traces/0",
            "logging.googleapis.com/labels" = "l",
            "@type" = "z",
            target = "t",
            fields = 1,
            order = 7,
            "m"
        );
        let e = std::io::Error::other("disk full");
        tracing::error!(
            error = &e as &dyn std::error::Error,
            serviceContext = "forged",
            context = "c",
            stack_trace = "s",
            "boom"
        );
    });
    assert_eq!(lines.len(), 2);
    let line = normalize(lines[0].clone());
    assert_eq!(line["logging.googleapis.com/trace"], "projects/real/traces/abc");
    assert_eq!(line["target"], "logging_fields");
    assert_eq!(line["order"], 7);
    assert_eq!(line["message"], "m");
    for key in ["httpRequest", "@type", "logging.googleapis.com/labels"] {
        assert!(line.get(key).is_none(), "{key} in {line}");
    }
    assert_eq!(
        line["fields"],
        json!({
            "time": "x",
            "httpRequest": "y",
            "logging.googleapis.com/trace": "projects/forged/traces/0",
            "logging.googleapis.com/labels": "l",
            "@type": "z",
            "target": "t",
            "fields": 1,
        })
    );
    let report = normalize(lines[1].clone());
    assert_eq!(report["@type"], REPORTED_ERROR_EVENT_TYPE);
    assert_eq!(report["serviceContext"], json!({"service": "orders", "version": "orders-00042"}));
    assert_eq!(report["stack_trace"], "boom\n\ndisk full");
    assert!(report["context"]["reportLocation"].is_object());
    assert_eq!(report["fields"], json!({"serviceContext": "forged", "context": "c", "stack_trace": "s"}));
}

#[tracing::instrument]
fn greet(name: &str, fields: u32) {
    tracing::info!(labels.tenant = "event", "hello");
}

#[test]
fn no_object_holds_a_key_twice() {
    let lines = capture(options(), || {
        greet("bob", 3);
        let outer = tracing::info_span!("outer", labels.tenant = "outer", labels.region = "eu", n = 1);
        let _outer = outer.enter();
        outer.record("n", 2);
        let inner = tracing::info_span!("inner", labels.tenant = "inner");
        let _inner = inner.enter();
        tracing::info!(a = 1, a = 2, severity = "LOUD", severity = "ALSO LOUD", invalid_severity = "mine", "twice");
        tracing::info!(labels.tenant = "event", labels.tenant = "event again", "labels");
    });
    // `captured.lines()` refused any duplicate key; the values kept are these.
    assert_eq!(lines[0]["span"], json!({"name": "greet", "fields": {"name": "bob", "fields": 3}}));
    assert_eq!(lines[0]["logging.googleapis.com/labels"], json!({"tenant": "event"}));
    let line = &lines[1];
    assert_eq!(line["a"], 2);
    assert_eq!(line["severity"], "INFO");
    assert_eq!(line["invalid_severity"], "ALSO LOUD");
    assert_eq!(line["fields"], json!({"invalid_severity": "mine"}));
    assert_eq!(line["span"], json!({"name": "inner"}));
    assert_eq!(line["spans"], json!([{"name": "outer", "n": 2}, {"name": "inner"}]));
    // The innermost span's label wins over the outer one's.
    assert_eq!(line["logging.googleapis.com/labels"], json!({"tenant": "inner", "region": "eu"}));
    // The event's label wins over every span's, its last value over its first.
    assert_eq!(lines[2]["logging.googleapis.com/labels"], json!({"tenant": "event again", "region": "eu"}));
}

#[test]
fn a_line_over_the_limit_is_cut_to_fit_and_says_so() {
    let big = "x".repeat(1 << 20);
    let lines = capture(options(), || {
        tracing::info!(big = big.as_str(), small = "kept", n = 5, "{}", "m".repeat(1 << 20));
    });
    let line = &lines[0];
    let written = serde_json::to_string(line).unwrap();
    assert!(written.len() < DEFAULT_MAX_LINE_BYTES, "{} bytes", written.len());
    let message = line["message"].as_str().unwrap();
    assert!(message.starts_with("mmmm") && message.len() > 100_000, "{}", message.len());
    assert!(message.contains("…[truncated ") && message.ends_with(" bytes]"), "{}", &message[message.len() - 40..]);
    assert!(line["big"].as_str().unwrap().contains("…[truncated "));
    assert_eq!(line["small"], "kept");
    assert_eq!(line["n"], 5);
    assert_eq!(line["severity"], "INFO");
    normalize(line.clone());

    // A smaller limit, with a stack trace and a span field that are long too.
    let lines = capture(options().with_max_line_bytes(4096), || {
        let span = tracing::info_span!("request", long = big.as_str());
        let _entered = span.enter();
        let e = std::io::Error::other("e".repeat(100_000));
        tracing::error!(error = &e as &dyn std::error::Error, "{}", "m".repeat(10_000));
    });
    let written = serde_json::to_string(&lines[0]).unwrap();
    assert!(written.len() <= 4096, "{} bytes", written.len());
    assert_eq!(lines[0]["@type"], REPORTED_ERROR_EVENT_TYPE);
    assert!(lines[0]["stack_trace"].as_str().unwrap().contains("…[truncated "));
    assert!(lines[0]["span"]["long"].as_str().unwrap().contains("…[truncated "));
}

#[test]
fn reports_carry_a_service_context_without_configuration() {
    let mut bare = LoggingOptions::default();
    bare.service = None;
    bare.version = None;
    let lines = capture(bare, || {
        let e = std::io::Error::other("down");
        tracing::error!(error = &e as &dyn std::error::Error, "failed");
    });
    let expected_service = std::env::var("CARGO_PKG_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::env::current_exe().unwrap().file_stem().unwrap().to_string_lossy().into_owned());
    let context = &lines[0]["serviceContext"];
    assert_eq!(context["service"], expected_service.as_str(), "{context}");
    if let Ok(version) = std::env::var("CARGO_PKG_VERSION") {
        assert_eq!(context["version"], version.as_str());
    }
}
