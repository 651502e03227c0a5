//! OAuth access tokens for IAM signBlob: from Application Default Credentials or the metadata server,
//! cached until shortly before they expire.
//!
//! Sources, in ADC order ([`application_default`]):
//! 1. `GOOGLE_APPLICATION_CREDENTIALS` naming a JSON file: `authorized_user` (refresh-token grant) or
//!    `service_account` (JWT-bearer grant signed with the key);
//! 2. gcloud's well-known file `~/.config/gcloud/application_default_credentials.json`;
//! 3. the GCE / Cloud Run / GKE metadata server (`GCE_METADATA_HOST` overrides its host).
//!
//! Every endpoint is overridable so tests can run against a local fake.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::key::{ServiceAccountKey, ServiceAccountKeySigner};
use crate::{Error, Result};

pub use crate::metadata::DEFAULT_METADATA_HOST;
/// Google's OAuth token endpoint.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The OAuth scope requested for signBlob.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long before expiry a cached token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A bearer token and when it stops working.
#[derive(Clone)]
pub struct AccessToken {
    /// The token.
    pub token: String,
    /// When it expires.
    pub expires_at: Instant,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Something that fetches fresh access tokens.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// Fetch a new token (no caching here: see [`CachedTokenSource`]).
    async fn fetch(&self) -> Result<AccessToken>;
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).connect_timeout(Duration::from_secs(3)).build().unwrap_or_default()
}

async fn read_token(
    response: std::result::Result<reqwest::Response, reqwest::Error>,
    what: &str,
) -> Result<AccessToken> {
    let response = response.map_err(|e| Error::Signing {
        message: format!("could not fetch an access token from {what}: {e}"),
        source: Some(Box::new(e)),
    })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Error::signing(format!(
            "{what} refused the access-token request with HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        )));
    }
    let parsed: TokenResponse = serde_json::from_str(&body)
        .map_err(|e| Error::signing(format!("{what} returned an access-token response that is not understood: {e}")))?;
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
    Ok(AccessToken { token: parsed.access_token, expires_at: Instant::now() + lifetime })
}

/// The metadata server of GCE, Cloud Run, GKE and App Engine: the crate's one metadata client,
/// [`crate::metadata::MetadataClient`], under the name signing has always used.
pub type MetadataServer = crate::metadata::MetadataClient;

/// What to do when signing cannot get what it needs from the metadata server.
const METADATA_HINT: &str = "run on GCE / Cloud Run / GKE, or name the service account \
                             (signing.service_account_email) or use a key file (GOOGLE_APPLICATION_CREDENTIALS)";

/// A metadata error, as a signing error that names the alternatives (the metadata error is its source).
pub(crate) fn metadata_signing_error(what: &str, e: Error) -> Error {
    Error::Signing {
        message: format!("could not get {what} from the metadata server: {e}; {METADATA_HINT}"),
        source: Some(Box::new(e)),
    }
}

#[async_trait]
impl TokenSource for MetadataServer {
    async fn fetch(&self) -> Result<AccessToken> {
        let t = self.fetch_access_token().await.map_err(|e| metadata_signing_error("an access token", e))?;
        Ok(AccessToken { token: t.token, expires_at: t.expires_at })
    }
}

/// A user's refresh token (`gcloud auth application-default login`).
#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(skip, default = "default_client")]
    client: reqwest::Client,
}

fn default_client() -> reqwest::Client {
    http_client(Duration::from_secs(30))
}

impl fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizedUser").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl AuthorizedUser {
    /// Send token requests to `token_uri` instead of Google's.
    pub fn with_token_uri(mut self, token_uri: impl Into<String>) -> Self {
        self.token_uri = Some(token_uri.into());
        self
    }
}

#[async_trait]
impl TokenSource for AuthorizedUser {
    async fn fetch(&self) -> Result<AccessToken> {
        let uri = self.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI);
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("refresh_token", self.refresh_token.as_str()),
        ];
        let request = self.client.post(uri).form(&form).send().await;
        read_token(request, uri).await
    }
}

/// Tokens for a service account from its key (OAuth JWT-bearer grant).
#[derive(Debug, Clone)]
pub struct ServiceAccountTokens {
    signer: Arc<ServiceAccountKeySigner>,
    key_id: Option<String>,
    token_uri: String,
    client: reqwest::Client,
}

impl ServiceAccountTokens {
    /// Tokens for `key`, from its `token_uri` (or Google's).
    pub fn new(key: &ServiceAccountKey) -> Result<Self> {
        Ok(Self {
            signer: Arc::new(ServiceAccountKeySigner::new(key)?),
            key_id: key.private_key_id.clone(),
            token_uri: key.token_uri.clone().unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string()),
            client: default_client(),
        })
    }

    fn assertion(&self) -> Result<String> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = chrono::Utc::now().timestamp();
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = serde_json::Value::String(kid.clone());
        }
        let claims = serde_json::json!({
            "iss": self.signer.email(),
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let mut jwt = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
        let signature = self.signer.sign_blocking(jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&b64.encode(signature));
        Ok(jwt)
    }
}

#[async_trait]
impl TokenSource for ServiceAccountTokens {
    async fn fetch(&self) -> Result<AccessToken> {
        let assertion = self.assertion()?;
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())];
        let request = self.client.post(&self.token_uri).form(&form).send().await;
        read_token(request, &self.token_uri).await
    }
}

/// Parse an ADC JSON file (`authorized_user` or `service_account`) into a token source.
pub fn token_source_from_file(path: &Path) -> Result<Arc<dyn TokenSource>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(None, format!("cannot read credentials file {}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::config(None, format!("credentials file {} is not valid JSON: {e}", path.display())))?;
    match value.get("type").and_then(|t| t.as_str()) {
        Some("authorized_user") => {
            let user: AuthorizedUser = serde_json::from_value(value).map_err(|e| {
                Error::config(
                    None,
                    format!(
                        "credentials file {} is not a complete authorized_user credential ({e}): run \
                         `gcloud auth application-default login` again",
                        path.display()
                    ),
                )
            })?;
            Ok(Arc::new(user))
        }
        Some("service_account") => {
            let key = ServiceAccountKey::from_json(&text, &format!("credentials file {}", path.display()))?;
            Ok(Arc::new(ServiceAccountTokens::new(&key)?))
        }
        other => Err(Error::config(
            None,
            format!(
                "credentials file {} has type {other:?}; supported are authorized_user and service_account",
                path.display()
            ),
        )),
    }
}

/// gcloud's application-default credentials file, if it exists.
fn well_known_file() -> Option<PathBuf> {
    let dir = match std::env::var_os("CLOUDSDK_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config").join("gcloud"),
    };
    let path = dir.join("application_default_credentials.json");
    path.is_file().then_some(path)
}

/// Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's well-known file, then the
/// metadata server.
pub fn application_default() -> Result<Arc<dyn TokenSource>> {
    if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty()) {
        return token_source_from_file(Path::new(&path));
    }
    if let Some(path) = well_known_file() {
        return token_source_from_file(&path);
    }
    Ok(Arc::new(MetadataServer::from_env()))
}

/// A [`TokenSource`] wrapper that reuses a token until [`REFRESH_MARGIN`] before it expires.
#[derive(Debug)]
pub struct CachedTokenSource {
    inner: Arc<dyn TokenSource>,
    cached: tokio::sync::Mutex<Option<AccessToken>>,
    margin: Duration,
    fetches: AtomicU64,
}

impl CachedTokenSource {
    /// Cache tokens from `inner`.
    pub fn new(inner: Arc<dyn TokenSource>) -> Self {
        Self { inner, cached: tokio::sync::Mutex::new(None), margin: REFRESH_MARGIN, fetches: AtomicU64::new(0) }
    }

    /// Replace tokens this long before they expire (default [`REFRESH_MARGIN`]).
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// A valid token: the cached one, or a fresh one when it is missing or about to expire.
    pub async fn token(&self) -> Result<String> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref()
            && t.expires_at > Instant::now() + self.margin
        {
            return Ok(t.token.clone());
        }
        let fresh = self.inner.fetch().await?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Drop the cached token (after the server rejected it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// How many tokens were fetched so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}
