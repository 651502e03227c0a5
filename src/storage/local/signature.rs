//! URLs of the local store, signed with the server's own HMAC so that the crate's routes can serve
//! downloads and direct uploads exactly like GCS signed URLs do.
//!
//! A download URL is `{base_url}/{key}?expires=<unix>&generation=<g>&sig=<hex>`; an upload URL is
//! `{base_url}/{key}?upload=put&expires=..&max=<bytes>&ct=<content type>&create=1&sig=..`. The signature
//! covers the method, the key and every parameter, so none can be changed, added, renamed or removed by
//! the client.
//!
//! The MAC input is unambiguous: a version tag, then the method, the key, the number of parameters and
//! each parameter's name and value, every field preceded by its length in bytes (8 bytes, big endian).
//! Two different requests therefore never share a MAC input: moving an `=` or a newline between a name
//! and its value (`create%3D1%0Act=...`) changes the lengths and breaks the signature. On top of that,
//! [`UrlSigner::verify`] refuses parameters outside the route's list and repeated parameters before it
//! looks at the signature.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The domain-separation tag that starts every MAC input (bumped when the canonical form changes).
const CANONICAL_VERSION: &[u8] = b"sea-gcp local URL v2";

/// The parameters a download URL may carry (besides `sig`).
pub(crate) const DOWNLOAD_PARAMS: &[&str] =
    &["expires", "generation", "response-content-disposition", "response-content-type"];

/// The parameters an upload URL may carry (besides `sig`).
pub(crate) const UPLOAD_PARAMS: &[&str] = &["expires", "upload", "max", "ct", "create"];

/// Percent-encode an object key for a URL path (keeps `/`).
pub(crate) fn encode_path(key: &str) -> String {
    crate::encoding::path(key)
}

/// Percent-encode a query value.
pub(crate) fn encode_query(value: &str) -> String {
    crate::encoding::component(value)
}

/// Why a local-store URL was refused. [`UrlRefusal::code`] is the stable code the routes answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum UrlRefusal {
    /// The URL carries no `sig` parameter.
    #[error("the URL is not signed (no sig parameter); ask the application for a new URL")]
    Unsigned,
    /// `sig` is not hexadecimal.
    #[error("the URL's signature is malformed; ask the application for a new URL")]
    MalformedSignature,
    /// The signature does not match the request.
    #[error("the URL's signature does not match this request; use the URL exactly as the application gave it")]
    BadSignature,
    /// `expires` is missing or not a number.
    #[error("the URL has no valid expiry; ask the application for a new URL")]
    NoExpiry,
    /// `expires` is in the past.
    #[error("the URL has expired; ask the application for a new one")]
    Expired,
    /// A parameter this route does not know (it could not have been signed).
    #[error("the URL carries the parameter `{0}`, which this route does not accept; remove it")]
    UnknownParameter(String),
    /// A parameter given more than once.
    #[error("the URL carries the parameter `{0}` more than once; give it once")]
    RepeatedParameter(String),
}

impl UrlRefusal {
    /// The stable machine-readable code (`url_expired`, `unknown_parameter`, ...).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            UrlRefusal::Unsigned => "unsigned_url",
            UrlRefusal::MalformedSignature | UrlRefusal::BadSignature => "bad_signature",
            UrlRefusal::NoExpiry => "bad_expiry",
            UrlRefusal::Expired => "url_expired",
            UrlRefusal::UnknownParameter(_) => "unknown_parameter",
            UrlRefusal::RepeatedParameter(_) => "repeated_parameter",
        }
    }
}

/// A parameter name as quoted in a refusal: at most 64 characters.
fn quoted(name: &str) -> String {
    name.chars().take(64).collect()
}

/// Check that every parameter is in `allowed` (or is `sig`) and appears once; returns them as a map.
pub(crate) fn check_parameters(
    query: &[(String, String)],
    allowed: &[&str],
) -> Result<BTreeMap<String, String>, UrlRefusal> {
    let mut params = BTreeMap::new();
    for (name, value) in query {
        if name != "sig" && !allowed.contains(&name.as_str()) {
            return Err(UrlRefusal::UnknownParameter(quoted(name)));
        }
        if params.insert(name.clone(), value.clone()).is_some() {
            return Err(UrlRefusal::RepeatedParameter(quoted(name)));
        }
    }
    Ok(params)
}

/// Signs and verifies local-store URLs.
#[derive(Clone)]
pub(crate) struct UrlSigner {
    secret: Vec<u8>,
    /// Set for a per-process secret: the store whose first signed URL logs a warning (once), so that a
    /// command that never signs (a sync, a download) does not warn about a secret it does not use.
    ephemeral: Option<std::sync::Arc<EphemeralSecret>>,
}

/// A random secret made for this process, and whether its warning was logged.
struct EphemeralSecret {
    store: String,
    warned: std::sync::Once,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

fn field(mac: &mut HmacSha256, bytes: &[u8]) {
    mac.update(&(bytes.len() as u64).to_be_bytes());
    mac.update(bytes);
}

impl UrlSigner {
    /// A signer with this secret.
    pub(crate) fn new(secret: impl AsRef<[u8]>) -> Self {
        Self { secret: secret.as_ref().to_vec(), ephemeral: None }
    }

    /// A signer with a random secret for this process: its URLs stop working after a restart. The first
    /// URL it signs logs a warning naming `store` and the variable that makes the secret stable.
    pub(crate) fn ephemeral(store: &str) -> Self {
        Self {
            secret: uuid::Uuid::new_v4().as_bytes().to_vec(),
            ephemeral: Some(std::sync::Arc::new(EphemeralSecret {
                store: store.to_string(),
                warned: std::sync::Once::new(),
            })),
        }
    }

    fn mac(&self, method: &str, key: &str, params: &BTreeMap<String, String>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        field(&mut mac, CANONICAL_VERSION);
        field(&mut mac, method.as_bytes());
        field(&mut mac, key.as_bytes());
        mac.update(&(params.len() as u64).to_be_bytes());
        for (k, v) in params {
            field(&mut mac, k.as_bytes());
            field(&mut mac, v.as_bytes());
        }
        mac
    }

    /// The query string (without `?`) for `method` on `key` with `params` (which must include `expires`).
    pub(crate) fn sign(&self, method: &str, key: &str, params: &BTreeMap<String, String>) -> String {
        if let Some(ephemeral) = &self.ephemeral {
            ephemeral.warned.call_once(|| {
                tracing::warn!(
                    store = %ephemeral.store,
                    "no {} set: local URLs are signed with a per-process secret and stop working after a restart",
                    super::SECRET_ENV
                )
            });
        }
        let sig = hex::encode(self.mac(method, key, params).finalize().into_bytes());
        let mut query: Vec<String> =
            params.iter().map(|(k, v)| format!("{}={}", encode_query(k), encode_query(v))).collect();
        query.push(format!("sig={sig}"));
        query.join("&")
    }

    /// Verify a request's decoded query pairs: only `allowed` parameters (plus `sig`), each once, the
    /// signature over all of them but `sig`, and `expires` not in the past. Returns the signed
    /// parameters.
    pub(crate) fn verify(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        allowed: &[&str],
        now_unix: i64,
    ) -> Result<BTreeMap<String, String>, UrlRefusal> {
        let mut params = check_parameters(query, allowed)?;
        let sig = params.remove("sig").ok_or(UrlRefusal::Unsigned)?;
        let sig = hex::decode(sig).map_err(|_| UrlRefusal::MalformedSignature)?;
        self.mac(method, key, &params).verify_slice(&sig).map_err(|_| UrlRefusal::BadSignature)?;
        let expires: i64 = params.get("expires").and_then(|e| e.parse().ok()).ok_or(UrlRefusal::NoExpiry)?;
        if expires < now_unix {
            return Err(UrlRefusal::Expired);
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    const ALL: &[&str] = &["expires", "ct", "create", "a", "b"];

    #[test]
    fn sign_and_verify() {
        let s = UrlSigner::new("secret");
        let mut p = BTreeMap::new();
        p.insert("expires".to_string(), "2000".to_string());
        p.insert("ct".to_string(), "text/plain; charset=utf-8".to_string());
        let q = pairs(&s.sign("GET", "a b/c.txt", &p));
        assert_eq!(s.verify("GET", "a b/c.txt", &q, ALL, 1000).unwrap(), p);
        assert_eq!(s.verify("PUT", "a b/c.txt", &q, ALL, 1000), Err(UrlRefusal::BadSignature));
        assert_eq!(s.verify("GET", "a b/d.txt", &q, ALL, 1000), Err(UrlRefusal::BadSignature));
        assert_eq!(s.verify("GET", "a b/c.txt", &q, ALL, 3000), Err(UrlRefusal::Expired));
        let mut tampered = q.clone();
        tampered[0].1 = "text/html".into();
        assert_eq!(s.verify("GET", "a b/c.txt", &tampered, ALL, 1000), Err(UrlRefusal::BadSignature));
        assert_eq!(encode_path("a b/ü#?.txt"), "a%20b/%C3%BC%23%3F.txt");
    }

    #[test]
    fn moving_separators_between_names_and_values_breaks_the_signature() {
        let s = UrlSigner::new("secret");
        let mut p = BTreeMap::new();
        p.insert("a".to_string(), "1".to_string());
        p.insert("b".to_string(), "2".to_string());
        p.insert("expires".to_string(), "2000".to_string());
        let sig = pairs(&s.sign("PUT", "k", &p)).into_iter().find(|(k, _)| k == "sig").unwrap().1;
        // `a=1\nb=2` as one parameter named `a=1\nb` with value `2`.
        let forged = vec![
            ("a=1\nb".to_string(), "2".to_string()),
            ("expires".to_string(), "2000".to_string()),
            ("sig".to_string(), sig.clone()),
        ];
        let all: &[&str] = &["a", "b", "expires", "a=1\nb"];
        assert_eq!(s.verify("PUT", "k", &forged, all, 1000), Err(UrlRefusal::BadSignature));
        // The key and the first parameter's name do not run together either.
        let moved = vec![("expires".to_string(), "2000".to_string()), ("sig".to_string(), sig)];
        assert_eq!(s.verify("PUT", "k\na=1\nb=2", &moved, all, 1000), Err(UrlRefusal::BadSignature));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_before_the_signature() {
        let s = UrlSigner::new("secret");
        let mut p = BTreeMap::new();
        p.insert("expires".to_string(), "2000".to_string());
        let mut q = pairs(&s.sign("GET", "k", &p));
        q.push(("x-extra".into(), "1".into()));
        assert_eq!(s.verify("GET", "k", &q, ALL, 1000), Err(UrlRefusal::UnknownParameter("x-extra".into())));
        let mut q = pairs(&s.sign("GET", "k", &p));
        q.push(("expires".into(), "9999".into()));
        let refusal = s.verify("GET", "k", &q, ALL, 1000).unwrap_err();
        assert_eq!(refusal, UrlRefusal::RepeatedParameter("expires".into()));
        assert_eq!(refusal.code(), "repeated_parameter");
    }
}
