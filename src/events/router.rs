//! [`EventsRouter`]: `POST {path}/{event_kind}/{event_reference}` for axum.
//!
//! Order of checks: token (401/403, before the body is read and before the kind is looked up, so an
//! unauthenticated caller learns nothing), body size (413), handler for the kind (404), JSON (400),
//! then the handler: `Ok` 201 `{}`, `Failed` 400 with a generic body, `RetryLater` 503 with
//! `Retry-After`, `Drop` 200. Details go to the log, never to the client.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::registry::{EventHandler, Registry};
use super::url::{event_url, parse_parameters};
use super::{Event, HandlerError};
use crate::auth::InvokerPolicy;

/// Default body limit: 10 MiB (Pub/Sub's message limit, base64-inflated, fits).
pub(crate) const DEFAULT_BODY_LIMIT: usize = 16 << 20;

/// Builder of the events endpoint.
#[derive(Clone, Debug)]
pub struct EventsRouter {
    policy: InvokerPolicy,
    registry: Registry,
    body_limit: usize,
    path: String,
}

struct Shared {
    policy: InvokerPolicy,
    registry: Registry,
    body_limit: usize,
}

fn reply(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": code, "message": message }))).into_response()
}

impl EventsRouter {
    /// An endpoint guarded by `policy` (use [`InvokerPolicy::disabled`] to opt out, with a warning).
    /// Logs an error at start-up when the policy has no allow-list: every push will be refused.
    pub fn new(policy: InvokerPolicy) -> Self {
        if !policy.is_disabled() && policy.allow_list().is_empty() {
            tracing::error!(
                "events endpoint has no invoker allow-list: every push will be refused (403); list the push service \
                 account in SEA_GCP_INVOKER_EMAILS (read by InvokerPolicy::with_env_fallback) or add it with \
                 InvokerPolicy::allow_email"
            );
        }
        Self { policy, registry: Registry::default(), body_limit: DEFAULT_BODY_LIMIT, path: "/events".into() }
    }

    /// Handle `kind` exactly with `handler` (a closure `|event| async { Ok(()) }` or an [`EventHandler`]).
    pub fn on(mut self, kind: impl Into<String>, handler: impl EventHandler) -> Self {
        self.registry.exact(kind, Arc::new(handler));
        self
    }

    /// Handle every kind starting with `prefix` (the longest registered prefix wins; exact kinds first).
    pub fn on_prefix(mut self, prefix: impl Into<String>, handler: impl EventHandler) -> Self {
        self.registry.prefix(prefix, Arc::new(handler));
        self
    }

    /// Handle `kind` with a shared handler.
    pub(crate) fn on_shared(mut self, kind: impl Into<String>, handler: Arc<dyn EventHandler>) -> Self {
        self.registry.exact(kind, handler);
        self
    }

    /// Refuse bodies over `bytes` with 413.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Serve under `path` instead of `/events` (the router can also be nested under any prefix).
    pub(crate) fn with_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = if path.starts_with('/') { path } else { format!("/{path}") };
        self.path = self.path.trim_end_matches('/').to_owned();
        self
    }

    /// The absolute URL for `kind`/`reference` from the policy's external base URL (what to pass to
    /// `gcloud pubsub subscriptions create --push-endpoint`). Nesting the router under a prefix adds it
    /// to the path: pass it to [`event_url`] yourself then.
    pub fn url(&self, kind: &str, reference: &str, parameters: &BTreeMap<String, String>) -> String {
        let base = self.policy.base_url();
        event_url((!base.is_empty()).then_some(base), &self.path, kind, reference, parameters)
    }

    /// The axum router.
    pub fn into_router(self) -> Router {
        let shared = Arc::new(Shared { policy: self.policy, registry: self.registry, body_limit: self.body_limit });
        Router::new()
            .route(&format!("{}/{{event_kind}}/{{event_reference}}", self.path), post(receive))
            .with_state(shared)
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path((kind, reference)): Path<(String, String)>,
    OriginalUri(original): OriginalUri,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = original.path_and_query().map(|p| p.as_str()).unwrap_or(original.path());
    let caller = match shared.policy.authorize(&parts.headers, path_and_query).await {
        Ok(caller) => caller,
        Err(e) => {
            tracing::warn!(kind, reference, code = e.code(), error = %e, "event push refused");
            let mut response = reply(e.status(), e.code(), "the request could not be authenticated or is not allowed");
            if e.status() == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            if e.status() == StatusCode::SERVICE_UNAVAILABLE {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            return response;
        }
    };
    let body = match axum::body::to_bytes(Body::new(body), shared.body_limit).await {
        Ok(b) => b,
        Err(_) => {
            tracing::warn!(kind, reference, limit = shared.body_limit, "event body over the limit");
            return reply(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is over the limit");
        }
    };
    let Some(handler) = shared.registry.find(&kind).cloned() else {
        tracing::warn!(kind, reference, "no handler for this event kind");
        return reply(StatusCode::NOT_FOUND, "unknown_kind", "no handler for this event kind");
    };
    let payload = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(e) => {
                let raw_allowed =
                    parts.headers.contains_key("x-goog-pubsub-message-id") || parts.headers.contains_key("ce-id");
                if !raw_allowed {
                    tracing::warn!(kind, reference, error = %e, "event body is not JSON");
                    return reply(StatusCode::BAD_REQUEST, "bad_json", "the request body is not JSON");
                }
                Value::Null
            }
        }
    };
    let event = Event {
        kind: kind.clone(),
        reference: reference.clone(),
        payload,
        parameters: parse_parameters(original.query()),
        caller,
        headers: parts.headers,
        body,
    };
    match handler.handle(event).await {
        Ok(()) => (StatusCode::CREATED, axum::Json(json!({}))).into_response(),
        Err(HandlerError::Drop(reason)) => {
            tracing::info!(kind, reference, reason, "event dropped by its handler");
            (StatusCode::OK, axum::Json(json!({}))).into_response()
        }
        Err(HandlerError::RetryLater { after, reason }) => {
            tracing::info!(kind, reference, reason, after = ?after, "event handler asked for a retry");
            let mut response = reply(StatusCode::SERVICE_UNAVAILABLE, "retry_later", "try again later");
            let secs = after.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Err(HandlerError::Failed(error)) => {
            tracing::error!(kind, reference, error = %error, "event handler failed");
            reply(StatusCode::BAD_REQUEST, "handler_failed", "the event could not be processed")
        }
    }
}
