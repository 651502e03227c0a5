//! The BlobField refresh handler: storage events keep the cached metadata of referencing rows true,
//! idempotently, without touching rows holding a newer generation; on the memory store and the GCS
//! emulator, on SQLite, PostgreSQL and MariaDB.
#![cfg(all(feature = "events", feature = "orm"))]

mod events_support;

use std::sync::Arc;

use bytes::Bytes;
use sea_gcp::auth::InvokerPolicy;
use sea_gcp::events::{BlobRefresh, EventsRouter, RefreshReport, StorageEvent};
use sea_gcp::field::{BlobValue, VariantValue};
use sea_gcp::pubsub::{PubSubMessage, make_pubsub_message};
use sea_gcp::storage::{GetOptions, MetadataPatch, PutOptions, PutPayload, Store};
use sea_gcp::{StoreConfig, storage};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde_json::json;

use events_support::*;

async fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    let mut out = Vec::new();
    let memory =
        StoreConfig { location: "uploads".into(), bucket_name: "my-app-media".into(), ..StoreConfig::memory() };
    out.push(("memory", storage::open("media", memory).await.unwrap()));
    match std::env::var("STORAGE_EMULATOR_HOST") {
        Ok(host) if !host.is_empty() => {
            let bucket = format!("refresh-{}", unique());
            sea_gcp::testing::conformance::create_emulator_bucket(&host, &bucket, false).await;
            let config = StoreConfig {
                bucket_name: bucket,
                api_endpoint: Some(host),
                location: format!("loc-{}", unique()),
                ..StoreConfig::gcs("x")
            };
            out.push(("gcs-emulator", storage::open("media", config).await.unwrap()));
        }
        _ => skip_or_fail("BlobRefresh on the GCS emulator", "STORAGE_EMULATOR_HOST is not set".into()),
    }
    out
}

fn json_type(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "JSONB",
        DatabaseBackend::MySql => "JSON",
        _ => "TEXT",
    }
}

fn ph(backend: DatabaseBackend, n: usize) -> String {
    if backend == DatabaseBackend::Postgres { format!("${n}") } else { "?".into() }
}

async fn insert(db: &DatabaseConnection, table: &str, id: i32, value: BlobValue) {
    let b = db.get_database_backend();
    let sql = format!("INSERT INTO {table} (id, file) VALUES ({}, {})", ph(b, 1), ph(b, 2));
    db.execute_raw(Statement::from_sql_and_values(b, sql, [id.into(), value.into()])).await.unwrap();
}

async fn read(db: &DatabaseConnection, table: &str, id: i32) -> BlobValue {
    let b = db.get_database_backend();
    let cast = match b {
        DatabaseBackend::Postgres => "file::text",
        DatabaseBackend::MySql => "CAST(file AS CHAR)",
        _ => "file",
    };
    let sql = format!("SELECT {cast} AS v FROM {table} WHERE id = {}", ph(b, 1));
    let row = db.query_one_raw(Statement::from_sql_and_values(b, sql, [id.into()])).await.unwrap().unwrap();
    BlobValue::from_text(&row.try_get::<String>("", "v").unwrap()).unwrap()
}

fn notification(store: &dyn Store, event_type: &str, name: &str, generation: i64) -> PubSubMessage {
    let config = store.config();
    let full = format!("{}/{name}", config.location);
    PubSubMessage::new(
        serde_json::to_vec(&json!({"bucket": config.bucket_name, "name": full, "generation": generation.to_string()}))
            .unwrap(),
    )
    .with_attribute("eventType", event_type)
    .with_attribute("bucketId", config.bucket_name.clone())
    .with_attribute("objectId", full)
    .with_attribute("objectGeneration", generation.to_string())
    .with_attribute("payloadFormat", "JSON_API_V1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_events_keep_blob_caches_true() {
    for (store_name, store) in stores().await {
        for db in databases().await {
            let ctx = format!("{store_name}/{}", db.name);
            let table = format!("docs_{}", unique());
            let b = db.conn.get_database_backend();
            db.conn
                .execute_unprepared(&format!(
                    "CREATE TABLE {table} (id INTEGER PRIMARY KEY, file {} NULL)",
                    json_type(b)
                ))
                .await
                .unwrap();
            let name = format!("reports/{}.pdf", unique());
            let meta1 = store
                .put(&name, PutPayload::Bytes(Bytes::from_static(b"%PDF-1.7 q3")), PutOptions::default())
                .await
                .unwrap();
            // Dimensions read at promotion describe the bytes: a metadata change keeps them.
            let mut analysed = BlobValue::from_meta(&meta1, Some("Q3 report.pdf".into()));
            (analysed.width, analysed.height) = (Some(640), Some(480));
            insert(&db.conn, &table, 1, analysed).await;
            insert(&db.conn, &table, 2, BlobValue::uncached("reports/other.pdf")).await;
            let mut newer = BlobValue::from_meta(&meta1, None);
            newer.generation = Some(meta1.generation + 1_000_000);
            insert(&db.conn, &table, 3, newer.clone()).await;

            let refresh = BlobRefresh::new(db.conn.clone(), store.clone()).column(&table, "file");
            let (listener, base) = listener().await;
            spawn(
                listener,
                EventsRouter::new(InvokerPolicy::disabled()).on_prefix("storage.", refresh.clone()).into_router(),
            );
            let client = reqwest::Client::new();
            let push = |m: PubSubMessage| {
                let client = client.clone();
                let url = format!("{base}/events/storage.media/notifications");
                async move { client.post(url).json(&make_pubsub_message(&m)).send().await.unwrap().status().as_u16() }
            };

            // Metadata changed outside the app.
            let mut patch = MetadataPatch::default();
            patch.metadata.insert("reviewed".into(), Some("yes".into()));
            patch.content_type = Some("application/pdf".into());
            let meta2 = store.patch_metadata(&name, patch).await.unwrap();
            assert_eq!(
                push(notification(&*store, "OBJECT_METADATA_UPDATE", &name, meta2.generation)).await,
                201,
                "{ctx}"
            );
            let row1 = read(&db.conn, &table, 1).await;
            let live = store.head(&name, GetOptions::default()).await.unwrap();
            assert!(live.metageneration >= 1 && row1.metageneration == Some(live.metageneration), "{ctx}");
            assert_eq!(row1.metadata.get("reviewed").map(String::as_str), Some("yes"), "{ctx}");
            assert_eq!(row1.content_type.as_deref(), Some("application/pdf"), "{ctx}");
            assert_eq!(row1.original_name.as_deref(), Some("Q3 report.pdf"), "{ctx}: the original name is kept");
            assert_eq!(row1.dimensions(), Some((640, 480)), "{ctx}: the dimensions are kept");
            let mut expected = BlobValue::from_meta(&live, Some("Q3 report.pdf".into()));
            (expected.width, expected.height) = (Some(640), Some(480));
            assert_eq!(row1, expected, "{ctx}");
            assert_eq!(
                read(&db.conn, &table, 2).await,
                BlobValue::uncached("reports/other.pdf"),
                "{ctx}: other objects untouched"
            );
            assert_eq!(read(&db.conn, &table, 3).await, newer, "{ctx}: a newer generation is untouched");

            // The same event again (at-least-once delivery): nothing to do.
            let event =
                StorageEvent::from_pubsub(&notification(&*store, "OBJECT_METADATA_UPDATE", &name, meta2.generation))
                    .unwrap();
            assert_eq!(
                refresh.apply(&event).await.unwrap(),
                RefreshReport { unchanged: 1, skipped_newer: 1, ..Default::default() },
                "{ctx}"
            );

            // Deleted outside the app: flagged missing (cache cleared, name kept); the newer row untouched.
            store.delete(&name, Default::default()).await.unwrap();
            assert_eq!(push(notification(&*store, "OBJECT_DELETE", &name, meta2.generation)).await, 201, "{ctx}");
            let row1 = read(&db.conn, &table, 1).await;
            assert!(!row1.is_cached(), "{ctx}");
            assert_eq!((row1.name.as_str(), row1.original_name.as_deref()), (name.as_str(), Some("Q3 report.pdf")));
            assert_eq!(read(&db.conn, &table, 3).await, newer, "{ctx}");
            let again =
                StorageEvent::from_pubsub(&notification(&*store, "OBJECT_DELETE", &name, meta2.generation)).unwrap();
            assert_eq!(refresh.apply(&again).await.unwrap().missing, 0, "{ctx}: idempotent");

            // Another bucket: acknowledged (200, dropped), nothing read or written.
            let mut foreign = notification(&*store, "OBJECT_DELETE", &name, 1);
            foreign.attributes.insert("bucketId".into(), "someone-elses-bucket".into());
            assert_eq!(push(foreign).await, 200, "{ctx}");

            db.conn.execute_unprepared(&format!("DROP TABLE {table}")).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_outside_the_app_deletes_the_old_generations_variants() {
    for (store_name, store) in stores().await {
        for db in databases().await {
            let ctx = format!("{store_name}/{}", db.name);
            let table = format!("photos_{}", unique());
            let b = db.conn.get_database_backend();
            let create = format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, file {} NULL)", json_type(b));
            db.conn.execute_unprepared(&create).await.unwrap();
            let name = format!("photos/{}.png", unique());
            let meta1 = store.put(&name, PutPayload::Bytes(Bytes::from_static(b"first")), PutOptions::default());
            let meta1 = meta1.await.unwrap();
            let thumb = format!("{name}.variants/thumb-g{}.jpg", meta1.generation);
            let made = store.put(&thumb, PutPayload::Bytes(Bytes::from_static(b"thumb")), PutOptions::create_only());
            let made = made.await.unwrap();
            let mut value = BlobValue::from_meta(&meta1, None);
            let recorded = VariantValue {
                name: thumb.clone(),
                generation: Some(made.generation),
                size: Some(made.size),
                content_type: None,
                width: Some(4),
                height: Some(4),
            };
            value.variants.insert("thumb".into(), recorded);
            insert(&db.conn, &table, 1, value).await;

            // A metadata change keeps the generation, so the variant stays.
            let refresh = BlobRefresh::new(db.conn.clone(), store.clone()).column(&table, "file");
            let mut patch = MetadataPatch::default();
            patch.metadata.insert("reviewed".into(), Some("yes".into()));
            let meta2 = store.patch_metadata(&name, patch).await.unwrap();
            let event = |kind: &str, generation: i64| {
                StorageEvent::from_pubsub(&notification(&*store, kind, &name, generation)).unwrap()
            };
            refresh.apply(&event("OBJECT_METADATA_UPDATE", meta2.generation)).await.unwrap();
            assert!(read(&db.conn, &table, 1).await.variant("thumb").is_some(), "{ctx}: same generation, same pixels");
            assert!(store.head(&thumb, GetOptions::default()).await.is_ok(), "{ctx}");

            // Overwritten outside the app: the new generation has no variant yet, the old one's is deleted.
            let meta3 = store.put(&name, PutPayload::Bytes(Bytes::from_static(b"second")), PutOptions::default());
            let meta3 = meta3.await.unwrap();
            refresh.apply(&event("OBJECT_FINALIZE", meta3.generation)).await.unwrap();
            let now = read(&db.conn, &table, 1).await;
            assert_eq!(now.generation, Some(meta3.generation), "{ctx}");
            assert!(now.variants.is_empty(), "{ctx}: {now:?}");
            assert!(
                store.head(&thumb, GetOptions::default()).await.is_err(),
                "{ctx}: the old generation's variant is deleted"
            );
        }
    }
}
