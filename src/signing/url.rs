//! V4 signed URLs: the query string GCS expects, the canonical request over it, and the signature.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::canonical::{self, canonical_headers, canonical_query, credential_scope, format_timestamp};
use super::target::{self, Target};
use super::{SignedUrl, Signer, SigningAlgorithm, V4Request};
use crate::{Error, Result};

/// The longest lifetime GCS accepts for a V4 signature: 7 days.
pub const MAX_EXPIRATION: Duration = Duration::from_secs(7 * 86_400);

/// Query parameters the signature itself sets; a caller may not set them.
const RESERVED_QUERY: [&str; 6] = [
    "x-goog-algorithm",
    "x-goog-credential",
    "x-goog-date",
    "x-goog-expires",
    "x-goog-signedheaders",
    "x-goog-signature",
];

/// Check a signature lifetime: at least one second, at most 7 days.
pub fn check_expiration(expiration: Duration) -> Result<u64> {
    let secs = expiration.as_secs();
    if secs == 0 {
        return Err(Error::InvalidArgument(
            "expiration must be at least 1 second: pass a duration such as 10m or 1h".into(),
        ));
    }
    if expiration > MAX_EXPIRATION {
        return Err(Error::InvalidArgument(format!(
            "expiration of {secs}s is longer than the 7 days (604800s) GCS allows for V4 signatures: use at most 7d"
        )));
    }
    Ok(secs)
}

impl V4Request {
    pub(crate) fn target(&self) -> Target<'_> {
        Target { bucket: &self.bucket, object: self.object.as_deref(), endpoint: &self.endpoint }
    }
}

/// A signed URL minus its signature.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// `scheme://host/path?canonical-query`.
    pub url: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    /// `<date>/auto/storage/goog4_request`.
    pub scope: String,
}

impl Prepared {
    /// Append `X-Goog-Signature` (hex) and hand out the URL.
    pub fn finish(self, signature: &[u8]) -> SignedUrl {
        let mut url = self.url;
        url.reserve(20 + signature.len() * 2);
        url.push_str("&X-Goog-Signature=");
        url.push_str(&hex::encode(signature));
        SignedUrl { url, canonical_request: self.canonical_request, string_to_sign: self.string_to_sign }
    }
}

/// Everything but the signature: validation, host, canonical request, string to sign.
pub(crate) fn prepare(
    req: &V4Request,
    algorithm: SigningAlgorithm,
    credential_id: &str,
    now: DateTime<Utc>,
) -> Result<Prepared> {
    let expires = check_expiration(req.expiration)?;
    if let Some(reserved) = req.query_params.keys().find(|k| RESERVED_QUERY.contains(&k.to_ascii_lowercase().as_str()))
    {
        return Err(Error::InvalidArgument(format!(
            "query parameter `{reserved}` is set by the signature itself: remove it from the request"
        )));
    }
    let resolved = target::resolve(&req.target(), false)?;
    let at = req.timestamp.unwrap_or(now);
    let (datetime, date) = format_timestamp(&at);
    let scope = credential_scope(&date);
    let headers = canonical_headers(&req.headers, &resolved.host_header);
    let credential = format!("{credential_id}/{scope}");
    let expires = expires.to_string();
    let fixed = [
        ("X-Goog-Algorithm", algorithm.as_str()),
        ("X-Goog-Credential", credential.as_str()),
        ("X-Goog-Date", datetime.as_str()),
        ("X-Goog-Expires", expires.as_str()),
        ("X-Goog-SignedHeaders", headers.signed_headers.as_str()),
    ];
    let query =
        canonical_query(fixed.into_iter().chain(req.query_params.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    let canonical_request = canonical::canonical_request(req.method.as_str(), &resolved.path, &query, &headers);
    let string_to_sign = canonical::string_to_sign(algorithm.as_str(), &datetime, &scope, &canonical_request);
    let mut url = resolved.base_url();
    url.reserve(query.len() + 1);
    url.push('?');
    url.push_str(&query);
    Ok(Prepared { url, canonical_request, string_to_sign, scope })
}

/// Sign a URL (any signer; IAM signBlob makes one HTTP call).
pub async fn sign_url(signer: &dyn Signer, req: &V4Request) -> Result<SignedUrl> {
    let credential_id = signer.credential_id().await?;
    let prepared = prepare(req, signer.algorithm(), &credential_id, Utc::now())?;
    let signature = signer.sign_scoped(&prepared.scope, prepared.string_to_sign.as_bytes()).await?;
    Ok(prepared.finish(&signature))
}

/// Sign a URL without awaiting: for signers that hold their key in memory (service-account key, HMAC).
/// `now` is the signing time for requests without a `timestamp`.
///
/// Fails with [`Error::Signing`] for a signer that needs the network (IAM signBlob): use [`sign_url`].
pub fn sign_url_blocking(signer: &dyn Signer, req: &V4Request, now: DateTime<Utc>) -> Result<SignedUrl> {
    let credential_id = signer.local_credential_id().ok_or_else(|| not_local(signer))?;
    let prepared = prepare(req, signer.algorithm(), credential_id, now)?;
    let signature =
        signer.sign_local(&prepared.scope, prepared.string_to_sign.as_bytes()).ok_or_else(|| not_local(signer))??;
    Ok(prepared.finish(&signature))
}

fn not_local(signer: &dyn Signer) -> Error {
    Error::signing(format!(
        "{signer:?} signs over the network and cannot sign synchronously: call the async sign_url instead"
    ))
}
