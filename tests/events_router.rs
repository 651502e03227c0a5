//! The events router on loopback: statuses, refusals (the handler never runs), decoding of Pub/Sub,
//! CloudEvents and storage payloads.
#![cfg(all(feature = "events", feature = "testing"))]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sea_gcp::auth::InvokerPolicy;
use sea_gcp::events::{Event, EventsRouter, HandlerError, StorageEvent, StorageEventKind, event_url};
use sea_gcp::pubsub::{PubSubMessage, make_pubsub_message};
use sea_gcp::testing::oidc::{FakeJwks, TestIssuer, b64_json};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const EMAIL: &str = "push@proj.iam.gserviceaccount.com";

struct App {
    base: String,
    issuer: TestIssuer,
    _jwks: FakeJwks,
    runs: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Event>>>,
    client: reqwest::Client,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn app() -> App {
    let issuer = TestIssuer::generate("kid-1");
    let jwks = FakeJwks::start(&[&issuer]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let policy = InvokerPolicy::new(jwks.verifier(), &base).allow_email(EMAIL);
    let (r1, s1) = (runs.clone(), seen.clone());
    let (r2, s2) = (runs.clone(), seen.clone());
    let router = EventsRouter::new(policy)
        .with_body_limit(64 * 1024)
        .on("orders", move |event: Event| {
            let (runs, seen) = (r1.clone(), s1.clone());
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let outcome = match event.parameters.get("outcome").map(String::as_str) {
                    Some("fail") => Err(HandlerError::failed("database password is hunter2")),
                    Some("retry") => Err(HandlerError::retry_later(Duration::from_secs(30), "inventory service down")),
                    Some("drop") => Err(HandlerError::drop_event("not for us")),
                    _ => Ok(()),
                };
                seen.lock().await.push(event);
                outcome
            }
        })
        .on_prefix("storage.", move |event: Event| {
            let (runs, seen) = (r2.clone(), s2.clone());
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                seen.lock().await.push(event);
                Ok(())
            }
        })
        .into_router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    App { base, issuer, _jwks: jwks, runs, seen, client: reqwest::Client::new() }
}

impl App {
    fn token_for(&self, path: &str) -> String {
        self.issuer.mint(&self.issuer.claims(&format!("{}{path}", self.base), EMAIL))
    }
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send().await.unwrap()
    }
    async fn push(&self, path: &str, body: &Value) -> reqwest::Response {
        let token = self.token_for(path);
        self.post(path, Some(&token), serde_json::to_vec(body).unwrap(), &[("content-type", "application/json")]).await
    }
}

fn order_message() -> Value {
    make_pubsub_message(
        &PubSubMessage::new(br#"{"order":42}"#.to_vec()).with_attribute("origin", "shop").with_message_id("m-1"),
    )
}

#[tokio::test]
async fn a_verified_push_reaches_its_handler_with_everything_decoded() {
    let app = app().await;
    let params: BTreeMap<String, String> =
        [("shard".to_string(), "2".to_string()), ("a b".into(), "c&d".into())].into();
    let url = event_url(Some(&app.base), "/events", "orders", "o-1", &params);
    let path = url.strip_prefix(&app.base).unwrap().to_owned();
    let response = app.push(&path, &order_message()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    let seen = app.seen.lock().await;
    let event = &seen[0];
    assert_eq!((event.kind.as_str(), event.reference.as_str()), ("orders", "o-1"));
    assert_eq!(event.parameters, params);
    assert_eq!(event.caller.as_ref().unwrap().email, EMAIL);
    assert_eq!(event.payload["message"]["messageId"], "m-1");
    let message = event.pubsub().unwrap();
    assert_eq!(message.json::<Value>().unwrap(), Some(json!({"order": 42})));
    assert_eq!(message.attributes["origin"], "shop");
    assert!(event.dedup_key().unwrap().len() == 64);
}

#[tokio::test]
async fn statuses_for_handler_outcomes_and_bad_requests() {
    let app = app().await;
    let r = app.push("/events/orders/o-1?outcome=fail", &order_message()).await;
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(!body.contains("hunter2") && body.contains("could not be processed"), "{body}");
    let r = app.push("/events/orders/o-1?outcome=retry", &order_message()).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "30");
    assert_eq!(app.push("/events/orders/o-1?outcome=drop", &order_message()).await.status(), 200);
    assert_eq!(app.runs.load(Ordering::SeqCst), 3);

    // Not JSON: 400, handler not run. Over the limit: 413. Unknown kind: 404. Other methods: 405.
    let token = app.token_for("/events/orders/o-1");
    assert_eq!(app.post("/events/orders/o-1", Some(&token), b"{not json".to_vec(), &[]).await.status(), 400);
    assert_eq!(app.post("/events/orders/o-1", Some(&token), vec![b' '; 65 * 1024], &[]).await.status(), 413);
    assert_eq!(app.push("/events/invoices/i-1", &order_message()).await.status(), 404);
    let get = app.client.get(format!("{}/events/orders/o-1", app.base)).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(app.runs.load(Ordering::SeqCst), 3, "no handler ran for the refused requests");
}

#[tokio::test]
async fn every_token_refusal_is_answered_and_the_handler_never_runs() {
    let app = app().await;
    let path = "/events/orders/o-1?shard=2";
    let aud = format!("{}{path}", app.base);
    let now = chrono::Utc::now().timestamp();
    let good = app.issuer.claims(&aud, EMAIL);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let mint = |c: &Value| app.issuer.mint(c);
    let token = mint(&good);
    let parts: Vec<&str> = token.split('.').collect();
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[0] ^= 0x80;
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("missing header", None, 401),
        ("Bearer garbage", Some("garbage".into()), 401),
        (
            "expired",
            Some(mint(&{
                let mut c = with("exp", json!(now - 3600));
                c["iat"] = json!(now - 7200);
                c
            })),
            401,
        ),
        (
            "not yet valid",
            Some(mint(&{
                let mut c = with("iat", json!(now + 900));
                c["exp"] = json!(now + 4500);
                c
            })),
            401,
        ),
        ("wrong audience", Some(mint(&with("aud", json!("https://elsewhere.example.com/events/orders/o-1")))), 401),
        (
            "audience with another query",
            Some(mint(&with("aud", json!(format!("{}/events/orders/o-1?shard=9", app.base))))),
            401,
        ),
        ("wrong issuer", Some(mint(&with("iss", json!("https://issuer.example.com")))), 401),
        ("email_verified false", Some(mint(&with("email_verified", json!(false)))), 401),
        ("email not allowed", Some(mint(&with("email", json!("intruder@proj.iam.gserviceaccount.com")))), 403),
        ("unknown kid", Some(app.issuer.sign(&json!({"alg": "RS256", "kid": "nope"}), &good)), 401),
        ("alg none", Some(format!("{}.{}.", b64_json(&json!({"alg": "none"})), parts[1])), 401),
        (
            "HS256",
            Some(format!("{}.{}.{}", b64_json(&json!({"alg": "HS256", "kid": "kid-1"})), parts[1], parts[2])),
            401,
        ),
        (
            "tampered payload",
            Some(format!("{}.{}.{}", parts[0], b64_json(&with("email", json!("x@evil.example"))), parts[2])),
            401,
        ),
        ("tampered signature", Some(format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig))), 401),
    ];
    for (name, token, status) in cases {
        let r = app.post(path, token.as_deref(), serde_json::to_vec(&order_message()).unwrap(), &[]).await;
        assert_eq!(r.status().as_u16(), status, "{name}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("kid") && !body.contains(EMAIL), "{name}: no detail in {body}");
    }
    assert_eq!(app.runs.load(Ordering::SeqCst), 0);
    // The genuine token still works (nothing was cached wrongly by the refusals).
    assert_eq!(app.post(path, Some(&token), serde_json::to_vec(&order_message()).unwrap(), &[]).await.status(), 201);
    assert_eq!(app.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_second_authorization_header_is_refused_whichever_comes_first() {
    let app = app().await;
    let path = "/events/orders/o-1";
    let token = app.token_for(path);
    let bearer = format!("Bearer {token}");
    let body = || serde_json::to_vec(&order_message()).unwrap();
    let garbage = "Bearer garbage";
    let cases = [
        ("valid, then bad", [bearer.as_str(), garbage]),
        ("bad, then valid", [garbage, bearer.as_str()]),
        ("valid twice", [bearer.as_str(), bearer.as_str()]),
    ];
    for (name, [first, second]) in cases {
        let r = app.post(path, None, body(), &[("authorization", first), ("authorization", second)]).await;
        assert_eq!(r.status().as_u16(), 401, "{name}");
        let text = r.text().await.unwrap();
        assert!(text.contains("repeated_authorization"), "{name}: {text}");
    }
    assert_eq!(app.runs.load(Ordering::SeqCst), 0, "no handler ran");
    assert_eq!(app.post(path, Some(&token), body(), &[]).await.status(), 201);
}

#[tokio::test]
async fn auth_disabled_and_fail_closed() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let handler = move |_: Event| {
        let r = r.clone();
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    };
    let open = serve(EventsRouter::new(InvokerPolicy::disabled()).on("k", handler.clone()).into_router()).await;
    let client = reqwest::Client::new();
    assert_eq!(client.post(format!("{open}/events/k/r")).body("{}").send().await.unwrap().status(), 201);
    let issuer = TestIssuer::generate("k1");
    let jwks = FakeJwks::start(&[&issuer]).await;
    let closed =
        serve(EventsRouter::new(InvokerPolicy::new(jwks.verifier(), "http://x")).on("k", handler).into_router()).await;
    let token = issuer.mint(&issuer.claims("http://x/events/k/r", EMAIL));
    let r = client.post(format!("{closed}/events/k/r")).bearer_auth(token).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 403, "no allow-list: refused");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_router_nests_under_a_prefix_and_audiences_include_it() {
    let issuer = TestIssuer::generate("k1");
    let jwks = FakeJwks::start(&[&issuer]).await;
    let policy = InvokerPolicy::new(jwks.verifier(), "https://app.example.com").allow_email(EMAIL);
    let router =
        axum::Router::new().nest("/api", EventsRouter::new(policy).on("k", |_: Event| async { Ok(()) }).into_router());
    let base = serve(router).await;
    let client = reqwest::Client::new();
    let good = issuer.mint(&issuer.claims("https://app.example.com/api/events/k/r", EMAIL));
    let r = client.post(format!("{base}/api/events/k/r")).bearer_auth(&good).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 201);
    // The Host header does not make an audience: a token for the loopback host is refused.
    let host_based = issuer.mint(&issuer.claims(&format!("{base}/api/events/k/r"), EMAIL));
    let r = client.post(format!("{base}/api/events/k/r")).bearer_auth(&host_based).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn an_attribute_only_message_has_no_data_wrapped_or_unwrapped() {
    let app = app().await;
    let path = "/events/orders/attrs";
    let token = app.token_for(path);
    // Wrapped, as the emulator sends it: `"data": ""`.
    let wrapped = json!({
        "message": {"data": "", "attributes": {"colour": "blue"}, "messageId": "81",
                    "publishTime": "2026-12-01T10:55:22.070Z"},
        "subscription": "projects/p/subscriptions/s",
    });
    assert_eq!(app.push(path, &wrapped).await.status(), 201);
    // Unwrapped (noWrapper): an empty body.
    let headers = [
        ("x-goog-pubsub-message-id", "82"),
        ("x-goog-pubsub-publish-time", "2026-12-01T10:55:22.070Z"),
        ("colour", "blue"),
    ];
    assert_eq!(app.post(path, Some(&token), Vec::new(), &headers).await.status(), 201);
    let seen = app.seen.lock().await;
    assert_eq!(seen.len(), 2);
    for event in seen.iter() {
        let message = event.pubsub().unwrap();
        assert_eq!(message.data, None, "message {}", message.message_id);
        assert_eq!(message.attributes.get("colour").map(String::as_str), Some("blue"));
    }
}

#[tokio::test]
async fn unwrapped_pushes_and_cloud_events_decode() {
    let app = app().await;
    // noWrapper: raw data, metadata in headers (as the emulator sends them), not JSON.
    let path = "/events/storage.raw/r1";
    let token = app.token_for(path);
    let headers = [
        ("x-goog-pubsub-message-id", "77"),
        ("x-goog-pubsub-publish-time", "2026-12-01T10:55:22.070Z"),
        ("x-goog-pubsub-subscription-name", "projects/p/subscriptions/s"),
        ("x-goog-ordering-key", "k1"),
        ("colour", "blue"),
        ("content-type", "application/octet-stream"),
    ];
    assert_eq!(app.post(path, Some(&token), b"plain text".to_vec(), &headers).await.status(), 201);
    // Binary CloudEvent and structured CloudEvent (Eventarc storage event from the docs' shape).
    let structured: Value =
        serde_json::from_str(include_str!("data/events/eventarc_storage_metadata_updated.json")).unwrap();
    let path = "/events/storage.media/eventarc";
    let token = app.token_for(path);
    let binary_headers = [
        ("ce-id", "9876543210123456"),
        ("ce-source", "//storage.googleapis.com/projects/_/buckets/my-app-media"),
        ("ce-specversion", "1.0"),
        ("ce-type", "google.cloud.storage.object.v1.metadataUpdated"),
        ("ce-subject", "objects/uploads/reports/q3.pdf"),
        ("ce-time", "2026-11-27T06:00:00.000Z"),
        ("ce-bucket", "my-app-media"),
        ("content-type", "application/json"),
    ];
    let data = serde_json::to_vec(&structured["data"]).unwrap();
    assert_eq!(app.post(path, Some(&token), data, &binary_headers).await.status(), 201);
    let body = serde_json::to_vec(&structured).unwrap();
    assert_eq!(
        app.post(path, Some(&token), body, &[("content-type", "application/cloudevents+json; charset=utf-8")])
            .await
            .status(),
        201
    );

    let seen = app.seen.lock().await;
    let m = seen[0].pubsub().unwrap();
    assert_eq!(m.data.as_deref(), Some(&b"plain text"[..]));
    assert_eq!((m.message_id.as_str(), m.ordering_key.as_deref()), ("77", Some("k1")));
    assert_eq!(m.attributes.get("colour").map(String::as_str), Some("blue"));
    assert!(!m.attributes.contains_key("authorization"));
    let binary = seen[1].cloud_event().unwrap();
    let structured_ce = seen[2].cloud_event().unwrap();
    assert_eq!(binary.id, structured_ce.id);
    assert_eq!(binary.data, structured_ce.data);
    assert_eq!(binary.extensions.get("bucket").map(String::as_str), Some("my-app-media"));
    assert_eq!(seen[1].dedup_key(), seen[2].dedup_key(), "same CloudEvent in either mode: same identity");
    for event in &seen[1..] {
        let s = event.storage().unwrap();
        assert_eq!(s.kind, StorageEventKind::MetadataUpdate);
        assert_eq!(
            (s.bucket.as_str(), s.name.as_str(), s.generation, s.metageneration),
            ("my-app-media", "uploads/reports/q3.pdf", 1764219600123456, Some(2))
        );
        assert_eq!(s.metadata.get("reviewed").map(String::as_str), Some("no"));
    }
}

#[test]
fn gcs_notifications_decode_typed() {
    let sample: Value = serde_json::from_str(include_str!("data/events/gcs_notification_finalize.json")).unwrap();
    let mut message = PubSubMessage::new(serde_json::to_vec(&sample["data"]).unwrap());
    for (k, v) in sample["attributes"].as_object().unwrap() {
        message = message.with_attribute(k.clone(), v.as_str().unwrap());
    }
    let envelope = serde_json::to_vec(&make_pubsub_message(&message)).unwrap();
    let event = StorageEvent::from_pubsub(&PubSubMessage::from_push_envelope(&envelope).unwrap()).unwrap();
    assert_eq!(event.kind, StorageEventKind::Finalize);
    assert_eq!(event.size, Some(482113));
    assert_eq!(event.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(event.overwrote_generation, Some(1764133200654321));
    assert_eq!(event.crc32c.as_deref(), Some("n8VbAQ=="));
    assert_eq!(event.event_time.unwrap().timestamp_subsec_micros(), 123456);

    let sample: Value = serde_json::from_str(include_str!("data/events/gcs_notification_delete_none.json")).unwrap();
    let mut message = PubSubMessage { data: None, ..PubSubMessage::new(Vec::new()) };
    for (k, v) in sample["attributes"].as_object().unwrap() {
        message = message.with_attribute(k.clone(), v.as_str().unwrap());
    }
    let event = StorageEvent::from_pubsub(&message).unwrap();
    assert_eq!((event.kind, event.generation, event.size), (StorageEventKind::Delete, 1764219600123456, None));

    let not_storage = PubSubMessage::new(b"{}".to_vec()).with_attribute("eventType", "SOMETHING_ELSE");
    assert!(StorageEvent::from_pubsub(&not_storage).unwrap_err().to_string().contains("not a Cloud Storage"));
    let _ = STANDARD.encode("x");
}
