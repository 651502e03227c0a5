//! [`StoreConfig`]: one store's options, with django-gcp's names and defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ObjectParameters;
use crate::naming::normalize_location;
use crate::{Error, Result};

/// GCS requires resumable chunks in multiples of 256 KiB.
pub(crate) const CHUNK_GRANULARITY: u64 = 256 * 1024;

/// The content types django-gcp gzips when `gzip = true`.
pub(crate) const DEFAULT_GZIP_CONTENT_TYPES: &[&str] =
    &["text/css", "text/javascript", "application/javascript", "application/x-javascript", "image/svg+xml"];

/// Which backend serves a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendConfig {
    /// Google Cloud Storage (JSON API). The API endpoint comes from `api_endpoint`, else the
    /// `STORAGE_EMULATOR_HOST` environment variable, else Google's.
    #[default]
    Gcs,
    /// A directory on the local filesystem (`root`); URLs point at the crate's own routes under
    /// `base_url`.
    Local,
    /// In memory (tests, development).
    Memory,
}

/// How URLs and upload policies are signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SigningConfig {
    /// A service-account key file if `GOOGLE_APPLICATION_CREDENTIALS` names one, else IAM signBlob with
    /// the metadata server's service account (Cloud Run, GKE, GCE).
    #[default]
    Auto,
    /// A service-account JSON key file (RSA; no network call to sign).
    ServiceAccountKey {
        /// Path of the JSON key.
        path: PathBuf,
    },
    /// IAM Credentials `signBlob` as this service account, authenticated by Application Default
    /// Credentials or the metadata server. No key file needed.
    IamSignBlob {
        /// Email of the service account to sign as; read from the metadata server when unset.
        #[serde(default)]
        service_account_email: Option<String>,
    },
    /// An HMAC key (`GOOG4-HMAC-SHA256`).
    Hmac {
        /// The HMAC access id.
        access_id: String,
        /// The HMAC secret (redacted in `Debug`).
        secret: crate::Secret,
    },
}

/// Retry policy for idempotent and precondition-guarded calls: exponential backoff with full jitter
/// on 408, 429, 5xx and connection errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryConfig {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// First backoff.
    #[serde(with = "crate::config::duration_serde")]
    pub initial_backoff: Duration,
    /// Largest backoff.
    #[serde(with = "crate::config::duration_serde")]
    pub max_backoff: Duration,
    /// Backoff growth factor.
    pub multiplier: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            multiplier: 2,
        }
    }
}

/// One store's options. Field names and defaults are django-gcp's (`GCP_STORAGE_*` / `STORAGES[...]
/// ["OPTIONS"]`), plus `backend`, `signing`, `api_endpoint`, `authenticate` and `retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Which backend serves the store (`gcs`, `local` or `memory`).
    pub backend: BackendConfig,
    /// Directory of a `local` store.
    pub root: Option<PathBuf>,
    /// Public base URL of the routes serving a `local` store (e.g. `http://localhost:8000/storage/media`, or
    /// the path alone, `/storage/media`, on the app's own origin).
    pub base_url: Option<String>,
    /// Bucket name (GCS). Required for the GCS backend.
    pub bucket_name: String,
    /// Google Cloud project id (optional; used by `doctor`).
    pub project_id: Option<String>,
    /// Key prefix inside the bucket. Must not start with `/`.
    pub location: String,
    /// Predefined ACL for new objects (`publicRead`, `projectPrivate`, ...). `None`: the bucket's default.
    pub default_acl: Option<String>,
    /// Sign URLs (true) or give plain public URLs (false).
    pub querystring_auth: bool,
    /// Lifetime of signed URLs.
    #[serde(with = "crate::config::duration_serde")]
    pub expiration: Duration,
    /// Gzip objects whose content type is in `gzip_content_types`.
    pub gzip: bool,
    /// Content types to gzip when `gzip` is on.
    pub gzip_content_types: Vec<String>,
    /// Overwrite an existing object of the same name (true) or pick a free name (false).
    pub file_overwrite: bool,
    /// Spool files opened for writing to disk past this many bytes (0: never spool).
    pub max_memory_size: u64,
    /// Resumable upload chunk size; a multiple of 256 KiB. `None`: one request per object.
    pub blob_chunk_size: Option<u64>,
    /// Parameters applied to every write (merged under per-call parameters).
    pub object_parameters: ObjectParameters,
    /// Host (with scheme) used instead of `https://storage.googleapis.com` in URLs.
    pub custom_endpoint: Option<String>,
    /// JSON API endpoint (an emulator); defaults to `STORAGE_EMULATOR_HOST`, then Google's.
    pub api_endpoint: Option<String>,
    /// Send an access token with every API call: `None` (the default) sends one except to an emulator
    /// (`STORAGE_EMULATOR_HOST`, or a plain-`http://` `api_endpoint`); `true` always sends one (a proxy
    /// or a private endpoint that checks tokens); `false` never does (a public bucket, an emulator).
    pub authenticate: Option<bool>,
    /// How URLs are signed.
    pub signing: SigningConfig,
    /// Retry policy.
    pub retry: RetryConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: BackendConfig::Gcs,
            root: None,
            base_url: None,
            bucket_name: String::new(),
            project_id: None,
            location: String::new(),
            default_acl: None,
            querystring_auth: true,
            expiration: Duration::from_secs(86_400),
            gzip: false,
            gzip_content_types: DEFAULT_GZIP_CONTENT_TYPES.iter().map(|s| s.to_string()).collect(),
            file_overwrite: true,
            max_memory_size: 0,
            blob_chunk_size: None,
            object_parameters: ObjectParameters::default(),
            custom_endpoint: None,
            api_endpoint: None,
            authenticate: None,
            signing: SigningConfig::Auto,
            retry: RetryConfig::default(),
        }
    }
}

impl StoreConfig {
    /// A GCS store on `bucket`.
    pub fn gcs(bucket: impl Into<String>) -> Self {
        Self { bucket_name: bucket.into(), ..Self::default() }
    }

    /// A local-filesystem store under `root`.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self { backend: BackendConfig::Local, root: Some(root.into()), bucket_name: "local".into(), ..Self::default() }
    }

    /// An in-memory store.
    pub fn memory() -> Self {
        Self { backend: BackendConfig::Memory, bucket_name: "memory".into(), ..Self::default() }
    }

    /// Check every option; `store` names the store in error messages.
    pub fn validate(&self, store: &str) -> Result<()> {
        let err = |m: String| Err(Error::config(Some(store.to_string()), m));
        normalize_location(store, &self.location)?;
        if matches!(self.backend, BackendConfig::Gcs) && self.bucket_name.trim().is_empty() {
            return err("bucket_name is empty; set it to the GCS bucket this store uses".into());
        }
        if self.backend == BackendConfig::Local && self.root.is_none() {
            return err("a local store needs `root`, the directory that holds its objects".into());
        }
        if let Some(size) = self.blob_chunk_size
            && (size == 0 || size % CHUNK_GRANULARITY != 0)
        {
            return err(format!(
                "blob_chunk_size = {size} is not a positive multiple of 256 KiB ({CHUNK_GRANULARITY}); try {}",
                (size / CHUNK_GRANULARITY).max(1) * CHUNK_GRANULARITY
            ));
        }
        if self.expiration.is_zero() || self.expiration > Duration::from_secs(7 * 86_400) {
            return err(format!(
                "expiration = {}s must be between 1 second and 7 days (604800s), the V4 signing limit",
                self.expiration.as_secs()
            ));
        }
        for (what, acl) in [("default_acl", &self.default_acl), ("object_parameters.acl", &self.object_parameters.acl)]
        {
            if let Some(acl) = acl
                && !PREDEFINED_ACLS.contains(&acl.as_str())
            {
                return err(format!("{what} = {acl:?} is not a predefined ACL; use one of {PREDEFINED_ACLS:?}"));
            }
        }
        for (what, url) in [
            ("custom_endpoint", &self.custom_endpoint),
            ("api_endpoint", &self.api_endpoint),
            ("base_url", &self.base_url),
        ] {
            if let Some(u) = url {
                // A local store's routes may be named by their path alone, on the app's own origin.
                let local_path = what == "base_url"
                    && self.backend == BackendConfig::Local
                    && u.starts_with('/')
                    && !u.starts_with("//");
                if local_path {
                    continue;
                }
                match url::Url::parse(u) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
                    _ => {
                        return err(format!("{what} = {u:?} is not an http(s) URL such as https://cdn.example.com"));
                    }
                }
            }
        }
        if self.retry.multiplier == 0 {
            return err("retry.multiplier must be at least 1".into());
        }
        Ok(())
    }

    /// The predefined ACL new objects get: `object_parameters.acl`, else `default_acl`.
    pub(crate) fn effective_acl(&self) -> Option<&str> {
        self.object_parameters.acl.as_deref().or(self.default_acl.as_deref())
    }

    /// True when URLs are public (not signed): the ACL is `publicRead` or `querystring_auth` is off.
    pub fn public_urls(&self) -> bool {
        !self.querystring_auth || self.effective_acl() == Some("publicRead")
    }
}

/// GCS's predefined object ACLs.
pub(crate) const PREDEFINED_ACLS: &[&str] =
    &["authenticatedRead", "bucketOwnerFullControl", "bucketOwnerRead", "private", "projectPrivate", "publicRead"];
