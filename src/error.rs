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

    /// An upload ticket was posted again after its upload had been saved: a ticket promotes at most
    /// once. Clients get 409 `ticket_replayed`.
    #[error("the upload for `{field}` was already saved once with this ticket; upload the file again")]
    TicketReplayed {
        /// The field, as `table.column`.
        field: String,
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

    /// No metadata server answered: the code runs off Cloud Run / GCE / GKE (or `GCE_METADATA_HOST` names
    /// an address where nothing answers like one). The message says which setting to use instead.
    #[error("not on Cloud Run: {message}")]
    NotOnCloudRun {
        /// What was tried and what to configure instead.
        message: String,
    },

    /// The metadata server answered, but not with what was asked for (404, 403, a timeout, a bad body).
    #[error("metadata server: `{path}` failed{}: {message}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Metadata {
        /// The metadata path (`project/project-id`, ...).
        path: String,
        /// HTTP status, when there was an answer.
        status: Option<u16>,
        /// What went wrong and what to do.
        message: String,
    },

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

    /// A task was refused at enqueue, before anything was written or sent: Cloud Tasks would refuse it
    /// on every attempt (a task over 1 MB, a dispatch deadline outside 15 s..30 min, a schedule time
    /// more than 30 days ahead). The message says which limit and what to do.
    #[error("task `{task}` cannot be enqueued: {message}")]
    InvalidTask {
        /// The registered task's name.
        task: String,
        /// Which limit the task breaks and what to do instead.
        message: String,
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

    /// A step of a blob save failed (the claim, the copy, the row write, the commit): the message names
    /// the step and the field, then the cause with its whole chain. [`Error::cause`] is the underlying
    /// error ([`Error::Backend`], [`Error::Database`], ...); `is_retryable`, `is_not_found` and
    /// `is_precondition` look through to it. Refusals ([`Error::Validation`]) are never wrapped.
    #[error("saving blob field `{field}` failed at the {step} step: {source}")]
    SaveStep {
        /// Which step.
        step: SaveStep,
        /// The field, as `table.column` (or the table, for the row write and the commit).
        field: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
}

/// The kind of an [`Error`] ([`Error::kind`]): the one place that says which failures may succeed on a
/// retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object, row or resource does not exist.
    NotFound,
    /// A precondition or uniqueness rule refused the request (412, 409, a duplicate task, a replayed
    /// ticket): the same request fails again.
    Conflict,
    /// The input was refused before or by the service (bad argument, name, range, value): the same
    /// request fails again; change the input.
    Refused,
    /// A setting is wrong or missing: fix the configuration.
    Config,
    /// A transient failure (HTTP 408, 429, 5xx, a connection error): the same request may succeed later.
    Transient,
    /// Any other failure that a retry of the same request does not fix.
    Failed,
}

impl ErrorKind {
    /// True for [`ErrorKind::Transient`].
    pub fn is_retryable(self) -> bool {
        self == ErrorKind::Transient
    }
}

/// The steps of a blob save that can fail after its checks passed (see [`Error::SaveStep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveStep {
    /// The metadata patch that claims the temporary upload.
    Claim,
    /// The copy of the temporary upload to its destination.
    Copy,
    /// Writing the row (insert, update, cached values, outbox) in the transaction.
    RowWrite,
    /// Committing the transaction.
    Commit,
    /// Deleting temporary and replaced objects after the commit (failures are left for replay).
    Cleanup,
}

impl fmt::Display for SaveStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SaveStep::Claim => "claim (metadata patch of the temporary upload)",
            SaveStep::Copy => "copy (temporary upload to its destination)",
            SaveStep::RowWrite => "row write",
            SaveStep::Commit => "commit",
            SaveStep::Cleanup => "cleanup (deleting temporary and replaced objects)",
        })
    }
}

impl Error {
    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self.cause(), Error::NotFound { .. })
    }

    /// True for [`Error::Precondition`] (including "already exists" for create-only writes).
    pub fn is_precondition(&self) -> bool {
        matches!(self.cause(), Error::Precondition { .. })
    }

    /// True when the same request may succeed if retried (429, 5xx, connection errors): the
    /// [`ErrorKind`] is [`ErrorKind::Transient`].
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// What kind of failure this is (looking through [`Error::SaveStep`]). Every variant is classified
    /// here, in one exhaustive match: a new variant must say whether it is retryable.
    pub fn kind(&self) -> ErrorKind {
        let remote = |retryable: bool| if retryable { ErrorKind::Transient } else { ErrorKind::Failed };
        match self.cause() {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Precondition { .. } | Error::NotModified { .. } | Error::DuplicateTask { .. } => ErrorKind::Conflict,
            Error::TicketReplayed { .. } => ErrorKind::Conflict,
            Error::InvalidName { .. }
            | Error::InvalidRange { .. }
            | Error::InvalidArgument(_)
            | Error::Validation { .. }
            | Error::InvalidTask { .. }
            | Error::NotSupported { .. } => ErrorKind::Refused,
            Error::Config { .. } | Error::NotOnCloudRun { .. } => ErrorKind::Config,
            Error::Backend { retryable, .. } | Error::PubSub { retryable, .. } | Error::Service { retryable, .. } => {
                remote(*retryable)
            }
            Error::Signing { .. }
            | Error::CorruptColumn { .. }
            | Error::Metadata { .. }
            | Error::TaskFailed { .. }
            | Error::Io(_) => ErrorKind::Failed,
            #[cfg(feature = "orm")]
            Error::Database(_) => ErrorKind::Failed,
            // `cause()` never returns a wrapper.
            Error::SaveStep { source, .. } => source.kind(),
        }
    }

    /// The error under any [`Error::SaveStep`] wrapper (the error itself otherwise).
    pub fn cause(&self) -> &Error {
        match self {
            Error::SaveStep { source, .. } => source.cause(),
            other => other,
        }
    }

    /// Wrap `self` as the failure of `step` of a save of `field`. Refusals (validation, corrupt
    /// columns, configuration, invalid arguments) and errors already wrapped are returned unchanged.
    pub(crate) fn at_step(self, step: SaveStep, field: impl Into<String>) -> Self {
        match self {
            e @ (Error::Validation { .. }
            | Error::CorruptColumn { .. }
            | Error::Config { .. }
            | Error::InvalidArgument(_)
            | Error::InvalidName { .. }
            | Error::TicketReplayed { .. }
            | Error::SaveStep { .. }) => e,
            e => Error::SaveStep { step, field: field.into(), source: Box::new(e) },
        }
    }

    /// True for [`Error::NotOnCloudRun`].
    pub fn is_not_on_cloud_run(&self) -> bool {
        matches!(self, Error::NotOnCloudRun { .. })
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

/// A failed operation as an HTTP answer: a stable code and a human message in JSON
/// (`{"error": "<code>", "message": "<what to do>"}`), the details logged, never echoed. The mapping
/// is [`Refusal::from_save_error`](crate::upload::Refusal::from_save_error): `ticket_replayed` 409,
/// `invalid_value` 422, `upload_conflict` 409, `save_failed` 500.
#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        crate::upload::Refusal::from_save_error(&self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_steps_wrap_failures_not_refusals() {
        let refused = Error::Validation { field: "docs.file".into(), message: "too big".into() };
        assert!(matches!(refused.at_step(SaveStep::Copy, "docs.file"), Error::Validation { .. }));

        let transient = Error::Backend {
            backend: "gcs",
            store: "media".into(),
            status: Some(503),
            retryable: true,
            source: "backend unavailable".into(),
        };
        let wrapped = transient.at_step(SaveStep::Claim, "docs.file");
        assert!(wrapped.is_retryable() && !wrapped.is_not_found() && !wrapped.is_precondition());
        assert!(matches!(wrapped.cause(), Error::Backend { status: Some(503), .. }));
        assert_eq!(
            wrapped.to_string(),
            "saving blob field `docs.file` failed at the claim (metadata patch of the temporary upload) step: gcs \
             store `media` failed with HTTP 503: backend unavailable"
        );
        // Wrapping twice keeps the first step.
        let again = wrapped.at_step(SaveStep::Commit, "docs");
        assert!(matches!(again, Error::SaveStep { step: SaveStep::Claim, .. }));
        let gone = Error::NotFound { store: "media".into(), name: "a".into() }.at_step(SaveStep::Copy, "docs.file");
        assert!(gone.is_not_found());
        assert!(std::error::Error::source(&gone).is_some(), "the cause is the error's source");
    }

    #[test]
    fn retryability_is_one_rule_for_every_remote_error() {
        let pubsub = |retryable| Error::PubSub { status: Some(503), retryable, message: "unavailable".into() };
        assert!(pubsub(true).is_retryable(), "a retryable Pub/Sub failure is retryable");
        assert!(!pubsub(false).is_retryable());
        assert_eq!(pubsub(true).kind(), ErrorKind::Transient);
        let service = |retryable| Error::Service {
            service: "cloudtasks",
            status: Some(503),
            code: "UNAVAILABLE".into(),
            message: "try later".into(),
            retryable,
        };
        assert!(service(true).is_retryable() && !service(false).is_retryable());
        assert!(pubsub(true).at_step(SaveStep::Commit, "t").is_retryable(), "seen through a save step");
        assert_eq!(Error::InvalidArgument("x".into()).kind(), ErrorKind::Refused);
        assert!(!Error::InvalidArgument("x".into()).is_retryable());
    }
}
