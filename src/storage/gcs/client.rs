//! Building the connection to GCS: endpoint, authentication, HTTP client.
//!
//! The JSON API endpoint is, in order: the store's `api_endpoint`, the `STORAGE_EMULATOR_HOST`
//! environment variable (an emulator such as fake-gcs-server; `http://` is assumed when it has no
//! scheme), Google's `https://storage.googleapis.com`. Requests are anonymous when the endpoint comes
//! from `STORAGE_EMULATOR_HOST` or is plain `http://` (emulators speak plain HTTP; Google never does)
//! unless the store's `authenticate` says otherwise; authenticated requests carry an access token from
//! Application Default Credentials ([`crate::signing::token::application_default`]: any credentials file
//! Google's tools write, read by `google-cloud-auth`, or the metadata server through [`crate::metadata`]). The crate has one credentials code path: the same token sources
//! back IAM signBlob, the Pub/Sub client and this connection, so `gcloud-storage` is used without its own
//! `auth` stack.
//!
//! Most calls go through `gcloud-storage`'s client; the few it cannot express (a media download that
//! must send `Accept-Encoding: gzip`, a copy with `destinationPredefinedAcl`, a metadata patch that
//! removes keys, a resumable session that answers CORS for a browser `Origin`) are sent with
//! [`Connection::request`] over the same HTTP client and credentials, so instrumentation sees them all.

use std::sync::Arc;
use std::time::Duration;

use gcloud_storage::client::{Client, ClientConfig};
use reqwest_middleware::{ClientWithMiddleware, RequestBuilder};
use token_source::{TokenSource, TokenSourceProvider};

use crate::config::StoreConfig;
use crate::signing::token::{CachedTokenSource, application_default};
use crate::{Error, Result};

/// Google's JSON API and public download host.
pub(crate) const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";

/// Where API calls go and whether they are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Base URL without a trailing `/` (`https://storage.googleapis.com`, `http://127.0.0.1:4443`).
    pub url: String,
    /// Set when the endpoint is an emulator (`STORAGE_EMULATOR_HOST` or a plain-HTTP `api_endpoint`):
    /// the same URL, used as the signing library's `emulator_host`.
    pub emulator: Option<String>,
}

impl Endpoint {
    /// Resolve the endpoint for `config`, reading `STORAGE_EMULATOR_HOST` from `env`.
    pub(crate) fn resolve(config: &StoreConfig, env: Option<String>) -> Endpoint {
        let trim = |s: &str| s.trim().trim_end_matches('/').to_string();
        if let Some(api) = config.api_endpoint.as_deref().filter(|s| !s.trim().is_empty()) {
            let url = trim(api);
            let emulator = url.starts_with("http://").then(|| url.clone());
            return Endpoint { url, emulator };
        }
        if let Some(host) = env.as_deref().filter(|s| !s.trim().is_empty()) {
            let host = trim(host);
            let url = if host.contains("://") { host } else { format!("http://{host}") };
            return Endpoint { emulator: Some(url.clone()), url };
        }
        Endpoint { url: GOOGLE_ENDPOINT.to_string(), emulator: None }
    }
}

/// The default HTTP client: connect and per-read timeouts, no overall timeout (uploads can be long).
pub(crate) fn default_http_client() -> Result<ClientWithMiddleware> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| Error::config(None, format!("cannot build the HTTP client: {e}")))?;
    Ok(reqwest_middleware::ClientBuilder::new(client).build())
}

/// An authenticated connection to one GCS endpoint.
#[derive(Clone)]
pub(crate) struct Connection {
    /// `gcloud-storage`'s client.
    pub client: Client,
    /// The HTTP client every request goes through (the same one `client` uses).
    pub http: ClientWithMiddleware,
    /// Where requests go.
    pub endpoint: Endpoint,
    store: String,
    token: Option<Arc<dyn TokenSource>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .field("authenticated", &self.token.is_some())
            .finish()
    }
}

impl Connection {
    /// Connect for store `store` over `http`.
    pub(crate) async fn new(store: &str, config: &StoreConfig, http: ClientWithMiddleware) -> Result<Self> {
        let endpoint = Endpoint::resolve(config, std::env::var("STORAGE_EMULATOR_HOST").ok());
        let base =
            ClientConfig { http: Some(http.clone()), storage_endpoint: endpoint.url.clone(), ..Default::default() };
        let authenticate = config.authenticate.unwrap_or(endpoint.emulator.is_none());
        let (client_config, token) = if !authenticate {
            (base.anonymous(), None)
        } else {
            let tokens = application_default().map_err(|e| {
                Error::config(
                    Some(store.to_string()),
                    format!(
                        "no Google credentials for the GCS store ({e}); set GOOGLE_APPLICATION_CREDENTIALS to a \
                         service-account key, run `gcloud auth application-default login`, run on Google Cloud, \
                         or set STORAGE_EMULATOR_HOST to use an emulator"
                    ),
                )
            })?;
            let provider = BearerTokens(Arc::new(CachedTokenSource::new(tokens)));
            let token = provider.token_source();
            (ClientConfig { token_source_provider: Some(Box::new(provider)), ..base }, Some(token))
        };
        Ok(Self { client: Client::new(client_config), http, endpoint, store: store.to_string(), token })
    }

    /// `{endpoint}/storage/v1`.
    pub(crate) fn api_base(&self) -> String {
        format!("{}/storage/v1", self.endpoint.url)
    }

    /// `{endpoint}/upload/storage/v1`.
    pub(crate) fn upload_base(&self) -> String {
        format!("{}/upload/storage/v1", self.endpoint.url)
    }

    /// A request to `url` carrying the connection's credentials.
    pub(crate) async fn request(&self, method: reqwest::Method, url: &str) -> Result<RequestBuilder> {
        let builder = self.http.request(method, url).header("x-goog-api-client", "rust sea-gcp");
        match &self.token {
            None => Ok(builder),
            Some(token) => {
                let value = token.token().await.map_err(|e| token_error(&self.store, &*e))?;
                Ok(builder.header(reqwest::header::AUTHORIZATION, value))
            }
        }
    }
}

/// A failed access-token fetch as a backend error. Off Google Cloud with no credentials configured (no
/// metadata server answers) repeating cannot help, so the error is final and says what to configure; a
/// credential the token service refused (a revoked refresh token, a forged subject token) is final too;
/// a metadata server or token service that answered badly or timed out is transient.
pub(crate) fn token_error(store: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    let mut cause = Some(e);
    let mut no_credentials = false;
    let mut refused = false;
    while let Some(err) = cause {
        let ours = err.downcast_ref::<Error>();
        no_credentials |= matches!(ours, Some(Error::NotOnCloudRun { .. }));
        refused |= matches!(ours, Some(Error::Service { retryable: false, .. }));
        cause = err.source();
    }
    let source = if no_credentials {
        "no Google credentials found (no GOOGLE_APPLICATION_CREDENTIALS, no gcloud application-default \
         login, no metadata server): run `gcloud auth application-default login`, set \
         GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or set STORAGE_EMULATOR_HOST to use \
         an emulator"
            .into()
    } else {
        format!("cannot get an access token: {e}").into()
    };
    let retryable = !no_credentials && !refused;
    Error::Backend { backend: "gcs", store: store.to_string(), status: None, retryable, source }
}

/// The crate's cached Application Default Credentials as `gcloud-storage`'s token source: the value is an
/// `Authorization` header (`Bearer <token>`).
#[derive(Debug, Clone)]
struct BearerTokens(Arc<CachedTokenSource>);

#[async_trait::async_trait]
impl TokenSource for BearerTokens {
    async fn token(&self) -> std::result::Result<String, crate::BoxError> {
        Ok(format!("Bearer {}", self.0.token().await?))
    }
}

impl TokenSourceProvider for BearerTokens {
    fn token_source(&self) -> Arc<dyn TokenSource> {
        Arc::new(self.clone())
    }
}

/// Percent-encode one path segment of a JSON API URL (object names: `/` becomes `%2F`).
pub(crate) fn encode_segment(s: &str) -> String {
    crate::encoding::component(s)
}

/// Percent-encode an object key for a download URL path (`/` kept, like Python's `quote(safe="/~")`).
pub(crate) fn encode_path(key: &str) -> String {
    crate::encoding::path(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_order() {
        let mut config = StoreConfig::gcs("b");
        assert_eq!(Endpoint::resolve(&config, None), Endpoint { url: GOOGLE_ENDPOINT.into(), emulator: None });
        let from_env = Endpoint::resolve(&config, Some("localhost:4443/".into()));
        assert_eq!(from_env.url, "http://localhost:4443");
        assert_eq!(from_env.emulator.as_deref(), Some("http://localhost:4443"));
        config.api_endpoint = Some("https://storage.example.com/".into());
        let explicit = Endpoint::resolve(&config, Some("http://127.0.0.1:1".into()));
        assert_eq!(explicit, Endpoint { url: "https://storage.example.com".into(), emulator: None });
        config.api_endpoint = Some("http://127.0.0.1:9000".into());
        assert!(Endpoint::resolve(&config, None).emulator.is_some());
    }

    /// A token source that counts its fetches.
    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    #[async_trait::async_trait]
    impl crate::signing::token::TokenSource for Counting {
        async fn fetch(&self) -> Result<crate::signing::token::AccessToken> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(crate::signing::token::AccessToken {
                token: format!("t{n}"),
                expires_at: std::time::Instant::now() + Duration::from_secs(3600),
            })
        }
    }

    #[tokio::test]
    async fn requests_carry_the_crates_cached_bearer_token() {
        let inner = Arc::new(Counting::default());
        let provider = BearerTokens(Arc::new(CachedTokenSource::new(inner.clone())));
        let source = provider.token_source();
        assert_eq!(source.token().await.unwrap(), "Bearer t0");
        assert_eq!(source.token().await.unwrap(), "Bearer t0", "cached until shortly before expiry");
        assert_eq!(inner.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn segments() {
        assert_eq!(encode_segment("a/b c~.txt"), "a%2Fb%20c~.txt");
        assert_eq!(encode_segment("ünï"), "%C3%BCn%C3%AF");
        assert_eq!(encode_path("a/b c#?.txt"), "a/b%20c%23%3F.txt");
    }
}
