//! Column-migration benchmark (run by `scripts/bench-migrate.sh`): backfill N rows on a database against
//! a GCS emulator, in several configurations, and print a Markdown table.
//!
//! ```text
//! cargo run --release --example bench_migrate -- --database-url postgres://... --emulator http://127.0.0.1:PORT \
//!     [--rows 100000] [--naive-rows 10000]
//! ```
//!
//! One bucket holds `bench/NNNNNNN.bin` objects: uploaded here, or, with `--preloaded-bucket NAME`, already
//! in the emulator (`scripts/bench-migrate.sh` preloads them with fake-gcs-server's `-data`, as inserting
//! 100,000 objects one by one takes it hours: each insert scans every object of the bucket). Two tables name them: `clustered` in key order (row i
//! names object i) and `scattered` in a shuffled order. Each configuration starts from an empty blob
//! column. The naive baseline (one `head` and one `UPDATE` per row, 16 in flight) runs on the first
//! `--naive-rows` rows of `clustered`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sea_gcp::StoreConfig;
use sea_gcp::field::BlobValue;
use sea_gcp::migrate::source::PkValue;
use sea_gcp::migrate::sql::{Params, RowWrite, quote, update_one};
use sea_gcp::migrate::{BackfillOptions, ColumnMigration, ListingMode, WriteMode, backfill, state};
use sea_gcp::storage::{CountingStore, StoreOp};
use sea_gcp::storage::{GetOptions, ListOptions, PutOptions, PutPayload, Store};
use sea_gcp::testing::fault::FaultStore;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

struct Args {
    database_url: String,
    emulator: String,
    rows: u64,
    naive_rows: u64,
    preloaded_bucket: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        database_url: String::new(),
        emulator: String::new(),
        rows: 100_000,
        naive_rows: 10_000,
        preloaded_bucket: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--database-url" => a.database_url = value,
            "--emulator" => a.emulator = value.trim_end_matches('/').to_string(),
            "--rows" => a.rows = value.parse().expect("--rows N"),
            "--naive-rows" => a.naive_rows = value.parse().expect("--naive-rows N"),
            "--preloaded-bucket" => a.preloaded_bucket = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.database_url.is_empty() && !a.emulator.is_empty(), "--database-url and --emulator are required");
    a
}

fn object_name(i: u64) -> String {
    format!("bench/{i:07}.bin")
}

/// A deterministic permutation of 0..n (a multiplicative step coprime with n).
fn shuffled(i: u64, n: u64) -> u64 {
    let mut step = 7_919 % n.max(2);
    while gcd(step, n) != 1 {
        step += 1;
    }
    (i * step + 13) % n
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

async fn create_table(db: &DatabaseConnection, table: &str, n: u64, name_of: impl Fn(u64) -> String) {
    let b = db.get_database_backend();
    let t = quote(b, table);
    db.execute_unprepared(&format!("DROP TABLE IF EXISTS {t}")).await.unwrap();
    db.execute_unprepared(&format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, file TEXT NULL, file_blob jsonb NULL)"))
        .await
        .unwrap();
    for start in (0..n).step_by(5_000) {
        let mut p = Params::new(b);
        let values: Vec<String> = (start..(start + 5_000).min(n))
            .map(|i| format!("({}, {})", p.bind(i as i64 + 1), p.bind(name_of(i))))
            .collect();
        db.execute_raw(p.statement(format!("INSERT INTO {t} (id, file) VALUES {}", values.join(", ")))).await.unwrap();
    }
}

async fn reset(db: &DatabaseConnection, m: &ColumnMigration) {
    let b = db.get_database_backend();
    db.execute_unprepared(&format!("UPDATE {} SET file_blob = NULL", quote(b, &m.table))).await.unwrap();
    if state::tables_exist(db).await.unwrap() {
        state::delete_checkpoint(db, m).await.unwrap();
        state::clear_report(db, m).await.unwrap();
    }
    db.execute_unprepared(&format!("VACUUM ANALYZE {}", quote(b, &m.table))).await.unwrap();
}

struct Row {
    name: String,
    rows: u64,
    secs: f64,
    list: u64,
    head: u64,
}

impl Row {
    fn print(&self) {
        let per_1000 = (self.list + self.head) as f64 * 1000.0 / self.rows as f64;
        println!(
            "| {} | {} | {:.2} | {:.0} | {} | {} | {:.1} |",
            self.name,
            self.rows,
            self.secs,
            self.rows as f64 / self.secs,
            self.list,
            self.head,
            per_1000
        );
    }
}

async fn run(
    db: &DatabaseConnection,
    store: &Arc<dyn Store>,
    label: &str,
    m: &ColumnMigration,
    opts: BackfillOptions,
) -> Row {
    reset(db, m).await;
    let s = backfill(db, store.clone(), m, &opts).await.unwrap();
    assert!(s.completed && s.missing == 0 && s.migrated == s.rows, "{label}: {s:?}");
    let row = Row {
        name: label.to_string(),
        rows: s.rows,
        secs: s.elapsed.as_secs_f64(),
        list: s.storage_calls.get(StoreOp::List),
        head: s.storage_calls.get(StoreOp::Head),
    };
    row.print();
    row
}

/// One `head` and one `UPDATE` per row, 16 rows in flight.
async fn naive(db: &DatabaseConnection, store: &Arc<dyn Store>, m: &ColumnMigration, n: u64) -> Row {
    reset(db, m).await;
    let counting: Arc<CountingStore> = Arc::new(CountingStore::new(store.clone()));
    let b = db.get_database_backend();
    let started = Instant::now();
    let sql = format!("SELECT id, file FROM {} ORDER BY id LIMIT {n}", quote(b, &m.table));
    let rows = db.query_all_raw(Statement::from_string(b, sql)).await.unwrap();
    let rows: Vec<(i64, String)> =
        rows.iter().map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap())).collect();
    futures::stream::iter(rows)
        .map(|(id, file)| {
            let counting = counting.clone();
            async move {
                let meta = counting.head(&file, GetOptions::default()).await?;
                let write = RowWrite {
                    pk: PkValue::Int(id),
                    old_from: Some(file),
                    old_to: None,
                    new: BlobValue::from_meta(&meta, None).to_json().to_string(),
                };
                db.execute_raw(update_one(m, b, &write, Some("jsonb"))).await?;
                Ok::<_, sea_gcp::Error>(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    let row = Row {
        name: "naive: one head + one UPDATE per row (16 in flight)".into(),
        rows: n,
        secs: started.elapsed().as_secs_f64(),
        list: counting.counts().get(StoreOp::List),
        head: counting.counts().get(StoreOp::Head),
    };
    row.print();
    row
}

/// Upload `rows` small objects, 32 at a time.
async fn populate(store: &Arc<dyn Store>, rows: u64) {
    let started = Instant::now();
    let mut uploads = futures::stream::iter(0..rows)
        .map(|i| {
            let store = store.clone();
            async move {
                let body = Bytes::from(format!("object {i}"));
                store.put(&object_name(i), PutPayload::Bytes(body), PutOptions::default()).await.map(|_| ())
            }
        })
        .buffer_unordered(32);
    let (mut done, mut lap) = (0u64, Instant::now());
    while let Some(result) = uploads.next().await {
        result.unwrap();
        done += 1;
        if done % 10_000 == 0 {
            eprintln!("uploaded {done} objects; the last 10,000 at {:.0}/s", 10_000.0 / lap.elapsed().as_secs_f64());
            lap = Instant::now();
        }
    }
    eprintln!("populated {rows} objects in {:.1}s", started.elapsed().as_secs_f64());
}

#[tokio::main]
async fn main() {
    let a = args();
    let db = Database::connect(&a.database_url).await.unwrap();
    assert_eq!(db.get_database_backend(), DbBackend::Postgres, "the benchmark table DDL is PostgreSQL's");

    let bucket = match &a.preloaded_bucket {
        Some(bucket) => bucket.clone(),
        None => {
            let bucket = format!("bench-migrate-{}", uuid::Uuid::new_v4().simple());
            sea_gcp::testing::conformance::create_emulator_bucket(&a.emulator, &bucket, false).await;
            bucket
        }
    };
    let mut config = StoreConfig::gcs(bucket);
    config.api_endpoint = Some(a.emulator.clone());
    let store = sea_gcp::storage::open("media", config).await.unwrap();

    if a.preloaded_bucket.is_some() {
        eprintln!("{} objects preloaded into the emulator with -data", a.rows);
    } else {
        populate(&store, a.rows).await;
    }
    let n = a.rows;
    let started = Instant::now();
    let listed = store.list_all(Some("bench/".into())).try_collect::<Vec<_>>().await.unwrap().len();
    eprintln!("one full listing of {listed} objects: {:.2}s", started.elapsed().as_secs_f64());
    assert_eq!(listed as u64, a.rows, "the bucket should hold exactly the benchmark's objects");
    for prefix in ["bench/0000", "bench/"] {
        let mut opts = ListOptions::prefix(prefix);
        opts.max_results = Some(1000);
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let page = store.list(opts.clone()).await.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(!page.objects.is_empty());
        }
        times.sort_by(f64::total_cmp);
        eprintln!("one listing page under {prefix:?} (1,000 objects of {n}): {:.0} ms (median of 5)", times[2]);
    }

    create_table(&db, "bench_clustered", n, object_name).await;
    create_table(&db, "bench_scattered", n, |i| object_name(shuffled(i, n))).await;
    let clustered = ColumnMigration::new("bench_clustered", "file", "file_blob");
    let scattered = ColumnMigration::new("bench_scattered", "file", "file_blob");

    println!("| configuration | rows | seconds | rows/s | list calls | head calls | calls per 1,000 rows |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let default = BackfillOptions::default();
    // The same objects in the in-memory store: for the warm-up and the simulated round trips below.
    let memory: Arc<dyn Store> = sea_gcp::storage::open("media", StoreConfig::memory()).await.unwrap();
    futures::stream::iter(0..n)
        .map(|i| {
            let memory = memory.clone();
            async move {
                let body = Bytes::from(format!("object {i}"));
                memory.put(&object_name(i), PutPayload::Bytes(body), PutOptions::default()).await
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    // Warm-up, not reported: one whole backfill of each table. The first pass over a freshly loaded
    // table is measurably slower (about 1.3x in trials), whichever configuration runs it.
    for m in [&clustered, &scattered] {
        reset(&db, m).await;
        backfill(&db, memory.clone(), m, &default).await.unwrap();
    }
    run(&db, &store, "clustered, shared listing, batched UPDATE (default)", &clustered, default.clone()).await;
    run(
        &db,
        &store,
        "clustered, per-batch listing, batched UPDATE",
        &clustered,
        BackfillOptions { listing: ListingMode::PerBatch, ..default.clone() },
    )
    .await;
    run(
        &db,
        &store,
        "clustered, shared listing, one UPDATE per row",
        &clustered,
        BackfillOptions { writes: WriteMode::PerRow, ..default.clone() },
    )
    .await;
    run(&db, &store, "scattered, shared listing, batched UPDATE (default)", &scattered, default.clone()).await;
    // Per-batch listing of scattered rows lists the whole prefix for every batch: measured on 4 batches.
    let limited = BackfillOptions { listing: ListingMode::PerBatch, max_batches: Some(4), ..default.clone() };
    reset(&db, &scattered).await;
    let s = backfill(&db, store.clone(), &scattered, &limited).await.unwrap();
    Row {
        name: "scattered, per-batch listing, batched UPDATE (first 4 batches)".into(),
        rows: s.rows,
        secs: s.elapsed.as_secs_f64(),
        list: s.storage_calls.get(StoreOp::List),
        head: s.storage_calls.get(StoreOp::Head),
    }
    .print();
    naive(&db, &store, &clustered, a.naive_rows.min(n)).await;

    // The emulator answers on loopback in microseconds; GCS takes tens of milliseconds per listing page,
    // so whether pages are fetched one after another or at once matters there. Same rows against the
    // in-memory store with a simulated round trip on every call.
    let latency = std::time::Duration::from_millis(50);
    let slow = Arc::new(FaultStore::new(memory));
    slow.delay(StoreOp::List, latency).delay(StoreOp::Head, latency);
    let slow: Arc<dyn Store> = slow;
    println!();
    println!("In-memory store with a simulated {} ms round trip on every storage call:", latency.as_millis());
    println!();
    println!("| configuration | rows | seconds | rows/s | list calls | head calls | calls per 1,000 rows |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    run(&db, &slow, "clustered, shared listing (default)", &clustered, default.clone()).await;
    run(&db, &slow, "scattered, shared listing, 16 concurrent ranges (default)", &scattered, default.clone()).await;
    let one_chain = BackfillOptions { listing_ranges: 1, ..default.clone() };
    run(&db, &slow, "scattered, shared listing, one chain of pages", &scattered, one_chain).await;

    for m in [&clustered, &scattered] {
        db.execute_unprepared(&format!("DROP TABLE {}", quote(DbBackend::Postgres, &m.table))).await.unwrap();
        state::delete_checkpoint(&db, m).await.unwrap();
        state::clear_report(&db, m).await.unwrap();
    }
}
