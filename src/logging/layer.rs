//! The tracing layer: one Cloud Logging structured-JSON line per event.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::fmt::{self, Write as _};
use std::hash::Hasher;
use std::io::{self, Write as _};
use std::sync::Mutex;

use chrono::{Datelike, Timelike};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::Severity;
use super::json::{Escaped, escape_into, push_debug, push_display, push_f64, push_key, push_str};
use super::members::{Members, OnDuplicate};

/// The `@type` that makes Error Reporting pick an entry up.
pub const REPORTED_ERROR_EVENT_TYPE: &str =
    "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent";

/// Options of [`CloudLoggingLayer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoggingOptions {
    /// Error Reporting's `serviceContext.service`. Default: `K_SERVICE` (Cloud Run sets it), else
    /// `CLOUD_RUN_JOB`. When `None`, the layer uses `CARGO_PKG_NAME` from the environment (`cargo run` sets
    /// it), else the executable's file name: Error Reporting needs a service name.
    pub service: Option<String>,
    /// Error Reporting's `serviceContext.version`. Default: `K_REVISION`. When `None`, the layer uses
    /// `CARGO_PKG_VERSION` from the environment, if set.
    pub version: Option<String>,
    /// The longest line written, in bytes (default [`DEFAULT_MAX_LINE_BYTES`]; at least 1024). A longer
    /// line has its longest string values cut to fit, each cut marked `…[truncated N bytes]`.
    pub max_line_bytes: usize,
    /// Write the current span and its fields as `span` (default true).
    pub current_span: bool,
    /// Write every span from the root as `spans` (default true).
    pub span_list: bool,
    /// Write the event's target as `target` (default true).
    pub target: bool,
    /// ERROR events that carry an error value (`error = &e as &dyn Error`) become Error Reporting events
    /// (default true). [`report`](super::report) and the panic hook report regardless.
    pub report_error_events: bool,
}

impl Default for LoggingOptions {
    fn default() -> Self {
        let env = crate::metadata::CloudRunEnvironment::from_env();
        Self {
            service: env.service.or(env.job),
            version: env.revision,
            current_span: true,
            span_list: true,
            target: true,
            report_error_events: true,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl LoggingOptions {
    /// Error Reporting's service name and version (instead of `K_SERVICE` / `K_REVISION`).
    pub fn with_service_context(mut self, service: impl Into<String>, version: Option<String>) -> Self {
        self.service = Some(service.into());
        self.version = version;
        self
    }

    /// Write the current span as `span`.
    pub fn with_current_span(mut self, yes: bool) -> Self {
        self.current_span = yes;
        self
    }

    /// Write the span list as `spans`.
    pub fn with_span_list(mut self, yes: bool) -> Self {
        self.span_list = yes;
        self
    }

    /// Write the event's target.
    pub fn with_target(mut self, yes: bool) -> Self {
        self.target = yes;
        self
    }

    /// Report ERROR events that carry an error value to Error Reporting.
    pub fn with_report_error_events(mut self, yes: bool) -> Self {
        self.report_error_events = yes;
        self
    }

    /// Cut lines longer than this many bytes (at least 1024) to fit.
    pub fn with_max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes;
        self
    }
}

/// The default [`LoggingOptions::max_line_bytes`]: Cloud Logging drops entries over 256 KB, and the entry
/// it stores holds more than the line (the resource, the log name, timestamps), so 16 KiB are left for that.
pub const DEFAULT_MAX_LINE_BYTES: usize = 240 * 1024;

/// Top-level keys Cloud Logging, its agents or Error Reporting give a meaning to, or that the layer writes
/// itself: an event field with one of these names goes into the line's `fields` object instead.
const RESERVED_KEYS: &[&str] = &[
    "severity",
    "message",
    "time",
    "timestamp",
    "timestampSeconds",
    "timestampNanos",
    "httpRequest",
    "target",
    "span",
    "spans",
    "@type",
    "serviceContext",
    "context",
    "stack_trace",
    "exception",
    "invalid_severity",
    "fields",
];

/// True for a top-level key an event field must not take (see [`RESERVED_KEYS`]; also every
/// `logging.googleapis.com/` key).
fn is_reserved(key: &str) -> bool {
    key.starts_with("logging.googleapis.com/") || RESERVED_KEYS.contains(&key)
}

/// A [`Layer`] writing one JSON object per line in Cloud Logging's structured format.
///
/// See the [module docs](super) for the fields. The writer is stdout unless replaced with
/// [`with_writer`](Self::with_writer) (any [`MakeWriter`]: a file, a `Vec` behind a mutex in tests). Each line
/// is handed to the writer in one `write_all`, so lines from concurrent threads never interleave.
pub struct CloudLoggingLayer<W = fn() -> io::Stdout> {
    options: LoggingOptions,
    /// `"serviceContext":{...}` rendered once.
    service_context: String,
    writer: W,
}

impl fmt::Debug for CloudLoggingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudLoggingLayer").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Default for CloudLoggingLayer {
    fn default() -> Self {
        Self::new(LoggingOptions::default())
    }
}

impl CloudLoggingLayer {
    /// A layer writing to stdout with these options.
    pub fn new(options: LoggingOptions) -> Self {
        let env = |name| std::env::var(name).ok().filter(|v: &String| !v.trim().is_empty());
        let service = options.service.clone().or_else(|| env("CARGO_PKG_NAME")).unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "unknown".to_string())
        });
        let version =
            options.version.clone().or_else(|| options.service.is_none().then(|| env("CARGO_PKG_VERSION")).flatten());
        let mut service_context = String::from(",\"serviceContext\":{\"service\":");
        push_str(&mut service_context, &service);
        if let Some(version) = &version {
            service_context.push_str(",\"version\":");
            push_str(&mut service_context, version);
        }
        service_context.push('}');
        Self { options, service_context, writer: io::stdout }
    }
}

impl<W> CloudLoggingLayer<W> {
    /// Write lines to `writer` instead.
    pub fn with_writer<W2>(self, writer: W2) -> CloudLoggingLayer<W2>
    where
        W2: for<'w> MakeWriter<'w> + 'static,
    {
        CloudLoggingLayer { options: self.options, service_context: self.service_context, writer }
    }

    /// The options.
    pub fn options(&self) -> &LoggingOptions {
        &self.options
    }
}

/// The trace and HTTP request a request span carries (set by [`TraceContextLayer`](super::TraceContextLayer)).
#[derive(Default)]
pub(crate) struct RequestContext {
    trace: Option<String>,
    span_id: Option<String>,
    sampled: Option<bool>,
    method: Option<String>,
    url: Option<String>,
    user_agent: Option<String>,
    referer: Option<String>,
    remote_ip: Option<String>,
    /// Errors already reported inside this request.
    reported: Mutex<Vec<ReportedError>>,
}

/// An error reported inside a request, to tell a later entry for the same error from a different one.
struct ReportedError {
    /// A hash of each error's text in the chain, outermost first.
    chain: Vec<u64>,
    /// The address of the chain's last error (its root cause).
    root: usize,
}

impl ReportedError {
    /// True when an error with this chain and root is the reported one: the same object logged again
    /// (same chain, same root cause object), or an error wrapping it (a longer chain ending with it).
    fn is(&self, chain: &[u64], root: usize) -> bool {
        if chain.len() == self.chain.len() {
            chain == self.chain && root == self.root
        } else {
            chain.ends_with(&self.chain)
        }
    }
}

/// What the layer keeps for a span.
#[derive(Default)]
struct SpanRecord {
    /// The span's fields (a field recorded again replaces its value).
    fields: Members,
    /// Fields named `name` or `fields`, which the span object holds itself: written under `fields`.
    nested: Members,
    /// `labels.` fields, values as strings.
    labels: Members,
    request: Option<RequestContext>,
}

/// A field value as tracing hands it over.
#[derive(Clone, Copy)]
enum Val<'a> {
    Str(&'a str),
    Debug(&'a dyn fmt::Debug),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
    Error(&'a (dyn std::error::Error + 'static)),
}

impl Val<'_> {
    fn json(self, out: &mut String) {
        match self {
            Val::Str(s) => push_str(out, s),
            Val::Debug(d) => push_debug(out, d),
            Val::I64(v) => {
                let _ = write!(out, "{v}");
            }
            Val::U64(v) => {
                let _ = write!(out, "{v}");
            }
            Val::I128(v) => {
                let _ = write!(out, "{v}");
            }
            Val::U128(v) => {
                let _ = write!(out, "{v}");
            }
            Val::F64(v) => push_f64(out, v),
            Val::Bool(v) => out.push_str(if v { "true" } else { "false" }),
            Val::Error(e) => push_display(out, &e),
        }
    }

    /// The value as JSON string content (no quotes).
    fn text(self, out: &mut String) {
        match self {
            Val::Str(s) => escape_into(out, s),
            Val::Debug(d) => {
                let _ = write!(Escaped(out), "{d:?}");
            }
            Val::Error(e) => {
                let _ = write!(Escaped(out), "{e}");
            }
            Val::Bool(_) | Val::I64(_) | Val::U64(_) | Val::I128(_) | Val::U128(_) | Val::F64(_) => self.json(out),
        }
    }

    fn string(self) -> String {
        match self {
            Val::Str(s) => s.to_string(),
            Val::Debug(d) => format!("{d:?}"),
            Val::Error(e) => e.to_string(),
            other => {
                let mut s = String::new();
                other.json(&mut s);
                s
            }
        }
    }

    fn as_bool(self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(b),
            Val::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

macro_rules! visit_all {
    ($t:ty) => {
        impl Visit for $t {
            fn record_str(&mut self, f: &Field, v: &str) {
                self.field(f.name(), Val::Str(v));
            }
            fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
                self.field(f.name(), Val::Debug(v));
            }
            fn record_i64(&mut self, f: &Field, v: i64) {
                self.field(f.name(), Val::I64(v));
            }
            fn record_u64(&mut self, f: &Field, v: u64) {
                self.field(f.name(), Val::U64(v));
            }
            fn record_i128(&mut self, f: &Field, v: i128) {
                self.field(f.name(), Val::I128(v));
            }
            fn record_u128(&mut self, f: &Field, v: u128) {
                self.field(f.name(), Val::U128(v));
            }
            fn record_f64(&mut self, f: &Field, v: f64) {
                self.field(f.name(), Val::F64(v));
            }
            fn record_bool(&mut self, f: &Field, v: bool) {
                self.field(f.name(), Val::Bool(v));
            }
            fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
                self.field(f.name(), Val::Error(v));
            }
        }
    };
}

struct SpanVisitor<'a>(&'a mut SpanRecord);
visit_all!(SpanVisitor<'_>);

impl SpanVisitor<'_> {
    fn field(&mut self, name: &str, v: Val<'_>) {
        if let Some(key) = name.strip_prefix("gcp.") {
            let request = self.0.request.get_or_insert_with(RequestContext::default);
            match key {
                "trace" => request.trace = Some(v.string()),
                "span_id" => request.span_id = Some(v.string()),
                "trace_sampled" => request.sampled = v.as_bool(),
                "http.method" => request.method = Some(v.string()),
                "http.url" => request.url = Some(v.string()),
                "http.user_agent" => request.user_agent = Some(v.string()),
                "http.referer" => request.referer = Some(v.string()),
                "http.remote_ip" => request.remote_ip = Some(v.string()),
                _ => {}
            }
        } else if let Some(label) = name.strip_prefix("labels.") {
            self.0.labels.push(label, OnDuplicate::Replace, |out| {
                out.push('"');
                v.text(out);
                out.push('"');
            });
        } else {
            let members = if matches!(name, "name" | "fields") { &mut self.0.nested } else { &mut self.0.fields };
            members.push(name, OnDuplicate::Replace, |out| v.json(out));
        }
    }
}

/// Per-thread buffers reused for every event: the steady state allocates nothing.
#[derive(Default)]
struct Buffers {
    out: String,
    /// The event's fields, top level.
    fields: Members,
    /// The event's fields whose names are reserved, under `fields`.
    nested: Members,
    /// The event's labels.
    labels: Members,
    /// The line's labels: the event's, then each span's from the innermost.
    all_labels: Members,
    /// Per error in the event's error chain, a hash of its text (outermost first).
    chain_hashes: Vec<u64>,
    message: String,
    insert_id: String,
    http: Members,
    error_display: String,
    error_chain: String,
    report_file: String,
    report_function: String,
    report_stack: String,
    scratch: String,
}

impl Buffers {
    fn clear(&mut self) {
        self.fields.clear();
        self.nested.clear();
        self.labels.clear();
        self.all_labels.clear();
        self.chain_hashes.clear();
        self.http.clear();
        for b in [
            &mut self.out,
            &mut self.message,
            &mut self.insert_id,
            &mut self.error_display,
            &mut self.error_chain,
            &mut self.report_file,
            &mut self.report_function,
            &mut self.report_stack,
            &mut self.scratch,
        ] {
            b.clear();
            if b.capacity() > 64 * 1024 {
                b.shrink_to(4096);
            }
        }
    }
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

struct EventVisitor<'a> {
    b: &'a mut Buffers,
    severity: Option<Severity>,
    has_message: bool,
    has_insert_id: bool,
    report: bool,
    report_line: Option<u64>,
    /// The address of the first error value's root cause.
    error_root: Option<usize>,
    /// A `severity` field that names no severity (its text is in `b.scratch`).
    invalid_severity: bool,
}
visit_all!(EventVisitor<'_>);

fn hash_display(value: &dyn fmt::Display) -> u64 {
    struct H(DefaultHasher);
    impl fmt::Write for H {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut h = H(DefaultHasher::new());
    let _ = write!(h, "{value}");
    h.0.finish()
}

impl EventVisitor<'_> {
    fn field(&mut self, name: &str, v: Val<'_>) {
        // A field given twice: the last value counts.
        match name {
            "message" => {
                self.has_message = true;
                self.b.message.clear();
                v.text(&mut self.b.message);
                return;
            }
            "severity" => {
                let scratch = &mut self.b.scratch;
                scratch.clear();
                v.text(scratch);
                match Severity::parse(scratch) {
                    Some(s) => {
                        self.severity = Some(s);
                        self.invalid_severity = false;
                    }
                    // Kept, under a name that cannot override the entry's severity.
                    None => self.invalid_severity = true,
                }
                return;
            }
            "insert_id" => {
                self.has_insert_id = true;
                self.b.insert_id.clear();
                v.text(&mut self.b.insert_id);
                return;
            }
            _ => {}
        }
        if let Some(key) = name.strip_prefix("gcp.") {
            self.gcp_field(key, v);
            return;
        }
        if let Some(label) = name.strip_prefix("labels.") {
            self.b.labels.push(label, OnDuplicate::Replace, |out| {
                out.push('"');
                v.text(out);
                out.push('"');
            });
            return;
        }
        if let Val::Error(e) = v
            && self.error_root.is_none()
        {
            self.record_error_chain(e);
        }
        let members = if is_reserved(name) { &mut self.b.nested } else { &mut self.b.fields };
        members.push(name, OnDuplicate::Replace, |out| v.json(out));
    }

    fn record_error_chain(&mut self, e: &(dyn std::error::Error + 'static)) {
        let _ = write!(Escaped(&mut self.b.error_display), "{e}");
        let chain = &mut self.b.error_chain;
        let _ = write!(Escaped(chain), "{e}");
        self.b.chain_hashes.push(hash_display(&e));
        let mut root: &dyn std::error::Error = e;
        let mut source = e.source();
        if source.is_some() {
            chain.push_str("\\n\\nCaused by:");
        }
        while let Some(s) = source {
            let _ = write!(Escaped(chain), "\n    {s}");
            self.b.chain_hashes.push(hash_display(&s));
            root = s;
            source = s.source();
        }
        self.error_root = Some(root as *const dyn std::error::Error as *const () as usize);
    }

    fn gcp_field(&mut self, key: &str, v: Val<'_>) {
        match key {
            "report" => self.report = v.as_bool().unwrap_or(true),
            "report.file" => v.text(&mut self.b.report_file),
            "report.line" => {
                self.report_line = match v {
                    Val::U64(n) => Some(n),
                    Val::I64(n) => u64::try_from(n).ok(),
                    _ => None,
                }
            }
            "report.function" => v.text(&mut self.b.report_function),
            "report.stack_trace" => v.text(&mut self.b.report_stack),
            http => {
                let (json_key, as_string) = match http {
                    "http.method" => ("requestMethod", true),
                    "http.url" => ("requestUrl", true),
                    "http.status" => ("status", false),
                    "http.request_size" => ("requestSize", true),
                    "http.response_size" => ("responseSize", true),
                    "http.latency" => ("latency", true),
                    "http.user_agent" => ("userAgent", true),
                    "http.remote_ip" => ("remoteIp", true),
                    "http.referer" => ("referer", true),
                    "http.protocol" => ("protocol", true),
                    _ => return,
                };
                self.b.http.push(json_key, OnDuplicate::Replace, |out| {
                    if as_string {
                        out.push('"');
                        v.text(out);
                        out.push('"');
                    } else {
                        v.json(out);
                    }
                });
            }
        }
    }
}

fn push_time(out: &mut String) {
    let now = chrono::Utc::now();
    let _ = write!(
        out,
        "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z\"",
        now.year(),
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.nanosecond() % 1_000_000_000
    );
}

fn push_opt(out: &mut String, key: &str, value: &Option<String>, first: &mut bool) {
    if let Some(v) = value {
        if !*first {
            out.push(',');
        }
        *first = false;
        push_key(out, key);
        push_str(out, v);
    }
}

impl<S, W> Layer<S> for CloudLoggingLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut record = SpanRecord::default();
        attrs.record(&mut SpanVisitor(&mut record));
        span.extensions_mut().insert(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(record) = extensions.get_mut::<SpanRecord>() {
            values.record(&mut SpanVisitor(record));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        BUFFERS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffers) => self.write_event(&mut buffers, event, &ctx),
            // An event logged while writing one (by a Debug impl or the writer): fresh buffers.
            Err(_) => self.write_event(&mut Buffers::default(), event, &ctx),
        });
    }
}

impl<W> CloudLoggingLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn write_event<S>(&self, b: &mut Buffers, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        b.clear();
        let meta = event.metadata();
        let mut v = EventVisitor {
            b: &mut *b,
            severity: None,
            has_message: false,
            has_insert_id: false,
            report: false,
            report_line: None,
            error_root: None,
            invalid_severity: false,
        };
        event.record(&mut v);
        let EventVisitor {
            severity,
            has_message,
            has_insert_id,
            report,
            report_line,
            error_root,
            invalid_severity,
            ..
        } = v;
        let severity = severity.unwrap_or_else(|| Severity::from_level(meta.level()));
        let scope = ctx.event_scope(event);

        let out = &mut b.out;
        out.push_str("{\"severity\":\"");
        out.push_str(severity.as_str());
        out.push_str("\",\"message\":\"");
        if has_message || b.error_display.is_empty() {
            out.push_str(&b.message);
        } else {
            out.push_str(&b.error_display);
        }
        out.push_str("\",\"time\":");
        push_time(out);

        let file = if b.report_file.is_empty() { None } else { Some(b.report_file.as_str()) };
        let line = report_line.or(meta.line().map(u64::from));
        let function = if b.report_function.is_empty() { None } else { Some(b.report_function.as_str()) };
        // `report.file` / `report.function` arrive already escaped; metadata needs escaping.
        out.push_str(",\"logging.googleapis.com/sourceLocation\":{");
        let location = |out: &mut String, file_key: &str, line_key: &str, line_quoted: bool, fn_key: &str| {
            let mut sep = false;
            if file.is_some() || meta.file().is_some() {
                push_key(out, file_key);
                match file {
                    Some(f) => {
                        out.push('"');
                        out.push_str(f);
                        out.push('"');
                    }
                    None => push_str(out, meta.file().unwrap_or_default()),
                }
                sep = true;
            }
            if let Some(line) = line {
                if sep {
                    out.push(',');
                }
                push_key(out, line_key);
                if line_quoted {
                    let _ = write!(out, "\"{line}\"");
                } else {
                    let _ = write!(out, "{line}");
                }
                sep = true;
            }
            if sep {
                out.push(',');
            }
            push_key(out, fn_key);
            match function {
                Some(f) => {
                    out.push('"');
                    out.push_str(f);
                    out.push('"');
                }
                None => push_str(out, meta.module_path().unwrap_or(meta.target())),
            }
        };
        location(out, "file", "line", true, "function");
        out.push('}');

        // The nearest request span's trace and HTTP request.
        let mut request_span = None;
        if let Some(scope) = scope {
            for span in scope {
                if span.extensions().get::<SpanRecord>().is_some_and(|r| r.request.is_some()) {
                    request_span = Some(span);
                    break;
                }
            }
        }
        let extensions = request_span.as_ref().map(|s| s.extensions());
        let request = extensions.as_ref().and_then(|e| e.get::<SpanRecord>()).and_then(|r| r.request.as_ref());
        if let Some(r) = request {
            if let Some(trace) = &r.trace {
                out.push_str(",\"logging.googleapis.com/trace\":");
                push_str(out, trace);
            }
            if let Some(span_id) = &r.span_id {
                out.push_str(",\"logging.googleapis.com/spanId\":");
                push_str(out, span_id);
            }
            if let Some(sampled) = r.sampled {
                out.push_str(",\"logging.googleapis.com/trace_sampled\":");
                out.push_str(if sampled { "true" } else { "false" });
            }
        }
        if has_insert_id {
            out.push_str(",\"logging.googleapis.com/insertId\":\"");
            out.push_str(&b.insert_id);
            out.push('"');
        }

        // Labels: the event's, then each span's from the innermost; a label set closer to the event wins.
        let labels = &mut b.all_labels;
        labels.extend(&b.labels, OnDuplicate::Keep);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(r) = span.extensions().get::<SpanRecord>() {
                    labels.extend(&r.labels, OnDuplicate::Keep);
                }
            }
        }
        if !labels.is_empty() {
            out.push_str(",\"logging.googleapis.com/labels\":{");
            out.push_str(labels.inner());
            out.push('}');
        }
        if !b.http.is_empty() {
            out.push_str(",\"httpRequest\":{");
            out.push_str(b.http.inner());
            out.push('}');
        }
        if self.options.target {
            out.push_str(",\"target\":");
            push_str(out, meta.target());
        }
        if invalid_severity {
            out.push_str(",\"invalid_severity\":\"");
            out.push_str(&b.scratch);
            out.push('"');
        }
        out.push_str(b.fields.as_str());
        if !b.nested.is_empty() {
            out.push_str(",\"fields\":{");
            out.push_str(b.nested.inner());
            out.push('}');
        }

        if (self.options.current_span || self.options.span_list)
            && let Some(leaf) = ctx.event_span(event)
        {
            if self.options.current_span {
                out.push_str(",\"span\":");
                push_span(out, leaf.name(), leaf.extensions().get::<SpanRecord>());
            }
            if self.options.span_list {
                out.push_str(",\"spans\":[");
                for (i, span) in leaf.scope().from_root().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_span(out, span.name(), span.extensions().get::<SpanRecord>());
                }
                out.push(']');
            }
        }

        // Error Reporting: reports and ERROR events with an error, once per error per request (an entry
        // without an error value, a panic, is always new).
        let wants_report =
            report || (self.options.report_error_events && error_root.is_some() && severity >= Severity::Error);
        let first_report = wants_report
            && match (request, error_root) {
                (Some(r), Some(root)) => {
                    let chain = b.chain_hashes.as_slice();
                    let mut reported = r.reported.lock().unwrap_or_else(|p| p.into_inner());
                    if reported.iter().any(|e| e.is(chain, root)) {
                        false
                    } else {
                        reported.push(ReportedError { chain: chain.to_vec(), root });
                        true
                    }
                }
                _ => true,
            };
        if first_report {
            out.push_str(",\"@type\":\"");
            out.push_str(REPORTED_ERROR_EVENT_TYPE);
            out.push('"');
            out.push_str(&self.service_context);
            out.push_str(",\"context\":{\"reportLocation\":{");
            location(out, "filePath", "lineNumber", false, "functionName");
            out.push('}');
            if let Some(r) = request {
                out.push_str(",\"httpRequest\":{");
                let mut first_field = true;
                push_opt(out, "method", &r.method, &mut first_field);
                push_opt(out, "url", &r.url, &mut first_field);
                push_opt(out, "userAgent", &r.user_agent, &mut first_field);
                push_opt(out, "referrer", &r.referer, &mut first_field);
                push_opt(out, "remoteIp", &r.remote_ip, &mut first_field);
                out.push('}');
            }
            out.push_str("},\"stack_trace\":\"");
            // The message, then the error and its sources (once, when the message is the error itself).
            if b.error_chain.is_empty() || !b.error_chain.starts_with(b.message.as_str()) {
                out.push_str(if b.message.is_empty() { &b.error_display } else { &b.message });
                if !b.error_chain.is_empty() {
                    out.push_str("\\n\\n");
                }
            }
            out.push_str(&b.error_chain);
            if !b.report_stack.is_empty() {
                out.push_str("\\n\\n");
                out.push_str(&b.report_stack);
            }
            out.push('"');
        }
        out.push('}');
        drop(extensions);
        super::truncate::fit(out, self.options.max_line_bytes.saturating_sub(1), &mut b.scratch);
        out.push('\n');
        let _ = self.writer.make_writer_for(meta).write_all(out.as_bytes());
    }
}

fn push_span(out: &mut String, name: &str, record: Option<&SpanRecord>) {
    out.push_str("{\"name\":");
    push_str(out, name);
    if let Some(r) = record {
        out.push_str(r.fields.as_str());
        if !r.nested.is_empty() {
            out.push_str(",\"fields\":{");
            out.push_str(r.nested.inner());
            out.push('}');
        }
    }
    out.push('}');
}
