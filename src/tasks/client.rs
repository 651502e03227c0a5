//! [`CloudTasksClient`]: the three Cloud Tasks REST calls the module needs (create, get, delete a task),
//! over reqwest, with the endpoint configurable (a loopback fake in tests).
//!
//! Why not the official `google-cloud-tasks-v2` crate: see `docs/tasks.md`.
//!
//! Retries: a create with a task id is guarded by the id (a second create of the same id is refused), so
//! it is retried on 429, 5xx and connection errors with exponential backoff; a create without an id is
//! not (a lost answer would create the task twice). A 401 drops the cached access token and retries once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::signing::token::{CachedTokenSource, TokenSource};
use crate::{Error, Result};

/// Retry policy of idempotent (or id-guarded) calls.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryOptions {
    /// Attempts in all, the first included (default 4).
    pub max_attempts: u32,
    /// First backoff (default 100 ms), doubled each retry up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest backoff (default 5 s).
    pub max_backoff: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self { max_attempts: 4, initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5) }
    }
}

impl RetryOptions {
    /// Set [`RetryOptions::max_attempts`] (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
    /// Set [`RetryOptions::initial_backoff`].
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }
    /// Set [`RetryOptions::max_backoff`].
    pub(crate) fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// A task to create: an HTTP POST to `url` with `body`, signed with an OIDC token for
/// `service_account`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewTask {
    /// The task id (`[A-Za-z0-9_-]{1,500}`); None lets Cloud Tasks assign one.
    pub id: Option<String>,
    /// The worker URL.
    pub url: String,
    /// The request body (the payload's JSON).
    pub body: Vec<u8>,
    /// Request headers (`Content-Type: application/json` is added when absent).
    pub headers: BTreeMap<String, String>,
    /// Earliest dispatch time (None: now).
    pub schedule_time: Option<DateTime<Utc>>,
    /// How long Cloud Tasks waits for the worker.
    pub dispatch_deadline: Option<Duration>,
    /// The service account whose OIDC token Cloud Tasks sends (None: no token).
    pub service_account: Option<String>,
    /// The token's audience (None: the URL).
    pub audience: Option<String>,
}

impl NewTask {
    /// A POST of `body` to `url`.
    pub fn new(url: impl Into<String>, body: Vec<u8>) -> Self {
        Self { url: url.into(), body, ..Self::default() }
    }
    /// Set [`NewTask::id`].
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Set [`NewTask::schedule_time`].
    pub fn with_schedule_time(mut self, at: DateTime<Utc>) -> Self {
        self.schedule_time = Some(at);
        self
    }
    /// Set [`NewTask::dispatch_deadline`].
    pub fn with_dispatch_deadline(mut self, deadline: Duration) -> Self {
        self.dispatch_deadline = Some(deadline);
        self
    }
    /// Set [`NewTask::service_account`].
    pub fn with_service_account(mut self, email: impl Into<String>) -> Self {
        self.service_account = Some(email.into());
        self
    }
    /// Set [`NewTask::audience`].
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }
    /// Add a request header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The `Task` resource JSON for `queue_path`.
    pub fn to_json(&self, queue_path: &str) -> Value {
        let mut headers = self.headers.clone();
        if !headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
            headers.insert("Content-Type".into(), "application/json".into());
        }
        let mut http = json!({
            "url": self.url,
            "httpMethod": "POST",
            "headers": headers,
            "body": STANDARD.encode(&self.body),
        });
        if let Some(sa) = &self.service_account {
            let mut oidc = json!({ "serviceAccountEmail": sa });
            if let Some(aud) = &self.audience {
                oidc["audience"] = json!(aud);
            }
            http["oidcToken"] = oidc;
        }
        let mut task = json!({ "httpRequest": http });
        if let Some(id) = &self.id {
            task["name"] = json!(format!("{queue_path}/tasks/{id}"));
        }
        if let Some(at) = self.schedule_time {
            task["scheduleTime"] = json!(at.to_rfc3339_opts(SecondsFormat::Nanos, true));
        }
        if let Some(d) = self.dispatch_deadline {
            task["dispatchDeadline"] = json!(format!("{}s", d.as_secs()));
        }
        task
    }
}

/// A task as Cloud Tasks reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TaskInfo {
    /// `projects/P/locations/L/queues/Q/tasks/ID`.
    pub name: String,
    /// When it is (or was) scheduled.
    #[serde(default)]
    pub schedule_time: Option<String>,
    /// When it was created.
    #[serde(default)]
    pub create_time: Option<String>,
    /// Dispatch attempts so far.
    #[serde(default)]
    pub dispatch_count: u32,
    /// Responses received so far.
    #[serde(default)]
    pub response_count: u32,
}

impl TaskInfo {
    /// The task id (the last segment of the name).
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct GoogleError {
    error: GoogleErrorBody,
}

#[derive(Deserialize)]
struct GoogleErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// The Cloud Tasks REST client.
#[derive(Clone)]
pub struct CloudTasksClient {
    endpoint: String,
    http: crate::lazy_client::LazyClient,
    tokens: Option<Arc<CachedTokenSource>>,
    retry: RetryOptions,
}

impl std::fmt::Debug for CloudTasksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudTasksClient")
            .field("endpoint", &self.endpoint)
            .field("authenticated", &self.tokens.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap_or_default()
}

impl CloudTasksClient {
    /// A client of `endpoint` sending no credentials (a local fake).
    pub fn unauthenticated(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into().trim_end_matches('/').into(),
            http: crate::lazy_client::LazyClient::new(http_client),
            tokens: None,
            retry: RetryOptions::default(),
        }
    }

    /// A client of `endpoint` with access tokens from `source` (cached until shortly before expiry).
    pub fn new(endpoint: impl Into<String>, source: Arc<dyn TokenSource>) -> Self {
        Self { tokens: Some(Arc::new(CachedTokenSource::new(source))), ..Self::unauthenticated(endpoint) }
    }

    /// A client of `endpoint` with Application Default Credentials (key file, gcloud, metadata server).
    pub fn application_default(endpoint: impl Into<String>) -> Result<Self> {
        Ok(Self::new(endpoint, crate::signing::token::application_default()?))
    }

    /// Set the retry policy.
    pub fn with_retry(mut self, retry: RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Create `task` in `queue_path` (`projects/P/locations/L/queues/Q`). A task id Cloud Tasks holds or
    /// held recently gives [`Error::DuplicateTask`] (with `task` empty: the caller knows which task it was).
    pub async fn create_task(&self, queue_path: &str, task: &NewTask) -> Result<TaskInfo> {
        let url = format!("{}/v2/{queue_path}/tasks", self.endpoint);
        let body = json!({ "task": task.to_json(queue_path) });
        let idempotent = task.id.is_some();
        let (response, retried) = call(
            self.http.get(),
            self.tokens.as_deref(),
            &self.retry,
            "cloudtasks",
            reqwest::Method::POST,
            &url,
            Some(&body),
            idempotent,
        )
        .await?;
        match response {
            Ok(value) => serde_json::from_value(value).map_err(|e| bad_answer("cloudtasks", e)),
            Err(e) if matches!(&e, Error::Service { code, .. } if code == "ALREADY_EXISTS") => {
                Err(Error::DuplicateTask { task: String::new(), id: task.id.clone().unwrap_or_default(), retried })
            }
            Err(e) => Err(e),
        }
    }

    /// The task at `task_path`, or None when Cloud Tasks does not hold it (it ran, was deleted, or never
    /// existed).
    pub async fn get_task(&self, task_path: &str) -> Result<Option<TaskInfo>> {
        let url = format!("{}/v2/{task_path}", self.endpoint);
        let (response, _) = call(
            self.http.get(),
            self.tokens.as_deref(),
            &self.retry,
            "cloudtasks",
            reqwest::Method::GET,
            &url,
            None,
            true,
        )
        .await?;
        match response {
            Ok(value) => Ok(Some(serde_json::from_value(value).map_err(|e| bad_answer("cloudtasks", e))?)),
            Err(Error::Service { status: Some(404), .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Delete the task at `task_path` (its id stays refused for the de-duplication window). Returns false
    /// when it was not there.
    pub async fn delete_task(&self, task_path: &str) -> Result<bool> {
        let url = format!("{}/v2/{task_path}", self.endpoint);
        let (response, _) = call(
            self.http.get(),
            self.tokens.as_deref(),
            &self.retry,
            "cloudtasks",
            reqwest::Method::DELETE,
            &url,
            None,
            true,
        )
        .await?;
        match response {
            Ok(_) => Ok(true),
            Err(Error::Service { status: Some(404), .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn bad_answer(service: &'static str, e: serde_json::Error) -> Error {
    Error::Service {
        service,
        status: None,
        code: "UNKNOWN".into(),
        message: format!("answer not understood: {e}"),
        retryable: false,
    }
}

/// One REST call with auth and retries. The outer `Result` is for failures to even get an answer worth
/// interpreting (token errors); the inner one is the service's answer, and the bool says whether the
/// call was retried.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn call(
    http: &reqwest::Client,
    tokens: Option<&CachedTokenSource>,
    retry: &RetryOptions,
    service: &'static str,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
    idempotent: bool,
) -> Result<(Result<Value>, bool)> {
    let mut attempt = 0u32;
    let mut refreshed = false;
    loop {
        let mut request = http.request(method.clone(), url);
        if let Some(tokens) = tokens {
            request = request.bearer_auth(tokens.token().await?);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status();
                let bytes = response.bytes().await.unwrap_or_default();
                if status.is_success() {
                    let value =
                        if bytes.is_empty() { json!({}) } else { serde_json::from_slice(&bytes).unwrap_or(json!({})) };
                    return Ok((Ok(value), attempt > 0));
                }
                let (code, message) = match serde_json::from_slice::<GoogleError>(&bytes) {
                    Ok(e) => (e.error.status, e.error.message),
                    Err(_) => (String::new(), String::from_utf8_lossy(&bytes).chars().take(300).collect()),
                };
                let code =
                    if code.is_empty() { status.canonical_reason().unwrap_or("UNKNOWN").to_uppercase() } else { code };
                let retryable = status.as_u16() == 429 || status.is_server_error();
                if status.as_u16() == 401 && tokens.is_some() && !refreshed {
                    refreshed = true;
                    if let Some(t) = tokens {
                        t.invalidate().await;
                    }
                    continue;
                }
                let message = match (status.as_u16(), code.as_str()) {
                    (404, _) => format!(
                        "{message} (does the queue or job exist? gcloud tasks queues describe / gcloud scheduler jobs list)"
                    ),
                    (403, _) => format!(
                        "{message} (the caller needs roles/cloudtasks.enqueuer and roles/iam.serviceAccountUser on the invoker account)"
                    ),
                    _ => message,
                };
                Error::Service { service, status: Some(status.as_u16()), code, message, retryable }
            }
            Err(e) => Error::Service {
                service,
                status: None,
                code: "UNAVAILABLE".into(),
                message: format!("{method} {url}: {e}"),
                retryable: true,
            },
        };
        attempt += 1;
        if idempotent && outcome.is_retryable() && attempt < retry.max_attempts {
            let backoff = retry.backoff(attempt - 1);
            tracing::debug!(service, %url, attempt, ?backoff, error = %outcome, "retrying");
            tokio::time::sleep(backoff).await;
            continue;
        }
        return Ok((Err(outcome), attempt > 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_json_is_what_the_rest_api_takes() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().with_timezone(&Utc);
        let task = NewTask::new("https://w.example.com/tasks/mail", br#"{"a":1}"#.to_vec())
            .with_id("abc--mail")
            .with_schedule_time(at)
            .with_dispatch_deadline(Duration::from_secs(60))
            .with_service_account("inv@p.iam.gserviceaccount.com");
        let v = task.to_json("projects/p/locations/l/queues/q");
        assert_eq!(v["name"], "projects/p/locations/l/queues/q/tasks/abc--mail");
        assert_eq!(v["scheduleTime"], "2026-01-02T03:04:05.000000000Z");
        assert_eq!(v["dispatchDeadline"], "60s");
        assert_eq!(v["httpRequest"]["body"], STANDARD.encode(br#"{"a":1}"#));
        assert_eq!(v["httpRequest"]["httpMethod"], "POST");
        assert_eq!(v["httpRequest"]["headers"]["Content-Type"], "application/json");
        assert_eq!(v["httpRequest"]["oidcToken"]["serviceAccountEmail"], "inv@p.iam.gserviceaccount.com");
        assert!(v["httpRequest"]["oidcToken"].get("audience").is_none());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let r = RetryOptions::default();
        assert_eq!(r.backoff(0), Duration::from_millis(100));
        assert_eq!(r.backoff(3), Duration::from_millis(800));
        assert_eq!(r.backoff(30), Duration::from_secs(5));
    }
}
