//! Test support users may reuse (feature `testing`): faithful local fakes of services that have no
//! emulator. Nothing here reaches an address off loopback.
//!
//! - [`metadata_server`]: a local fake of the GCE / Cloud Run metadata server.
//! - `oidc` (with feature `oidc`): a fake JWKS endpoint, ID-token minting and a token-adding proxy.

#[cfg(feature = "tasks")]
pub mod cloud_tasks;
#[cfg(feature = "metadata")]
pub mod metadata_server;
#[cfg(feature = "oidc")]
pub mod oidc;
#[cfg(feature = "tasks")]
pub mod scheduler;

/// A Google API error answer (`{"error": {"code", "message", "status"}}`), as the fakes send them.
#[cfg(feature = "tasks")]
pub(crate) fn google_error(
    status: axum::http::StatusCode,
    code: &str,
    message: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let body = serde_json::json!({"error": {"code": status.as_u16(), "message": message.into(), "status": code}});
    (status, axum::Json(body)).into_response()
}
