//! The IAM signBlob signer against a faithful local fake of the metadata server and IAM Credentials:
//! the fake checks the `Metadata-Flavor` header, the Bearer token it issued, the account email in the path
//! and the JSON body, and signs with the conformance dummy key, so results must equal the key signer's.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use sea_gcp::Error;
use sea_gcp::signing::token::MetadataServer;
use sea_gcp::signing::{
    IamSigner, PostPolicyRequest, ServiceAccountKeySigner, Signer, V4Request, post_policy, sign_url, sign_urls,
};

const EMAIL: &str = "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com";

fn key_file() -> PathBuf {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance/test_service_account.not-a-test.json");
    assert!(p.is_file(), "dummy key missing at {} (CARGO_MANIFEST_DIR/tests/data/conformance)", p.display());
    p
}

struct Fake {
    key: ServiceAccountKeySigner,
    token_lifetime: u64,
    tokens_issued: AtomicU64,
    sign_calls: AtomicU64,
}

impl Fake {
    fn current_token(&self) -> String {
        format!("ya29.fake-{}", self.tokens_issued.load(Ordering::SeqCst))
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"code": status.as_u16(), "message": message}}))).into_response()
}

fn metadata_ok(headers: &HeaderMap) -> bool {
    headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) == Some("Google")
}

// The real metadata server sends `Metadata-Flavor: Google` back on every answer (the client checks it).
const FLAVOR: [(&str, &str); 1] = [("metadata-flavor", "Google")];

async fn token(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    if !metadata_ok(&headers) {
        return (FLAVOR, error(StatusCode::FORBIDDEN, "Missing Metadata-Flavor:Google header")).into_response();
    }
    fake.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let body = json!({"access_token": fake.current_token(), "expires_in": fake.token_lifetime, "token_type": "Bearer"});
    (FLAVOR, Json(body)).into_response()
}

async fn email(headers: HeaderMap) -> Response {
    if !metadata_ok(&headers) {
        return (FLAVOR, error(StatusCode::FORBIDDEN, "Missing Metadata-Flavor:Google header")).into_response();
    }
    (FLAVOR, EMAIL).into_response()
}

async fn sign_blob(
    State(fake): State<Arc<Fake>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(account) = rest.strip_suffix(":signBlob") else {
        return error(StatusCode::NOT_FOUND, "unknown method");
    };
    let want = format!("Bearer {}", fake.current_token());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Request had invalid authentication credentials.");
    }
    if account != EMAIL {
        return error(StatusCode::FORBIDDEN, "Permission 'iam.serviceAccounts.signBlob' denied");
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body is not a JSON object");
    };
    if body.len() != 1 {
        return error(StatusCode::BAD_REQUEST, "unknown fields in body");
    }
    let Some(payload) = body.get("payload").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "payload missing");
    };
    let Ok(payload) = base64::engine::general_purpose::STANDARD.decode(payload) else {
        return error(StatusCode::BAD_REQUEST, "payload is not base64");
    };
    fake.sign_calls.fetch_add(1, Ordering::SeqCst);
    let signed = fake.key.sign_blocking(&payload).unwrap();
    Json(json!({"keyId": "0123abcd", "signedBlob": base64::engine::general_purpose::STANDARD.encode(signed)}))
        .into_response()
}

async fn start(token_lifetime: u64) -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake {
        key: ServiceAccountKeySigner::from_file(key_file()).unwrap(),
        token_lifetime,
        tokens_issued: AtomicU64::new(0),
        sign_calls: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .route("/computeMetadata/v1/instance/service-accounts/default/token", get(token))
        .route("/computeMetadata/v1/instance/service-accounts/default/email", get(email))
        .route("/v1/projects/-/serviceAccounts/{rest}", post(sign_blob))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, fake)
}

fn iam_signer(base: &str, email: Option<&str>) -> IamSigner {
    IamSigner::new(email.map(str::to_string), Arc::new(MetadataServer::new(base)))
        .with_endpoint(base)
        .with_metadata_server(MetadataServer::new(base))
}

fn request() -> V4Request {
    V4Request {
        bucket: "test-bucket".into(),
        object: Some("test-object".into()),
        expiration: Duration::from_secs(10),
        timestamp: Some("2019-02-01T09:00:00Z".parse().unwrap()),
        ..Default::default()
    }
}

#[tokio::test]
async fn sign_blob_equals_the_key_signer_and_caches_the_token() {
    let (base, fake) = start(3600).await;
    let iam = iam_signer(&base, None);
    let key = ServiceAccountKeySigner::from_file(key_file()).unwrap();

    // Email from the metadata server; signature from signBlob; same URL as signing with the key.
    assert_eq!(iam.credential_id().await.unwrap(), EMAIL);
    let via_iam = sign_url(&iam, &request()).await.unwrap();
    let via_key = sign_url(&key, &request()).await.unwrap();
    assert_eq!(via_iam, via_key);

    // The second signature reuses the token.
    let mut other = request();
    other.object = Some("other-object".into());
    assert_eq!(sign_url(&iam, &other).await.unwrap(), sign_url(&key, &other).await.unwrap());
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 1);
    assert_eq!(iam.tokens().fetch_count(), 1);
    assert_eq!(fake.sign_calls.load(Ordering::SeqCst), 2);

    // POST policies and batches go through signBlob too.
    let policy_req = PostPolicyRequest {
        bucket: "b".into(),
        object: "o".into(),
        expiration: Duration::from_secs(60),
        timestamp: Some("2020-01-23T04:35:30Z".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(post_policy(&iam, &policy_req).await.unwrap(), post_policy(&key, &policy_req).await.unwrap());
    let iam: Arc<dyn Signer> = Arc::new(iam);
    let batch = sign_urls(Arc::clone(&iam), vec![request(), other.clone()]).await.unwrap();
    assert_eq!(batch.to_vec(), vec![via_key.url, sign_url(&key, &other).await.unwrap().url]);
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_token_about_to_expire_is_replaced() {
    // 60 s of life is inside the refresh margin: every signature needs a fresh token.
    let (base, fake) = start(60).await;
    let iam = iam_signer(&base, Some(EMAIL));
    sign_url(&iam, &request()).await.unwrap();
    sign_url(&iam, &request()).await.unwrap();
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 2);
    assert_eq!(iam.tokens().fetch_count(), 2);
}

#[tokio::test]
async fn refusals_are_signing_errors_that_say_what_to_do() {
    let (base, fake) = start(3600).await;
    let iam = iam_signer(&base, Some("someone-else@p.iam.gserviceaccount.com"));
    let e = sign_url(&iam, &request()).await.unwrap_err();
    assert!(matches!(e, Error::Signing { .. }), "{e:?}");
    assert!(e.to_string().contains("HTTP 403") && e.to_string().contains("serviceAccountTokenCreator"), "{e}");
    assert_eq!(fake.sign_calls.load(Ordering::SeqCst), 0);

    // The fake is faithful: no Metadata-Flavor header, no token.
    let status = reqwest::get(format!("{base}/computeMetadata/v1/instance/service-accounts/default/token"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);

    // No metadata server: the error names it and the alternatives.
    let unreachable = IamSigner::new(None, Arc::new(MetadataServer::new("http://127.0.0.1:9")))
        .with_metadata_server(MetadataServer::new("http://127.0.0.1:9"));
    let e = sign_url(&unreachable, &request()).await.unwrap_err();
    assert!(matches!(e, Error::Signing { .. }), "{e:?}");
    assert!(
        e.to_string().contains("metadata server") && e.to_string().contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{e}"
    );
}
