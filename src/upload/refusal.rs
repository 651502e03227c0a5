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

/// Decides who may upload to which field. Called for every `POST /uploads` after the field's limits pass.
#[async_trait]
pub trait Authorize: Send + Sync + 'static {
    /// `Ok(())` to allow; a [`Refusal`] (typically [`Refusal::forbidden`]) to refuse.
    async fn authorize(&self, request: &Parts, field: &UploadField) -> Result<(), Refusal>;
}

/// Lets everyone upload to every registered field (development, tests, public forms).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl Authorize for AllowAll {
    async fn authorize(&self, _request: &Parts, _field: &UploadField) -> Result<(), Refusal> {
        Ok(())
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
    F: Fn(&Parts, &UploadField) -> Result<(), Refusal> + Send + Sync + 'static,
{
    async fn authorize(&self, request: &Parts, field: &UploadField) -> Result<(), Refusal> {
        (self.0)(request, field)
    }
}
