//! JSON refusals (`{"error": "<code>", "message": "<what to do>"}` with a 4xx/5xx status) and the
//! application's authorisation hook.

use async_trait::async_trait;
use axum::Json;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::field::UploadField;
use super::ticket::TicketRejection;

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
    pub fn bad_request(error: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, message)
    }
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
        Refusal::new(status, r.problem.code(), r.message)
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

/// Decides who may upload to which field. Called for every `POST /uploads` after the field's limits pass.
#[async_trait]
pub trait Authorize: Send + Sync + 'static {
    /// A [`Grant`] to allow (binding the ticket to a subject, preferably); a [`Refusal`] (typically
    /// [`Refusal::forbidden`]) to refuse.
    async fn authorize(&self, request: &Parts, field: &UploadField) -> Result<Grant, Refusal>;
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
