//! [`PubSubClient`]: the Pub/Sub REST API (v1) over reqwest.
//!
//! Publishing is not retried (a retried publish whose first attempt landed would publish twice; the
//! error says whether a retry may help). Topic and subscription reads, creates (by name: a repeat is a
//! 409) and deletes are retried on 429, 5xx and connection errors with exponential backoff.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::signing::token::{CachedTokenSource, TokenSource, application_default};
use crate::{Error, Result};

/// The production endpoint.
pub(super) const PUBSUB_ENDPOINT: &str = "https://pubsub.googleapis.com";

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The payload.
    pub data: Vec<u8>,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// Ordering key (the subscription must enable message ordering).
    pub ordering_key: Option<String>,
}

impl OutgoingMessage {
    /// A message carrying `data`.
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        Self { data: data.into(), ..Default::default() }
    }
    /// A message carrying `value` as JSON.
    pub fn json(value: &impl serde::Serialize) -> Result<Self> {
        Ok(Self::new(
            serde_json::to_vec(value)
                .map_err(|e| Error::InvalidArgument(format!("message data does not serialize: {e}")))?,
        ))
    }
    /// Set an attribute.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }
    /// Set the ordering key.
    pub fn with_ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }
}

/// A push subscription to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushSubscription {
    /// Subscription id (not the full name).
    pub name: String,
    /// Topic id.
    pub topic: String,
    /// The endpoint URL.
    pub push_endpoint: String,
    /// The service account whose OIDC token Pub/Sub sends (`--push-auth-service-account`).
    pub service_account_email: Option<String>,
    /// The token audience (default: the endpoint).
    pub audience: Option<String>,
    /// Deliver messages with the same ordering key in order.
    pub enable_message_ordering: bool,
    /// Push unwrapped (`noWrapper` with `writeMetadata`).
    pub no_wrapper: bool,
    /// Ack deadline in seconds (10 to 600).
    pub ack_deadline_seconds: u32,
    /// Retry policy's minimum backoff (Pub/Sub's default 10 s when `None`).
    pub min_backoff: Option<Duration>,
    /// Retry policy's maximum backoff.
    pub max_backoff: Option<Duration>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl PushSubscription {
    /// A push subscription `name` on `topic` to `push_endpoint`.
    pub fn new(name: impl Into<String>, topic: impl Into<String>, push_endpoint: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            topic: topic.into(),
            push_endpoint: push_endpoint.into(),
            service_account_email: None,
            audience: None,
            enable_message_ordering: false,
            no_wrapper: false,
            ack_deadline_seconds: 10,
            min_backoff: None,
            max_backoff: None,
            labels: BTreeMap::new(),
        }
    }
    /// Push with an OIDC token for `email`.
    pub fn with_service_account(mut self, email: impl Into<String>) -> Self {
        self.service_account_email = Some(email.into());
        self
    }
    /// Token audience.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }
    /// Enable ordering.
    pub fn with_message_ordering(mut self, on: bool) -> Self {
        self.enable_message_ordering = on;
        self
    }
    /// Push unwrapped.
    pub fn with_no_wrapper(mut self, on: bool) -> Self {
        self.no_wrapper = on;
        self
    }
    /// Ack deadline.
    pub fn with_ack_deadline_seconds(mut self, seconds: u32) -> Self {
        self.ack_deadline_seconds = seconds;
        self
    }
    /// Redelivery backoff bounds.
    pub fn with_retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = Some(min);
        self.max_backoff = Some(max);
        self
    }
    /// Add a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    fn body(&self, project: &str) -> Value {
        let mut push = Map::new();
        push.insert("pushEndpoint".into(), json!(self.push_endpoint));
        if let Some(email) = &self.service_account_email {
            let mut oidc = json!({ "serviceAccountEmail": email });
            if let Some(aud) = &self.audience {
                oidc["audience"] = json!(aud);
            }
            push.insert("oidcToken".into(), oidc);
        }
        if self.no_wrapper {
            push.insert("noWrapper".into(), json!({ "writeMetadata": true }));
        }
        let mut body = json!({
            "topic": format!("projects/{project}/topics/{}", self.topic),
            "pushConfig": Value::Object(push),
            "ackDeadlineSeconds": self.ack_deadline_seconds,
            "enableMessageOrdering": self.enable_message_ordering,
        });
        if !self.labels.is_empty() {
            body["labels"] = json!(self.labels);
        }
        if self.min_backoff.is_some() || self.max_backoff.is_some() {
            let mut retry = Map::new();
            if let Some(min) = self.min_backoff {
                retry.insert("minimumBackoff".into(), json!(format!("{}s", min.as_secs_f64())));
            }
            if let Some(max) = self.max_backoff {
                retry.insert("maximumBackoff".into(), json!(format!("{}s", max.as_secs_f64())));
            }
            body["retryPolicy"] = Value::Object(retry);
        }
        body
    }
}

/// A Pub/Sub REST client for one project.
#[derive(Clone)]
pub struct PubSubClient {
    base: String,
    project: String,
    http: reqwest::Client,
    tokens: Option<Arc<CachedTokenSource>>,
    attempts: u32,
}

impl std::fmt::Debug for PubSubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubClient")
            .field("base", &self.base)
            .field("project", &self.project)
            .field("authenticated", &self.tokens.is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct PublishResponse {
    #[serde(default, rename = "messageIds")]
    message_ids: Vec<String>,
}

impl PubSubClient {
    /// The emulator at `PUBSUB_EMULATOR_HOST` when set, else production with Application Default
    /// Credentials.
    pub fn from_env(project: impl Into<String>) -> Result<Self> {
        match std::env::var("PUBSUB_EMULATOR_HOST") {
            Ok(host) if !host.is_empty() => Ok(Self::emulator(host, project)),
            _ => Ok(Self::new(project, application_default()?)),
        }
    }

    /// Production (`https://pubsub.googleapis.com`), with tokens from `tokens`.
    pub fn new(project: impl Into<String>, tokens: Arc<dyn TokenSource>) -> Self {
        Self {
            base: PUBSUB_ENDPOINT.into(),
            project: project.into(),
            http: http_client(),
            tokens: Some(Arc::new(CachedTokenSource::new(tokens))),
            attempts: 4,
        }
    }

    /// The emulator at `host` (`127.0.0.1:8085` or a URL), unauthenticated.
    pub fn emulator(host: impl Into<String>, project: impl Into<String>) -> Self {
        let host = host.into();
        let base = if host.contains("://") { host } else { format!("http://{host}") };
        Self {
            base: base.trim_end_matches('/').into(),
            project: project.into(),
            http: http_client(),
            tokens: None,
            attempts: 4,
        }
    }

    /// Use another endpoint (a regional endpoint, a proxy).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.base = endpoint.into().trim_end_matches('/').into();
        self
    }

    /// The project.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// `projects/P/topics/T`.
    pub(crate) fn topic_path(&self, topic: &str) -> String {
        format!("projects/{}/topics/{topic}", self.project)
    }

    /// `projects/P/subscriptions/S`.
    pub fn subscription_path(&self, subscription: &str) -> String {
        format!("projects/{}/subscriptions/{subscription}", self.project)
    }

    /// Publish `messages` to `topic`; returns their ids in order. Not retried (see the module docs).
    pub async fn publish(&self, topic: &str, messages: &[OutgoingMessage]) -> Result<Vec<String>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut v = json!({ "data": STANDARD.encode(&m.data) });
                if !m.attributes.is_empty() {
                    v["attributes"] = json!(m.attributes);
                }
                if let Some(key) = &m.ordering_key {
                    v["orderingKey"] = json!(key);
                }
                v
            })
            .collect();
        let path = format!("/v1/{}:publish", self.topic_path(topic));
        let body = self.call(Method::POST, &path, Some(json!({ "messages": messages })), 1).await?;
        let response: PublishResponse =
            serde_json::from_value(body).map_err(|e| service_error(None, false, format!("publish response: {e}")))?;
        Ok(response.message_ids)
    }

    /// Create `topic`. `Ok(false)` when it already exists.
    pub async fn create_topic(&self, topic: &str) -> Result<bool> {
        let path = format!("/v1/{}", self.topic_path(topic));
        match self.call(Method::PUT, &path, Some(json!({})), self.attempts).await {
            Ok(_) => Ok(true),
            Err(Error::PubSub { status: Some(409), .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Delete `topic`. `Ok(false)` when it did not exist.
    pub async fn delete_topic(&self, topic: &str) -> Result<bool> {
        self.delete(&format!("/v1/{}", self.topic_path(topic))).await
    }

    /// Create a push subscription. `Ok(false)` when one with that name already exists (unchanged).
    pub async fn create_push_subscription(&self, subscription: &PushSubscription) -> Result<bool> {
        let path = format!("/v1/{}", self.subscription_path(&subscription.name));
        match self.call(Method::PUT, &path, Some(subscription.body(&self.project)), self.attempts).await {
            Ok(_) => Ok(true),
            Err(Error::PubSub { status: Some(409), .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The subscription resource as JSON, `None` when absent.
    pub async fn get_subscription(&self, subscription: &str) -> Result<Option<Value>> {
        match self
            .call(Method::GET, &format!("/v1/{}", self.subscription_path(subscription)), None, self.attempts)
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(Error::PubSub { status: Some(404), .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every subscription of the project (all pages), as the API returns them (`name` is the full path).
    pub(crate) async fn list_subscriptions(&self) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/v1/projects/{}/subscriptions?pageSize=100", self.project);
            if let Some(t) = &token {
                path.push_str("&pageToken=");
                path.push_str(&crate::encoding::component(t));
            }
            let page = self.call(Method::GET, &path, None, self.attempts).await?;
            if let Some(items) = page["subscriptions"].as_array() {
                all.extend(items.iter().cloned());
            }
            match page["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(all),
            }
        }
    }

    /// Replace the push configuration (endpoint, OIDC identity and audience, wrapper) of an existing
    /// subscription with `subscription`'s (`:modifyPushConfig`; other settings cannot change in place).
    pub(crate) async fn modify_push_config(&self, subscription: &PushSubscription) -> Result<()> {
        let path = format!("/v1/{}:modifyPushConfig", self.subscription_path(&subscription.name));
        let push = subscription.body(&self.project)["pushConfig"].clone();
        self.call(Method::POST, &path, Some(json!({ "pushConfig": push })), self.attempts).await?;
        Ok(())
    }

    /// Delete a subscription. `Ok(false)` when it did not exist.
    pub async fn delete_subscription(&self, subscription: &str) -> Result<bool> {
        self.delete(&format!("/v1/{}", self.subscription_path(subscription))).await
    }

    async fn delete(&self, path: &str) -> Result<bool> {
        match self.call(Method::DELETE, path, None, self.attempts).await {
            Ok(_) => Ok(true),
            Err(Error::PubSub { status: Some(404), .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>, attempts: u32) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), &url);
            if let Some(tokens) = &self.tokens {
                request = request.bearer_auth(tokens.token().await?);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(if text.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(&text).unwrap_or(json!({}))
                        });
                    }
                    let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    service_error(
                        Some(status.as_u16()),
                        retryable,
                        format!("{method} {path}: {}", google_message(&text)),
                    )
                }
                Err(e) => service_error(None, true, format!("{method} {path}: {e}")),
            };
            let Error::PubSub { retryable, .. } = &outcome else { return Err(outcome) };
            if !*retryable || attempt >= attempts {
                return Err(outcome);
            }
            let backoff = Duration::from_millis(100 * 2u64.pow(attempt - 1));
            let jitter = Duration::from_millis(crate::random::u64() % 50);
            tokio::time::sleep(backoff + jitter).await;
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default()
}

fn service_error(status: Option<u16>, retryable: bool, message: String) -> Error {
    Error::PubSub { status, retryable, message }
}

/// The `error.message` of Google's error JSON, else the body (truncated).
fn google_message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(300).collect())
}
