//! The JWKS cache: Google's signing keys, fetched once per `Cache-Control` lifetime, refreshed on an
//! unknown `kid` with a single fetch however many verifications wait for it.
//!
//! Invariants:
//! - A fetch happens only under `refresh` (an async mutex); a waiter that finds the key set changed
//!   while it waited (`generation` moved) uses the new set instead of fetching again. A cold cache hit by
//!   N concurrent requests therefore costs one fetch.
//! - An unknown `kid` forces a refresh at most once per `min_refresh_interval` (default 10 s), so tokens
//!   with made-up key ids cannot turn every request into a JWKS fetch.
//! - When a fetch fails, keys from the previous set are still used (Google publishes keys well before
//!   signing with them and keeps them after); with no previous set the error is
//!   [`AuthError::JwksUnavailable`] (503: the push is retried).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use super::AuthError;

/// Google's JWKS for ID tokens.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// Options of a [`JwksCache`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwksOptions {
    /// Lifetime of a key set whose response carries no usable `Cache-Control: max-age` (default 5 min).
    pub default_ttl: Duration,
    /// Upper bound on a key set's lifetime whatever `max-age` says (default 24 h).
    pub max_ttl: Duration,
    /// Least time between two refreshes forced by an unknown `kid` (default 10 s).
    pub min_refresh_interval: Duration,
    /// Timeout of one JWKS fetch (default 10 s).
    pub fetch_timeout: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(300),
            max_ttl: Duration::from_secs(24 * 3600),
            min_refresh_interval: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(10),
        }
    }
}

impl JwksOptions {
    /// Set [`JwksOptions::default_ttl`].
    pub fn with_default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }
    /// Set [`JwksOptions::max_ttl`].
    pub fn with_max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }
    /// Set [`JwksOptions::min_refresh_interval`].
    pub fn with_min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }
    /// Set [`JwksOptions::fetch_timeout`].
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }
}

struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Instant,
    expires_at: Instant,
}

/// A cache of the RSA keys served at a JWKS URL.
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    options: JwksOptions,
    current: RwLock<Option<Arc<KeySet>>>,
    generation: AtomicU64,
    refresh: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    kty: String,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

impl JwksCache {
    /// A cache of Google's ID-token keys ([`GOOGLE_JWKS_URL`]).
    pub fn google() -> Self {
        Self::new(GOOGLE_JWKS_URL, JwksOptions::default())
    }

    /// A cache of the keys at `url` (a test's fake JWKS server, another issuer).
    pub fn new(url: impl Into<String>, options: JwksOptions) -> Self {
        let client = reqwest::Client::builder().timeout(options.fetch_timeout).build().unwrap_or_default();
        Self {
            url: url.into(),
            client,
            options,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many fetches this cache has sent (successful or not).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> (Option<Arc<KeySet>>, u64) {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        (guard.clone(), self.generation.load(Ordering::Acquire))
    }

    /// The key for `kid`: from the cache when fresh and present, else after (at most) one refresh.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, AuthError> {
        let now = Instant::now();
        let (set, seen) = self.snapshot();
        if let Some(set) = &set
            && now < set.expires_at
            && let Some(key) = set.keys.get(kid)
        {
            return Ok(key.clone());
        }

        let _flight = self.refresh.lock().await;
        let (set, generation) = self.snapshot();
        let now = Instant::now();
        if let Some(set) = &set {
            let fresh = now < set.expires_at;
            // Someone refreshed while this request waited: use their result, whatever it holds (even a
            // set with a zero lifetime: it was fetched for this request).
            let refreshed_meanwhile = generation != seen;
            let too_soon = now.duration_since(set.fetched_at) < self.options.min_refresh_interval;
            if refreshed_meanwhile || (fresh && too_soon) {
                return set.keys.get(kid).cloned().ok_or_else(|| AuthError::UnknownKey(kid.to_owned()));
            }
        }
        match self.fetch().await {
            Ok(fetched) => {
                let fetched = Arc::new(fetched);
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(fetched.clone());
                self.generation.fetch_add(1, Ordering::Release);
                fetched.keys.get(kid).cloned().ok_or_else(|| AuthError::UnknownKey(kid.to_owned()))
            }
            Err(message) => {
                tracing::warn!(url = %self.url, error = %message, "JWKS fetch failed");
                match set.as_ref().and_then(|s| s.keys.get(kid)) {
                    Some(key) => Ok(key.clone()),
                    None => Err(AuthError::JwksUnavailable(message)),
                }
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let response = self.client.get(&self.url).send().await.map_err(|e| format!("GET {}: {e}", self.url))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {} answered {status}", self.url));
        }
        let ttl = ttl_of(response.headers(), &self.options);
        let body = response.bytes().await.map_err(|e| format!("reading {}: {e}", self.url))?;
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("JWKS at {} does not parse: {e}", self.url))?;
        let mut keys = HashMap::new();
        for jwk in set.keys {
            let usable = jwk.kty == "RSA"
                && jwk.alg.as_deref().is_none_or(|a| a == "RS256")
                && jwk.use_.as_deref().is_none_or(|u| u == "sig");
            let (Some(kid), Some(n), Some(e), true) = (jwk.kid, jwk.n, jwk.e, usable) else { continue };
            match DecodingKey::from_rsa_components(&n, &e) {
                Ok(key) => {
                    keys.insert(kid, Arc::new(key));
                }
                Err(err) => tracing::warn!(kid, error = %err, "JWKS key skipped"),
            }
        }
        let now = Instant::now();
        Ok(KeySet { keys, fetched_at: now, expires_at: now + ttl })
    }
}

/// The lifetime `Cache-Control: max-age` (minus `Age`) gives, bounded by the options; `no-cache` and
/// `no-store` give zero (the next verification refetches).
fn ttl_of(headers: &reqwest::header::HeaderMap, options: &JwksOptions) -> Duration {
    let Some(cc) = headers.get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()) else {
        return options.default_ttl;
    };
    let mut max_age = None;
    for directive in cc.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Duration::ZERO;
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    let Some(max_age) = max_age else { return options.default_ttl };
    let age = headers
        .get(reqwest::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(max_age.saturating_sub(age)).min(options.max_ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{AGE, CACHE_CONTROL, HeaderMap, HeaderValue};

    fn headers(cc: Option<&str>, age: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(cc) = cc {
            h.insert(CACHE_CONTROL, HeaderValue::from_str(cc).unwrap());
        }
        if let Some(age) = age {
            h.insert(AGE, HeaderValue::from_str(age).unwrap());
        }
        h
    }

    #[test]
    fn ttl_follows_cache_control() {
        let o = JwksOptions::default();
        assert_eq!(
            ttl_of(&headers(Some("public, max-age=20653, must-revalidate, no-transform"), None), &o),
            Duration::from_secs(20653)
        );
        assert_eq!(ttl_of(&headers(Some("public, max-age=100"), Some("40")), &o), Duration::from_secs(60));
        assert_eq!(ttl_of(&headers(Some("max-age=10"), Some("40")), &o), Duration::ZERO);
        assert_eq!(ttl_of(&headers(Some("no-store"), None), &o), Duration::ZERO);
        assert_eq!(ttl_of(&headers(None, None), &o), o.default_ttl);
        assert_eq!(ttl_of(&headers(Some("public"), None), &o), o.default_ttl);
        assert_eq!(ttl_of(&headers(Some("max-age=999999999"), None), &o), o.max_ttl);
    }
}
