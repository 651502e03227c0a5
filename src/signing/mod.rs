//! V4 signing for Google Cloud Storage: signed URLs and POST policies.
//!
//! Signers sit behind one trait, [`Signer`]:
//! - [`ServiceAccountKeySigner`]: a service-account JSON key, `GOOG4-RSA-SHA256`, no network call;
//! - [`HmacSigner`]: an HMAC key, `GOOG4-HMAC-SHA256`, no network call;
//! - [`IamSigner`]: IAM Credentials `signBlob` (no key file; Cloud Run, GKE, GCE), with an access token from
//!   Application Default Credentials or the metadata server, cached until shortly before it expires.
//!
//! [`sign_url`] builds a V4 signed URL from a [`V4Request`]; [`post_policy`] builds a V4 POST policy.
//! Both pass every case of Google's conformance vectors (`tests/signing_conformance.rs`).
//! For pages that show many objects, [`sign_urls_parallel`] signs on all cores and [`UrlCache`] returns the
//! same URL for the same object within an expiry window.
//!
//! Only V4 is implemented: V2 signatures are deprecated by Google.

mod batch;
mod cache;
pub(crate) mod canonical;
mod config;
mod hmac;
#[cfg(feature = "gcs")]
mod iam;
mod key;
mod post_policy;
pub(crate) mod target;
#[cfg(any(feature = "gcs", feature = "pubsub"))]
pub mod token;
mod url;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use http::Method;

pub use batch::{SignedUrls, sign_urls, sign_urls_parallel, sign_urls_parallel_with};
pub use cache::UrlCache;
pub use config::signer_from_config;
pub use hmac::HmacSigner;
#[cfg(feature = "gcs")]
pub use iam::IamSigner;
pub use key::{ServiceAccountKey, ServiceAccountKeySigner};
pub use post_policy::{PolicyCondition, PostPolicy, PostPolicyRequest, post_policy};
pub use target::Endpoint;
pub use url::{check_expiration, sign_url, sign_url_blocking};

/// The V4 algorithm a signer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// `GOOG4-RSA-SHA256` (service-account key or IAM signBlob).
    Rsa,
    /// `GOOG4-HMAC-SHA256` (HMAC key).
    Hmac,
}

impl SigningAlgorithm {
    /// The name written into `X-Goog-Algorithm` and the string to sign.
    pub fn as_str(&self) -> &'static str {
        match self {
            SigningAlgorithm::Rsa => "GOOG4-RSA-SHA256",
            SigningAlgorithm::Hmac => "GOOG4-HMAC-SHA256",
        }
    }
}

/// Something that signs V4 strings-to-sign.
///
/// Implementors must provide [`algorithm`](Signer::algorithm), [`credential_id`](Signer::credential_id)
/// and [`sign`](Signer::sign). Signers that hold their key in memory also implement
/// [`sign_local`](Signer::sign_local) and [`local_credential_id`](Signer::local_credential_id), which the
/// batch and cache paths use to sign on worker threads without a runtime.
#[async_trait]
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The algorithm.
    fn algorithm(&self) -> SigningAlgorithm;

    /// The credential id: service-account email or HMAC access id.
    async fn credential_id(&self) -> Result<String>;

    /// Sign the string-to-sign; returns raw signature bytes.
    async fn sign(&self, string_to_sign: &[u8]) -> Result<Vec<u8>>;

    /// Sign `payload` under the credential scope `scope` (`<date>/auto/storage/goog4_request`). HMAC keys
    /// derive their signing key from the scope, which a POST policy's payload does not contain; other
    /// signers ignore it. The default calls [`sign`](Signer::sign).
    async fn sign_scoped(&self, scope: &str, payload: &[u8]) -> Result<Vec<u8>> {
        let _ = scope;
        self.sign(payload).await
    }

    /// Sign without I/O, if this signer holds its key in memory; `None` when it needs the network.
    fn sign_local(&self, scope: &str, payload: &[u8]) -> Option<Result<Vec<u8>>> {
        let _ = (scope, payload);
        None
    }

    /// The credential id, if known without I/O.
    fn local_credential_id(&self) -> Option<&str> {
        None
    }

    /// A signer for many payloads under one `scope`, held by one batch thread: it writes each signature
    /// into the buffer it is given. HMAC keys derive their key once here, so the batch signs with no lock
    /// and no allocation per URL. The default calls [`sign_local`](Signer::sign_local) per payload;
    /// `None` when this signer needs the network.
    fn scoped_local<'a>(&'a self, scope: &str) -> Option<Result<ScopedSigner<'a>>> {
        self.local_credential_id()?;
        let scope = scope.to_string();
        Some(Ok(Box::new(move |payload: &[u8], out: &mut Vec<u8>| {
            let signature = self
                .sign_local(&scope, payload)
                .ok_or_else(|| crate::Error::signing(format!("{self:?} cannot sign without the network")))??;
            out.clear();
            out.extend_from_slice(&signature);
            Ok(())
        })))
    }
}

/// What [`Signer::scoped_local`] returns: signs a payload into the buffer (cleared first).
pub type ScopedSigner<'a> = Box<dyn FnMut(&[u8], &mut Vec<u8>) -> Result<()> + 'a>;

/// URL style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UrlStyle {
    /// `https://storage.googleapis.com/bucket/object`
    #[default]
    Path,
    /// `https://bucket.storage.googleapis.com/object`
    VirtualHosted,
    /// `https://bucket-bound-hostname/object`
    BucketBoundHostname,
}

impl std::str::FromStr for UrlStyle {
    type Err = crate::Error;

    /// `path`, `virtual-hosted` or `bucket-bound-hostname` (also the conformance names `PATH_STYLE`,
    /// `VIRTUAL_HOSTED_STYLE`, `BUCKET_BOUND_HOSTNAME`).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "path" | "path-style" => Ok(UrlStyle::Path),
            "virtual-hosted" | "virtual-hosted-style" => Ok(UrlStyle::VirtualHosted),
            "bucket-bound-hostname" => Ok(UrlStyle::BucketBoundHostname),
            _ => Err(crate::Error::InvalidArgument(format!(
                "URL style `{s}` is not known: use path, virtual-hosted or bucket-bound-hostname"
            ))),
        }
    }
}

/// A V4 signed-URL request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V4Request {
    /// Bucket.
    pub bucket: String,
    /// Full object key (None: bucket-level URL).
    pub object: Option<String>,
    /// Method.
    pub method: Method,
    /// Lifetime: at least 1 second, at most 7 days.
    pub expiration: Duration,
    /// Signing time (None: now).
    pub timestamp: Option<DateTime<Utc>>,
    /// Headers to sign: the client must send exactly these.
    pub headers: BTreeMap<String, String>,
    /// Query parameters to sign (unencoded).
    pub query_params: BTreeMap<String, String>,
    /// Where the URL points (host selection).
    pub endpoint: Endpoint,
}

/// A signed URL and its intermediate strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    /// The URL.
    pub url: String,
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
}
