//! The HTTP side: one GET with the flavor header, the answer checked, errors typed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OnceCell};

use super::token::MetadataToken;
use crate::{Error, Result};

/// The metadata server's host when `GCE_METADATA_HOST` is unset.
pub(crate) const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// The environment variable that overrides the metadata server's host (`host` or `host:port`).
pub(crate) const METADATA_HOST_ENV: &str = "GCE_METADATA_HOST";

/// How the client talks to the metadata server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MetadataOptions {
    /// `http://host:port` or `host:port`. `None`: `GCE_METADATA_HOST`, else `metadata.google.internal`.
    pub host: Option<String>,
    /// Time allowed to connect (default 1 s: the server is local to the instance).
    pub connect_timeout: Duration,
    /// Time allowed for a whole request (default 5 s).
    pub timeout: Duration,
    /// A cached access token is replaced this long before it expires (default 60 s).
    pub token_refresh_margin: Duration,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        Self {
            host: None,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            token_refresh_margin: Duration::from_secs(60),
        }
    }
}

impl MetadataOptions {
    /// Use this host (`http://host:port` or `host:port`) instead of the environment's.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Time allowed to connect.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replace a cached access token this long before it expires.
    pub fn with_token_refresh_margin(mut self, margin: Duration) -> Self {
        self.token_refresh_margin = margin;
        self
    }
}

pub(super) struct Inner {
    pub(super) base: String,
    pub(super) http: reqwest::Client,
    pub(super) options: MetadataOptions,
    pub(super) project_id: OnceCell<String>,
    pub(super) project_number: OnceCell<String>,
    pub(super) region: OnceCell<String>,
    pub(super) instance_id: OnceCell<String>,
    pub(super) email: OnceCell<String>,
    pub(super) token: Mutex<Option<MetadataToken>>,
    /// ID tokens by audience, with their `exp` (Unix seconds).
    pub(super) identities: std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>,
}

/// A client for the metadata server. Cheap to clone; clones share the caches.
#[derive(Clone)]
pub struct MetadataClient {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for MetadataClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataClient").field("base", &self.inner.base).finish_non_exhaustive()
    }
}

fn base_url(host: &str) -> String {
    let host = host.trim();
    let base = if host.contains("://") { host.to_string() } else { format!("http://{host}") };
    base.trim_end_matches('/').to_string()
}

impl MetadataClient {
    /// A client for the server at `base_url` (`http://host:port`; a bare `host:port` gets `http://`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_options(MetadataOptions::default().with_host(base_url))
    }

    /// A client for `GCE_METADATA_HOST` if set, else `metadata.google.internal`.
    pub fn from_env() -> Self {
        Self::with_options(MetadataOptions::default())
    }

    /// A client with these options.
    pub fn with_options(options: MetadataOptions) -> Self {
        let host = options.host.clone().filter(|h| !h.trim().is_empty()).unwrap_or_else(|| {
            std::env::var(METADATA_HOST_ENV)
                .ok()
                .filter(|h| !h.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string())
        });
        // A proxy must never see metadata requests (and would not reach the link-local server anyway).
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                base: base_url(&host),
                http,
                options,
                project_id: OnceCell::new(),
                project_number: OnceCell::new(),
                region: OnceCell::new(),
                instance_id: OnceCell::new(),
                email: OnceCell::new(),
                token: Mutex::new(None),
                identities: std::sync::Mutex::new(std::collections::HashMap::new()),
            }),
        }
    }

    /// The server's base URL (`http://metadata.google.internal`).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The options in use.
    pub fn options(&self) -> &MetadataOptions {
        &self.inner.options
    }

    /// GET `/computeMetadata/v1/{path}` (path and query, e.g. `instance/zone`) and return the body, trimmed.
    ///
    /// Errors: [`Error::NotOnCloudRun`] when nothing answers, or something answers without
    /// `Metadata-Flavor: Google`; [`Error::Metadata`] for an error status, a timeout or an empty body.
    pub async fn get(&self, path: &str) -> Result<String> {
        let url = format!("{}/computeMetadata/v1/{}", self.inner.base, path.trim_start_matches('/'));
        let name = path.split('?').next().unwrap_or(path);
        let response = self
            .inner
            .http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|e| self.failed(name, e))?;
        if response.headers().get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
            return Err(Error::NotOnCloudRun {
                message: format!(
                    "{} answered `{name}` without the `Metadata-Flavor: Google` header, so it is not a metadata \
                     server; unset {METADATA_HOST_ENV} or point it at the metadata server",
                    self.inner.base
                ),
            });
        }
        let status = response.status();
        let body = response.text().await.map_err(|e| self.failed(name, e))?;
        if !status.is_success() {
            let hint = match status.as_u16() {
                404 => "this value does not exist on this platform or for this service account",
                403 => "the server refused the request (a proxy header such as X-Forwarded-For was sent?)",
                _ => "retry later",
            };
            return Err(Error::Metadata {
                path: name.to_string(),
                status: Some(status.as_u16()),
                message: format!("{hint}: {}", body.trim().chars().take(200).collect::<String>()),
            });
        }
        let body = body.trim();
        if body.is_empty() {
            return Err(Error::Metadata {
                path: name.to_string(),
                status: Some(status.as_u16()),
                message: "the server answered with an empty body".into(),
            });
        }
        Ok(body.to_string())
    }

    fn failed(&self, path: &str, e: reqwest::Error) -> Error {
        if e.is_connect() {
            Error::NotOnCloudRun {
                message: format!(
                    "no metadata server at {} ({e}); off Google Cloud configure the value instead (project id, \
                     service account email, credentials file in GOOGLE_APPLICATION_CREDENTIALS)",
                    self.inner.base
                ),
            }
        } else if e.is_timeout() {
            Error::Metadata {
                path: path.to_string(),
                status: None,
                message: format!(
                    "no answer from {} within {:?}; retry, or raise MetadataOptions::timeout",
                    self.inner.base, self.inner.options.timeout
                ),
            }
        } else {
            Error::Metadata { path: path.to_string(), status: None, message: format!("request failed: {e}") }
        }
    }
}
