//! The shared behaviour suite ([`sea_gcp::testing::conformance`]) against every backend.

mod emulator_support;

use std::sync::Arc;

use sea_gcp::StoreConfig;
use sea_gcp::storage::MemoryStore;
use sea_gcp::storage::{Store, open};
use sea_gcp::testing::conformance;

#[tokio::test]
async fn memory_store_behaves_like_gcs() {
    conformance::run_all(|config: StoreConfig| async move {
        let config =
            StoreConfig { backend: sea_gcp::config::BackendConfig::Memory, bucket_name: "memory".into(), ..config };
        Arc::new(MemoryStore::new("media", config).unwrap()) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test]
async fn local_store_behaves_like_gcs() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().to_path_buf();
    conformance::run_all(|config: StoreConfig| {
        let dir = base.join(uuid::Uuid::new_v4().to_string());
        async move {
            let config = StoreConfig {
                backend: sea_gcp::config::BackendConfig::Local,
                root: Some(dir),
                bucket_name: "local".into(),
                ..config
            };
            open("media", config).await.unwrap()
        }
    })
    .await;
}

/// The emulator's address, or `None` (after saying so loudly) when it is not running.
fn emulator() -> Option<String> {
    emulator_support::storage_emulator("GCS behaviour suite")
}

#[tokio::test]
async fn gcs_store_behaves_like_gcs_on_the_emulator() {
    let Some(host) = emulator() else { return };
    let bucket = format!("behaviour-{}", uuid::Uuid::new_v4().simple());
    conformance::create_emulator_bucket(&host, &bucket, false).await;
    // fake-gcs-server's gaps are skipped by name; tests/gcs_requests.rs checks that our requests carry
    // those preconditions.
    conformance::run_all_with(conformance::Capabilities::FAKE_GCS_SERVER, |config: StoreConfig| {
        let bucket = bucket.clone();
        let host = host.clone();
        async move {
            // A unique prefix per check isolates the checks on one bucket.
            let isolation = uuid::Uuid::new_v4().simple().to_string();
            let location =
                if config.location.is_empty() { isolation } else { format!("{isolation}/{}", config.location) };
            let config = StoreConfig { bucket_name: bucket, api_endpoint: Some(host), location, ..config };
            open("media", config).await.unwrap()
        }
    })
    .await;
}

#[tokio::test]
async fn local_store_refuses_segments_the_filesystem_cannot_hold() {
    let root = tempfile::tempdir().unwrap();
    let store = open("media", StoreConfig::local(root.path())).await.unwrap();
    let long = format!("dir/{}.txt", "n".repeat(300));
    let err = store.put(&long, "x".into(), Default::default()).await.unwrap_err();
    assert!(matches!(err, sea_gcp::Error::InvalidName { .. }), "{err}");
    assert!(err.to_string().contains("segment of 304 bytes"), "{err}");
    // 250-byte segments still work.
    let ok = format!("dir/{}", "n".repeat(250));
    store.put(&ok, "x".into(), Default::default()).await.unwrap();
    assert_eq!(store.get_bytes(&ok).await.unwrap(), "x");
}
