//! [`SchedulerClient`]: the Cloud Scheduler v1 REST calls `sync` needs (create, get, patch with
//! `updateMask`, list with pages, delete, run), over reqwest with the endpoint configurable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::client::{RetryOptions, call, http_client};
use crate::signing::token::{CachedTokenSource, TokenSource};
use crate::{Error, Result};

/// A Scheduler job with an HTTP target, as `sync` manages it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Job {
    /// `projects/P/locations/L/jobs/J`.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// unix-cron schedule.
    pub schedule: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Attempt deadline.
    pub attempt_deadline: Duration,
    /// Target URL.
    pub uri: String,
    /// Request body.
    pub body: Vec<u8>,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Service account of the OIDC token.
    pub service_account: Option<String>,
}

impl Job {
    /// The job id (last segment of the name).
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }

    /// The `Job` resource JSON.
    pub fn to_json(&self) -> Value {
        let mut http = json!({
            "uri": self.uri,
            "httpMethod": "POST",
            "headers": self.headers,
            "body": STANDARD.encode(&self.body),
        });
        if let Some(sa) = &self.service_account {
            http["oidcToken"] = json!({"serviceAccountEmail": sa, "audience": self.uri});
        }
        let mut job = json!({
            "name": self.name,
            "schedule": self.schedule,
            "timeZone": self.time_zone,
            "attemptDeadline": format!("{}s", self.attempt_deadline.as_secs()),
            "httpTarget": http,
        });
        if let Some(d) = &self.description {
            job["description"] = json!(d);
        }
        job
    }

    /// Read a `Job` resource.
    pub fn from_json(v: &Value) -> Result<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let http = v.get("httpTarget").cloned().unwrap_or(Value::Null);
        let deadline =
            s("attemptDeadline").and_then(|d| d.strip_suffix('s').and_then(|n| n.parse::<f64>().ok())).unwrap_or(180.0);
        Ok(Self {
            name: s("name").ok_or_else(|| bad("job without a name"))?,
            description: s("description"),
            schedule: s("schedule").unwrap_or_default(),
            time_zone: s("timeZone").unwrap_or_else(|| "UTC".into()),
            attempt_deadline: Duration::from_secs_f64(deadline),
            uri: http.get("uri").and_then(Value::as_str).unwrap_or_default().into(),
            body: http
                .get("body")
                .and_then(Value::as_str)
                .map(|b| STANDARD.decode(b).unwrap_or_default())
                .unwrap_or_default(),
            headers: http
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| h.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.into()))).collect())
                .unwrap_or_default(),
            service_account: http.pointer("/oidcToken/serviceAccountEmail").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// The `updateMask` fields in which `self` differs from `other` (empty: the same).
    pub(crate) fn differences(&self, other: &Job) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.schedule != other.schedule {
            out.push("schedule");
        }
        if self.time_zone != other.time_zone {
            out.push("timeZone");
        }
        if self.attempt_deadline.as_secs() != other.attempt_deadline.as_secs() {
            out.push("attemptDeadline");
        }
        if self.description.as_deref().unwrap_or("") != other.description.as_deref().unwrap_or("") {
            out.push("description");
        }
        let header =
            |j: &Job| j.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect::<BTreeMap<_, _>>();
        if self.uri != other.uri
            || self.body != other.body
            || self.service_account != other.service_account
            || header(self) != header(other)
        {
            out.push("httpTarget");
        }
        out
    }
}

fn bad(message: &str) -> Error {
    Error::Service {
        service: "cloudscheduler",
        status: None,
        code: "UNKNOWN".into(),
        message: message.into(),
        retryable: false,
    }
}

/// The Cloud Scheduler REST client.
#[derive(Clone)]
pub struct SchedulerClient {
    endpoint: String,
    http: crate::lazy_client::LazyClient,
    tokens: Option<Arc<CachedTokenSource>>,
    retry: RetryOptions,
}

impl std::fmt::Debug for SchedulerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerClient").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl SchedulerClient {
    /// A client of `endpoint` sending no credentials (a local fake).
    pub fn unauthenticated(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into().trim_end_matches('/').into(),
            http: crate::lazy_client::LazyClient::new(http_client),
            tokens: None,
            retry: RetryOptions::default(),
        }
    }

    /// A client with access tokens from `source`.
    pub fn new(endpoint: impl Into<String>, source: Arc<dyn TokenSource>) -> Self {
        Self { tokens: Some(Arc::new(CachedTokenSource::new(source))), ..Self::unauthenticated(endpoint) }
    }

    /// A client with Application Default Credentials.
    pub fn application_default(endpoint: impl Into<String>) -> Result<Self> {
        Ok(Self::new(endpoint, crate::signing::token::application_default()?))
    }

    async fn call(&self, method: reqwest::Method, url: &str, body: Option<&Value>, idempotent: bool) -> Result<Value> {
        let (outcome, _) =
            call(self.http.get(), self.tokens.as_deref(), &self.retry, "cloudscheduler", method, url, body, idempotent)
                .await?;
        outcome
    }

    /// Create `job` in its location (409 `ALREADY_EXISTS` if present).
    pub async fn create_job(&self, job: &Job) -> Result<Job> {
        let parent = job.name.rsplit_once("/jobs/").map(|(p, _)| p).unwrap_or_default();
        let url = format!("{}/v1/{parent}/jobs", self.endpoint);
        Job::from_json(&self.call(reqwest::Method::POST, &url, Some(&job.to_json()), false).await?)
    }

    /// The job named `name`, or None.
    pub async fn get_job(&self, name: &str) -> Result<Option<Job>> {
        match self.call(reqwest::Method::GET, &format!("{}/v1/{name}", self.endpoint), None, true).await {
            Ok(v) => Ok(Some(Job::from_json(&v)?)),
            Err(Error::Service { status: Some(404), .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Update the `mask` fields of `job`.
    pub async fn patch_job(&self, job: &Job, mask: &[&str]) -> Result<Job> {
        let url = format!("{}/v1/{}?updateMask={}", self.endpoint, job.name, mask.join(","));
        Job::from_json(&self.call(reqwest::Method::PATCH, &url, Some(&job.to_json()), true).await?)
    }

    /// Every job in `parent` (`projects/P/locations/L`), following pages of `page_size`.
    pub async fn list_jobs(&self, parent: &str, page_size: u32) -> Result<Vec<Job>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut url = format!("{}/v1/{parent}/jobs?pageSize={page_size}", self.endpoint);
            if !token.is_empty() {
                url.push_str(&format!("&pageToken={}", crate::encoding::component_iter(&token)));
            }
            let page = self.call(reqwest::Method::GET, &url, None, true).await?;
            for job in page.get("jobs").and_then(Value::as_array).into_iter().flatten() {
                out.push(Job::from_json(job)?);
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => token = t.to_string(),
                _ => return Ok(out),
            }
        }
    }

    /// Delete the job named `name`; false when it was not there.
    pub async fn delete_job(&self, name: &str) -> Result<bool> {
        match self.call(reqwest::Method::DELETE, &format!("{}/v1/{name}", self.endpoint), None, true).await {
            Ok(_) => Ok(true),
            Err(Error::Service { status: Some(404), .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Run the job now (`:run`).
    pub async fn run_job(&self, name: &str) -> Result<()> {
        self.call(reqwest::Method::POST, &format!("{}/v1/{name}:run", self.endpoint), Some(&json!({})), false)
            .await
            .map(|_| ())
    }
}
