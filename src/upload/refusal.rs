//! JSON refusals (`{"error": "<code>", "message": "<what to do>"}` with a 4xx/5xx status) and the
//! application's authorisation hook.
//!
//! A refusal has two texts: `message`, a plain sentence for the person at the form (no API names,
//! field ids or paths; see [`plain`](super::plain)), and the developer detail, which
//! [`Refusal::with_detail`] logs with `tracing` and which is never sent.

use async_trait::async_trait;
use axum::Json;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::field::UploadField;
use super::plain::looks_like_code;
use super::ticket::{TicketProblem, TicketRejection};

/// A refused request: status, a stable code and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub error: String,
    /// What went wrong and what to do.
    pub message: String,
}

impl Refusal {
    /// A refusal with `status`, `error` code and `message`.
    pub fn new(status: StatusCode, error: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, error: error.into(), message: message.into() }
    }

    /// 403 `forbidden`: the application does not let this user upload to this field.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 401 `unauthenticated`: sign in first.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 400 with `error` code.
    pub(crate) fn bad_request(error: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, message)
    }

    /// Log `detail`, the developer's explanation of this refusal (which check failed, with names and
    /// values), with `tracing` at INFO; the client gets only the plain `message`.
    pub fn with_detail(self, detail: impl std::fmt::Display) -> Self {
        tracing::info!(status = self.status.as_u16(), code = %self.error, "request refused: {detail}");
        self
    }
}

/// The plain message of a failed save whose field refused it for a reason of its own.
const SAVE_REFUSED: &str = "This file cannot be saved here. Choose another file and try again.";

impl Refusal {
    /// The refusal a client gets for a failed save: a stable code and a message for the user, never
    /// storage or database details (those are logged here, with `tracing`).
    ///
    /// * [`Error::TicketReplayed`](crate::Error::TicketReplayed): 409 `ticket_replayed`.
    /// * [`Error::Validation`](crate::Error::Validation): 422 `invalid_value` with the field's message,
    ///   temp object names (`<ingress prefix><uuid>/<name>`) replaced by "the upload".
    /// * [`Error::Precondition`](crate::Error::Precondition), [`Error::NotFound`](crate::Error::NotFound):
    ///   409 `upload_conflict` (the file changed or vanished while saving).
    /// * Anything else: 500 `save_failed`.
    pub fn from_save_error(error: &crate::Error) -> Self {
        use crate::Error;
        match error {
            Error::TicketReplayed { field } => {
                tracing::info!(field, "save refused: {error}");
                Self::new(StatusCode::CONFLICT, "ticket_replayed", TicketProblem::Replayed.user_message())
            }
            Error::Validation { field, message } => {
                tracing::info!(field, "save refused: {message}");
                let shown = if looks_like_code(message) { SAVE_REFUSED.to_string() } else { sentence(message) };
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", shown)
            }
            Error::Precondition { .. } | Error::NotFound { .. } => {
                tracing::warn!("save failed on a changed or missing object: {error}");
                Self::new(
                    StatusCode::CONFLICT,
                    "upload_conflict",
                    "The uploaded file changed or disappeared while saving. Upload the file again.",
                )
            }
            other => {
                tracing::error!("save failed: {other}");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "save_failed",
                    "The change could not be saved. Try again in a moment.",
                )
            }
        }
    }
}

/// `text` as a sentence: a capital first letter and a final full stop.
fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return SAVE_REFUSED.to_string(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.error, self.message)
    }
}

impl std::error::Error for Refusal {}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(axum::http::header::CACHE_CONTROL, "no-store".parse().expect("valid header"));
        response
    }
}

impl From<TicketRejection> for Refusal {
    fn from(r: TicketRejection) -> Self {
        let status = StatusCode::from_u16(r.problem.status()).unwrap_or(StatusCode::BAD_REQUEST);
        Refusal::new(status, r.problem.code(), r.message).with_detail(format_args!("{} ({})", r.detail, r.field))
    }
}

/// What an [`Authorize`] hook allowed: optionally, the subject (user or session id) the ticket is
/// bound to. A bound ticket verifies only for the same subject
/// ([`UploadVerifier::verify_for`](super::UploadVerifier::verify_for)), so a leaked ticket cannot be
/// attached by another account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The subject the ticket is bound to; `None`: any holder of the ticket may post it.
    pub subject: Option<String>,
}

impl Grant {
    /// Allowed, the ticket bound to `subject` (a user id, a session id).
    pub fn for_subject(subject: impl Into<String>) -> Self {
        Self { subject: Some(subject.into()) }
    }

    /// Allowed, the ticket bound to no one (public forms).
    pub fn unbound() -> Self {
        Self::default()
    }
}

/// Decides who may upload to which field.
///
/// `POST /uploads` calls [`Authorize::authenticate`] first, before it reads the body, so a caller the
/// application refuses learns nothing (not even which field names exist); then, once the field's
/// limits pass, [`Authorize::authorize`] for the field, which binds the ticket to a subject.
/// Implement `authenticate` (or use [`AuthenticateFn`]) whenever `authorize` refuses anonymous callers.
#[async_trait]
pub trait Authorize: Send + Sync + 'static {
    /// Who is asking, before any field is looked at: `Ok(())` to go on, a [`Refusal`] (typically
    /// [`Refusal::unauthenticated`]) to refuse. The default lets every request through to
    /// [`Authorize::authorize`].
    async fn authenticate(&self, _request: &Parts) -> Result<(), Refusal> {
        Ok(())
    }

    /// A [`Grant`] to allow (binding the ticket to a subject, preferably); a [`Refusal`] (typically
    /// [`Refusal::forbidden`]) to refuse.
    async fn authorize(&self, request: &Parts, field: &UploadField) -> Result<Grant, Refusal>;
}

/// An [`Authorize`] from a closure that decides from the request alone (a session cookie, a signed-in
/// user), the same for every field: it runs first, before the field is looked at
/// ([`Authorize::authenticate`]), and its [`Grant`] binds the ticket.
#[derive(Clone)]
pub struct AuthenticateFn<F>(pub F);

impl<F> std::fmt::Debug for AuthenticateFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthenticateFn(..)")
    }
}

#[async_trait]
impl<F> Authorize for AuthenticateFn<F>
where
    F: Fn(&Parts) -> Result<Grant, Refusal> + Send + Sync + 'static,
{
    async fn authenticate(&self, request: &Parts) -> Result<(), Refusal> {
        (self.0)(request).map(|_| ())
    }

    async fn authorize(&self, request: &Parts, _field: &UploadField) -> Result<Grant, Refusal> {
        (self.0)(request)
    }
}

/// Lets everyone upload to every registered field, with unbound tickets (development, tests, public
/// forms). Prefer [`UploadRouter::allow_all`](super::UploadRouter::allow_all), which logs the choice.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl Authorize for AllowAll {
    async fn authorize(&self, _request: &Parts, _field: &UploadField) -> Result<Grant, Refusal> {
        Ok(Grant::unbound())
    }
}

/// An [`Authorize`] from a synchronous closure (e.g. checking a session cookie in the headers).
#[derive(Clone)]
pub struct AuthorizeFn<F>(pub F);

impl<F> std::fmt::Debug for AuthorizeFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthorizeFn(..)")
    }
}

#[async_trait]
impl<F> Authorize for AuthorizeFn<F>
where
    F: Fn(&Parts, &UploadField) -> Result<Grant, Refusal> + Send + Sync + 'static,
{
    async fn authorize(&self, request: &Parts, field: &UploadField) -> Result<Grant, Refusal> {
        (self.0)(request, field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_errors_show_plain_text_and_log_the_details() {
        let race = crate::Error::Validation {
            field: "docs.file".into(),
            message: "the upload `_tmp/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/a.txt` could not be claimed".into(),
        };
        let r = Refusal::from_save_error(&race);
        assert_eq!((r.status.as_u16(), r.error.as_str()), (422, "invalid_value"));
        assert_eq!(r.message, SAVE_REFUSED);
        let matrix = crate::Error::Validation {
            field: "docs.file".into(),
            message: "a value is required when adding a row: attach an upload (BlobChanges::attach), or allow \
                      blank on the field"
                .into(),
        };
        assert_eq!(Refusal::from_save_error(&matrix).message, SAVE_REFUSED);
        let app = crate::Error::Validation { field: "docs.file".into(), message: "scanned PDFs only".into() };
        assert_eq!(Refusal::from_save_error(&app).message, "Scanned PDFs only.");
        let db = crate::Error::Database(sea_orm::DbErr::Custom("connection to 10.0.0.7:5432 refused".into()));
        let r = Refusal::from_save_error(&db);
        assert_eq!((r.status.as_u16(), r.error.as_str()), (500, "save_failed"));
        assert!(!r.message.contains("10.0.0.7"), "{}", r.message);
        let replay = crate::Error::TicketReplayed { field: "docs.file".into() };
        let r = Refusal::from_save_error(&replay);
        assert_eq!((r.status.as_u16(), r.error.as_str()), (409, "ticket_replayed"));
        assert!(!looks_like_code(&r.message), "{}", r.message);
    }
}
