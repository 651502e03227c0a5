//! A fake of Google's OIDC signing side: a [`TestIssuer`] (an RSA key that mints ID tokens the way Google
//! does: RS256, `kid`, `iss`, `aud`, `email`, `email_verified`, `iat`, `exp`) and a [`FakeJwks`] server on
//! loopback that serves the issuers' public keys with a `Cache-Control: max-age` like Google's, counts
//! its fetches and can be made to fail ([`JwksFault`]: 500, garbage, a response that never comes). Also
//! a [`BearerProxy`]: a loopback reverse proxy that adds a minted token to every request, for callers
//! that send none (the Pub/Sub emulator).
//!
//! ```no_run
//! # async fn demo() {
//! use sea_gcp::auth::{InvokerPolicy, OidcVerifier};
//! use sea_gcp::testing::oidc::{FakeJwks, TestIssuer};
//!
//! let issuer = TestIssuer::generate("test-key-1");
//! let jwks = FakeJwks::start(&[&issuer]).await;
//! let policy = InvokerPolicy::new(jwks.verifier(), "http://127.0.0.1:8080").allow_email("push@test.iam.gserviceaccount.com");
//! let token = issuer.mint(&issuer.claims("http://127.0.0.1:8080/events/k/r", "push@test.iam.gserviceaccount.com"));
//! # let _ = (policy, token); }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::auth::{JwksCache, JwksOptions, OidcVerifier, VerifierOptions};

/// An RSA-2048 signing key with a key id, minting ID tokens as Google does.
pub struct TestIssuer {
    kid: String,
    key: std::sync::OnceLock<KeyPair>,
    /// The key being generated on a thread of its own ([`TestIssuer::generate_in_background`]).
    pending: Mutex<Option<std::thread::JoinHandle<KeyPair>>>,
    issuer: String,
}

fn new_key() -> KeyPair {
    KeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key generation")
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl TestIssuer {
    /// A fresh key (about 0.1 s to generate) with key id `kid`, issuer `https://accounts.google.com`.
    pub fn generate(kid: impl Into<String>) -> Self {
        let issuer = Self::generate_in_background(kid);
        issuer.key();
        issuer
    }

    /// Like [`generate`](Self::generate), but the key is made on a thread of its own: this returns at
    /// once, and the first use of the key waits for it (an app in local mode answers its first request
    /// without waiting for a key no request has needed yet).
    pub(crate) fn generate_in_background(kid: impl Into<String>) -> Self {
        let pending = std::thread::Builder::new().name("sea-gcp-local-key".into()).spawn(new_key).ok();
        Self {
            kid: kid.into(),
            key: std::sync::OnceLock::new(),
            pending: Mutex::new(pending),
            issuer: "https://accounts.google.com".into(),
        }
    }

    /// The key, waiting for it if it is still being made.
    fn key(&self) -> &KeyPair {
        self.key.get_or_init(|| {
            let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).take();
            pending.and_then(|thread| thread.join().ok()).unwrap_or_else(new_key)
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (`kty`, `alg`, `use`, `kid`, `n`, `e`), as Google's JWKS lists it.
    pub(crate) fn jwk(&self) -> Value {
        let components = PublicKeyComponents::<Vec<u8>>::from(self.key().public_key());
        json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&components.n), "e": URL_SAFE_NO_PAD.encode(&components.e),
        })
    }

    /// The public modulus (big-endian): what an HS256 key-confusion attack would use as its secret.
    pub fn public_modulus(&self) -> Vec<u8> {
        PublicKeyComponents::<Vec<u8>>::from(self.key().public_key()).n
    }

    /// Claims of a valid token for `audience` and `email`: Google's issuer, `email_verified`, issued now,
    /// valid for an hour.
    pub fn claims(&self, audience: &str, email: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer, "aud": audience, "azp": "1234567890", "sub": "1234567890",
            "email": email, "email_verified": true, "iat": now, "exp": now + 3600,
        })
    }

    /// An RS256 token with this key and `claims`.
    pub fn mint(&self, claims: &Value) -> String {
        self.sign(&json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"}), claims)
    }

    /// A token with any header (a wrong `kid`, another `alg` label), RS256-signed with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!("{}.{}", b64_json(header), b64_json(claims));
        let key = self.key();
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .expect("RSA signing");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// Base64url (no padding) of a JSON value's compact form: one JWT segment.
pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"))
}

/// How a [`FakeJwks`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JwksFault {
    /// The key set, with the configured `Cache-Control` (the default).
    #[default]
    None,
    /// 500 Internal Server Error.
    ServerError,
    /// 200 with a body that is not a JWKS (an HTML error page from a proxy).
    Garbage,
    /// Accept the request and never answer (a hung upstream): only the client's timeout ends it.
    Hang,
}

pub(crate) struct JwksState {
    keys: Mutex<Vec<Value>>,
    /// Issuers whose key is read when the JWKS is served (it may still be being made).
    shared: Mutex<Vec<Arc<TestIssuer>>>,
    pub(crate) fetches: AtomicU64,
    pub(crate) cache_control: Mutex<String>,
    pub(crate) delay: Mutex<Duration>,
    pub(crate) fault: Mutex<JwksFault>,
}

/// A JWKS server on a loopback port, serving the public keys of the issuers published to it.
pub struct FakeJwks {
    addr: SocketAddr,
    pub(crate) state: Arc<JwksState>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FakeJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeJwks")
            .field("addr", &self.addr)
            .field("fetches", &self.state.fetches.load(Ordering::SeqCst))
            .finish()
    }
}

impl Drop for FakeJwks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeJwks {
    /// Start serving `issuers`' keys at `http://127.0.0.1:<port>/oauth2/v3/certs`, with Google's
    /// `Cache-Control: public, max-age=21600, must-revalidate, no-transform`.
    pub async fn start(issuers: &[&TestIssuer]) -> Self {
        let state = Arc::new(JwksState {
            keys: Mutex::new(issuers.iter().map(|i| i.jwk()).collect()),
            shared: Mutex::new(Vec::new()),
            fetches: AtomicU64::new(0),
            cache_control: Mutex::new("public, max-age=21600, must-revalidate, no-transform".into()),
            delay: Mutex::new(Duration::ZERO),
            fault: Mutex::new(JwksFault::None),
        });
        let app = Router::new().route("/oauth2/v3/certs", get(serve_jwks)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// The JWKS URL.
    pub fn url(&self) -> String {
        format!("http://{}/oauth2/v3/certs", self.addr)
    }

    /// Add `issuer`'s key (a key rotation: Google publishes the new key beside the old ones).
    pub fn publish(&self, issuer: &TestIssuer) {
        self.state.keys.lock().unwrap().push(issuer.jwk());
    }

    /// Add `issuer`'s key, read when the JWKS is first served after it (the key may still be being
    /// made: [`TestIssuer::generate_in_background`]).
    pub(crate) fn publish_shared(&self, issuer: Arc<TestIssuer>) {
        self.state.shared.lock().unwrap().push(issuer);
    }

    /// A verifier reading this server's keys, with Google's issuers and a zero forced-refresh interval
    /// (tests rotate keys within a second).
    pub fn verifier(&self) -> OidcVerifier {
        OidcVerifier::new(
            JwksCache::new(self.url(), JwksOptions::default().with_min_refresh_interval(Duration::ZERO)),
            VerifierOptions::default(),
        )
    }
}

async fn serve_jwks(State(state): State<Arc<JwksState>>) -> Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let fault = *state.fault.lock().unwrap();
    match fault {
        JwksFault::None => {}
        JwksFault::ServerError => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        JwksFault::Garbage => {
            return ([(header::CONTENT_TYPE, "text/html")], "<html><body>502 Bad Gateway</body></html>")
                .into_response();
        }
        JwksFault::Hang => std::future::pending::<()>().await,
    }
    let mut keys = state.keys.lock().unwrap().clone();
    let shared = state.shared.lock().unwrap().clone();
    if !shared.is_empty() {
        let jwks = tokio::task::spawn_blocking(move || shared.iter().map(|i| i.jwk()).collect::<Vec<_>>()).await;
        keys.extend(jwks.unwrap_or_default());
    }
    let body = json!({ "keys": keys });
    let cache_control = state.cache_control.lock().unwrap().clone();
    let mut response = axum::Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&cache_control) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// A loopback reverse proxy that forwards every request to `upstream` with
/// `Authorization: Bearer <token>` added, the token minted per request for the request's URL as the
/// proxy's client sees it, rewritten onto `audience_base` (the router's external base URL). Stands in for
/// Pub/Sub's push authentication in front of the emulator, which sends no token.
pub struct BearerProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for BearerProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerProxy").field("addr", &self.addr).finish()
    }
}

impl Drop for BearerProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ProxyState {
    issuer: Arc<TestIssuer>,
    email: String,
    upstream: String,
    audience_base: String,
    client: reqwest::Client,
}

impl BearerProxy {
    /// Start a proxy to `upstream` (`http://127.0.0.1:PORT`) signing as `email` with `issuer`; tokens
    /// carry `aud = audience_base + path?query`.
    pub async fn start(issuer: Arc<TestIssuer>, email: &str, upstream: &str, audience_base: &str) -> Self {
        let state = Arc::new(ProxyState {
            issuer,
            email: email.into(),
            upstream: upstream.trim_end_matches('/').into(),
            audience_base: audience_base.trim_end_matches('/').into(),
            client: reqwest::Client::new(),
        });
        let app = Router::new().fallback(proxy).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, task }
    }

    /// The proxy's base URL (point the push subscription here).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn proxy(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let token =
        state.issuer.mint(&state.issuer.claims(&format!("{}{path_and_query}", state.audience_base), &state.email));
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut forward = state.client.request(parts.method, format!("{}{path_and_query}", state.upstream));
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::AUTHORIZATION && name != header::CONTENT_LENGTH {
            forward = forward.header(name, value);
        }
    }
    let forward = forward.header(header::AUTHORIZATION, format!("Bearer {token}")).body(body);
    match forward.send().await {
        Ok(upstream) => {
            let mut response = Response::builder().status(upstream.status());
            for (name, value) in upstream.headers() {
                if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                    response = response.header(name, value);
                }
            }
            let bytes = upstream.bytes().await.unwrap_or_default();
            response.body(Body::from(bytes)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
