//! The crate's one public error type.
//!
//! Every fallible public function returns [`Result<T>`]. Module-private errors convert into [`Error`] so
//! that callers match on one enum: [`Error::NotFound`], [`Error::Precondition`] and friends carry the
//! object name and a message that says what to do next.

use std::fmt;

/// Shorthand for `std::result::Result<T, sea_gcp::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a backend or a dependency.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in sea-gcp.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object (or the requested generation of it) does not exist.
    #[error("object `{name}` not found in store `{store}`")]
    NotFound {
        /// Store key (`media`, `static`, ...).
        store: String,
        /// Object name relative to the store's location.
        name: String,
    },

    /// A precondition (`if_generation_match`, `if_metageneration_match`, ...) did not hold: GCS's 412.
    /// With `if_generation_match = 0` this means the object already exists.
    #[error("precondition failed for `{name}` in store `{store}`: {message}")]
    Precondition {
        /// Store key.
        store: String,
        /// Object name relative to the store's location.
        name: String,
        /// What did not match.
        message: String,
    },

    /// A conditional read found the object unchanged (GCS's 304).
    #[error("object `{name}` not modified")]
    NotModified {
        /// Object name relative to the store's location.
        name: String,
    },

    /// An object name was refused before any request was sent.
    #[error("invalid object name {name:?}: {reason}")]
    InvalidName {
        /// The name as given (possibly truncated for display).
        name: String,
        /// Why it was refused.
        reason: String,
    },

    /// A requested byte range cannot be served.
    #[error("range {range} not satisfiable for `{name}` of {size} bytes")]
    InvalidRange {
        /// Object name.
        name: String,
        /// The requested range, as text.
        range: String,
        /// The object's size.
        size: u64,
    },

    /// A configuration value is wrong. The message names the store or setting and the fix.
    #[error("configuration error{}: {message}", store.as_deref().map(|s| format!(" in store `{s}`")).unwrap_or_default())]
    Config {
        /// The store the setting belongs to, when there is one.
        store: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// Invalid input to an operation (bad option value, bad argument).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Signing a URL or policy failed (bad key, signBlob refused, ...).
    #[error("signing failed: {message}")]
    Signing {
        /// What failed and what to do.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// The operation is not available on this backend.
    #[error("`{operation}` is not supported by the {backend} store: {hint}")]
    NotSupported {
        /// Operation name.
        operation: &'static str,
        /// Backend kind.
        backend: &'static str,
        /// What to do instead.
        hint: String,
    },

    /// The storage service failed (HTTP error, connection error, I/O error in a backend).
    #[error("{backend} store `{store}` failed{}: {source}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Backend {
        /// Backend kind (`gcs`, `local`, `memory`).
        backend: &'static str,
        /// Store key.
        store: String,
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// Whether retrying the same request may succeed (429, 5xx, connection errors).
        retryable: bool,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// A Pub/Sub call failed (HTTP error or connection error).
    #[error("Pub/Sub request failed{}: {message}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    PubSub {
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// Whether retrying may succeed (429, 5xx, connection errors).
        retryable: bool,
        /// What failed (Google's error message).
        message: String,
    },

    /// A blob field refused a change (validation matrix, upload limits, a callback's refusal). The message
    /// says what to send instead.
    #[error("invalid value for blob field `{field}`: {message}")]
    Validation {
        /// The field, as `table.column`.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },

    /// A blob column holds a value that is not a blob value (not JSON, wrong shape, unknown version).
    #[error("corrupt value in `{table}.{column}` for row {row}: {message}")]
    CorruptColumn {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
        /// The row's primary key, as text.
        row: String,
        /// What is wrong with the value.
        message: String,
    },

    /// A database error (blob fields, outbox, migrations).
    #[error("database error: {0}")]
    #[cfg(feature = "orm")]
    Database(#[from] sea_orm::DbErr),

    /// Cloud Tasks refused a task id it holds or held recently (409 ALREADY_EXISTS): a deduplicated
    /// task with the same payload was enqueued within the de-duplication window (while it exists, and for
    /// up to about an hour after it ran or was deleted).
    #[error(
        "duplicate task `{id}` ({task}): a task with the same payload was enqueued recently; Cloud Tasks \
         refuses the name while the task exists and for a while after it ran or was deleted{}",
        if *retried { " (this enqueue was retried after a lost response, so the earlier attempt may be the one that created it)" } else { "" }
    )]
    DuplicateTask {
        /// The registered task's name.
        task: String,
        /// The Cloud Tasks task id.
        id: String,
        /// True when the refusal came on a retry of this same request (the first attempt's answer was lost).
        retried: bool,
    },

    /// A task run in-process (eager execution) failed.
    #[error("task `{task}` failed: {message}")]
    TaskFailed {
        /// The registered task's name.
        task: String,
        /// What failed.
        message: String,
    },

    /// Cloud Tasks, Cloud Scheduler or Pub/Sub answered an error (or could not be reached).
    #[error("{service} failed{}: {code}: {message}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Service {
        /// `cloudtasks`, `cloudscheduler`, `pubsub`.
        service: &'static str,
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// Google's status code (`NOT_FOUND`, `INVALID_ARGUMENT`, ...), or `UNAVAILABLE` for connection errors.
        code: String,
        /// Google's message, with what to do.
        message: String,
        /// Whether the same request may succeed later (429, 5xx, connection errors).
        retryable: bool,
    },

    /// A local I/O error outside a backend (reading a key file, a static directory, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True for [`Error::Precondition`] (including "already exists" for create-only writes).
    pub fn is_precondition(&self) -> bool {
        matches!(self, Error::Precondition { .. })
    }

    /// True when the same request may succeed if retried (429, 5xx, connection errors).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Backend { retryable: true, .. } | Error::Service { retryable: true, .. })
    }

    /// True for [`Error::DuplicateTask`].
    pub fn is_duplicate_task(&self) -> bool {
        matches!(self, Error::DuplicateTask { .. })
    }

    /// A configuration error for `store`.
    pub fn config(store: impl Into<Option<String>>, message: impl fmt::Display) -> Self {
        Error::Config { store: store.into(), message: message.to_string() }
    }

    /// A signing error with no source.
    pub fn signing(message: impl fmt::Display) -> Self {
        Error::Signing { message: message.to_string(), source: None }
    }
}
