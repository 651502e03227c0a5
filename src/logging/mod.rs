//! Cloud Logging structured logs for tracing / axum apps, with trace correlation, request logs and Error
//! Reporting (feature `logging`).
//!
//! - [`CloudLoggingLayer`]: a `tracing_subscriber` layer writing one JSON object per line (stdout by default),
//!   which Cloud Run's logging agent turns into structured entries.
//! - [`TraceContextLayer`]: a tower layer reading `traceparent` or `X-Cloud-Trace-Context` and running the
//!   request in a span, so every line logged inside the request carries its trace.
//! - [`RequestLogLayer`]: a tower layer writing one `httpRequest` entry per request.
//! - [`report`] and [`install_panic_hook`]: Error Reporting entries for errors and panics.
//!
//! ## The line
//!
//! | JSON key | from |
//! |---|---|
//! | `severity` | the level (TRACE/DEBUG: `DEBUG`, INFO, WARN: `WARNING`, ERROR), or a `severity` field naming any [`Severity`] (`NOTICE`, `CRITICAL`, `ALERT`, `EMERGENCY`) |
//! | `message` | the event's message |
//! | `time` | RFC 3339, UTC, nanoseconds |
//! | `logging.googleapis.com/sourceLocation` | `file`, `line` (a string, as in the LogEntry JSON), `function` (the module path) |
//! | `logging.googleapis.com/labels` | fields named `labels.<key>` on the event or any enclosing span (values as strings; a label set on the event wins over a span's, an inner span's over an outer one's) |
//! | `logging.googleapis.com/insertId` | an `insert_id` field |
//! | `logging.googleapis.com/trace`, `spanId`, `trace_sampled` | the request's trace (see [`TraceContextLayer`]): `projects/<project>/traces/<id>`, 16 hex digits, a boolean |
//! | `httpRequest` | request log entries ([`RequestLogLayer`]) |
//! | `target` | the event's target |
//! | other fields | by name, as JSON: numbers and booleans stay numbers and booleans |
//! | `fields` | event fields whose name is reserved (below) |
//! | `span`, `spans` | the current span and every span from the root: `{"name": ..., fields}`; span fields named `name` or `fields` go into the span's own `fields` object |
//!
//! Field names starting with `gcp.` are reserved for this module (the tower layers and reports use them).
//!
//! **No user field can take a special key.** An event field named like a key Cloud Logging, its agent or
//! Error Reporting read — `time`, `timestamp`, `timestampSeconds`, `timestampNanos`, `httpRequest`,
//! `@type`, `serviceContext`, `context`, `stack_trace`, `exception`, any `logging.googleapis.com/...` —
//! or like a key the layer writes (`target`, `span`, `spans`, `invalid_severity`, `fields`) is written
//! inside the line's `fields` object instead: `info!(time = "x", "m")` gives `"fields":{"time":"x"}`
//! next to the real `time`. (`severity`, `message` and `insert_id` keep their documented meaning.) **No
//! object holds a key twice**: a field given twice or recorded again on a span keeps its last value.
//!
//! **Size.** Cloud Logging drops an entry over 256 KB. A line longer than
//! [`LoggingOptions::max_line_bytes`] (default [`DEFAULT_MAX_LINE_BYTES`], 240 KiB) has its longest string
//! values — the message, a big field, the stack trace — cut to a common length so that it fits, each cut
//! ending with `…[truncated N bytes]` (N counted in the escaped JSON). Keys, numbers and short values stay.
//!
//! ## Error Reporting
//!
//! An entry is an Error Reporting event when it comes from [`report`], from the panic hook, or is an ERROR
//! event carrying an error value (`tracing::error!(error = &e as &dyn std::error::Error, "...")`). It gets
//! `@type` = [`REPORTED_ERROR_EVENT_TYPE`], `serviceContext` (from [`LoggingOptions`], default `K_SERVICE`
//! and `K_REVISION`; without them `CARGO_PKG_NAME` / `CARGO_PKG_VERSION` from the environment, else the
//! executable's name, since Error Reporting ignores an entry without a service; set it with
//! [`LoggingOptions::with_service_context`]`(env!("CARGO_PKG_NAME"), Some(env!("CARGO_PKG_VERSION").into()))`),
//! `context.reportLocation` (file, line, function: Error Reporting cannot parse Rust backtraces),
//! `context.httpRequest` inside a request, and `stack_trace` (the message, the error's sources, a backtrace
//! when captured).
//!
//! Inside a request an error is reported once. A later ERROR entry is the same error, and written as a
//! plain entry, when it wraps the reported one (its chain of sources ends with the reported error's chain:
//! the handler reported it, then a middleware logs the wrapped error) or is the same object again (the
//! same chain and the same root-cause value in memory). Two different errors are each reported, even when
//! they print the same text. Panics are always reported.
//!
//! ## Request logs and Cloud Run's own
//!
//! Cloud Run already writes a request log (`run.googleapis.com/requests`) with the same trace, under which
//! the Logs Explorer nests the app's lines. [`RequestLogLayer`] adds the app's view (the route's latency,
//! the client address behind configured proxies). To see each request once, either turn it off on Cloud Run
//! (`RequestLogOptions::default().with_enabled(!sea_gcp::metadata::is_cloud_run())`) or keep it and exclude
//! one of the two logs (a Logs Explorer query `-logName:"run.googleapis.com%2Frequests"`, or a sink
//! exclusion filter on that log). The layer itself writes exactly one entry per request.
//!
//! ## Setup
//!
//! ```no_run
//! use sea_gcp::logging::{
//!     CloudLoggingLayer, LoggingOptions, PanicHookOptions, RequestLogLayer, TraceContextLayer, TraceOptions,
//!     TrustedProxies, install_panic_hook,
//! };
//! use tracing_subscriber::layer::SubscriberExt as _;
//! use tracing_subscriber::util::SubscriberInitExt as _;
//!
//! tracing_subscriber::registry().with(CloudLoggingLayer::new(LoggingOptions::default())).init();
//! install_panic_hook(PanicHookOptions::default());
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "hello" }))
//!     .layer(RequestLogLayer::default())
//!     .layer(TraceContextLayer::new(TraceOptions::default().with_trusted_proxies(TrustedProxies::Hops(1))));
//! # let _ = app;
//! ```

mod error_reporting;
mod http_size;
mod json;
mod layer;
mod members;
mod request_log;
mod severity;
mod trace;
mod truncate;

pub use error_reporting::{PanicHookOptions, install_panic_hook, report, report_at};
pub use layer::{CloudLoggingLayer, DEFAULT_MAX_LINE_BYTES, LoggingOptions, REPORTED_ERROR_EVENT_TYPE};
pub use request_log::{RequestLogFuture, RequestLogLayer, RequestLogOptions, RequestLogService};
pub use severity::Severity;
pub use trace::{HttpRequestInfo, TraceContext, TraceContextLayer, TraceContextService, TraceOptions, TrustedProxies};
