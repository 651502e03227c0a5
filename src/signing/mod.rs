//! V4 signing (PLACEHOLDER API — being implemented; see the module owner's work).
//!
//! Signed URLs and POST policies for GCS, with signers behind one trait: a service-account key (RSA),
//! IAM Credentials signBlob (no key file) and HMAC keys.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::SigningConfig;
use crate::storage::HttpMethod;
use crate::{Error, Result};

/// The V4 algorithm a signer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// `GOOG4-RSA-SHA256` (service-account key or IAM signBlob).
    Rsa,
    /// `GOOG4-HMAC-SHA256` (HMAC key).
    Hmac,
}

/// Something that signs V4 strings-to-sign.
#[async_trait]
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The algorithm.
    fn algorithm(&self) -> SigningAlgorithm;
    /// The credential id: service-account email or HMAC access id.
    async fn credential_id(&self) -> Result<String>;
    /// Sign the string-to-sign; returns raw signature bytes.
    async fn sign(&self, string_to_sign: &[u8]) -> Result<Vec<u8>>;
}

/// URL style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrlStyle {
    /// `https://storage.googleapis.com/bucket/object`
    #[default]
    Path,
    /// `https://bucket.storage.googleapis.com/object`
    VirtualHosted,
    /// `https://bucket-bound-hostname/object`
    BucketBoundHostname,
}

/// A V4 signed-URL request.
#[derive(Debug, Clone, Default)]
pub struct V4Request {
    /// Bucket.
    pub bucket: String,
    /// Full object key (None: bucket-level URL).
    pub object: Option<String>,
    /// Method.
    pub method: HttpMethod,
    /// Lifetime.
    pub expiration: Duration,
    /// Signing time (None: now).
    pub timestamp: Option<DateTime<Utc>>,
    /// Headers to sign.
    pub headers: BTreeMap<String, String>,
    /// Query parameters to sign.
    pub query_params: BTreeMap<String, String>,
    /// URL style.
    pub url_style: UrlStyle,
    /// Scheme (`https` by default).
    pub scheme: Option<String>,
    /// Explicit hostname (wins over everything).
    pub hostname: Option<String>,
    /// Client endpoint URL (e.g. a custom endpoint).
    pub client_endpoint: Option<String>,
    /// Emulator host (`STORAGE_EMULATOR_HOST`).
    pub emulator_host: Option<String>,
    /// Universe domain (default `googleapis.com`).
    pub universe_domain: Option<String>,
    /// Bucket-bound hostname.
    pub bucket_bound_hostname: Option<String>,
}

/// A signed URL and its intermediate strings.
#[derive(Debug, Clone)]
pub struct SignedUrl {
    /// The URL.
    pub url: String,
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
}

/// Sign a URL.
pub async fn sign_url(_signer: &dyn Signer, _req: &V4Request) -> Result<SignedUrl> {
    Err(Error::signing("V4 signing is not implemented yet"))
}

/// Build a signer from configuration.
pub async fn signer_from_config(_config: &SigningConfig) -> Result<Arc<dyn Signer>> {
    Err(Error::signing("signers are not implemented yet"))
}
