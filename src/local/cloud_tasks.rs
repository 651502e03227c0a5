//! [`FakeCloudTasks`]: an in-process Cloud Tasks that speaks the v2 REST API on loopback and checks what
//! the real service checks, then dispatches tasks the way Cloud Tasks does.
//!
//! Requests: `POST /v2/{queue}/tasks` (create), `GET /v2/{task}` and `DELETE /v2/{task}`, with
//! `{queue} = projects/P/locations/L/queues/Q`. Refusals use Google's error JSON
//! (`{"error": {"code", "message", "status"}}`):
//! - a queue that was not created with [`FakeCloudTasks::create_queue`]: 404 `NOT_FOUND`;
//! - a malformed project, location or queue id, a task name outside the queue or with an id outside
//!   `[A-Za-z0-9_-]{1,500}`, a missing or non-HTTP(S) URL, a body that is not base64, a `scheduleTime` that
//!   is not RFC 3339 or more than 30 days ahead, a `dispatchDeadline` outside 15 s..30 min, a task over
//!   1 MB (Cloud Tasks' limit for HTTP tasks): 400 `INVALID_ARGUMENT`;
//! - a task id the queue holds, or held within the tombstone window (default 1 hour) after it ran or was
//!   deleted: 409 `ALREADY_EXISTS`.
//!
//! Dispatch: at `scheduleTime` (paused queues hold their tasks), a POST to the task's URL with the task's
//! headers and decoded body, plus `X-CloudTasks-QueueName`, `-TaskName`, `-TaskRetryCount`,
//! `-TaskExecutionCount`, `-TaskETA` (and `-TaskRetryReason`, `-TaskPreviousResponse` on retries),
//! `User-Agent: Google-Cloud-Tasks` and, for tasks with an `oidcToken`, `Authorization: Bearer` with an ID
//! token minted by a [`TestIssuer`] (`aud` = the token's audience or the URL, `iss`, `email`,
//! `email_verified`). A non-2xx answer (or no answer) is retried with exponential backoff per the queue's
//! [`QueueConfig`] until `max_attempts`. [`FakeCloudTasks::set_latency`] adds a simulated round trip to
//! every API call.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use super::google_error;
use super::oidc::TestIssuer;

/// Largest task Cloud Tasks accepts (URL, headers and body): 1 MB for HTTP targets.
pub(crate) const MAX_TASK_BYTES: usize = 1_000_000;

/// A queue's retry and rate configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Attempts per task, the first included (default 5).
    pub max_attempts: u32,
    /// First retry delay (default 100 ms, short for tests), doubled per retry up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay (default 2 s).
    pub max_backoff: Duration,
    /// Dispatches in flight at once (default 1,000, Cloud Tasks' default).
    pub max_concurrent_dispatches: usize,
    /// A paused queue accepts tasks but dispatches none.
    pub paused: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_concurrent_dispatches: 1000,
            paused: false,
        }
    }
}

/// One dispatch attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchRecord {
    /// The queue id.
    pub queue: String,
    /// The task id.
    pub task_id: String,
    /// The retry count sent (0 first).
    pub retry_count: u32,
    /// The worker's status (None: no answer).
    pub status: Option<u16>,
    /// When the attempt was sent.
    pub at: DateTime<Utc>,
    /// The task's schedule time at this attempt.
    pub eta: DateTime<Utc>,
    /// The body sent.
    pub body: Vec<u8>,
}

pub(crate) struct TaskState {
    pub(crate) id: String,
    pub(crate) url: String,
    headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
    pub(crate) schedule_time: DateTime<Utc>,
    create_time: DateTime<Utc>,
    oidc: Option<(String, Option<String>)>,
    pub(crate) dispatch_count: u32,
    response_count: u32,
}

pub(crate) struct QueueState {
    pub(crate) config: QueueConfig,
    pub(crate) tasks: HashMap<String, TaskState>,
    tombstones: HashMap<String, Instant>,
    semaphore: Arc<Semaphore>,
}

pub(crate) struct Shared {
    issuer: Arc<TestIssuer>,
    pub(crate) queues: Mutex<HashMap<String, QueueState>>,
    pub(crate) latency: Mutex<Duration>,
    pub(crate) tombstone_window: Mutex<Duration>,
    pub(crate) dispatches: Mutex<Vec<DispatchRecord>>,
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
    pub(crate) created: AtomicU64,
    pub(crate) refused_duplicates: AtomicU64,
    pub(crate) api_calls: AtomicU64,
    pub(crate) resumed: Notify,
    http: crate::lazy_client::LazyClient,
}

/// An in-process Cloud Tasks on a loopback port (see the module docs).
pub struct FakeCloudTasks {
    addr: SocketAddr,
    pub(crate) shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for FakeCloudTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCloudTasks").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for FakeCloudTasks {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn invalid(message: impl Into<String>) -> Response {
    google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn valid_project(p: &str) -> bool {
    let b = p.as_bytes();
    let digits = !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
    let named = (6..=30).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-';
    digits || named
}

fn valid_location(l: &str) -> bool {
    !l.is_empty() && l.len() <= 63 && l.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

fn valid_queue(q: &str) -> bool {
    !q.is_empty() && q.len() <= 100 && q.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

fn valid_task_id(t: &str) -> bool {
    !t.is_empty() && t.len() <= 500 && t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Split `projects/P/locations/L/queues/Q[/tasks/T]`.
fn parse_path(path: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["projects", _, "locations", _, "queues", _] => Some((path.to_string(), None)),
        ["projects", p, "locations", l, "queues", q, "tasks", t] => {
            Some((format!("projects/{p}/locations/{l}/queues/{q}"), Some((*t).to_string())))
        }
        _ => None,
    }
}

fn check_queue_path(queue: &str) -> Result<(), String> {
    let parts: Vec<&str> = queue.split('/').collect();
    if !valid_project(parts[1]) {
        return Err(format!("Invalid resource field value in the request: project id {:?}", parts[1]));
    }
    if !valid_location(parts[3]) {
        return Err(format!("Invalid resource field value in the request: location {:?}", parts[3]));
    }
    if !valid_queue(parts[5]) {
        return Err(format!(
            "Queue ID {:?} can contain only letters ([A-Za-z]), numbers ([0-9]), or hyphens (-), at most 100",
            parts[5]
        ));
    }
    Ok(())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

impl FakeCloudTasks {
    /// Start on a loopback port; dispatched tasks carry tokens minted by `issuer`.
    pub async fn start(issuer: Arc<TestIssuer>) -> Self {
        let shared = Arc::new(Shared {
            issuer,
            queues: Mutex::new(HashMap::new()),
            latency: Mutex::new(Duration::ZERO),
            tombstone_window: Mutex::new(Duration::from_secs(3600)),
            dispatches: Mutex::new(Vec::new()),
            tokens: Mutex::new(HashMap::new()),
            created: AtomicU64::new(0),
            refused_duplicates: AtomicU64::new(0),
            api_calls: AtomicU64::new(0),
            resumed: Notify::new(),
            http: crate::lazy_client::LazyClient::new(|| {
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .pool_max_idle_per_host(1024)
                    .build()
                    .expect("HTTP client")
            }),
        });
        let app = Router::new().fallback(api).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, server }
    }

    /// The endpoint (`http://127.0.0.1:PORT`): the client's and settings' Cloud Tasks endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Create the queue `projects/P/locations/L/queues/Q`.
    pub fn create_queue(&self, queue_path: &str, config: QueueConfig) {
        let semaphore = Arc::new(Semaphore::new(config.max_concurrent_dispatches));
        self.shared.queues.lock().unwrap().insert(
            queue_path.to_string(),
            QueueState { config, tasks: HashMap::new(), tombstones: HashMap::new(), semaphore },
        );
    }
}

async fn api(State(shared): State<Arc<Shared>>, method: Method, uri: OriginalUri, body: Bytes) -> Response {
    let latency = *shared.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    shared.api_calls.fetch_add(1, Ordering::Relaxed);
    let path = uri.0.path();
    let Some(resource) = path.strip_prefix("/v2/") else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", format!("no such method: {path}"));
    };
    let (resource, collection) = match resource.strip_suffix("/tasks") {
        Some(queue) => (queue, true),
        None => (resource, false),
    };
    let Some((queue, task)) = parse_path(resource) else {
        return invalid(format!(
            "Invalid resource name {resource:?}: expected projects/P/locations/L/queues/Q[/tasks/T]"
        ));
    };
    if let Err(message) = check_queue_path(&queue) {
        return invalid(message);
    }
    match (method, collection, task) {
        (Method::POST, true, None) => create(&shared, &queue, &body),
        (Method::GET, false, Some(id)) => get(&shared, &queue, &id),
        (Method::DELETE, false, Some(id)) => delete(&shared, &queue, &id),
        (m, _, _) => google_error(StatusCode::NOT_FOUND, "NOT_FOUND", format!("method {m} {path} is not served")),
    }
}

fn task_json(queue: &str, t: &TaskState) -> Value {
    json!({
        "name": format!("{queue}/tasks/{}", t.id),
        "scheduleTime": rfc3339(t.schedule_time),
        "createTime": rfc3339(t.create_time),
        "dispatchCount": t.dispatch_count,
        "responseCount": t.response_count,
        "view": "BASIC",
        "httpRequest": {"url": t.url, "httpMethod": "POST"},
    })
}

fn not_found() -> Response {
    google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Requested entity was not found.")
}

fn parse_duration_secs(text: &str) -> Option<f64> {
    text.strip_suffix('s')?.parse().ok()
}

fn create(shared: &Arc<Shared>, queue: &str, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return invalid("Invalid JSON payload received.");
    };
    let Some(task) = request.get("task").and_then(Value::as_object) else {
        return invalid("task is required");
    };
    // The task id: from the name (which must be inside this queue), else server-assigned.
    let id = match task.get("name").and_then(Value::as_str) {
        Some(name) => {
            let Some(id) = name.strip_prefix(&format!("{queue}/tasks/")) else {
                return invalid(format!("Task name {name:?} must be {queue}/tasks/TASK_ID"));
            };
            if !valid_task_id(id) {
                return invalid(format!(
                    "Task ID {id:?} can contain only letters ([A-Za-z]), numbers ([0-9]), hyphens (-), or underscores (_); the maximum length is 500 characters"
                ));
            }
            Some(id.to_string())
        }
        None => None,
    };
    let Some(http) = task.get("httpRequest").and_then(Value::as_object) else {
        return invalid("httpRequest is required (App Engine targets are not served here)");
    };
    let url = http.get("url").and_then(Value::as_str).unwrap_or_default().to_string();
    match url::Url::parse(&url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
        _ => return invalid(format!("HttpRequest.url {url:?} must be an absolute http or https URL")),
    }
    if let Some(m) = http.get("httpMethod").and_then(Value::as_str)
        && !["POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"].contains(&m)
    {
        return invalid(format!("HttpRequest.httpMethod {m:?} is not an HTTP method"));
    }
    let body = match http.get("body").and_then(Value::as_str) {
        Some(b64) => match STANDARD.decode(b64) {
            Ok(b) => b,
            Err(_) => return invalid("Invalid value at 'task.http_request.body' (TYPE_BYTES): not base64"),
        },
        None => Vec::new(),
    };
    let headers: BTreeMap<String, String> = http
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| h.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    let size = url.len() + body.len() + headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    if size > MAX_TASK_BYTES {
        return invalid(format!("Task size too large: {size} bytes exceeds the maximum of {MAX_TASK_BYTES} bytes"));
    }
    let now = Utc::now();
    let schedule_time = match task.get("scheduleTime").and_then(Value::as_str) {
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => {
                let t = t.with_timezone(&Utc);
                if t > now + chrono::Duration::days(30) {
                    return invalid("scheduleTime must be at most 30 days in the future");
                }
                t.max(now)
            }
            Err(_) => {
                return invalid(format!(
                    "Invalid value at 'task.schedule_time' (type.googleapis.com/google.protobuf.Timestamp): {text:?}"
                ));
            }
        },
        None => now,
    };
    if let Some(d) = task.get("dispatchDeadline").and_then(Value::as_str) {
        match parse_duration_secs(d) {
            Some(secs) if (15.0..=1800.0).contains(&secs) => {}
            _ => return invalid(format!("dispatchDeadline {d:?} must be between 15s and 1800s")),
        }
    }
    let oidc = http.get("oidcToken").and_then(Value::as_object).map(|o| {
        (
            o.get("serviceAccountEmail").and_then(Value::as_str).unwrap_or_default().to_string(),
            o.get("audience").and_then(Value::as_str).map(str::to_owned),
        )
    });
    if let Some((email, _)) = &oidc
        && !email.contains('@')
    {
        return invalid("oidcToken.serviceAccountEmail must be a service account e-mail");
    }

    let window = *shared.tombstone_window.lock().unwrap();
    let (json, id) = {
        let mut queues = shared.queues.lock().unwrap();
        let Some(q) = queues.get_mut(queue) else { return not_found() };
        let id = id.unwrap_or_else(|| format!("{:019}", crate::random::u64() % 10_000_000_000_000_000_000));
        q.tombstones.retain(|_, at| at.elapsed() < window);
        if q.tasks.contains_key(&id) || q.tombstones.contains_key(&id) {
            shared.refused_duplicates.fetch_add(1, Ordering::SeqCst);
            return google_error(StatusCode::CONFLICT, "ALREADY_EXISTS", "Requested entity already exists");
        }
        let state = TaskState {
            id: id.clone(),
            url,
            headers,
            body,
            schedule_time,
            create_time: now,
            oidc,
            dispatch_count: 0,
            response_count: 0,
        };
        let json = task_json(queue, &state);
        q.tasks.insert(id.clone(), state);
        (json, id)
    };
    shared.created.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(dispatch_loop(shared.clone(), queue.to_string(), id));
    (StatusCode::OK, axum::Json(json)).into_response()
}

fn get(shared: &Arc<Shared>, queue: &str, id: &str) -> Response {
    let queues = shared.queues.lock().unwrap();
    let Some(q) = queues.get(queue) else { return not_found() };
    match q.tasks.get(id) {
        Some(t) => (StatusCode::OK, axum::Json(task_json(queue, t))).into_response(),
        None => not_found(),
    }
}

fn delete(shared: &Arc<Shared>, queue: &str, id: &str) -> Response {
    let mut queues = shared.queues.lock().unwrap();
    let Some(q) = queues.get_mut(queue) else { return not_found() };
    match q.tasks.remove(id) {
        Some(_) => {
            q.tombstones.insert(id.to_string(), Instant::now());
            (StatusCode::OK, axum::Json(json!({}))).into_response()
        }
        None => not_found(),
    }
}

impl Shared {
    /// An ID token for (audience, email), reused for five minutes (minting costs an RSA signature).
    fn token(&self, audience: &str, email: &str) -> String {
        let key = (audience.to_string(), email.to_string());
        if let Some((token, at)) = self.tokens.lock().unwrap().get(&key)
            && at.elapsed() < Duration::from_secs(300)
        {
            return token.clone();
        }
        let token = self.issuer.mint(&self.issuer.claims(audience, email));
        self.tokens.lock().unwrap().insert(key, (token.clone(), Instant::now()));
        token
    }
}

struct Attempt {
    url: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    eta: DateTime<Utc>,
    oidc: Option<(String, Option<String>)>,
    retry_count: u32,
    execution_count: u32,
    semaphore: Arc<Semaphore>,
}

async fn dispatch_loop(shared: Arc<Shared>, queue: String, id: String) {
    let queue_id = queue.rsplit('/').next().unwrap_or_default().to_string();
    let mut previous: Option<(Option<u16>, String)> = None;
    loop {
        // Wait until due and the queue is not paused; stop when the task is gone (deleted).
        let attempt = loop {
            let (due, paused, attempt) = {
                let queues = shared.queues.lock().unwrap();
                let Some(q) = queues.get(&queue) else { return };
                let Some(t) = q.tasks.get(&id) else { return };
                let attempt = Attempt {
                    url: t.url.clone(),
                    headers: t.headers.clone(),
                    body: t.body.clone(),
                    eta: t.schedule_time,
                    oidc: t.oidc.clone(),
                    retry_count: t.dispatch_count,
                    execution_count: t.response_count,
                    semaphore: q.semaphore.clone(),
                };
                (t.schedule_time, q.config.paused, attempt)
            };
            let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if paused {
                let resumed = shared.resumed.notified();
                tokio::select! {
                    _ = resumed => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                continue;
            }
            if !wait.is_zero() {
                tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
                continue;
            }
            break attempt;
        };
        let Ok(_permit) = attempt.semaphore.clone().acquire_owned().await else { return };
        let mut request = shared.http.get().post(&attempt.url);
        for (k, v) in &attempt.headers {
            request = request.header(k, v);
        }
        let eta = attempt.eta.timestamp_micros() as f64 / 1e6;
        request = request
            .header("User-Agent", "Google-Cloud-Tasks")
            .header("X-CloudTasks-QueueName", &queue_id)
            .header("X-CloudTasks-TaskName", &id)
            .header("X-CloudTasks-TaskRetryCount", attempt.retry_count.to_string())
            .header("X-CloudTasks-TaskExecutionCount", attempt.execution_count.to_string())
            .header("X-CloudTasks-TaskETA", format!("{eta:.6}"));
        if let Some((status, reason)) = &previous {
            request = request.header("X-CloudTasks-TaskRetryReason", reason.as_str());
            if let Some(status) = status {
                request = request.header("X-CloudTasks-TaskPreviousResponse", status.to_string());
            }
        }
        if let Some((email, audience)) = &attempt.oidc {
            let audience = audience.clone().unwrap_or_else(|| attempt.url.clone());
            request = request.bearer_auth(shared.token(&audience, email));
        }
        let sent_at = Utc::now();
        let status = match request.body(attempt.body.clone()).send().await {
            Ok(response) => Some(response.status().as_u16()),
            Err(_) => None,
        };
        drop(_permit);
        shared.dispatches.lock().unwrap().push(DispatchRecord {
            queue: queue_id.clone(),
            task_id: id.clone(),
            retry_count: attempt.retry_count,
            status,
            at: sent_at,
            eta: attempt.eta,
            body: attempt.body.clone(),
        });
        let mut queues = shared.queues.lock().unwrap();
        let Some(q) = queues.get_mut(&queue) else { return };
        let config = q.config.clone();
        let Some(t) = q.tasks.get_mut(&id) else { return };
        t.dispatch_count += 1;
        if status.is_some() {
            t.response_count += 1;
        }
        let succeeded = status.is_some_and(|s| (200..300).contains(&s));
        if succeeded || t.dispatch_count >= config.max_attempts {
            q.tasks.remove(&id);
            q.tombstones.insert(id.clone(), Instant::now());
            return;
        }
        let retry = t.dispatch_count - 1;
        let backoff = config.min_backoff.saturating_mul(1u32 << retry.min(16)).min(config.max_backoff);
        t.schedule_time = Utc::now() + chrono::Duration::from_std(backoff).unwrap_or_default();
        previous = Some(match status {
            Some(s) => (Some(s), format!("HTTP {s}")),
            None => (None, "UNAVAILABLE".to_string()),
        });
    }
}
