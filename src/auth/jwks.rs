//! The JWKS cache: Google's signing keys, fetched once per `Cache-Control` lifetime, refreshed on an
//! unknown `kid` with a single fetch however many verifications wait for it, whether that fetch succeeds
//! or fails.
//!
//! Invariants:
//! - A fetch happens only under `refresh` (an async mutex), in a task of its own that keeps the lock until
//!   the outcome is recorded (so a request dropped mid-fetch neither loses it nor lets the next waiter
//!   fetch again), and every fetch that ends, with keys or with an error, moves `attempts`. A waiter that
//!   finds `attempts` moved while it waited takes that attempt's outcome instead of fetching again. N
//!   concurrent requests therefore cost one fetch: on a cold cache, on an unknown `kid`, and when the
//!   fetch fails or times out.
//! - An unknown `kid` forces a refresh at most once per `min_refresh_interval` (default 10 s), so tokens
//!   with made-up key ids cannot turn every request into a JWKS fetch.
//! - A failed fetch is recorded ([`JwksFailure`]: when, the error, how many in a row). Until its
//!   `retry_at` no fetch is sent: the wait starts at `initial_backoff` (1 s) and doubles with each
//!   consecutive failure up to `max_backoff` (60 s); a successful fetch clears the record. A request that
//!   needs a fetch during the wait is answered at once with [`AuthError::JwksUnavailable`] carrying the
//!   recorded error, never held until the next attempt.
//! - A fetch (connection, response and body) is bounded by `fetch_timeout` (default 10 s): a hanging JWKS
//!   holds the requests waiting for it that long, once, and then counts as a failure.
//! - Keys from the previous set are still used while fetches fail (Google publishes keys well before
//!   signing with them and keeps them after); with no previous set holding the token's key the error is
//!   [`AuthError::JwksUnavailable`] (503: the push is retried).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use super::AuthError;

/// Google's JWKS for ID tokens.
pub(crate) const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

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
    /// Timeout of one JWKS fetch, from connecting to the end of the body (default 10 s).
    pub fetch_timeout: Duration,
    /// Wait after a failed fetch before the next one may be sent (default 1 s); it doubles with each
    /// consecutive failure.
    pub initial_backoff: Duration,
    /// Longest wait between failed fetches (default 60 s).
    pub max_backoff: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(300),
            max_ttl: Duration::from_secs(24 * 3600),
            min_refresh_interval: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
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
    /// Set [`JwksOptions::initial_backoff`] and [`JwksOptions::max_backoff`].
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The wait after the `consecutive`-th failed fetch in a row (1 for the first).
    pub fn backoff(&self, consecutive: u32) -> Duration {
        let doublings = consecutive.saturating_sub(1).min(31);
        self.initial_backoff.saturating_mul(1u32 << doublings).min(self.max_backoff)
    }
}

/// The record of the last failed JWKS fetch ([`JwksCache::last_failure`]); cleared by a successful one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksFailure {
    /// When the failed fetch ended.
    pub at: Instant,
    /// What went wrong (the status answered, the parse error, the timeout).
    pub error: String,
    /// How many fetches in a row have failed (1 for the first).
    pub consecutive: u32,
    /// No fetch is sent before this instant.
    pub retry_at: Instant,
}

impl JwksFailure {
    fn refusal(&self, now: Instant) -> AuthError {
        let wait = self.retry_at.saturating_duration_since(now);
        AuthError::JwksUnavailable(format!(
            "{} ({} failed fetch(es) in a row; next fetch in {:.1} s)",
            self.error,
            self.consecutive,
            wait.as_secs_f64()
        ))
    }
}

struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Instant,
    expires_at: Instant,
}

/// What the cache knows: the last key set, how many fetches have ended, the last failure.
#[derive(Default)]
struct State {
    set: Option<Arc<KeySet>>,
    attempts: u64,
    failure: Option<JwksFailure>,
}

impl State {
    fn fresh_key(&self, kid: &str, now: Instant) -> Option<Arc<DecodingKey>> {
        let set = self.set.as_ref().filter(|s| now < s.expires_at)?;
        set.keys.get(kid).cloned()
    }

    fn any_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.set.as_ref().and_then(|s| s.keys.get(kid)).cloned()
    }

    /// While backing off after a failure: the previous set's key, or the recorded failure. `None` when
    /// a fetch may be sent.
    fn backing_off(&self, kid: &str, now: Instant) -> Option<Result<Arc<DecodingKey>, AuthError>> {
        let failure = self.failure.as_ref().filter(|f| now < f.retry_at)?;
        Some(self.any_key(kid).ok_or_else(|| failure.refusal(now)))
    }

    /// The outcome of the last attempt for `kid`.
    fn outcome(&self, kid: &str, now: Instant) -> Result<Arc<DecodingKey>, AuthError> {
        if let Some(key) = self.any_key(kid) {
            return Ok(key);
        }
        match &self.failure {
            Some(failure) => Err(failure.refusal(now)),
            None => Err(AuthError::UnknownKey(kid.to_owned())),
        }
    }
}

/// A cache of the RSA keys served at a JWKS URL.
pub struct JwksCache {
    fetcher: Arc<Fetcher>,
    state: Arc<Mutex<State>>,
    refresh: Arc<tokio::sync::Mutex<()>>,
}

/// What one fetch needs, shared with the task that runs it.
struct Fetcher {
    url: String,
    client: crate::lazy_client::LazyClient,
    options: JwksOptions,
    fetches: AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.fetcher.url)
            .field("fetches", &self.fetch_count())
            .field("last_failure", &self.last_failure())
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
    /// A cache of Google's ID-token keys (`https://www.googleapis.com/oauth2/v3/certs`).
    pub fn google() -> Self {
        Self::new(GOOGLE_JWKS_URL, JwksOptions::default())
    }

    /// A cache of the keys at `url` (a test's fake JWKS server, another issuer).
    pub fn new(url: impl Into<String>, options: JwksOptions) -> Self {
        // The fetch timeout bounds the whole fetch (see `Fetcher::fetch`); the client needs none of its own.
        let fetcher = Fetcher {
            url: url.into(),
            client: crate::lazy_client::LazyClient::new(reqwest::Client::new),
            options,
            fetches: AtomicU64::new(0),
        };
        Self { fetcher: Arc::new(fetcher), state: Arc::default(), refresh: Arc::default() }
    }

    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.fetcher.url
    }

    /// How many fetches this cache has sent (successful or not).
    pub fn fetch_count(&self) -> u64 {
        self.fetcher.fetches.load(Ordering::Relaxed)
    }

    /// The last failed fetch, while no fetch has succeeded since.
    pub fn last_failure(&self) -> Option<JwksFailure> {
        self.state().failure.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The key for `kid`: from the cache when fresh and present, else after (at most) one refresh shared
    /// with every request waiting for it. While backing off after a failed fetch, answers at once.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, AuthError> {
        let seen = {
            let state = self.state();
            let now = Instant::now();
            if let Some(key) = state.fresh_key(kid, now) {
                return Ok(key);
            }
            if let Some(answer) = state.backing_off(kid, now) {
                return answer;
            }
            state.attempts
        };

        let flight = self.refresh.clone().lock_owned().await;
        {
            let state = self.state();
            let now = Instant::now();
            // An attempt ended while this request waited: use its outcome, whatever it holds (a set with
            // a zero lifetime was fetched for this request too; a failure is shared, not repeated).
            if state.attempts != seen {
                return state.outcome(kid, now);
            }
            if let Some(set) = &state.set
                && now < set.expires_at
                && now.duration_since(set.fetched_at) < self.fetcher.options.min_refresh_interval
            {
                return set.keys.get(kid).cloned().ok_or_else(|| AuthError::UnknownKey(kid.to_owned()));
            }
            if let Some(answer) = state.backing_off(kid, now) {
                return answer;
            }
        }

        // The attempt runs in a task of its own that holds `refresh` until its outcome is recorded: a
        // request dropped meanwhile (its client went away) neither loses the outcome nor lets the next
        // waiter start a second fetch.
        let (fetcher, state) = (self.fetcher.clone(), self.state.clone());
        let attempt = tokio::spawn(async move {
            let fetched = fetcher.fetch().await;
            fetcher.record(&mut lock(&state), fetched);
            drop(flight);
        });
        let ended = attempt.await.is_ok();
        let state = self.state();
        if !ended && state.attempts == seen {
            return Err(AuthError::JwksUnavailable("the JWKS fetch did not complete".into()));
        }
        state.outcome(kid, Instant::now())
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Fetcher {
    /// Record a fetch's outcome: the new set (clearing the failure), or the failure and its backoff.
    fn record(&self, state: &mut State, fetched: Result<KeySet, String>) {
        state.attempts += 1;
        match fetched {
            Ok(set) => {
                state.set = Some(Arc::new(set));
                state.failure = None;
            }
            Err(error) => {
                let now = Instant::now();
                let consecutive = state.failure.as_ref().map_or(1, |f| f.consecutive.saturating_add(1));
                let backoff = self.options.backoff(consecutive);
                tracing::warn!(
                    url = %self.url, error = %error, consecutive, backoff = ?backoff,
                    "JWKS fetch failed; no fetch until the backoff has passed"
                );
                state.failure = Some(JwksFailure { at: now, error, consecutive, retry_at: now + backoff });
            }
        }
    }

    /// One fetch, bounded by the fetch timeout as a whole.
    async fn fetch(&self) -> Result<KeySet, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let timeout = self.options.fetch_timeout;
        match tokio::time::timeout(timeout, self.fetch_once()).await {
            Ok(result) => result,
            Err(_) => Err(format!("GET {} timed out after {timeout:?}", self.url)),
        }
    }

    async fn fetch_once(&self) -> Result<KeySet, String> {
        let response = self.client.get().get(&self.url).send().await.map_err(|e| format!("GET {}: {e}", self.url))?;
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

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = JwksOptions::default();
        let secs = |n| o.backoff(n).as_secs();
        assert_eq!([secs(1), secs(2), secs(3), secs(6), secs(7), secs(40), secs(u32::MAX)], [1, 2, 4, 32, 60, 60, 60]);
        let o = o.with_backoff(Duration::from_millis(100), Duration::from_millis(50));
        assert_eq!(o.backoff(1), Duration::from_millis(100), "the cap is never below the first wait");
    }
}
