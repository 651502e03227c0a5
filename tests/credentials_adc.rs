//! Application Default Credentials of the kinds a deployment outside Google Cloud uses, end to end:
//! Workload Identity Federation (`external_account`, a file-sourced subject token, for example a GitHub
//! Actions OIDC token written to disk) and service-account impersonation (`impersonated_service_account`,
//! gcloud's file for `--impersonate-service-account`). Tokens come from Google's `google-cloud-auth`.
//!
//! The fakes check what STS and IAM Credentials check (grant type, subject token and its type, audience,
//! scope, the caller's bearer token, the lifetime) and answer in their formats; their URLs come from the
//! credentials file, as in production. A recording proxy in front of the GCS emulator shows which token
//! each storage call carried.

mod emulator_support;
mod fault_proxy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use fault_proxy::{FaultProxy, FaultRates};
use sea_gcp::storage::GcsStore;
use sea_gcp::storage::{GetOptions, ListOptions, PutOptions, PutPayload};
use sea_gcp::{ErrorKind, Store, StoreConfig};
use serde_json::{Value, json};

const AUDIENCE: &str = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const TARGET: &str = "deployer@my-project.iam.gserviceaccount.com";
const SUBJECT_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.github-actions-oidc-token.signature";
const REFRESH_TOKEN: &str = "1//gcloud-user-refresh-token";

/// `GOOGLE_APPLICATION_CREDENTIALS` is process-wide: the tests that set it take turns.
static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn emulator() -> Option<String> {
    emulator_support::storage_emulator("ADC end-to-end tests")
}

/// Local STS, IAM Credentials and OAuth token endpoints.
#[derive(Default)]
struct Google {
    /// Every call, as `service: detail`.
    calls: Mutex<Vec<String>>,
    /// Tokens issued, by issuer (`sts`, `iam`, `oauth`).
    issued: Mutex<Vec<(String, String)>>,
}

impl Google {
    fn issue(&self, issuer: &str) -> String {
        let token = format!("ya29.{issuer}-{}", uuid::Uuid::new_v4().simple());
        self.issued.lock().unwrap().push((issuer.to_string(), token.clone()));
        token
    }

    fn issued_by(&self, issuer: &str) -> Vec<String> {
        self.issued.lock().unwrap().iter().filter(|(i, _)| i == issuer).map(|(_, t)| t.clone()).collect()
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

fn google_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": status.as_u16(), "status": code, "message": message}}))).into_response()
}

/// A token endpoint's fields, from a form or a JSON body (Google's token endpoints take both).
fn fields(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let json = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.contains("json"));
    if json {
        let value: Value = serde_json::from_slice(body).unwrap_or_default();
        let fields = value.as_object().cloned().unwrap_or_default().into_iter();
        fields.map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect()
    } else {
        url::form_urlencoded::parse(body).into_owned().collect()
    }
}

/// STS `v1/token`: RFC 8693 token exchange.
async fn sts(State(google): State<Arc<Google>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = fields(&headers, &body);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    google.calls.lock().unwrap().push(format!("sts: {}", field("scope")));
    if field("grant_type") != EXCHANGE_GRANT || field("requested_token_type") != ACCESS_TOKEN_TYPE {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "not a token exchange");
    }
    if field("audience") != AUDIENCE {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", "unknown workload identity provider");
    }
    if field("subject_token_type") != JWT_TYPE || field("subject_token") != SUBJECT_TOKEN {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the subject token is invalid");
    }
    if field("scope").is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "no scope");
    }
    let token = google.issue("sts");
    Json(json!({"access_token": token, "issued_token_type": ACCESS_TOKEN_TYPE, "token_type": "Bearer", "expires_in": 3600}))
        .into_response()
}

/// OAuth `token`: the refresh-token grant of gcloud's user credentials.
async fn oauth(State(google): State<Arc<Google>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = fields(&headers, &body);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    google.calls.lock().unwrap().push("oauth: refresh_token".into());
    if field("grant_type") != "refresh_token" || field("client_id") != "cid" || field("client_secret") != "csecret" {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "unknown client");
    }
    if field("refresh_token") != REFRESH_TOKEN {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "token has been expired or revoked");
    }
    let token = google.issue("oauth");
    Json(json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer", "scope": CLOUD_PLATFORM}))
        .into_response()
}

/// IAM Credentials `projects/-/serviceAccounts/{email}:generateAccessToken`.
async fn generate_access_token(
    State(google): State<Arc<Google>>,
    UrlPath(target): UrlPath<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let caller = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    google.calls.lock().unwrap().push(format!("iam: {target}"));
    let known = google.issued.lock().unwrap().iter().any(|(i, t)| i != "iam" && caller == format!("Bearer {t}"));
    if !known {
        return google_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "request had invalid credentials");
    }
    if let Some(email) = target.strip_suffix(":generateIdToken") {
        return generate_id_token(&google, email, &body);
    }
    let Some(email) = target.strip_suffix(":generateAccessToken") else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown method");
    };
    if email != TARGET {
        return google_error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "iam.serviceAccounts.getAccessToken denied");
    }
    let scopes: Vec<&str> = body["scope"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if !scopes.contains(&CLOUD_PLATFORM) {
        return google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "scope is required");
    }
    let lifetime = body["lifetime"].as_str().and_then(|l| l.strip_suffix('s')).and_then(|s| s.parse::<u64>().ok());
    if !lifetime.is_some_and(|s| (1..=3600).contains(&s)) {
        return google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "lifetime must be 1s..3600s");
    }
    let token = google.issue("iam");
    let expires = chrono::Utc::now() + chrono::Duration::seconds(lifetime.unwrap_or(3600) as i64);
    Json(json!({"accessToken": token, "expireTime": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}))
        .into_response()
}

/// IAM Credentials `generateIdToken`: a JWT for the asked audience (signed by Google in production; the
/// caller only reads its expiry).
fn generate_id_token(google: &Google, email: &str, body: &Value) -> Response {
    use base64::Engine as _;
    if email != TARGET {
        return google_error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "iam.serviceAccounts.getOpenIdToken denied");
    }
    let Some(audience) = body["audience"].as_str().filter(|a| !a.is_empty()) else {
        return google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "audience is required");
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = chrono::Utc::now().timestamp() + 3600;
    let claims = json!({"iss": "https://accounts.google.com", "aud": audience, "email": email, "exp": exp});
    let token = format!("{}.{}.c2ln", b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#), b64.encode(claims.to_string()));
    google.issued.lock().unwrap().push(("iam-id".into(), token.clone()));
    Json(json!({"token": token})).into_response()
}

async fn start_google() -> (String, Arc<Google>) {
    let google = Arc::new(Google::default());
    let app = Router::new()
        .route("/sts/v1/token", post(sts))
        .route("/oauth2/token", post(oauth))
        .route("/iam/v1/projects/-/serviceAccounts/{target}", post(generate_access_token))
        .with_state(google.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, google)
}

fn impersonation_url(base: &str) -> String {
    format!("{base}/iam/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken")
}

/// A Workload Identity Federation file whose subject token is read from `token_file`.
fn external_account(base: &str, token_file: &Path, impersonate: bool) -> Value {
    let mut file = json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "token_url": format!("{base}/sts/v1/token"),
        "credential_source": {"file": token_file},
    });
    if impersonate {
        file["service_account_impersonation_url"] = json!(impersonation_url(base));
    }
    file
}

/// gcloud's file for `gcloud auth application-default login --impersonate-service-account`.
fn impersonated(base: &str, refresh_token: &str) -> Value {
    json!({
        "type": "impersonated_service_account",
        "service_account_impersonation_url": impersonation_url(base),
        "delegates": [],
        "source_credentials": {
            "type": "authorized_user",
            "client_id": "cid",
            "client_secret": "csecret",
            "refresh_token": refresh_token,
            "token_uri": format!("{base}/oauth2/token"),
        },
    })
}

fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

/// A GCS store that sends tokens through the recording proxy to a fresh emulator bucket, built from
/// Application Default Credentials in `credentials`.
async fn store_with_adc(host: &str, proxy: &FaultProxy, credentials: &Path) -> sea_gcp::Result<GcsStore> {
    let bucket = format!("adc-{}", uuid::Uuid::new_v4().simple());
    sea_gcp::testing::conformance::create_emulator_bucket(host, &bucket, false).await;
    let mut config = StoreConfig::gcs(bucket);
    config.api_endpoint = Some(proxy.url.clone());
    config.authenticate = Some(true);
    use_credentials(credentials);
    GcsStore::new("media", config).await
}

/// Point Application Default Credentials at `credentials` (the caller holds the ENV lock).
fn use_credentials(credentials: &Path) {
    // SAFETY: the ENV lock is held by the caller; no other thread of this binary reads the environment.
    unsafe {
        std::env::set_var("GOOGLE_APPLICATION_CREDENTIALS", credentials);
        // Never the real metadata server: the credentials file must be what is used.
        std::env::set_var("GCE_METADATA_HOST", "127.0.0.1:9");
    }
}

/// The tokens the storage emulator received, in order.
fn storage_tokens(proxy: &FaultProxy) -> Vec<String> {
    proxy.log().iter().map(|l| l.authorization.clone().unwrap_or_else(|| "<none>".into())).collect()
}

#[tokio::test]
async fn workload_identity_federation_tokens_reach_the_storage_emulator() {
    let Some(host) = emulator() else { return };
    let _env = ENV.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("github-oidc-token");
    std::fs::write(&token_file, SUBJECT_TOKEN).unwrap();

    for impersonate in [true, false] {
        let (base, google) = start_google().await;
        let proxy = FaultProxy::start(&host, FaultRates::default(), 1).await;
        let credentials = write_json(dir.path(), "wif.json", &external_account(&base, &token_file, impersonate));
        let store = store_with_adc(&host, &proxy, &credentials).await.expect("building makes no call");
        assert!(google.calls().is_empty(), "building the store fetched a token: {:?}", google.calls());

        store.put("release/app.tar", PutPayload::from(&b"artifact"[..]), PutOptions::default()).await.unwrap();
        let body = store.get("release/app.tar", GetOptions::default()).await.unwrap().bytes().await.unwrap();
        assert_eq!(&body[..], b"artifact");

        // The emulator saw only the token the last hop issued: IAM's when impersonating, else STS's.
        let issuer = if impersonate { "iam" } else { "sts" };
        let issued = google.issued_by(issuer);
        assert_eq!(issued.len(), 1, "one token for both calls (cached): {:?}", google.calls());
        let seen = storage_tokens(&proxy);
        assert!(seen.len() >= 2, "{seen:?}");
        assert!(seen.iter().all(|t| *t == format!("Bearer {}", issued[0])), "impersonate={impersonate}: {seen:?}");
        let expected_calls = if impersonate { 2 } else { 1 };
        assert_eq!(google.calls().len(), expected_calls, "{:?}", google.calls());
    }
}

#[tokio::test]
async fn impersonated_service_account_tokens_reach_the_storage_emulator() {
    let Some(host) = emulator() else { return };
    let _env = ENV.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (base, google) = start_google().await;
    let proxy = FaultProxy::start(&host, FaultRates::default(), 2).await;
    let credentials = write_json(dir.path(), "impersonated.json", &impersonated(&base, REFRESH_TOKEN));
    let store = store_with_adc(&host, &proxy, &credentials).await.unwrap();
    store.put("a.txt", PutPayload::from(&b"hello"[..]), PutOptions::default()).await.unwrap();
    store.head("a.txt", GetOptions::default()).await.unwrap();

    assert_eq!(google.calls(), vec!["oauth: refresh_token".to_string(), format!("iam: {TARGET}:generateAccessToken")]);
    let iam = google.issued_by("iam");
    let seen = storage_tokens(&proxy);
    assert!(!seen.is_empty() && seen.iter().all(|t| *t == format!("Bearer {}", iam[0])), "{seen:?}");
    // The user's own token never reaches storage.
    let user = google.issued_by("oauth");
    assert!(seen.iter().all(|t| !t.contains(&user[0])));
}

/// A credential the services refuse (a forged subject token, a revoked refresh token) fails the call
/// with a typed, non-retryable error that names the credential kind; nothing reaches storage.
#[tokio::test]
async fn refused_credentials_change_nothing_and_say_what_to_check() {
    let Some(host) = emulator() else { return };
    let _env = ENV.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let forged = dir.path().join("forged-token");
    std::fs::write(&forged, "eyJhbGciOiJub25lIn0.forged.").unwrap();

    let (base, google) = start_google().await;
    let cases = [
        ("forged.json", external_account(&base, &forged, true), "external_account"),
        ("revoked.json", impersonated(&base, "1//revoked"), "impersonated_service_account"),
    ];
    for (name, file, kind) in cases {
        let proxy = FaultProxy::start(&host, FaultRates::default(), 3).await;
        let credentials = write_json(dir.path(), name, &file);
        let store = store_with_adc(&host, &proxy, &credentials).await.unwrap();
        let e = store.put("x.txt", PutPayload::from(&b"x"[..]), PutOptions::default()).await.unwrap_err();
        let message = e.to_string();
        assert!(message.contains(kind), "{message}");
        assert_eq!(e.kind(), ErrorKind::Failed, "a refused credential is not retried: {message}");
        assert!(storage_tokens(&proxy).is_empty(), "a request reached storage: {:?}", proxy.log());
        let listed = store.list(ListOptions::default()).await;
        assert!(listed.is_err(), "listing needs a token too");
    }
    assert!(google.issued_by("iam").is_empty(), "no impersonated token was issued: {:?}", google.calls());
}

/// Files that are not credentials are refused when the store is built, with the supported kinds.
#[tokio::test]
async fn unknown_credential_kinds_are_refused_when_the_store_is_built() {
    let Some(host) = emulator() else { return };
    let _env = ENV.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = FaultProxy::start(&host, FaultRates::default(), 4).await;
    for (name, file, expect) in [
        ("gdch.json", json!({"type": "gdch_service_account"}), "supported are"),
        ("none.json", json!({"client_id": "x"}), "has no `type`"),
        ("partial.json", json!({"type": "external_account", "audience": AUDIENCE}), "not a complete external_account"),
    ] {
        let credentials = write_json(dir.path(), name, &file);
        let e = store_with_adc(&host, &proxy, &credentials).await.unwrap_err().to_string();
        assert!(e.contains(expect), "{name}: {e}");
        assert!(e.contains("impersonated_service_account") || expect != "supported are", "{e}");
    }
    assert!(proxy.log().is_empty());
}

/// A service-account key makes its token in-process (a self-signed JWT for the cloud-platform scope):
/// no token endpoint is called, so none is needed.
#[tokio::test]
async fn a_service_account_key_makes_its_token_without_a_network_call() {
    use sea_gcp::signing::token::{GoogleCredentials, TokenSource};
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance/test_service_account.not-a-test.json");
    let mut key: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    // A token endpoint that cannot answer: using it would fail the test.
    key["token_uri"] = json!("http://127.0.0.1:9/token");
    let credentials = GoogleCredentials::from_json(&key.to_string(), "test key").unwrap();
    assert_eq!(credentials.kind(), "service_account");
    let token = credentials.fetch().await.unwrap().token;
    let claims = token.split('.').nth(1).expect("a JWT");
    use base64::Engine as _;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!(claims["iss"], key["client_email"]);
    assert_eq!(claims["scope"], CLOUD_PLATFORM);
}

/// ID tokens for outgoing calls come from the same credentials file: an impersonated service account
/// asks IAM Credentials for one, for the audience asked, with the source credential's token.
#[tokio::test]
async fn id_tokens_for_outgoing_calls_come_from_the_credentials_file() {
    use sea_gcp::signing::token::IdTokens;
    let _env = ENV.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (base, google) = start_google().await;
    let credentials = write_json(dir.path(), "impersonated.json", &impersonated(&base, REFRESH_TOKEN));
    use_credentials(&credentials);
    let audience = "https://billing-abc123-ew.a.run.app";
    let tokens = IdTokens::application_default(audience).unwrap();
    assert!(google.calls().is_empty(), "building fetched nothing");
    let token = tokens.token().await.unwrap();
    assert_eq!(google.issued_by("iam-id"), vec![token.clone()]);
    assert_eq!(tokens.token().await.unwrap(), token, "cached");
    assert_eq!(google.calls(), vec!["oauth: refresh_token".to_string(), format!("iam: {TARGET}:generateIdToken")]);

    // Workload Identity Federation cannot make ID tokens: refused when built, saying what can.
    let token_file = dir.path().join("t");
    std::fs::write(&token_file, SUBJECT_TOKEN).unwrap();
    let wif = write_json(dir.path(), "wif.json", &external_account(&base, &token_file, true));
    use_credentials(&wif);
    let e = IdTokens::application_default(audience).unwrap_err().to_string();
    assert!(e.contains("cannot make ID tokens") && e.contains("impersonated_service_account"), "{e}");
}
