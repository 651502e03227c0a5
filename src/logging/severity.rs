//! Cloud Logging's severities.

use std::fmt;

/// A Cloud Logging severity (`LogSeverity`).
///
/// The level of an event gives the default (TRACE and DEBUG: `DEBUG`, INFO: `INFO`, WARN: `WARNING`, ERROR:
/// `ERROR`); a `severity` field on the event overrides it with any of these names, which is how to log the
/// severities tracing has no level for: `tracing::error!(severity = "CRITICAL", "...")` or
/// `tracing::warn!(severity = %Severity::Notice, "...")`. An unknown name leaves the level's
/// severity and is kept as an `invalid_severity` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// No assigned severity.
    Default,
    /// Debug or trace information.
    Debug,
    /// Routine information.
    Info,
    /// Normal but significant events (start up, shut down, a configuration change).
    Notice,
    /// Events that might cause problems.
    Warning,
    /// Events likely to cause problems.
    Error,
    /// Events that cause more severe problems or outages.
    Critical,
    /// A person must take an action immediately.
    Alert,
    /// One or more systems are unusable.
    Emergency,
}

impl Severity {
    /// The name Cloud Logging uses (`NOTICE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Default => "DEFAULT",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Notice => "NOTICE",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Critical => "CRITICAL",
            Severity::Alert => "ALERT",
            Severity::Emergency => "EMERGENCY",
        }
    }

    /// Parse a name, case-insensitively (`"critical"`, `"WARNING"`; `"WARN"` is accepted too).
    pub fn parse(name: &str) -> Option<Self> {
        const ALL: [Severity; 9] = [
            Severity::Default,
            Severity::Debug,
            Severity::Info,
            Severity::Notice,
            Severity::Warning,
            Severity::Error,
            Severity::Critical,
            Severity::Alert,
            Severity::Emergency,
        ];
        let name = name.trim();
        if name.eq_ignore_ascii_case("WARN") {
            return Some(Severity::Warning);
        }
        ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// The default for a tracing level.
    pub(crate) fn from_level(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::ERROR => Severity::Error,
            tracing::Level::WARN => Severity::Warning,
            tracing::Level::INFO => Severity::Info,
            _ => Severity::Debug,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
