#![cfg(all(feature = "metadata", feature = "testing"))]
//! The metadata client against the fake metadata server (which answers like the real one) and against no
//! server at all. No test reaches 169.254.169.254: every client names a loopback address.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sea_gcp::Error;
use sea_gcp::metadata::{MetadataClient, MetadataOptions};
use sea_gcp::testing::metadata_server::{FakeMetadata, FakeMetadataServer};

#[tokio::test]
async fn values_are_read_once_with_the_flavor_header() {
    let server = FakeMetadataServer::start(FakeMetadata::default()).await;
    let metadata = server.client();
    assert_eq!(metadata.project_id().await.unwrap(), "test-project");
    assert_eq!(metadata.project_number().await.unwrap(), "123456789012");
    assert_eq!(metadata.region().await.unwrap(), "europe-west1");
    assert_eq!(metadata.instance_id().await.unwrap(), "00bf4bf02d");
    assert_eq!(metadata.service_account_email().await.unwrap(), "runner@test-project.iam.gserviceaccount.com");
    let after_first = server.requests();
    assert_eq!(after_first, 5);
    // Cached: a second round sends nothing, and clones share the cache.
    let clone = metadata.clone();
    assert_eq!(clone.project_id().await.unwrap(), "test-project");
    assert_eq!(metadata.region().await.unwrap(), "europe-west1");
    assert_eq!(server.requests(), after_first);
    assert_eq!(server.refused(), 0);
    // Any other path, raw.
    assert_eq!(metadata.get("instance/zone").await.unwrap(), "projects/123456789012/zones/europe-west1-1");
}

#[tokio::test]
async fn the_fake_refuses_requests_without_the_flavor_header() {
    let server = FakeMetadataServer::start(FakeMetadata::default()).await;
    let url = format!("{}/computeMetadata/v1/project/project-id", server.base_url());
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["metadata-flavor"], "Google");
    let proxied =
        reqwest::Client::new().get(&url).header("Metadata-Flavor", "Google").header("X-Forwarded-For", "1.2.3.4");
    assert_eq!(proxied.send().await.unwrap().status(), 403);
    assert_eq!(server.refused(), 2);
}

#[tokio::test]
async fn access_tokens_are_cached_and_fetched_once_for_concurrent_callers() {
    // The token endpoint answers slowly so that all callers overlap the first fetch.
    let data =
        FakeMetadata::default().with_delay("instance/service-accounts/default/token", Duration::from_millis(200));
    let server = FakeMetadataServer::start(data).await;
    let metadata = server.client();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let m = metadata.clone();
            tokio::spawn(async move { m.access_token().await.unwrap() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), "ya29.fake-metadata-1");
    }
    assert_eq!(server.tokens_issued(), 1);
    assert_eq!(metadata.access_token().await.unwrap(), "ya29.fake-metadata-1");
    assert_eq!(server.tokens_issued(), 1);
    metadata.invalidate_access_token().await;
    assert_eq!(metadata.access_token().await.unwrap(), "ya29.fake-metadata-2");
}

#[tokio::test]
async fn a_token_inside_the_refresh_margin_is_replaced() {
    let server = FakeMetadataServer::start(FakeMetadata::default().with_token_lifetime(30)).await;
    let metadata = MetadataClient::with_options(
        MetadataOptions::default().with_host(server.base_url()).with_token_refresh_margin(Duration::from_secs(60)),
    );
    assert_eq!(metadata.access_token().await.unwrap(), "ya29.fake-metadata-1");
    assert_eq!(metadata.access_token().await.unwrap(), "ya29.fake-metadata-2");
    let fetched = metadata.fetch_access_token().await.unwrap();
    assert!(fetched.expires_at > Instant::now() + Duration::from_secs(25));
    assert!(!format!("{fetched:?}").contains("ya29"), "Debug shows no token");
}

#[tokio::test]
async fn identity_tokens_are_jwts_for_the_audience() {
    let server = FakeMetadataServer::start(FakeMetadata::default()).await;
    let metadata = server.client();
    let audience = "https://worker-abc.a.run.app/tasks?x=1&y=2";
    let jwt = metadata.identity_token(audience).await.unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["aud"], audience, "the audience survives URL encoding");
    assert_eq!(claims["email"], "runner@test-project.iam.gserviceaccount.com");
    let e = metadata.identity_token(" ").await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert_eq!(server.identity_tokens_issued(), 1);
    // Remembered per audience while it has time left; another audience gets its own.
    assert_eq!(metadata.identity_token(audience).await.unwrap(), jwt);
    assert_eq!(server.identity_tokens_issued(), 1, "a cached token is handed out again");
    let other = metadata.identity_token("https://other-abc.a.run.app").await.unwrap();
    assert_ne!(other, jwt);
    assert_eq!(server.identity_tokens_issued(), 2);
}

#[tokio::test]
async fn identity_tokens_close_to_expiry_are_fetched_again() {
    // Tokens valid for 4 minutes: under the 5 minutes a cached token must have left.
    let server = FakeMetadataServer::start(FakeMetadata::default().with_token_lifetime(240)).await;
    let metadata = server.client();
    let first = metadata.identity_token("https://worker-abc.a.run.app").await.unwrap();
    let second = metadata.identity_token("https://worker-abc.a.run.app").await.unwrap();
    assert_ne!(first, second, "a token about to expire is not handed out again");
    assert_eq!(server.identity_tokens_issued(), 2);
}

#[tokio::test]
async fn missing_values_are_typed_404s() {
    let server = FakeMetadataServer::start(FakeMetadata::default()).await;
    let e = server.client().get("instance/attributes/not-there").await.unwrap_err();
    match &e {
        Error::Metadata { path, status, .. } => {
            assert_eq!(path, "instance/attributes/not-there");
            assert_eq!(*status, Some(404));
        }
        other => panic!("expected Error::Metadata, got {other:?}"),
    }
    assert!(!e.is_not_on_cloud_run());
}

#[tokio::test]
async fn a_slow_server_times_out_with_a_typed_error() {
    let data = FakeMetadata::default().with_delay("project/project-id", Duration::from_secs(5));
    let server = FakeMetadataServer::start(data).await;
    let metadata = MetadataClient::with_options(
        MetadataOptions::default().with_host(server.base_url()).with_timeout(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let e = metadata.project_id().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert!(matches!(e, Error::Metadata { status: None, .. }), "{e:?}");
    assert!(e.to_string().contains("timeout"), "{e}");
}

#[tokio::test]
async fn no_server_is_a_fast_not_on_cloud_run_error() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let metadata = MetadataClient::new("127.0.0.1:9");
    let started = Instant::now();
    for e in [
        metadata.project_id().await.unwrap_err(),
        metadata.access_token().await.unwrap_err(),
        metadata.identity_token("https://x.a.run.app").await.unwrap_err(),
    ] {
        assert!(e.is_not_on_cloud_run(), "{e:?}");
        assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn something_that_is_not_a_metadata_server_is_refused() {
    // An HTTP server that answers 200 without the flavor header (a captive portal, a wrong port).
    let app = axum::Router::new().fallback(|| async { "hello" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let e = MetadataClient::new(&base).project_id().await.unwrap_err();
    assert!(e.is_not_on_cloud_run(), "{e:?}");
    assert!(e.to_string().contains("Metadata-Flavor"), "{e}");
}

#[tokio::test]
async fn gce_metadata_host_names_the_server() {
    let server = Arc::new(FakeMetadataServer::start(FakeMetadata::default()).await);
    // Only this test in this binary reads the environment variable.
    unsafe { std::env::set_var("GCE_METADATA_HOST", server.base_url().trim_start_matches("http://")) };
    let metadata = MetadataClient::from_env();
    assert_eq!(metadata.base_url(), server.base_url());
    assert_eq!(metadata.project_id().await.unwrap(), "test-project");
}

#[test]
fn is_cloud_run_reads_the_environment_only() {
    use sea_gcp::metadata::CloudRunEnvironment;
    let env = CloudRunEnvironment { service: Some("api".into()), ..Default::default() };
    assert!(env.is_cloud_run());
    let job = CloudRunEnvironment { job: Some("nightly".into()), ..Default::default() };
    assert!(job.is_cloud_run());
    assert!(!CloudRunEnvironment::default().is_cloud_run());
}
