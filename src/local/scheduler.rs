//! [`FakeScheduler`]: an in-process Cloud Scheduler serving the v1 REST API on loopback, with the
//! service's checks, and `:run` dispatching like Scheduler.
//!
//! - `POST /v1/projects/P/locations/L/jobs`: create (409 `ALREADY_EXISTS` when the name is taken);
//! - `GET /v1/{job}`, `DELETE /v1/{job}` (404 `NOT_FOUND`);
//! - `PATCH /v1/{job}?updateMask=a,b`: only the masked fields change (no mask: every field sent);
//! - `GET /v1/projects/P/locations/L/jobs?pageSize=N&pageToken=T`: pages in name order;
//! - `POST /v1/{job}:run`: a POST to the job's URI with its headers and body, `X-CloudScheduler: true`,
//!   `X-CloudScheduler-JobName`, `X-CloudScheduler-ScheduleTime`, `User-Agent: Google-Cloud-Scheduler` and
//!   an ID token minted by a [`TestIssuer`] (`aud` = the token's audience or the URI).
//!
//! Refused with 400 `INVALID_ARGUMENT`: a malformed project, location or job id (`[A-Za-z0-9_-]{1,500}`),
//! a schedule that is not unix-cron, a time zone that is not IANA, an attempt deadline outside 15 s..30 min,
//! a missing or non-HTTP(S) target URI, an unknown `updateMask` field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::google_error;
use super::oidc::TestIssuer;
use crate::tasks::cron::{check_attempt_deadline, check_cron, check_time_zone};

/// One `:run` dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchedulerDispatch {
    /// The job id.
    pub job: String,
    /// The worker's status (None: no answer).
    pub status: Option<u16>,
}

pub(crate) struct Shared {
    issuer: Arc<TestIssuer>,
    pub(crate) jobs: Mutex<BTreeMap<String, Map<String, Value>>>,
    pub(crate) dispatches: Mutex<Vec<SchedulerDispatch>>,
    pub(crate) calls: Mutex<Vec<String>>,
    http: crate::lazy_client::LazyClient,
}

/// An in-process Cloud Scheduler (see the module docs).
pub struct FakeScheduler {
    addr: SocketAddr,
    pub(crate) shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for FakeScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeScheduler").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for FakeScheduler {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn invalid(message: impl Into<String>) -> Response {
    google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn not_found() -> Response {
    google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Job not found.")
}

fn valid_id(t: &str) -> bool {
    !t.is_empty() && t.len() <= 500 && t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

fn valid_parent(project: &str, location: &str) -> bool {
    let p = project.as_bytes();
    let project_ok = (6..=30).contains(&p.len())
        && p[0].is_ascii_lowercase()
        && p.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    let location_ok =
        !location.is_empty() && location.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    project_ok && location_ok
}

/// Check the fields of a job body that are present.
fn check_fields(job: &Map<String, Value>) -> Result<(), String> {
    if let Some(s) = job.get("schedule") {
        check_cron(s.as_str().unwrap_or_default()).map_err(|e| format!("Schedule has an invalid format: {e}"))?;
    }
    if let Some(tz) = job.get("timeZone") {
        check_time_zone(tz.as_str().unwrap_or_default()).map_err(|e| format!("Invalid time zone: {e}"))?;
    }
    if let Some(d) = job.get("attemptDeadline") {
        let secs = d
            .as_str()
            .and_then(|d| d.strip_suffix('s'))
            .and_then(|n| n.parse::<f64>().ok())
            .ok_or("attemptDeadline is not a duration")?;
        check_attempt_deadline(Duration::from_secs_f64(secs.max(0.0)))?;
    }
    if let Some(http) = job.get("httpTarget") {
        let uri = http.get("uri").and_then(Value::as_str).unwrap_or_default();
        match url::Url::parse(uri) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
            _ => return Err(format!("httpTarget.uri {uri:?} must be an absolute http or https URL")),
        }
        if let Some(b) = http.get("body").and_then(Value::as_str)
            && STANDARD.decode(b).is_err()
        {
            return Err("httpTarget.body is not base64".into());
        }
    }
    Ok(())
}

impl FakeScheduler {
    /// Start on a loopback port; `:run` dispatches carry tokens minted by `issuer`.
    pub async fn start(issuer: Arc<TestIssuer>) -> Self {
        let shared = Arc::new(Shared {
            issuer,
            jobs: Mutex::new(BTreeMap::new()),
            dispatches: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            http: crate::lazy_client::LazyClient::new(reqwest::Client::new),
        });
        let app = Router::new().fallback(api).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, server }
    }

    /// The endpoint (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The jobs held, by name, as Scheduler returns them.
    pub fn jobs(&self) -> BTreeMap<String, Value> {
        self.shared.jobs.lock().unwrap().iter().map(|(k, v)| (k.clone(), Value::Object(v.clone()))).collect()
    }

    /// Run job `name` (`projects/P/locations/L/jobs/J`) as its schedule does: what the clock calls.
    pub(crate) fn fire(&self, name: &str) {
        let id = name.rsplit('/').next().unwrap_or_default();
        let _ = run(&self.shared, name, id);
    }
}

async fn api(State(shared): State<Arc<Shared>>, method: Method, uri: OriginalUri, body: Bytes) -> Response {
    let path = uri.0.path().to_string();
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(uri.0.query().unwrap_or("").as_bytes()).into_owned().collect();
    let Some(resource) = path.strip_prefix("/v1/") else { return not_found() };
    let (resource, action) = match resource.rsplit_once(':') {
        Some((r, a)) => (r, Some(a)),
        None => (resource, None),
    };
    let parts: Vec<&str> = resource.split('/').collect();
    match parts.as_slice() {
        ["projects", p, "locations", l, "jobs"] => {
            if !valid_parent(p, l) {
                return invalid(format!("Invalid parent projects/{p}/locations/{l}"));
            }
            let parent = format!("projects/{p}/locations/{l}");
            match method {
                Method::POST => create(&shared, &parent, &body),
                Method::GET => list(&shared, &parent, &query),
                _ => not_found(),
            }
        }
        ["projects", p, "locations", l, "jobs", j] => {
            if !valid_parent(p, l) || !valid_id(j) {
                return invalid(format!("Invalid job name {resource:?}: job ids are [A-Za-z0-9_-], at most 500"));
            }
            match (method, action) {
                (Method::GET, None) => match shared.jobs.lock().unwrap().get(resource) {
                    Some(job) => (StatusCode::OK, axum::Json(Value::Object(job.clone()))).into_response(),
                    None => not_found(),
                },
                (Method::DELETE, None) => {
                    shared.calls.lock().unwrap().push(format!("DELETE {resource}"));
                    match shared.jobs.lock().unwrap().remove(resource) {
                        Some(_) => (StatusCode::OK, axum::Json(json!({}))).into_response(),
                        None => not_found(),
                    }
                }
                (Method::PATCH, None) => patch(&shared, resource, &body, query.get("updateMask").map(String::as_str)),
                (Method::POST, Some("run")) => run(&shared, resource, j),
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn create(shared: &Arc<Shared>, parent: &str, body: &[u8]) -> Response {
    let Ok(Value::Object(mut job)) = serde_json::from_slice::<Value>(body) else {
        return invalid("Invalid JSON payload received.");
    };
    let name = job.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let Some(id) = name.strip_prefix(&format!("{parent}/jobs/")) else {
        return invalid(format!("Job name {name:?} must be {parent}/jobs/JOB_ID"));
    };
    if !valid_id(id) {
        return invalid(format!(
            "Job ID {id:?} can contain only letters, numbers, hyphens and underscores (at most 500)"
        ));
    }
    if job.get("schedule").is_none() || job.get("httpTarget").is_none() {
        return invalid("schedule and httpTarget are required");
    }
    if let Err(e) = check_fields(&job) {
        return invalid(e);
    }
    job.entry("timeZone").or_insert(json!("UTC"));
    job.entry("attemptDeadline").or_insert(json!("180s"));
    job.insert("state".into(), json!("ENABLED"));
    job.insert("userUpdateTime".into(), json!(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)));
    let mut jobs = shared.jobs.lock().unwrap();
    if jobs.contains_key(&name) {
        return google_error(StatusCode::CONFLICT, "ALREADY_EXISTS", "Job already exists.");
    }
    shared.calls.lock().unwrap().push(format!("POST {name}"));
    jobs.insert(name, job.clone());
    (StatusCode::OK, axum::Json(Value::Object(job))).into_response()
}

fn patch(shared: &Arc<Shared>, name: &str, body: &[u8], mask: Option<&str>) -> Response {
    let Ok(Value::Object(update)) = serde_json::from_slice::<Value>(body) else {
        return invalid("Invalid JSON payload received.");
    };
    const FIELDS: [&str; 5] = ["schedule", "timeZone", "attemptDeadline", "description", "httpTarget"];
    let fields: Vec<String> = match mask {
        Some(m) => m.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect(),
        None => update.keys().filter(|k| FIELDS.contains(&k.as_str())).cloned().collect(),
    };
    if let Some(bad) = fields.iter().find(|f| !FIELDS.contains(&f.as_str())) {
        return invalid(format!("updateMask field {bad:?} is not a Job field this API updates"));
    }
    let masked: Map<String, Value> =
        fields.iter().filter_map(|f| update.get(f).map(|v| (f.clone(), v.clone()))).collect();
    if let Err(e) = check_fields(&masked) {
        return invalid(e);
    }
    let mut jobs = shared.jobs.lock().unwrap();
    let Some(job) = jobs.get_mut(name) else { return not_found() };
    shared.calls.lock().unwrap().push(format!("PATCH {name} {}", fields.join(",")));
    for f in &fields {
        match update.get(f) {
            Some(v) => job.insert(f.clone(), v.clone()),
            None => job.remove(f),
        };
    }
    job.insert("userUpdateTime".into(), json!(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)));
    (StatusCode::OK, axum::Json(Value::Object(job.clone()))).into_response()
}

fn list(shared: &Arc<Shared>, parent: &str, query: &BTreeMap<String, String>) -> Response {
    let size: usize = query.get("pageSize").and_then(|s| s.parse().ok()).unwrap_or(500).clamp(1, 500);
    let start: usize = match query.get("pageToken").map(String::as_str) {
        None | Some("") => 0,
        Some(t) => match t.strip_prefix("offset-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return invalid("Invalid page token."),
        },
    };
    let jobs = shared.jobs.lock().unwrap();
    let prefix = format!("{parent}/jobs/");
    let all: Vec<&Map<String, Value>> = jobs.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v).collect();
    let page: Vec<Value> = all.iter().skip(start).take(size).map(|j| Value::Object((*j).clone())).collect();
    let mut body = json!({ "jobs": page });
    if start + size < all.len() {
        body["nextPageToken"] = json!(format!("offset-{}", start + size));
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn run(shared: &Arc<Shared>, name: &str, id: &str) -> Response {
    let Some(job) = shared.jobs.lock().unwrap().get(name).cloned() else { return not_found() };
    let http = job.get("httpTarget").cloned().unwrap_or(Value::Null);
    let uri = http.get("uri").and_then(Value::as_str).unwrap_or_default().to_string();
    let body = http.get("body").and_then(Value::as_str).and_then(|b| STANDARD.decode(b).ok()).unwrap_or_default();
    let headers: Vec<(String, String)> = http
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| h.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    let token = http.get("oidcToken").map(|o| {
        let email = o.get("serviceAccountEmail").and_then(Value::as_str).unwrap_or_default();
        let audience = o.get("audience").and_then(Value::as_str).unwrap_or(&uri);
        shared.issuer.mint(&shared.issuer.claims(audience, email))
    });
    let shared2 = shared.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let mut request = shared2.http.get().post(&uri);
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        request = request
            .header("User-Agent", "Google-Cloud-Scheduler")
            .header("X-CloudScheduler", "true")
            .header("X-CloudScheduler-JobName", &id)
            .header("X-CloudScheduler-ScheduleTime", Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let status = request.body(body).send().await.ok().map(|r| r.status().as_u16());
        shared2.dispatches.lock().unwrap().push(SchedulerDispatch { job: id, status });
    });
    (StatusCode::OK, axum::Json(Value::Object(job))).into_response()
}
