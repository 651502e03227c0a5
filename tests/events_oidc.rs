//! OIDC verification: every refusal with its status, key rotation, the cold-cache burst.
#![cfg(all(feature = "oidc", feature = "testing"))]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use sea_gcp::auth::{AuthError, InvokerPolicy, JwksCache, JwksOptions, OidcVerifier, VerifiedCaller, VerifierOptions};
use sea_gcp::testing::oidc::{FakeJwks, JwksFault, TestIssuer, b64_json};
use serde_json::{Value, json};

const BASE: &str = "https://app.example.com";
const PATH: &str = "/events/orders/o-1?shard=2";
const EMAIL: &str = "push@proj.iam.gserviceaccount.com";

fn aud() -> String {
    format!("{BASE}{PATH}")
}

fn headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    h
}

struct Setup {
    issuer: TestIssuer,
    jwks: FakeJwks,
    policy: InvokerPolicy,
}

async fn setup() -> Setup {
    let issuer = TestIssuer::generate("kid-1");
    let jwks = FakeJwks::start(&[&issuer]).await;
    let policy = InvokerPolicy::new(jwks.verifier(), BASE).allow_email(EMAIL);
    Setup { issuer, jwks, policy }
}

async fn check(policy: &InvokerPolicy, token: &str) -> Result<(), AuthError> {
    policy.authorize(&headers(token), PATH).await.map(|_| ())
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

#[tokio::test]
async fn a_valid_token_yields_the_caller() {
    let s = setup().await;
    let token = s.issuer.mint(&s.issuer.claims(&aud(), EMAIL));
    let caller = s.policy.authorize(&headers(&token), PATH).await.unwrap().unwrap();
    assert_eq!(caller.email, EMAIL);
    assert_eq!(caller.audience, aud());
    // The audience without the query string is accepted too.
    let token = s.issuer.mint(&s.issuer.claims(&format!("{BASE}/events/orders/o-1"), EMAIL));
    assert!(check(&s.policy, &token).await.is_ok());
    // `accounts.google.com` is Google's other issuer; `aud` as an array holding ours is fine.
    let claims = with(s.issuer.claims(&aud(), EMAIL), "iss", json!("accounts.google.com"));
    assert!(check(&s.policy, &s.issuer.mint(&claims)).await.is_ok());
    let claims = with(s.issuer.claims(&aud(), EMAIL), "aud", json!(["other", aud()]));
    assert!(check(&s.policy, &s.issuer.mint(&claims)).await.is_ok());
    assert_eq!(s.jwks.fetches(), 1, "one fetch, then the cache");
}

#[tokio::test]
async fn every_refusal_has_its_error_and_status() {
    let s = setup().await;
    let now = chrono::Utc::now().timestamp();
    let good = s.issuer.claims(&aud(), EMAIL);
    let mint = |c: &Value| s.issuer.mint(c);
    let good_token = mint(&good);
    let (h, p, sig) = {
        let mut it = good_token.split('.');
        (it.next().unwrap().to_string(), it.next().unwrap().to_string(), it.next().unwrap().to_string())
    };

    // HS256 keyed with the public key (key confusion).
    let hs_header = b64_json(&json!({"alg": "HS256", "kid": "kid-1", "typ": "JWT"}));
    let hs_input = format!("{hs_header}.{p}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&s.issuer.public_modulus()).unwrap();
    mac.update(hs_input.as_bytes());
    let hs_token = format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    // alg none, no signature.
    let none_token = format!("{}.{p}.", b64_json(&json!({"alg": "none", "kid": "kid-1"})));
    // Tampered payload: same signature, email changed.
    let tampered_claims = b64_json(&with(good.clone(), "email", json!("attacker@evil.example")));
    let tampered_payload = format!("{h}.{tampered_claims}.{sig}");
    // Tampered signature: one byte flipped.
    let mut sig_bytes = URL_SAFE_NO_PAD.decode(&sig).unwrap();
    sig_bytes[10] ^= 0x01;
    let tampered_sig = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig_bytes));

    let cases: Vec<(&str, String, &str, StatusCode)> = vec![
        (
            "expired",
            mint(&with(with(good.clone(), "iat", json!(now - 7200)), "exp", json!(now - 3600))),
            "expired",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not yet valid",
            mint(&with(with(good.clone(), "iat", json!(now + 600)), "exp", json!(now + 4200))),
            "not_yet_valid",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "nbf in the future",
            mint(&with(good.clone(), "nbf", json!(now + 600))),
            "not_yet_valid",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong audience",
            mint(&with(good.clone(), "aud", json!("https://other.example.com/events/orders/o-1"))),
            "wrong_audience",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "audience with another query",
            mint(&with(good.clone(), "aud", json!(format!("{BASE}/events/orders/o-1?shard=3")))),
            "wrong_audience",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong issuer",
            mint(&with(good.clone(), "iss", json!("https://evil.example.com"))),
            "wrong_issuer",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "email_verified false",
            mint(&with(good.clone(), "email_verified", json!(false))),
            "email_not_verified",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "email_verified absent",
            mint(&{
                let mut c = good.clone();
                c.as_object_mut().unwrap().remove("email_verified");
                c
            }),
            "email_not_verified",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "email not allowed",
            mint(&with(good.clone(), "email", json!("other@proj.iam.gserviceaccount.com"))),
            "email_not_allowed",
            StatusCode::FORBIDDEN,
        ),
        ("alg none", none_token, "unsupported_algorithm", StatusCode::UNAUTHORIZED),
        ("HS256 with the public key", hs_token, "unsupported_algorithm", StatusCode::UNAUTHORIZED),
        ("tampered payload", tampered_payload, "bad_signature", StatusCode::UNAUTHORIZED),
        ("tampered signature", tampered_sig, "bad_signature", StatusCode::UNAUTHORIZED),
        (
            "unknown kid",
            s.issuer.sign(&json!({"alg": "RS256", "kid": "kid-404"}), &good),
            "unknown_key",
            StatusCode::UNAUTHORIZED,
        ),
        ("Bearer garbage", "garbage".into(), "malformed_token", StatusCode::UNAUTHORIZED),
        ("Bearer three garbage parts", "a.b.c".into(), "malformed_token", StatusCode::UNAUTHORIZED),
    ];
    for (name, token, code, status) in cases {
        let err = check(&s.policy, &token).await.expect_err(name);
        assert_eq!((err.code(), err.status()), (code, status), "{name}: {err}");
    }

    // Missing header, and a non-Bearer scheme.
    let err = s.policy.authorize(&HeaderMap::new(), PATH).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("missing_token", StatusCode::UNAUTHORIZED));
    let mut basic = HeaderMap::new();
    basic.insert(AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwYXNz"));
    assert_eq!(s.policy.authorize(&basic, PATH).await.unwrap_err().code(), "malformed_token");
}

#[tokio::test]
async fn more_than_one_authorization_header_is_refused_in_any_order() {
    let s = setup().await;
    let good = format!("Bearer {}", s.issuer.mint(&s.issuer.claims(&aud(), EMAIL)));
    let pairs = [
        (good.as_str(), "Bearer garbage"),
        ("Bearer garbage", good.as_str()),
        (good.as_str(), good.as_str()),
        (good.as_str(), "Basic dXNlcjpwYXNz"),
    ];
    for (first, second) in pairs {
        let mut h = HeaderMap::new();
        h.append(AUTHORIZATION, HeaderValue::from_str(first).unwrap());
        h.append(AUTHORIZATION, HeaderValue::from_str(second).unwrap());
        let err = s.policy.authorize(&h, PATH).await.unwrap_err();
        assert_eq!(
            (err.code(), err.status()),
            ("repeated_authorization", StatusCode::UNAUTHORIZED),
            "{first} / {second}"
        );
        // Also with authentication disabled: the app and a proxy in front must not read different copies.
        assert_eq!(InvokerPolicy::disabled().authorize(&h, PATH).await.unwrap_err().code(), "repeated_authorization");
    }
    // Two credentials folded into one header by a proxy are not one token either.
    let folded = HeaderValue::from_str(&format!("{good}, Bearer garbage")).unwrap();
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, folded);
    assert_eq!(s.policy.authorize(&h, PATH).await.unwrap_err().code(), "malformed_token");
    // The single valid header is still accepted.
    assert!(s.policy.authorize(&headers(&good["Bearer ".len()..]), PATH).await.is_ok());
}

#[tokio::test]
async fn no_allow_list_fails_closed_and_disabled_lets_through() {
    let s = setup().await;
    let open = InvokerPolicy::new(s.jwks.verifier(), BASE);
    let token = s.issuer.mint(&s.issuer.claims(&aud(), EMAIL));
    let err = open.authorize(&headers(&token), PATH).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("no_allow_list", StatusCode::FORBIDDEN));
    // The settings fallback applies when the policy names nobody; the policy's own list wins.
    let fallback = InvokerPolicy::new(s.jwks.verifier(), BASE).with_fallback_allow_list([EMAIL]);
    assert!(fallback.authorize(&headers(&token), PATH).await.is_ok());
    let own = InvokerPolicy::new(s.jwks.verifier(), BASE).allow_email("x@y.z").with_fallback_allow_list([EMAIL]);
    assert_eq!(own.authorize(&headers(&token), PATH).await.unwrap_err().code(), "email_not_allowed");
    assert_eq!(InvokerPolicy::disabled().authorize(&HeaderMap::new(), PATH).await, Ok(None));
}

#[tokio::test]
async fn an_unknown_kid_is_found_after_one_refresh() {
    let s = setup().await;
    assert!(check(&s.policy, &s.issuer.mint(&s.issuer.claims(&aud(), EMAIL))).await.is_ok());
    assert_eq!(s.jwks.fetches(), 1);
    let rotated = TestIssuer::generate("kid-2");
    let token = rotated.mint(&rotated.claims(&aud(), EMAIL));
    assert_eq!(check(&s.policy, &token).await.unwrap_err().code(), "unknown_key");
    assert_eq!(s.jwks.fetches(), 2, "the unknown kid forced one refresh");
    s.jwks.publish(&rotated);
    assert!(check(&s.policy, &token).await.is_ok());
    assert_eq!(s.jwks.fetches(), 3);
    // Both keys now verify without another fetch.
    assert!(check(&s.policy, &s.issuer.mint(&s.issuer.claims(&aud(), EMAIL))).await.is_ok());
    assert!(check(&s.policy, &token).await.is_ok());
    assert_eq!(s.jwks.fetches(), 3);
}

#[tokio::test]
async fn forced_refreshes_are_rate_limited() {
    let s = setup().await;
    let verifier = OidcVerifier::new(
        JwksCache::new(s.jwks.url(), JwksOptions::default().with_min_refresh_interval(Duration::from_secs(60))),
        VerifierOptions::default(),
    );
    let policy = InvokerPolicy::new(verifier, BASE).allow_email(EMAIL);
    assert!(check(&policy, &s.issuer.mint(&s.issuer.claims(&aud(), EMAIL))).await.is_ok());
    for i in 0..20 {
        let forged =
            s.issuer.sign(&json!({"alg": "RS256", "kid": format!("made-up-{i}")}), &s.issuer.claims(&aud(), EMAIL));
        assert_eq!(check(&policy, &forged).await.unwrap_err().code(), "unknown_key");
    }
    assert_eq!(s.jwks.fetches(), 1, "made-up key ids within the interval send no fetch");
}

#[tokio::test]
async fn a_jwks_outage_is_503_on_a_cold_cache_and_stale_keys_serve_a_warm_one() {
    let s = setup().await;
    let options = JwksOptions::default()
        .with_min_refresh_interval(Duration::ZERO)
        .with_backoff(Duration::from_millis(100), Duration::from_millis(100));
    let policy = policy_with(&s.jwks, options);
    s.jwks.set_failing(true);
    let token = s.issuer.mint(&s.issuer.claims(&aud(), EMAIL));
    let err = check(&policy, &token).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("jwks_unavailable", StatusCode::SERVICE_UNAVAILABLE));
    s.jwks.set_failing(false);
    s.jwks.set_cache_control("no-store");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(check(&policy, &token).await.is_ok(), "the JWKS is fetched again once the backoff has passed");
    assert!(policy.verifier().unwrap().jwks().last_failure().is_none(), "a successful fetch clears the failure");
    s.jwks.set_failing(true);
    assert!(check(&policy, &token).await.is_ok(), "an expired set's key still verifies while the JWKS is down");
}

/// `n` concurrent authorizations, each with a valid token of its own (another `sub`, so none is
/// remembered from another).
fn spawn_requests(
    policy: &Arc<InvokerPolicy>,
    issuer: &TestIssuer,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Result<Option<VerifiedCaller>, AuthError>>> {
    (0..n)
        .map(|i| {
            let token = issuer.mint(&with(issuer.claims(&aud(), EMAIL), "sub", json!(format!("caller-{i}"))));
            let policy = policy.clone();
            tokio::spawn(async move { policy.authorize(&headers(&token), PATH).await })
        })
        .collect()
}

/// A policy whose verifier reads `jwks` with `options`.
fn policy_with(jwks: &FakeJwks, options: JwksOptions) -> InvokerPolicy {
    let verifier = OidcVerifier::new(JwksCache::new(jwks.url(), options), VerifierOptions::default());
    InvokerPolicy::new(verifier, BASE).allow_email(EMAIL)
}

/// The most fetches a failing JWKS may see in `elapsed`: the first, then one per backoff that fits.
fn most_fetches(elapsed: Duration, options: &JwksOptions) -> u64 {
    let (mut fetches, mut next) = (1, options.backoff(1));
    while next <= elapsed {
        fetches += 1;
        next += options.backoff(fetches as u32);
    }
    fetches
}

fn unknown_kid_token(issuer: &TestIssuer, i: usize) -> String {
    issuer.sign(&json!({"alg": "RS256", "kid": format!("made-up-{i}")}), &issuer.claims(&aud(), EMAIL))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_jwks_is_fetched_once_for_200_unknown_kids_then_only_after_backoff() {
    for fault in [JwksFault::ServerError, JwksFault::Garbage] {
        let s = setup().await;
        // The fake's verifier forces a refresh for every unknown kid (no minimum interval): only the
        // failure record and its backoff keep the fetches down.
        let token = s.issuer.mint(&s.issuer.claims(&aud(), EMAIL));
        assert!(check(&s.policy, &token).await.is_ok());
        assert_eq!(s.jwks.fetches(), 1);
        s.jwks.set_fault(fault);
        let started = Instant::now();
        for i in 0..100 {
            let err = check(&s.policy, &unknown_kid_token(&s.issuer, i)).await.unwrap_err();
            assert_eq!((err.code(), err.status()), ("jwks_unavailable", StatusCode::SERVICE_UNAVAILABLE), "{err}");
        }
        let policy = Arc::new(s.policy.clone());
        let tasks: Vec<_> = (100..200)
            .map(|i| {
                let (policy, token) = (policy.clone(), unknown_kid_token(&s.issuer, i));
                tokio::spawn(async move { policy.authorize(&headers(&token), PATH).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap_err().code(), "jwks_unavailable");
        }
        let elapsed = started.elapsed();
        let refreshes = s.jwks.fetches() - 1;
        let bound = most_fetches(elapsed, &JwksOptions::default());
        assert!(
            refreshes >= 1 && refreshes <= bound,
            "{fault:?}: {refreshes} fetches in {elapsed:?} (at most {bound})"
        );
        let failure = s.policy.verifier().unwrap().jwks().last_failure().expect("the failure is recorded");
        assert_eq!(failure.consecutive as u64, refreshes);
        // The cached key still verifies during the outage, without a fetch.
        assert!(check(&s.policy, &token).await.is_ok());
        assert_eq!(s.jwks.fetches() - 1, refreshes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_cold_cache_requests_against_a_failing_jwks_share_one_fetch() {
    let s = setup().await;
    s.jwks.set_failing(true);
    s.jwks.set_delay(Duration::from_millis(200));
    let policy = Arc::new(s.policy.clone());
    let tasks = spawn_requests(&policy, &s.issuer, 50);
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!((err.code(), err.status()), ("jwks_unavailable", StatusCode::SERVICE_UNAVAILABLE));
        assert!(err.to_string().contains("500"), "the recorded error is shared: {err}");
    }
    assert_eq!(s.jwks.fetches(), 1, "one failed fetch for fifty waiters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_jwks_holds_concurrent_requests_for_one_timeout_and_one_fetch() {
    let s = setup().await;
    s.jwks.set_fault(JwksFault::Hang);
    let timeout = Duration::from_secs(1);
    let options = JwksOptions::default().with_min_refresh_interval(Duration::ZERO).with_fetch_timeout(timeout);
    let policy = Arc::new(policy_with(&s.jwks, options));
    let started = Instant::now();
    // A request whose client goes away mid-fetch: the fetch it started is still the one shared.
    let abandoned = {
        let (policy, token) = (policy.clone(), s.issuer.mint(&s.issuer.claims(&aud(), EMAIL)));
        tokio::spawn(async move { policy.authorize(&headers(&token), PATH).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    abandoned.abort();
    let tasks = spawn_requests(&policy, &s.issuer, 3);
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "jwks_unavailable");
        assert!(err.to_string().contains("timed out"), "{err}");
    }
    // One timeout, not one per request in turn (three would take three times as long).
    assert!(started.elapsed() < timeout * 2, "{:?}", started.elapsed());
    assert_eq!(s.jwks.fetches(), 1);
    // During the backoff a request is refused at once with the recorded error, without a fetch.
    let later = Instant::now();
    let err = check(&policy, &s.issuer.mint(&s.issuer.claims(&aud(), EMAIL))).await.unwrap_err();
    assert!(later.elapsed() < timeout / 2, "{:?}", later.elapsed());
    assert_eq!(err.code(), "jwks_unavailable");
    assert!(err.to_string().contains("timed out") && err.to_string().contains("next fetch in"), "{err}");
    assert_eq!(s.jwks.fetches(), 1);
}

#[tokio::test]
async fn failed_fetches_back_off_doubling_and_a_success_resets_the_backoff() {
    let s = setup().await;
    let initial = Duration::from_millis(500);
    let options = JwksOptions::default()
        .with_min_refresh_interval(Duration::ZERO)
        .with_backoff(initial, Duration::from_millis(1500));
    let policy = policy_with(&s.jwks, options.clone());
    let jwks = || policy.verifier().unwrap().jwks();
    let token = s.issuer.mint(&s.issuer.claims(&aud(), EMAIL));
    s.jwks.set_failing(true);

    assert_eq!(check(&policy, &token).await.unwrap_err().code(), "jwks_unavailable");
    let first = jwks().last_failure().unwrap();
    assert_eq!((first.consecutive, first.retry_at - first.at), (1, initial));
    assert!(first.error.contains("500"), "{}", first.error);
    // Within the backoff: no fetch.
    assert_eq!(check(&policy, &token).await.unwrap_err().code(), "jwks_unavailable");
    assert_eq!(s.jwks.fetches(), 1);

    tokio::time::sleep(initial + Duration::from_millis(100)).await;
    assert_eq!(check(&policy, &token).await.unwrap_err().code(), "jwks_unavailable");
    assert_eq!(s.jwks.fetches(), 2, "one retry once the backoff has passed");
    let second = jwks().last_failure().unwrap();
    assert_eq!((second.consecutive, second.retry_at - second.at), (2, initial * 2));
    tokio::time::sleep(initial + Duration::from_millis(100)).await;
    assert_eq!(check(&policy, &token).await.unwrap_err().code(), "jwks_unavailable");
    assert_eq!(s.jwks.fetches(), 2, "the second backoff is twice as long");

    s.jwks.set_failing(false);
    tokio::time::sleep(initial).await;
    assert!(check(&policy, &token).await.is_ok());
    assert_eq!(s.jwks.fetches(), 3);
    assert!(jwks().last_failure().is_none());

    // A new outage starts again from the initial backoff.
    s.jwks.set_failing(true);
    assert_eq!(check(&policy, &unknown_kid_token(&s.issuer, 0)).await.unwrap_err().code(), "jwks_unavailable");
    let again = jwks().last_failure().unwrap();
    assert_eq!((again.consecutive, again.retry_at - again.at), (1, initial));
    assert_eq!(options.backoff(3), Duration::from_millis(1500), "capped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_cache_burst_of_1000_verifies_all_with_one_fetch() {
    let s = setup().await;
    s.jwks.set_delay(Duration::from_millis(300));
    let policy = Arc::new(s.policy.clone());
    let tasks = spawn_requests(&policy, &s.issuer, 1000);
    let mut verified = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_some() {
            verified += 1;
        }
    }
    assert_eq!(verified, 1000);
    assert_eq!(s.jwks.fetches(), 1);
    assert_eq!(policy.verifier().unwrap().jwks().fetch_count(), 1);
}

#[tokio::test]
async fn a_remembered_token_still_gets_every_per_request_check() {
    let s = setup().await;
    let token = s.issuer.mint(&s.issuer.claims(&aud(), EMAIL));
    assert!(check(&s.policy, &token).await.is_ok());
    assert!(check(&s.policy, &token).await.is_ok(), "remembered");
    // Any change to the token misses the cache and fails verification.
    // The first character of the signature carries six full bits, so changing it keeps the
    // base64url canonical and changes the signature (the last one may carry padding bits).
    let at = token.rfind('.').unwrap() + 1;
    let first = &token[at..at + 1];
    let tampered = format!("{}{}{}", &token[..at], if first == "A" { "B" } else { "A" }, &token[at + 1..]);
    assert_eq!(check(&s.policy, &tampered).await.unwrap_err().code(), "bad_signature");
    // The same token at another endpoint: wrong audience, even though it verified before.
    let err = s.policy.authorize(&headers(&token), "/events/orders/o-2").await.unwrap_err();
    assert_eq!(err.code(), "wrong_audience");
    // The allow-list is checked per request too.
    let other = InvokerPolicy::new(s.policy.verifier().unwrap().clone(), BASE).allow_email("someone@else.example");
    assert_eq!(other.authorize(&headers(&token), PATH).await.unwrap_err().code(), "email_not_allowed");
    // An expired token is refused even when remembered: a verifier with zero leeway and a token
    // expiring in one second.
    let strict = OidcVerifier::new(
        JwksCache::new(s.jwks.url(), JwksOptions::default()),
        VerifierOptions::default().with_leeway(Duration::ZERO),
    );
    let strict = InvokerPolicy::new(strict, BASE).allow_email(EMAIL);
    let now = chrono::Utc::now().timestamp();
    let short = s.issuer.mint(&with(s.issuer.claims(&aud(), EMAIL), "exp", json!(now + 1)));
    assert!(check(&strict, &short).await.is_ok());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(check(&strict, &short).await.unwrap_err().code(), "expired");
}
