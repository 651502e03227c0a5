//! Google's V4 signing conformance vectors (`tests/data/conformance/v4_signatures.json`), every case, through
//! the library: signed URLs (URL, canonical request, string to sign) and POST policies (URL and all
//! fields, including `policy` and `x-goog-signature`). Also bad-input errors and signer equivalences.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use sea_gcp::Error;
use sea_gcp::signing::{
    Endpoint, HmacSigner, PolicyCondition, PostPolicyRequest, ServiceAccountKeySigner, Signer, UrlCache, UrlStyle,
    V4Request, post_policy, sign_url, sign_url_blocking, sign_urls, sign_urls_parallel, sign_urls_parallel_with,
};

mod conformance_support;
use conformance_support::{expiration_secs, key_path, vectors};

fn signer() -> ServiceAccountKeySigner {
    ServiceAccountKeySigner::from_file(key_path()).expect("dummy key loads")
}

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string())).collect())
        .unwrap_or_default()
}

fn opt(case: &Value, name: &str) -> Option<String> {
    case.get(name).and_then(Value::as_str).map(str::to_string)
}

fn timestamp(case: &Value) -> DateTime<Utc> {
    case["timestamp"].as_str().unwrap().parse().unwrap()
}

fn style(case: &Value) -> UrlStyle {
    opt(case, "urlStyle").map(|s| s.parse().unwrap()).unwrap_or_default()
}

fn request(case: &Value) -> V4Request {
    V4Request {
        bucket: case["bucket"].as_str().unwrap().to_string(),
        object: opt(case, "object"),
        method: case["method"].as_str().unwrap().parse().unwrap(),
        expiration: Duration::from_secs(expiration_secs(case)),
        timestamp: Some(timestamp(case)),
        headers: str_map(case.get("headers")),
        query_params: str_map(case.get("queryParameters")),
        endpoint: Endpoint {
            url_style: style(case),
            scheme: opt(case, "scheme"),
            hostname: opt(case, "hostname"),
            client_endpoint: opt(case, "clientEndpoint"),
            emulator_host: opt(case, "emulatorHostname"),
            universe_domain: opt(case, "universeDomain"),
            bucket_bound_hostname: opt(case, "bucketBoundHostname"),
        },
    }
}

fn policy_request(input: &Value) -> PostPolicyRequest {
    let mut conditions = Vec::new();
    if let Some(c) = input.get("conditions").and_then(Value::as_object) {
        for (name, args) in c {
            let args = args.as_array().unwrap();
            let condition = match name.as_str() {
                "startsWith" => PolicyCondition::StartsWith {
                    field: args[0].as_str().unwrap().trim_start_matches('$').to_string(),
                    prefix: args[1].as_str().unwrap().to_string(),
                },
                "contentLengthRange" => PolicyCondition::ContentLengthRange {
                    min: args[0].as_u64().unwrap(),
                    max: args[1].as_u64().unwrap(),
                },
                other => panic!("condition kind {other} not mapped"),
            };
            conditions.push(condition);
        }
    }
    PostPolicyRequest {
        bucket: input["bucket"].as_str().unwrap().to_string(),
        object: input["object"].as_str().unwrap().to_string(),
        expiration: Duration::from_secs(expiration_secs(input)),
        timestamp: Some(timestamp(input)),
        fields: str_map(input.get("fields")),
        conditions,
        endpoint: Endpoint {
            url_style: style(input),
            scheme: opt(input, "scheme"),
            bucket_bound_hostname: opt(input, "bucketBoundHostname"),
            ..Endpoint::default()
        },
    }
}

#[tokio::test]
async fn every_signed_url_vector_passes() {
    let v = vectors();
    let cases = v["signingV4Tests"].as_array().unwrap();
    assert!(!cases.is_empty());
    let signer = signer();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["description"].as_str().unwrap();
        let got = match sign_url(&signer, &request(case)).await {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{name}: error {e}"));
                continue;
            }
        };
        for (what, got, want) in [
            ("canonical request", &got.canonical_request, &case["expectedCanonicalRequest"]),
            ("string to sign", &got.string_to_sign, &case["expectedStringToSign"]),
            ("url", &got.url, &case["expectedUrl"]),
        ] {
            if got != want.as_str().unwrap() {
                failures.push(format!("{name}: {what}\n  got:  {got:?}\n  want: {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    eprintln!("{} signed-URL vectors passed", cases.len());
}

#[tokio::test]
async fn every_post_policy_vector_passes() {
    let v = vectors();
    let cases = v["postPolicyV4Tests"].as_array().unwrap();
    assert!(!cases.is_empty());
    let signer = signer();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["description"].as_str().unwrap();
        let want = &case["policyOutput"];
        let got = match post_policy(&signer, &policy_request(&case["policyInput"])).await {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{name}: error {e}"));
                continue;
            }
        };
        if got.url != want["url"].as_str().unwrap() {
            failures.push(format!("{name}: url {} != {}", got.url, want["url"]));
        }
        let want_fields = str_map(want.get("fields"));
        if got.fields != want_fields {
            failures.push(format!("{name}: fields\n  got:  {:?}\n  want: {want_fields:?}", got.fields));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[tokio::test]
async fn blocking_batch_and_async_batch_agree_with_sign_url() {
    let v = vectors();
    let requests: Vec<V4Request> = v["signingV4Tests"].as_array().unwrap().iter().map(request).collect();
    let signer: Arc<dyn Signer> = Arc::new(signer());
    let mut one_by_one = Vec::new();
    for r in &requests {
        one_by_one.push(sign_url(&*signer, r).await.unwrap());
        assert_eq!(one_by_one.last().unwrap(), &sign_url_blocking(&*signer, r, Utc::now()).unwrap());
    }
    let urls: Vec<&str> = one_by_one.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(sign_urls_parallel(&*signer, &requests).unwrap().iter().collect::<Vec<_>>(), urls);
    assert_eq!(sign_urls(Arc::clone(&signer), requests.clone()).await.unwrap().iter().collect::<Vec<_>>(), urls);
    // Every vector's signing time, many times over, across the worker threads' shares: the same URLs
    // in the same order, whatever thread signed them.
    let many: Vec<V4Request> = requests.iter().cycle().take(requests.len() * 40).cloned().collect();
    for threads in [1, 2, 3] {
        let batch = sign_urls_parallel_with(&*signer, &many, Utc::now(), threads).unwrap();
        assert_eq!(batch.len(), many.len());
        for (i, url) in batch.iter().enumerate() {
            assert_eq!(url, urls[i % urls.len()], "URL {i} with {threads} thread(s)");
            assert_eq!(&batch[i], url);
        }
    }
}

#[test]
fn hmac_batches_equal_one_by_one_signing_on_any_thread_count() {
    let hmac = HmacSigner::new("GOOG1EXAMPLE", "bm90LWEtcmVhbC1zZWNyZXQ").unwrap();
    let now = Utc::now();
    let requests: Vec<V4Request> = (0..1500)
        .map(|i| V4Request {
            bucket: "b".into(),
            object: Some(format!("photos/{i}.jpg")),
            expiration: Duration::from_secs(600),
            // A few requests carry their own signing time: another scope, another derived key.
            timestamp: (i % 97 == 0).then(|| "2020-01-23T04:35:30Z".parse().unwrap()),
            ..Default::default()
        })
        .collect();
    let one_by_one: Vec<String> = requests.iter().map(|r| sign_url_blocking(&hmac, r, now).unwrap().url).collect();
    for threads in [1, 2, 4] {
        let batch = sign_urls_parallel_with(&hmac, &requests, now, threads).unwrap();
        assert_eq!(batch.to_vec(), one_by_one, "{threads} thread(s)");
        assert_eq!(batch, one_by_one.iter().collect(), "equal to the same URLs in one buffer");
        assert_eq!(batch.get(requests.len()), None);
        assert!(!format!("{batch:?}").contains("X-Goog-Signature"), "Debug shows no URL");
    }
    // A bad request fails the whole batch, wherever it sits.
    let mut bad = requests.clone();
    bad[1200].expiration = Duration::from_secs(8 * 86_400);
    assert!(sign_urls_parallel_with(&hmac, &bad, now, 2).is_err());
}

#[tokio::test]
async fn hmac_signatures_follow_the_v4_derivation() {
    use hmac::{Hmac, Mac};
    type H = Hmac<sha2::Sha256>;
    fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = H::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    let signer = HmacSigner::new("GOOG1EXAMPLEACCESSID", "dGhpcyBpcyBub3QgYSByZWFsIHNlY3JldA").unwrap();
    let v = vectors();
    let case = &v["signingV4Tests"][0];
    let got = sign_url(&signer, &request(case)).await.unwrap();
    assert!(
        got.string_to_sign.starts_with("GOOG4-HMAC-SHA256\n20190201T090000Z\n20190201/auto/storage/goog4_request\n")
    );
    assert!(got.url.contains("X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Credential=GOOG1EXAMPLEACCESSID%2F20190201"));
    let derive = |date: &str| {
        let mut key = b"GOOG4dGhpcyBpcyBub3QgYSByZWFsIHNlY3JldA".to_vec();
        for part in [date, "auto", "storage", "goog4_request"] {
            key = mac(&key, part.as_bytes());
        }
        key
    };
    let key = derive("20190201");
    let want = hex::encode(mac(&key, got.string_to_sign.as_bytes()));
    assert!(got.url.ends_with(&format!("&X-Goog-Signature={want}")), "{}", got.url);

    // POST policies with HMAC sign the base64 policy under the same derived key.
    let policy = post_policy(&signer, &policy_request(&v["postPolicyV4Tests"][0]["policyInput"])).await.unwrap();
    assert!(policy.fields["x-goog-credential"].starts_with("GOOG1EXAMPLEACCESSID/20200123/"));
    assert_eq!(
        policy.fields["x-goog-signature"],
        hex::encode(mac(&derive("20200123"), policy.fields["policy"].as_bytes()))
    );
}

#[test]
fn url_cache_returns_one_url_per_window() {
    let signer: Arc<dyn Signer> = Arc::new(signer());
    let cache = UrlCache::new(Arc::clone(&signer), Duration::from_secs(600)).unwrap();
    let req = V4Request {
        bucket: "b".into(),
        object: Some("o.png".into()),
        expiration: Duration::from_secs(3600),
        ..Default::default()
    };
    let t0: DateTime<Utc> = "2026-01-01T10:00:05Z".parse().unwrap();
    let a = cache.url_blocking(&req, Some(7), t0).unwrap();
    let b = cache.url_blocking(&req, Some(7), t0 + chrono::Duration::seconds(500)).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(a.contains("X-Goog-Date=20260101T100000Z") && a.contains("X-Goog-Expires=4200"), "{a}");
    assert!(a.contains("&generation=7"), "{a}");
    let other_generation = cache.url_blocking(&req, Some(8), t0).unwrap();
    assert_ne!(a, other_generation);
    let next_window = cache.url_blocking(&req, Some(7), t0 + chrono::Duration::seconds(600)).unwrap();
    assert!(next_window.contains("X-Goog-Date=20260101T101000Z"), "{next_window}");
    let mut put = req.clone();
    put.method = sea_gcp::http::Method::PUT;
    assert_ne!(cache.url_blocking(&put, Some(7), t0).unwrap(), a);
    assert_eq!(cache.len(), 4);
    assert!(matches!(UrlCache::new(signer, Duration::ZERO), Err(Error::InvalidArgument(_))));
}

#[tokio::test]
async fn bad_inputs_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };

    let e = ServiceAccountKeySigner::from_file(write("bad.json", "{not json")).unwrap_err();
    assert!(matches!(e, Error::Config { .. }) && e.to_string().contains("not valid JSON"), "{e}");

    let e =
        ServiceAccountKeySigner::from_file(write("nokey.json", r#"{"type":"service_account","client_email":"a@b.c"}"#))
            .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(e.to_string().contains("not a service-account key: field private_key missing"), "{e}");

    let e = ServiceAccountKeySigner::from_file(dir.path().join("absent.json")).unwrap_err();
    assert!(e.to_string().contains("cannot read service-account key file"), "{e}");

    let e = ServiceAccountKeySigner::from_file(write(
        "garbled.json",
        r#"{"client_email":"a@b.c","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#,
    ))
    .unwrap_err();
    assert!(matches!(e, Error::Config { .. }) && e.to_string().contains("not an RSA key"), "{e}");

    let signer = signer();
    let base = V4Request { bucket: "b".into(), object: Some("o".into()), ..Default::default() };
    for (req, needle) in [
        (V4Request { expiration: Duration::from_secs(8 * 86_400), ..base.clone() }, "7 days"),
        (V4Request { expiration: Duration::ZERO, ..base.clone() }, "at least 1 second"),
        (
            V4Request { expiration: Duration::from_secs(60), bucket: String::new(), ..base.clone() },
            "bucket name is empty",
        ),
        (
            V4Request {
                expiration: Duration::from_secs(60),
                endpoint: Endpoint { url_style: UrlStyle::BucketBoundHostname, ..Endpoint::default() },
                ..base.clone()
            },
            "bucket-bound hostname",
        ),
        (
            V4Request {
                expiration: Duration::from_secs(60),
                query_params: [("X-Goog-Signature".to_string(), "x".to_string())].into(),
                ..base.clone()
            },
            "set by the signature itself",
        ),
    ] {
        let e = sign_url(&signer, &req).await.unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains(needle), "{needle}: {e}");
    }
    let e = "sideways".parse::<UrlStyle>().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("path, virtual-hosted"), "{e}");
    let e = HmacSigner::new("id", "").unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");
}

#[tokio::test]
async fn signer_from_config_builds_each_kind() {
    use sea_gcp::config::SigningConfig;
    use sea_gcp::signing::{SigningAlgorithm, signer_from_config};
    let s = signer_from_config(&SigningConfig::ServiceAccountKey { path: key_path() }).await.unwrap();
    assert_eq!(s.algorithm(), SigningAlgorithm::Rsa);
    assert_eq!(s.credential_id().await.unwrap(), "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com");
    let s = signer_from_config(&SigningConfig::Hmac { access_id: "GOOG1X".into(), secret: "s".into() }).await.unwrap();
    assert_eq!(s.algorithm(), SigningAlgorithm::Hmac);
    let e = signer_from_config(&SigningConfig::ServiceAccountKey { path: "/nonexistent/key.json".into() })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config { .. }) && e.to_string().contains("/nonexistent/key.json"), "{e}");
    let s = signer_from_config(&SigningConfig::IamSignBlob {
        service_account_email: Some("sa@p.iam.gserviceaccount.com".into()),
    })
    .await;
    // Without ADC on this machine the metadata server is the token source; building must not call it.
    if let Ok(s) = s {
        assert_eq!(s.credential_id().await.unwrap(), "sa@p.iam.gserviceaccount.com");
    }
}
