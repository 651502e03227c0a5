//! Error Reporting without API calls: entries with the `ReportedErrorEvent` `@type`, written by
//! [`CloudLoggingLayer`](super::CloudLoggingLayer), which Error Reporting picks up from Cloud Logging.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::panic::PanicHookInfo;

/// Report `error` to Error Reporting: an ERROR entry with the `ReportedErrorEvent` `@type`, the caller's
/// file and line as `context.reportLocation` (Error Reporting cannot parse Rust backtraces; the function is
/// the file, as a caller's location names none: [`report_error!`](crate::report_error) names the module),
/// the error and its sources as `stack_trace`, and the HTTP request when inside a
/// [`TraceContextLayer`](super::TraceContextLayer) span. Inside a request, an error whose root cause was
/// already reported is written as a plain ERROR entry instead, so an error logged again on its way out is
/// reported once.
#[track_caller]
pub fn report(error: &(dyn std::error::Error + 'static)) {
    let location = std::panic::Location::caller();
    report_at(error, location.file(), location.line(), location.file());
}

/// [`report`] with an explicit location (what [`report_error!`](crate::report_error) passes).
pub fn report_at(error: &(dyn std::error::Error + 'static), file: &str, line: u32, function: &str) {
    tracing::event!(
        target: "sea_gcp::error_reporting",
        tracing::Level::ERROR,
        { gcp.report = true, gcp.report.file = file, gcp.report.line = line, gcp.report.function = function, error = error },
        "{error}"
    );
}

/// Report an error to Error Reporting with this file, line and module as the location:
/// `sea_gcp::report_error!(&err)`. See [`logging::report`](crate::logging::report).
#[macro_export]
macro_rules! report_error {
    ($error:expr) => {
        $crate::logging::report_at($error, file!(), line!(), module_path!())
    };
}

/// Options of [`install_panic_hook`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PanicHookOptions {
    /// Also run the hook that was installed before (by default Rust's, which prints to stderr: on Cloud Run
    /// that is a second, unstructured entry). Default false.
    pub call_previous: bool,
    /// Capture a backtrace for `stack_trace` even when `RUST_BACKTRACE` is unset. Default false.
    pub force_backtrace: bool,
}

impl PanicHookOptions {
    /// Run the previous hook too.
    pub fn with_call_previous(mut self, yes: bool) -> Self {
        self.call_previous = yes;
        self
    }

    /// Always capture a backtrace.
    pub fn with_force_backtrace(mut self, yes: bool) -> Self {
        self.force_backtrace = yes;
        self
    }
}

fn payload_text<'a>(info: &'a PanicHookInfo<'_>) -> &'a str {
    if let Some(s) = info.payload().downcast_ref::<&str>() {
        s
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// Install a panic hook that reports every panic as one Error Reporting entry: the panic message, the
/// panic's file and line as `context.reportLocation`, the current span's name (else the thread's) as the
/// function (a panic location names no function), the request context when the panic happens inside a request span, and a backtrace
/// in `stack_trace` when one is captured.
pub fn install_panic_hook(options: PanicHookOptions) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = payload_text(info);
        let (file, line) = info.location().map(|l| (l.file(), l.line())).unwrap_or(("<unknown>", 0));
        let backtrace = if options.force_backtrace { Backtrace::force_capture() } else { Backtrace::capture() };
        let stack = match backtrace.status() {
            BacktraceStatus::Captured => format!("panicked at {file}:{line}\n{backtrace}"),
            _ => format!("panicked at {file}:{line}"),
        };
        let thread = std::thread::current();
        let span = tracing::Span::current();
        let function = span.metadata().map(|m| m.name()).or(thread.name()).unwrap_or("<unnamed thread>");
        tracing::event!(
            target: "sea_gcp::panic",
            tracing::Level::ERROR,
            {
                gcp.report = true,
                gcp.report.file = file,
                gcp.report.line = line,
                gcp.report.function = function,
                gcp.report.stack_trace = stack.as_str(),
            },
            "panicked: {message}"
        );
        if options.call_previous {
            previous(info);
        }
    }));
}
