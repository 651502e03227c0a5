//! The worker router: `POST /tasks/{name}` (Cloud Tasks and Scheduler) and
//! `POST /subscriber-tasks/{name}` (Pub/Sub push), mountable under any prefix.
//!
//! Every request is verified first ([`InvokerPolicy`]: exactly one `Authorization` header, a
//! Google-signed ID token whose audience is the task's URL under the configured tasks domain, from the
//! invoker service account); only then is the body read (under the body limit), the task looked up and
//! the `X-CloudTasks-*` headers read. An unauthenticated caller is answered before any of its body is
//! buffered. Answers:
//!
//! | case | status | body |
//! |---|---|---|
//! | ran | 200 | the task's output as JSON |
//! | no or bad token | 401 | `{"error":"unauthenticated"}` |
//! | caller not allowed | 403 | `{"error":"forbidden"}` |
//! | keys unavailable (JWKS down) | 503 | `{"error":"unavailable"}` |
//! | body over the limit (after authentication) | 413 | `{"error":"body_too_large"}` |
//! | unknown task | 404 | `{"error":"unknown_task"}` (no list of names) |
//! | payload does not parse | 400 | `{"error":"bad_payload"}` |
//! | task failed | 500 | `{"error":"task_failed"}` (detail logged; Cloud Tasks retries) |

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::{Registry, RunError, TaskContext, TaskKind, Tasks};
use crate::Result;
use crate::auth::{InvokerPolicy, OidcVerifier};
use crate::pubsub::PubSubMessage;

/// Options of the worker router.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// Largest request body (default 1 MiB; Cloud Tasks' task limit is 1 MB).
    pub body_limit: usize,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self { body_limit: 1 << 20 }
    }
}

impl WorkerOptions {
    /// Set [`WorkerOptions::body_limit`].
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }
}

struct WorkerState {
    registry: Registry,
    policy: InvokerPolicy,
    body_limit: usize,
}

/// The worker router for `registry`, verifying requests with `policy`. Mount it where the tasks
/// domain's path points (`Router::new().nest("/internal", worker)` for `https://host/internal`); token
/// audiences are built from the policy's base URL and the request's full path.
pub fn worker_router(registry: Registry, policy: InvokerPolicy, options: WorkerOptions) -> Router {
    let state = Arc::new(WorkerState { registry, policy, body_limit: options.body_limit });
    Router::new()
        .route("/tasks/{name}", post(run_task))
        .route("/subscriber-tasks/{name}", post(run_subscriber_task))
        .with_state(state)
}

impl Tasks {
    /// The worker router for this application's tasks: tokens verified by `verifier`, audience under
    /// the tasks domain's origin, the invoker service account as the only allowed caller. Eager or
    /// disabled settings without an invoker account refuse every request (fail closed).
    pub fn worker_router(&self, verifier: OidcVerifier, options: WorkerOptions) -> Result<Router> {
        let settings = self.settings();
        let mut policy = InvokerPolicy::new(verifier, settings.tasks_origin());
        if let Some(email) = &settings.invoker_service_account {
            policy = policy.allow_email(email.clone());
        }
        Ok(worker_router(self.registry().clone(), policy, options))
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(json!({ "error": code }))).into_response()
}

/// A request that passed authentication: its caller, headers and body (read under the limit only now).
struct Authorized {
    caller: Option<crate::auth::VerifiedCaller>,
    headers: HeaderMap,
    body: Bytes,
}

/// Authenticate, then read the body: an unauthenticated caller gets its 401/403 before any of its body
/// is buffered, and an authenticated one 413 past the limit.
async fn authorize(
    state: &WorkerState,
    uri: &OriginalUri,
    request: Request,
) -> std::result::Result<Authorized, Response> {
    let (parts, body) = request.into_parts();
    let path_and_query = uri.0.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let caller = state.policy.authorize(&parts.headers, path_and_query).await.map_err(|e| {
        tracing::warn!(path = %path_and_query, code = e.code(), error = %e, "task request refused");
        let status = e.status();
        let code = match status {
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "unauthenticated",
        };
        error(status, code)
    })?;
    let body = axum::body::to_bytes(Body::new(body), state.body_limit).await.map_err(|_| {
        tracing::warn!(path = %path_and_query, limit = state.body_limit, "task request body over the limit");
        error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    })?;
    Ok(Authorized { caller, headers: parts.headers, body })
}

async fn run_task(
    State(state): State<Arc<WorkerState>>,
    Path(name): Path<String>,
    uri: OriginalUri,
    request: Request,
) -> Response {
    let Authorized { caller, headers, body } = match authorize(&state, &uri, request).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let Some(task) = state.registry.get(&name).filter(|t| !matches!(t.kind(), TaskKind::Subscriber(_))) else {
        tracing::warn!(task = %name, "request for an unknown task");
        return error(StatusCode::NOT_FOUND, "unknown_task");
    };
    let mut ctx = TaskContext::from_headers(task.name(), &headers);
    ctx.caller = caller;
    finish(task.name(), task.run_json(&body, ctx).await)
}

async fn run_subscriber_task(
    State(state): State<Arc<WorkerState>>,
    Path(name): Path<String>,
    uri: OriginalUri,
    request: Request,
) -> Response {
    let Authorized { caller, headers, body } = match authorize(&state, &uri, request).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let Some(task) = state.registry.get(&name).filter(|t| matches!(t.kind(), TaskKind::Subscriber(_))) else {
        tracing::warn!(task = %name, "push for an unknown subscriber task");
        return error(StatusCode::NOT_FOUND, "unknown_task");
    };
    let message = match PubSubMessage::from_push(&headers, &body) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(task = %name, error = %e, "malformed Pub/Sub push");
            return error(StatusCode::BAD_REQUEST, "bad_payload");
        }
    };
    let data = message.data.clone().unwrap_or_default();
    let mut ctx = TaskContext::default();
    ctx.task = task.name().into();
    ctx.task_name = Some(message.message_id.clone());
    ctx.retry_count = message.delivery_attempt.map(|a| a.saturating_sub(1)).unwrap_or(0);
    ctx.execution_count = ctx.retry_count;
    ctx.eta = Some(message.publish_time);
    ctx.caller = caller;
    ctx.message = Some(message);
    finish(task.name(), task.run_json(&data, ctx).await)
}

fn finish(task: &str, outcome: std::result::Result<serde_json::Value, RunError>) -> Response {
    match outcome {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(RunError::BadPayload(detail)) => {
            tracing::warn!(task, error = %detail, "task payload does not parse");
            error(StatusCode::BAD_REQUEST, "bad_payload")
        }
        Err(e) => {
            tracing::error!(task, error = %e, "task failed; Cloud Tasks will retry");
            error(StatusCode::INTERNAL_SERVER_ERROR, "task_failed")
        }
    }
}
