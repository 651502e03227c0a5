//! OAuth access tokens for every Google API the crate calls (GCS, IAM signBlob, Pub/Sub, Cloud Tasks,
//! Cloud Scheduler): from Application Default Credentials or the metadata server, cached until shortly
//! before they expire.
//!
//! Sources, in ADC order ([`application_default`]):
//! 1. `GOOGLE_APPLICATION_CREDENTIALS` naming a JSON file of any kind Google's tools write
//!    (service-account keys, gcloud user credentials, service-account
//!    impersonation, Workload Identity Federation), read by Google's `google-cloud-auth`
//!    ([`GoogleCredentials`]);
//! 2. gcloud's well-known file `application_default_credentials.json` (under `CLOUDSDK_CONFIG`, else
//!    `~/.config/gcloud`), read the same way;
//! 3. the GCE / Cloud Run / GKE metadata server, through the crate's own client ([`MetadataServer`],
//!    `GCE_METADATA_HOST` overrides its host).
//!
//! Every endpoint comes from the credentials file or the environment, so tests run against local fakes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{Error, Result};

pub(crate) use crate::metadata::DEFAULT_METADATA_HOST;
/// The OAuth scope requested for signBlob.
pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long before expiry a cached token is replaced.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(300);

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

/// The credential kinds of Application Default Credentials files, as their `type` field names them.
pub(crate) const CREDENTIAL_TYPES: [&str; 5] = [
    "authorized_user",
    "service_account",
    "impersonated_service_account",
    "external_account",
    "external_account_authorized_user",
];

/// How long a token from [`GoogleCredentials`] is reused before `google-cloud-auth` is asked again. The
/// library keeps its own cache and refreshes ahead of expiry, so asking it again is cheap and never sees
/// an expired token; a short window lets a rejected token be replaced soon.
const LIBRARY_TOKEN_WINDOW: Duration = Duration::from_secs(60);

/// Access tokens for one Application Default Credentials file, from Google's `google-cloud-auth`: a
/// service-account key (a self-signed JWT, no token exchange), gcloud user credentials (refresh-token
/// grant at the file's `token_uri`), an `impersonated_service_account` (IAM Credentials
/// `generateAccessToken` at the file's `service_account_impersonation_url`), an `external_account`
/// (Workload Identity Federation: the subject token from the file's `credential_source`, exchanged at its
/// `token_url`, then impersonation when the file names it) and an `external_account_authorized_user`.
#[derive(Clone)]
pub struct GoogleCredentials {
    inner: google_cloud_auth::credentials::AccessTokenCredentials,
    kind: String,
}

impl fmt::Debug for GoogleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleCredentials").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl GoogleCredentials {
    /// Credentials from the JSON of an ADC file; `origin` names the file in error messages. Nothing is
    /// fetched until the first token is asked for.
    pub fn from_json(json: &str, origin: &str) -> Result<Self> {
        use google_cloud_auth::credentials::{
            external_account, external_account_authorized_user, impersonated, service_account, user_account,
        };
        let (value, kind) = parse_credentials(json, origin)?;
        let scopes = [CLOUD_PLATFORM_SCOPE];
        let built = match kind.as_str() {
            "authorized_user" => user_account::Builder::new(value).with_scopes(scopes).build_access_token_credentials(),
            "service_account" => service_account::Builder::new(value)
                .with_access_specifier(service_account::AccessSpecifier::from_scopes(scopes))
                .build_access_token_credentials(),
            "impersonated_service_account" => {
                impersonated::Builder::new(value).with_scopes(scopes).build_access_token_credentials()
            }
            "external_account" => {
                external_account::Builder::new(value).with_scopes(scopes).build_access_token_credentials()
            }
            // Workforce user credentials carry their scopes from `gcloud auth application-default login`.
            "external_account_authorized_user" => {
                external_account_authorized_user::Builder::new(value).build_access_token_credentials()
            }
            "" => {
                return Err(Error::config(
                    None,
                    format!("{origin} has no `type`; supported are {}", CREDENTIAL_TYPES.join(", ")),
                ));
            }
            other => {
                return Err(Error::config(
                    None,
                    format!("{origin} has type {other:?}; supported are {}", CREDENTIAL_TYPES.join(", ")),
                ));
            }
        };
        let inner = built.map_err(|e| {
            Error::config(
                None,
                format!(
                    "{origin} is not a complete {kind} credential ({e}); create it again (for user credentials: \
                     `gcloud auth application-default login`)"
                ),
            )
        })?;
        Ok(Self { inner, kind })
    }

    /// The credential's `type` (`service_account`, `external_account`, ...).
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

#[async_trait]
impl TokenSource for GoogleCredentials {
    async fn fetch(&self) -> Result<AccessToken> {
        let token = self.inner.access_token().await.map_err(|e| credential_error("an access token", &self.kind, &e))?;
        Ok(AccessToken { token: token.token, expires_at: Instant::now() + REFRESH_MARGIN + LIBRARY_TOKEN_WINDOW })
    }
}

/// OIDC ID tokens for calling a private service (another Cloud Run service, an IAP-protected app) as
/// this one, from Application Default Credentials, by Google's `google-cloud-auth`: a service-account key
/// (JWT-bearer grant with the target audience), an `impersonated_service_account` (IAM Credentials
/// `generateIdToken`), gcloud user credentials (the refresh grant's ID token; its audience is gcloud's
/// client, not the one asked for) or, with no file, the metadata server. `external_account` credentials
/// cannot make ID tokens. Tokens are cached by the library until shortly before they expire.
///
/// ```no_run
/// # async fn run() -> sea_gcp::Result<()> {
/// use sea_gcp::signing::token::IdTokens;
/// let tokens = IdTokens::application_default("https://billing-abc123-ew.a.run.app")?;
/// let token = tokens.token().await?;
/// reqwest::Client::new().get("https://billing-abc123-ew.a.run.app/invoices").bearer_auth(token);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "oidc")]
#[derive(Clone)]
pub struct IdTokens {
    inner: google_cloud_auth::credentials::idtoken::IDTokenCredentials,
    kind: String,
}

#[cfg(feature = "oidc")]
impl fmt::Debug for IdTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokens").field("kind", &self.kind).finish_non_exhaustive()
    }
}

#[cfg(feature = "oidc")]
impl IdTokens {
    /// ID tokens for `audience` from Application Default Credentials (the same file, in the same order,
    /// as access tokens; the metadata server when there is none). Nothing is fetched until
    /// [`token`](Self::token).
    pub fn application_default(audience: &str) -> Result<Self> {
        use google_cloud_auth::credentials::idtoken;
        let Some(path) = adc_file() else {
            let inner = idtoken::mds::Builder::new(audience)
                .build()
                .map_err(|e| Error::config(None, format!("cannot make ID tokens from the metadata server: {e}")))?;
            return Ok(Self { inner, kind: "metadata server".into() });
        };
        let (origin, text) = read_credentials_file(&path)?;
        let (value, kind) = parse_credentials(&text, &origin)?;
        let built = match kind.as_str() {
            "service_account" => idtoken::service_account::Builder::new(audience, value).build(),
            "impersonated_service_account" => idtoken::impersonated::Builder::new(audience, value).build(),
            "authorized_user" => idtoken::user_account::Builder::new(value).build(),
            other => {
                return Err(Error::config(
                    None,
                    format!(
                        "{origin} has type {other:?}, which cannot make ID tokens; use a service-account key, \
                         an impersonated_service_account or gcloud user credentials"
                    ),
                ));
            }
        };
        let inner =
            built.map_err(|e| Error::config(None, format!("{origin} is not a complete {kind} credential ({e})")))?;
        Ok(Self { inner, kind })
    }

    /// A valid ID token (cached by the library until shortly before it expires).
    pub async fn token(&self) -> Result<String> {
        self.inner.id_token().await.map_err(|e| credential_error("an ID token", &self.kind, &e))
    }
}

/// An error and its sources, one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Parse an Application Default Credentials file (any kind of [`CREDENTIAL_TYPES`]) into a token source.
pub(crate) fn token_source_from_file(path: &Path) -> Result<Arc<dyn TokenSource>> {
    let (origin, text) = read_credentials_file(path)?;
    Ok(Arc::new(GoogleCredentials::from_json(&text, &origin)?))
}

/// A credentials file's text, and how error messages name it.
fn read_credentials_file(path: &Path) -> Result<(String, String)> {
    let origin = format!("credentials file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| Error::config(None, format!("cannot read {origin}: {e}")))?;
    Ok((origin, text))
}

/// A credentials file's JSON and its `type` (empty when it has none).
fn parse_credentials(json: &str, origin: &str) -> Result<(serde_json::Value, String)> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Error::config(None, format!("{origin} is not valid JSON: {e}")))?;
    let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or_default().to_string();
    Ok((value, kind))
}

/// A token the library could not get, as a service error: retryable when it says so, and otherwise
/// naming what to check.
fn credential_error(what: &str, kind: &str, e: &google_cloud_auth::errors::CredentialsError) -> Error {
    let retryable = e.is_transient();
    Error::Service {
        service: "credentials",
        status: None,
        code: if retryable { "UNAVAILABLE" } else { "UNAUTHENTICATED" }.to_string(),
        message: format!(
            "could not get {what} from the {kind} credential: {}{}",
            chain(e),
            if retryable { "" } else { "; check the credentials file and the account's permissions" }
        ),
        retryable,
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

/// The Application Default Credentials file: `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's
/// well-known file when it exists.
fn adc_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    well_known_file()
}

/// Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's well-known file, then the
/// metadata server.
pub fn application_default() -> Result<Arc<dyn TokenSource>> {
    match adc_file() {
        Some(path) => token_source_from_file(&path),
        None => Ok(Arc::new(MetadataServer::from_env())),
    }
}

/// A [`TokenSource`] wrapper that reuses a token until 5 minutes before it expires.
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

    /// Replace tokens this long before they expire (default 5 minutes).
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
    pub(crate) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// How many tokens were fetched so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}
