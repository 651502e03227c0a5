//! Saves through [`BlobSaver`] with the GCS backend behind a fault-injecting proxy (`fault_proxy`):
//! 503, 429, closed connections and dropped answers at 5% each, and the 412s GCS answers where the
//! emulator does not. New uploads, replacements and row deletes, on every database.
//!
//! Asserted, per database: no failure at all (with 8 retries per call a transient fault gives up with
//! probability about 5e-7, so a failure is a write that succeeded and was reported as failed, or a step
//! that was not retried), in particular no false failure (an error reported for a save or upload that
//! took effect), every save that reported success committed, the invariants hold after replay (every
//! reference live at its cached generation, no orphan), and no unguarded write was sent twice. The
//! counts are printed (`FAULTS: ...`) for the record.

mod fault_proxy;
mod field_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fault_proxy::{FaultProxy, FaultRates, Outcome};
use field_support::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_gcp::StoreConfig;
use sea_gcp::config::RetryConfig;
use sea_gcp::field::{BlobChanges, PendingUpload};
use sea_gcp::promote::replay_outbox;
use sea_gcp::storage::{GetOptions, PutOptions, PutPayload, Store};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter};

const SEED: u64 = 0x5EA_6C9;
const RATE: f64 = 0.05;
const OPS_PER_DATABASE: usize = 200;

/// A GCS store for `bucket` under `location`, through `endpoint`.
async fn gcs_store(endpoint: &str, bucket: &str, location: &str, retries: u32) -> Arc<dyn Store> {
    let endpoint = if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") };
    let config = StoreConfig {
        bucket_name: bucket.to_string(),
        api_endpoint: Some(endpoint),
        location: location.to_string(),
        retry: RetryConfig {
            max_retries: retries,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(16),
            multiplier: 2,
        },
        ..StoreConfig::gcs("x")
    };
    sea_gcp::storage::open("media", config).await.expect("GCS store")
}

#[derive(Debug, Default)]
struct Counts {
    operations: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
    false_failures: Vec<String>,
    upload_failures: usize,
    false_upload_failures: Vec<String>,
    left_for_replay: usize,
}

impl Counts {
    fn record(&mut self, kind: &'static str, result: Result<(), String>, committed: bool, ctx: &str) {
        *self.operations.entry(kind).or_insert(0) += 1;
        match result {
            Ok(()) => assert!(committed, "{ctx}: {kind} reported success but did not commit"),
            Err(e) => {
                self.failures.push(format!("{ctx}: {kind}: {e}"));
                if committed {
                    self.false_failures.push(format!("{ctx}: {kind}: {e}"));
                }
            }
        }
    }
}

/// Upload `bytes` as a browser would (create-only), through the faulty store. `None` when the upload
/// failed; a failure that in fact wrote the object is a false failure.
async fn upload_through(
    faulty: &dyn Store,
    direct: &dyn Store,
    counts: &mut Counts,
    original: &str,
    bytes: Vec<u8>,
) -> Option<PendingUpload> {
    let temp = format!("_tmp/{}/{original}", uuid::Uuid::now_v7());
    let opts = PutOptions::create_only().with_content_type("text/plain");
    *counts.operations.entry("upload").or_insert(0) += 1;
    match faulty.put(&temp, PutPayload::Bytes(bytes.into()), opts).await {
        Ok(meta) => Some(PendingUpload::trusted(temp, Some(meta.generation), original)),
        Err(e) => {
            counts.upload_failures += 1;
            if direct.head(&temp, GetOptions::default()).await.is_ok() {
                counts.false_upload_failures.push(format!("upload of {temp}: {e}"));
            }
            None
        }
    }
}

async fn by_title(db: &DatabaseConnection, title: &str) -> Option<docs::Model> {
    docs::Entity::find().filter(docs::Column::Title.eq(title)).one(db).await.unwrap()
}

#[tokio::test]
async fn saves_behind_a_fault_proxy_fail_only_when_they_did_not_happen() {
    let Some((host, bucket)) = emulator_bucket("saves behind a fault proxy").await else { return };
    let started = Instant::now();
    let mut summary = Vec::new();
    for (index, db) in databases().await.into_iter().enumerate() {
        let name = db.name;
        let db = &db.conn;
        let proxy = FaultProxy::start(&host, FaultRates::default(), SEED + index as u64).await;
        let location = uuid::Uuid::new_v4().simple().to_string();
        let direct = gcs_store(&host, &bucket, &location, 0).await;
        let faulty = gcs_store(&proxy.url, &bucket, &location, 8).await;
        let tables = Tables::create(db).await;
        let saver = saver(db, &tables, faulty.clone());
        proxy.set_rates(FaultRates::each(RATE));

        let mut rng = StdRng::seed_from_u64(SEED);
        let mut counts = Counts::default();
        let mut live: Vec<String> = Vec::new(); // titles of committed rows
        for op in 0..OPS_PER_DATABASE {
            let ctx = format!("{name} op {op}");
            let choice = if live.is_empty() { 0 } else { rng.random_range(0..5) };
            match choice {
                // New row with an upload.
                0 | 1 => {
                    let title = format!("row-{op}");
                    let body = format!("new body {op}").into_bytes();
                    let Some(up) = upload_through(faulty.as_ref(), direct.as_ref(), &mut counts, "new.txt", body).await
                    else {
                        continue;
                    };
                    let model = docs::ActiveModel { title: Set(title.clone()), ..Default::default() };
                    let result = saver.insert(model, BlobChanges::new().attach(docs::Column::File, up)).await;
                    if let Ok(saved) = &result {
                        counts.left_for_replay += saved.report.left_for_replay.len();
                    }
                    let committed = by_title(db, &title).await.is_some();
                    if committed {
                        live.push(title);
                    }
                    counts.record("new upload", result.map(|_| ()).map_err(|e| e.to_string()), committed, &ctx);
                }
                // Replace the file of a row.
                2 | 3 => {
                    let title = live[rng.random_range(0..live.len())].clone();
                    let row = by_title(db, &title).await.expect("a live row");
                    let before = row.file.clone();
                    let body = format!("replacement {op}").into_bytes();
                    let Some(up) =
                        upload_through(faulty.as_ref(), direct.as_ref(), &mut counts, "replaced.txt", body).await
                    else {
                        continue;
                    };
                    let result =
                        saver.update(row.into_active_model(), BlobChanges::new().attach(docs::Column::File, up)).await;
                    if let Ok(saved) = &result {
                        counts.left_for_replay += saved.report.left_for_replay.len();
                    }
                    let committed = by_title(db, &title).await.expect("the row").file != before;
                    counts.record("replace", result.map(|_| ()).map_err(|e| e.to_string()), committed, &ctx);
                }
                // Delete a row (and its file).
                _ => {
                    let at = rng.random_range(0..live.len());
                    let title = live[at].clone();
                    let row = by_title(db, &title).await.expect("a live row");
                    let result = saver.delete(row).await;
                    if let Ok(report) = &result {
                        counts.left_for_replay += report.left_for_replay.len();
                    }
                    let committed = by_title(db, &title).await.is_none();
                    if committed {
                        live.remove(at);
                    }
                    counts.record("delete", result.map(|_| ()).map_err(|e| e.to_string()), committed, &ctx);
                }
            }
            if op % 10 == 9 {
                assert_references_live(db, direct.as_ref(), &ctx).await;
            }
        }

        // Faults off, replay what was left, then the invariants.
        proxy.set_rates(FaultRates::default());
        let replayed = replay_outbox(db, &tables.outbox, std::slice::from_ref(&direct), Duration::ZERO).await.unwrap();
        assert!(replayed.is_clean(), "{name}: replay: {replayed}");
        assert_references_live(db, direct.as_ref(), name).await;
        assert_no_orphans(db, direct.as_ref(), &tables.outbox, &BTreeSet::new(), name).await;
        let repeated = proxy.repeated_unguarded_writes();
        assert!(repeated.is_empty(), "{name}: unguarded writes were retried: {repeated:#?}");

        let outcomes = proxy.outcomes();
        let get = |o: Outcome| outcomes.get(&o).copied().unwrap_or(0);
        let requests: usize = outcomes.values().sum();
        let repeats = proxy.repeated_requests();
        let line = format!(
            "FAULTS {name}: operations {:?}; requests {requests} (503 {}, 429 {}, closed {}, dropped {}, 412/404 from \
             the proxy's checks {}; retries {:?}); failures {} (false {}), upload failures {} (false {}); \
             intents left for replay {}, replay examined {}",
            counts.operations,
            get(Outcome::Unavailable),
            get(Outcome::Throttled),
            get(Outcome::Closed),
            get(Outcome::Dropped),
            get(Outcome::Refused),
            repeats,
            counts.failures.len(),
            counts.false_failures.len(),
            counts.upload_failures,
            counts.false_upload_failures.len(),
            counts.left_for_replay,
            replayed.examined,
        );
        eprintln!("{line}");
        // With 8 retries, a call fails for good with probability 0.2^9 (about 5e-7): every failure is a
        // write that succeeded and was misreported, or a step that gave up on a transient fault.
        assert!(counts.failures.is_empty(), "{name}: saves failed under transient faults: {:#?}", counts.failures);
        assert_eq!(counts.upload_failures, 0, "{name}: uploads failed under transient faults");
        assert!(
            counts.false_failures.is_empty(),
            "{name}: saves that failed but happened: {:#?}",
            counts.false_failures
        );
        assert!(
            counts.false_upload_failures.is_empty(),
            "{name}: uploads that failed but happened: {:#?}",
            counts.false_upload_failures
        );
        assert!(get(Outcome::Dropped) > 0 && get(Outcome::Closed) > 0, "{name}: the faults fired: {line}");
        assert!(repeats.get("PATCH").is_some_and(|n| *n > 0), "{name}: the claim patch is retried: {line}");
        summary.push(line);
        tables.drop(db).await;
    }
    eprintln!("FAULTS total time {:.1}s", started.elapsed().as_secs_f64());
}

/// A save that fails names the step and keeps the cause chain: a connection error reads "... at the
/// claim step ... error sending request for url (...): ...: Connection refused", not only reqwest's
/// first line.
#[tokio::test]
async fn a_failed_step_is_named_with_its_cause() {
    let db = databases().await.into_iter().next().expect("SQLite is always available");
    let db = &db.conn;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = gcs_store(&format!("http://127.0.0.1:{port}"), "no-bucket", "loc", 1).await;
    let tables = Tables::create(db).await;
    let saver = saver(db, &tables, dead);
    let up = PendingUpload::trusted("_tmp/x/a.txt".to_string(), Some(1), "a.txt");
    let model = docs::ActiveModel { title: Set("t".into()), ..Default::default() };
    let err = saver.insert(model, BlobChanges::new().attach(docs::Column::File, up)).await.unwrap_err();
    assert!(matches!(err, sea_gcp::Error::SaveStep { step: sea_gcp::SaveStep::Claim, .. }), "{err}");
    assert!(err.is_retryable(), "the cause is a transient backend error: {err}");
    assert!(matches!(err.cause(), sea_gcp::Error::Backend { status: None, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("at the claim (metadata patch of the temporary upload) step"), "{text}");
    assert!(text.contains("error sending request for url"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection refused"), "the cause chain is kept: {text}");
    assert!(docs::Entity::find().all(db).await.unwrap().is_empty(), "nothing committed");
    tables.drop(db).await;
}
