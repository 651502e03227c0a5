//! A local fake of the metadata server that answers like the real one, for tests of code that uses
//! [`MetadataClient`] (or anything reading `GCE_METADATA_HOST`).
//!
//! What it checks and answers, as the real server does:
//! - every request must carry `Metadata-Flavor: Google`, else 403; a request with `X-Forwarded-For` is
//!   refused with 403 (the real server refuses proxied requests);
//! - every answer carries `Metadata-Flavor: Google`; values are `application/text` bodies;
//! - `instance/service-accounts/default/token` answers JSON `{access_token, expires_in, token_type}`;
//! - `instance/service-accounts/default/identity?audience=A` answers a JWT whose `aud` is `A` (400 without
//!   an audience); its signature is not Google's, so it proves shape and claims, not authenticity;
//! - unknown paths are 404; paths configured with [`FakeMetadata::with_delay`] answer late (timeouts), and
//!   paths configured with [`FakeMetadata::with_failures`] answer 503 a number of times first (outages).
//!
//! ```no_run
//! # async fn demo() {
//! use sea_gcp::testing::metadata_server::{FakeMetadata, FakeMetadataServer};
//! let server = FakeMetadataServer::start(FakeMetadata::default()).await;
//! let metadata = server.client();
//! assert_eq!(metadata.project_id().await.unwrap(), "test-project");
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::metadata::MetadataClient;

/// What the fake answers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FakeMetadata {
    /// `project/project-id`.
    pub project_id: String,
    /// `project/numeric-project-id`.
    pub project_number: String,
    /// `instance/region`'s last segment (the server answers `projects/{number}/regions/{region}`).
    pub region: String,
    /// `instance/id`.
    pub instance_id: String,
    /// `instance/service-accounts/default/email`.
    pub email: String,
    /// `expires_in` of issued access tokens, and the lifetime of issued ID tokens, in seconds.
    pub token_lifetime: u64,
    /// Paths (without `/computeMetadata/v1/`) that answer only after a delay.
    pub delays: Vec<(String, Duration)>,
    /// Paths (without `/computeMetadata/v1/`) whose first this many requests answer 503.
    pub failures: Vec<(String, u64)>,
}

impl Default for FakeMetadata {
    fn default() -> Self {
        Self {
            project_id: "test-project".into(),
            project_number: "123456789012".into(),
            region: "europe-west1".into(),
            instance_id: "00bf4bf02d".into(),
            email: "runner@test-project.iam.gserviceaccount.com".into(),
            token_lifetime: 3599,
            delays: Vec::new(),
            failures: Vec::new(),
        }
    }
}

impl FakeMetadata {
    /// Answer `path` (e.g. `instance/service-accounts/default/token`) only after `delay`.
    pub fn with_delay(mut self, path: impl Into<String>, delay: Duration) -> Self {
        self.delays.push((path.into(), delay));
        self
    }

    /// Answer the first `times` requests for `path` (e.g. `project/project-id`) with 503, then normally.
    pub fn with_failures(mut self, path: impl Into<String>, times: u64) -> Self {
        self.failures.push((path.into(), times));
        self
    }

    /// Issue access tokens that live `seconds`.
    pub fn with_token_lifetime(mut self, seconds: u64) -> Self {
        self.token_lifetime = seconds;
        self
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    refused: AtomicU64,
    tokens: AtomicU64,
    identities: AtomicU64,
    /// Requests per path (without `/computeMetadata/v1/`).
    paths: std::sync::Mutex<HashMap<String, u64>>,
}

struct Shared {
    data: FakeMetadata,
    counters: Counters,
}

/// A running fake metadata server on a loopback port; stopped on drop.
pub struct FakeMetadataServer {
    base: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeMetadataServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMetadataServer").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Drop for FakeMetadataServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const FLAVOR: (&str, &str) = ("metadata-flavor", "Google");

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [FLAVOR, ("content-type", "application/text")], body.into()).into_response()
}

fn fake_jwt(data: &FakeMetadata, audience: &str, serial: u64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = chrono::Utc::now().timestamp();
    let header = serde_json::json!({"alg": "RS256", "kid": "fake-metadata-key", "typ": "JWT"});
    let claims = serde_json::json!({
        "aud": audience, "azp": data.email, "email": data.email, "email_verified": true,
        "exp": now + data.token_lifetime as i64, "iat": now, "iss": "https://accounts.google.com", "sub": "104857600000000000000",
    });
    let signature = format!("fake-signature-{serial}");
    format!("{}.{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()), b64.encode(signature))
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let c = &shared.counters;
    c.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        c.refused.fetch_add(1, Ordering::SeqCst);
        return text(StatusCode::FORBIDDEN, "Missing required header \"Metadata-Flavor\": \"Google\"");
    }
    if headers.contains_key("x-forwarded-for") {
        c.refused.fetch_add(1, Ordering::SeqCst);
        return text(StatusCode::FORBIDDEN, "Request had an X-Forwarded-For header and was refused");
    }
    let Some(path) = uri.path().strip_prefix("/computeMetadata/v1/") else {
        return text(StatusCode::NOT_FOUND, "Not Found");
    };
    let data = &shared.data;
    let seen = {
        let mut paths = c.paths.lock().unwrap_or_else(|p| p.into_inner());
        let n = paths.entry(path.to_string()).or_insert(0);
        *n += 1;
        *n
    };
    if let Some((_, delay)) = data.delays.iter().find(|(p, _)| p == path) {
        tokio::time::sleep(*delay).await;
    }
    if data.failures.iter().any(|(p, times)| p == path && seen <= *times) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable");
    }
    match path {
        "project/project-id" => text(StatusCode::OK, data.project_id.clone()),
        "project/numeric-project-id" => text(StatusCode::OK, data.project_number.clone()),
        "instance/region" => text(StatusCode::OK, format!("projects/{}/regions/{}", data.project_number, data.region)),
        "instance/zone" => text(StatusCode::OK, format!("projects/{}/zones/{}-1", data.project_number, data.region)),
        "instance/id" => text(StatusCode::OK, data.instance_id.clone()),
        "instance/service-accounts/default/email" => text(StatusCode::OK, data.email.clone()),
        "instance/service-accounts/default/token" => {
            let n = c.tokens.fetch_add(1, Ordering::SeqCst) + 1;
            let body = serde_json::json!({
                "access_token": format!("ya29.fake-metadata-{n}"),
                "expires_in": data.token_lifetime,
                "token_type": "Bearer",
            });
            (StatusCode::OK, [FLAVOR, ("content-type", "application/json")], body.to_string()).into_response()
        }
        "instance/service-accounts/default/identity" => match query.get("audience").filter(|a| !a.is_empty()) {
            None => text(StatusCode::BAD_REQUEST, "non-empty audience parameter required"),
            Some(audience) => {
                let n = c.identities.fetch_add(1, Ordering::SeqCst) + 1;
                text(StatusCode::OK, fake_jwt(data, audience, n))
            }
        },
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

impl FakeMetadataServer {
    /// Start a fake answering `data` on `127.0.0.1` (a free port).
    pub async fn start(data: FakeMetadata) -> Self {
        let shared = Arc::new(Shared { data, counters: Counters::default() });
        let app = axum::Router::new().fallback(answer).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, shared, task }
    }

    /// `http://127.0.0.1:PORT`, for `GCE_METADATA_HOST` or [`MetadataClient::new`].
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A client for this fake.
    pub fn client(&self) -> MetadataClient {
        MetadataClient::new(&self.base)
    }

    /// Requests received (including refused ones).
    pub fn requests(&self) -> u64 {
        self.shared.counters.requests.load(Ordering::SeqCst)
    }

    /// Requests received for `path` (without `/computeMetadata/v1/`, e.g. `project/project-id`), refused
    /// ones excluded.
    pub fn requests_for(&self, path: &str) -> u64 {
        self.shared.counters.paths.lock().unwrap_or_else(|p| p.into_inner()).get(path).copied().unwrap_or(0)
    }

    /// Requests refused for a missing flavor header or a proxy header.
    pub fn refused(&self) -> u64 {
        self.shared.counters.refused.load(Ordering::SeqCst)
    }

    /// Access tokens issued.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.counters.tokens.load(Ordering::SeqCst)
    }

    /// ID tokens issued.
    pub fn identity_tokens_issued(&self) -> u64 {
        self.shared.counters.identities.load(Ordering::SeqCst)
    }
}
