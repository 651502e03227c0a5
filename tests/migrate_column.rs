//! Path column -> blob column: the backfill, its report, resumption, idempotence, the swap and the CLI.
//!
//! Every database test runs on SQLite, and on PostgreSQL and MariaDB when reachable
//! (`SEA_GCP_TEST_POSTGRES_URL`, `SEA_GCP_TEST_MYSQL_URL`); store tests run against the memory store, and
//! the GCS emulator when `STORAGE_EMULATOR_HOST` is set. A missing service is a skip (printed), or a
//! failure with `SEA_GCP_REQUIRE_ALL=1`. Tables get a unique name per test and are dropped at the end.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use sea_gcp::StoreConfig;
use sea_gcp::field::BlobValue;
use sea_gcp::migrate::sql::{Params, as_text, quote};
use sea_gcp::migrate::{
    BackfillOptions, ColumnMigration, ListingMode, ReportReason, WriteMode, backfill, schema, state, swap_columns,
};
use sea_gcp::storage::StoreOp;
use sea_gcp::storage::{GetOptions, PutOptions, PutPayload, Store};
use sea_gcp::testing::fault::{FaultKind, FaultStore};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::{MigrationTrait, SchemaManager};

mod cli_support;
#[path = "../examples/migrations/m20260301_000001_document_file_blob.rs"]
mod m20260301_000001_document_file_blob;

// ---------------------------------------------------------------------------------------------------
// Services

fn require_all() -> bool {
    std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() == Ok("1")
}

fn skip(why: &str) {
    if require_all() {
        panic!("{why}, but SEA_GCP_REQUIRE_ALL=1: run scripts/test.sh");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// A database to run on. SQLite lives in a temporary file (kept alive by `_dir`).
struct TestDb {
    name: &'static str,
    db: DatabaseConnection,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }
}

async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.sqlite").display());
    let db = Database::connect(&url).await.unwrap();
    TestDb { name: "SQLite", db, url, _dir: Some(dir) }
}

/// SQLite, then PostgreSQL and MariaDB when reachable.
async fn databases(test: &str) -> Vec<TestDb> {
    let mut out = vec![sqlite().await];
    for (name, var, default) in [
        ("PostgreSQL", "SEA_GCP_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"),
        ("MariaDB", "SEA_GCP_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
    ] {
        let url = std::env::var(var).unwrap_or_else(|_| default.to_string());
        match Database::connect(&url).await {
            Ok(db) => out.push(TestDb { name, db, url, _dir: None }),
            Err(e) => skip(&format!("{test} on {name} — cannot connect to {url} ({e}); set {var}")),
        }
    }
    out
}

fn emulator(test: &str) -> Option<String> {
    match std::env::var("STORAGE_EMULATOR_HOST") {
        Ok(host) if !host.is_empty() => Some(host.trim_end_matches('/').to_string()),
        _ => {
            skip(&format!("{test} on the GCS emulator — STORAGE_EMULATOR_HOST is not set"));
            None
        }
    }
}

async fn memory_store() -> Arc<dyn Store> {
    sea_gcp::storage::open("media", StoreConfig::memory()).await.unwrap()
}

async fn emulator_store(host: &str) -> Arc<dyn Store> {
    let bucket = format!("migrate-{}", uuid::Uuid::new_v4().simple());
    sea_gcp::testing::conformance::create_emulator_bucket(host, &bucket, false).await;
    let mut config = StoreConfig::gcs(bucket);
    config.api_endpoint = Some(host.to_string());
    sea_gcp::storage::open("media", config).await.unwrap()
}

/// The memory store, and the emulator when it runs.
async fn stores(test: &str) -> Vec<(&'static str, Arc<dyn Store>)> {
    let mut out = vec![("memory", memory_store().await)];
    if let Some(host) = emulator(test) {
        out.push(("emulator", emulator_store(&host).await));
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// Tables

fn unique_table(what: &str) -> String {
    format!("mig_{what}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// `table(id, file)` plus the blob column `file_blob` added by the schema helper.
async fn create_table(t: &TestDb, table: &str) {
    let b = t.backend();
    let (id, file) = match b {
        DbBackend::Sqlite => ("INTEGER PRIMARY KEY", "TEXT NULL"),
        DbBackend::MySql => ("BIGINT PRIMARY KEY", "VARCHAR(1024) NULL"),
        _ => ("BIGINT PRIMARY KEY", "TEXT NULL"),
    };
    t.db.execute_unprepared(&format!("CREATE TABLE {} (id {id}, file {file})", quote(b, table))).await.unwrap();
    schema::add_blob_column(&SchemaManager::new(&t.db), table, "file_blob").await.unwrap();
}

async fn insert(t: &TestDb, table: &str, rows: &[(i64, Option<String>)]) {
    let b = t.backend();
    for chunk in rows.chunks(200) {
        let mut p = Params::new(b);
        let values: Vec<String> =
            chunk.iter().map(|(id, f)| format!("({}, {})", p.bind(*id), p.bind(f.clone()))).collect();
        let sql = format!("INSERT INTO {} (id, file) VALUES {}", quote(b, table), values.join(", "));
        t.db.execute_raw(p.statement(sql)).await.unwrap();
    }
}

/// `id -> column as text`.
async fn column(t: &TestDb, table: &str, col: &str) -> BTreeMap<i64, Option<String>> {
    let b = t.backend();
    let sql = format!("SELECT id, {} FROM {} ORDER BY id", as_text(b, None, col), quote(b, table));
    let rows = t.db.query_all_raw(Statement::from_string(b, sql)).await.unwrap();
    rows.iter().map(|r| (r.try_get_by_index::<i64>(0).unwrap(), r.try_get_by_index(1).unwrap())).collect()
}

async fn drop_table(t: &TestDb, table: &str) {
    let b = t.backend();
    t.db.execute_unprepared(&format!("DROP TABLE IF EXISTS {}", quote(b, table))).await.unwrap();
    if state::tables_exist(&t.db).await.unwrap() {
        for st in [state::REPORT_TABLE, state::CHECKPOINT_TABLE] {
            let mut p = Params::new(b);
            let sql = format!("DELETE FROM {} WHERE table_name = {}", quote(b, st), p.bind(table.to_string()));
            t.db.execute_raw(p.statement(sql)).await.unwrap();
        }
    }
}

async fn put(store: &dyn Store, name: &str, body: &str) {
    store.put(name, PutPayload::Bytes(Bytes::from(body.to_string())), PutOptions::default()).await.unwrap();
}

/// Names that break naive URL building and SQL.
const ODD_NAMES: [&str; 4] =
    ["docs/a file with spaces.pdf", "docs/ünïcödé/文件 ☃.txt", "docs/odd #?&=;'name\".txt", "docs/legacy one.txt"];

// ---------------------------------------------------------------------------------------------------
// Tests

/// Odd names, legacy values, blanks, a missing object and an invalid path; the values written carry the
/// object's metadata; the report and the CSV list exactly the two bad rows; a second run changes nothing.
#[tokio::test]
async fn backfill_fills_metadata_reports_missing_and_is_idempotent() {
    for t in databases("backfill").await {
        for (store_name, store) in stores("backfill").await {
            let ctx = format!("{} / {store_name}", t.name);
            let table = unique_table("fill");
            create_table(&t, &table).await;
            for name in ODD_NAMES {
                put(store.as_ref(), name, &format!("content of {name}")).await;
            }
            let bulk: Vec<String> = (0..150).map(|i| format!("docs/bulk/{i:04}.txt")).collect();
            for name in &bulk {
                put(store.as_ref(), name, name).await;
            }
            let mut rows: Vec<(i64, Option<String>)> = vec![
                (1, Some(ODD_NAMES[0].into())),
                (2, Some(ODD_NAMES[1].into())),
                (3, Some(ODD_NAMES[2].into())),
                (4, Some(serde_json::json!({ "path": ODD_NAMES[3] }).to_string())),
                (5, Some("docs/gone.txt".into())),
                (6, Some("../escape.txt".into())),
                (7, None),
                (8, Some(String::new())),
            ];
            rows.extend(bulk.iter().enumerate().map(|(i, n)| (100 + i as i64, Some(n.clone()))));
            insert(&t, &table, &rows).await;

            let m = ColumnMigration::new(&table, "file", "file_blob");
            let csv = tempfile::NamedTempFile::new().unwrap();
            let opts = BackfillOptions {
                batch_size: 64,
                report_csv: Some(csv.path().to_path_buf()),
                ..BackfillOptions::default()
            };
            let s = backfill(&t.db, store.clone(), &m, &opts).await.unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(
                (s.rows, s.migrated, s.missing, s.invalid, s.blank, s.already_done),
                (158, 154, 1, 1, 2, 0),
                "{ctx}: {s:?}"
            );
            assert!(s.completed && s.report_rows == 2 && s.changed_during_run == 0, "{ctx}: {s:?}");
            // One listing of `docs/` answers every batch; the one absent name is confirmed with a head.
            assert_eq!(s.storage_calls.get(StoreOp::List), 1, "{ctx}: {s:?}");
            assert_eq!(s.storage_calls.get(StoreOp::Head), 1, "{ctx}: {s:?}");
            assert_eq!(s.storage_calls.remote(), 2, "{ctx}: {s:?}");

            let blobs = column(&t, &table, "file_blob").await;
            for (id, name) in [(1, ODD_NAMES[0]), (2, ODD_NAMES[1]), (3, ODD_NAMES[2]), (4, ODD_NAMES[3])] {
                let text = blobs[&id].as_deref().unwrap_or_else(|| panic!("{ctx}: row {id} not filled"));
                let v = BlobValue::from_text(text).unwrap();
                let meta = store.head(name, GetOptions::default()).await.unwrap();
                assert_eq!(v.name, name, "{ctx}");
                assert_eq!(v.generation, Some(meta.generation), "{ctx}");
                assert_eq!(v.size, Some(meta.size), "{ctx}");
                assert_eq!(v.content_type, meta.content_type, "{ctx}");
                assert_eq!(v.crc32c, meta.crc32c, "{ctx}");
                assert!(v.crc32c.is_some(), "{ctx}: crc32c cached");
                assert_eq!(v.md5, meta.md5, "{ctx}");
            }
            for id in [5, 6, 7, 8] {
                assert_eq!(blobs[&id], None, "{ctx}: row {id} must stay blank");
            }
            assert!(blobs.range(100..).all(|(_, v)| v.is_some()), "{ctx}");
            assert_eq!(column(&t, &table, "file").await[&5].as_deref(), Some("docs/gone.txt"), "{ctx}");

            let report = state::read_report(&t.db, &m).await.unwrap();
            let reasons: Vec<(String, ReportReason)> = report.iter().map(|e| (e.pk.clone(), e.reason)).collect();
            assert_eq!(
                reasons,
                vec![("5".into(), ReportReason::Missing), ("6".into(), ReportReason::Invalid)],
                "{ctx}"
            );
            let csv_text = std::fs::read_to_string(csv.path()).unwrap();
            assert!(csv_text.starts_with("pk,path,reason,detail\n5,docs/gone.txt,missing,"), "{ctx}: {csv_text}");
            assert!(csv_text.contains("\n6,../escape.txt,invalid,"), "{ctx}: {csv_text}");

            // Second run: everything already done, nothing written, same report. The row reported
            // missing for the same path is looked for in the listing only: no head.
            let again = backfill(&t.db, store.clone(), &m, &opts).await.unwrap();
            assert_eq!((again.migrated, again.already_done, again.missing, again.invalid), (0, 154, 1, 1), "{ctx}");
            assert_eq!(again.missing_not_rechecked, 1, "{ctx}: {again:?}");
            assert_eq!(again.storage_calls.get(StoreOp::Head), 0, "{ctx}: known missing rows are not probed again");
            assert_eq!(again.storage_calls.get(StoreOp::List), 1, "{ctx}: {again:?}");
            // Asked to recheck: one head per missing row again.
            let recheck = BackfillOptions { recheck_missing: true, ..opts.clone() };
            let rechecked = backfill(&t.db, store.clone(), &m, &recheck).await.unwrap();
            assert_eq!((rechecked.missing, rechecked.missing_not_rechecked), (1, 0), "{ctx}: {rechecked:?}");
            assert_eq!(rechecked.storage_calls.get(StoreOp::Head), 1, "{ctx}: {rechecked:?}");
            // A row whose path changed since it was reported is probed again, without being asked.
            let b = t.backend();
            let set_path = |path: &'static str| {
                let mut p = Params::new(b);
                let sql = format!("UPDATE {} SET file = {} WHERE id = 5", quote(b, &table), p.bind(path.to_string()));
                p.statement(sql)
            };
            t.db.execute_raw(set_path("docs/gone-elsewhere.txt")).await.unwrap();
            let moved = backfill(&t.db, store.clone(), &m, &opts).await.unwrap();
            assert_eq!((moved.missing, moved.missing_not_rechecked), (1, 0), "{ctx}: {moved:?}");
            assert_eq!(moved.storage_calls.get(StoreOp::Head), 1, "{ctx}: a changed path is probed: {moved:?}");
            t.db.execute_raw(set_path("docs/gone.txt")).await.unwrap();
            assert_eq!(column(&t, &table, "file_blob").await, blobs, "{ctx}: a second run changes nothing");
            assert_eq!(state::report_count(&t.db, &m).await.unwrap(), 2, "{ctx}");

            // The missing object appears: the next run fills that row and the report empties.
            put(store.as_ref(), "docs/gone.txt", "back").await;
            let third = backfill(&t.db, store.clone(), &m, &opts).await.unwrap();
            assert_eq!((third.migrated, third.missing, third.report_rows), (1, 0, 1), "{ctx}: {third:?}");
            drop_table(&t, &table).await;
        }
    }
}

/// Stopped after two batches, then failed by a storage outage, then resumed: every row ends up migrated
/// exactly once, and the resumed run starts after the checkpoint.
#[tokio::test]
async fn interrupted_run_resumes_from_the_checkpoint() {
    for t in databases("resume").await {
        for (store_name, store) in stores("resume").await {
            let ctx = format!("{} / {store_name}", t.name);
            let table = unique_table("resume");
            create_table(&t, &table).await;
            let names: Vec<String> = (0..300).map(|i| format!("r/{i:04} ü.bin")).collect();
            futures::future::join_all(names.iter().map(|n| put(store.as_ref(), n, n))).await;
            insert(
                &t,
                &table,
                &names.iter().enumerate().map(|(i, n)| (i as i64 + 1, Some(n.clone()))).collect::<Vec<_>>(),
            )
            .await;
            let m = ColumnMigration::new(&table, "file", "file_blob");
            let base = BackfillOptions {
                batch_size: 50,
                concurrency: 2,
                listing: ListingMode::PerBatch,
                ..BackfillOptions::default()
            };

            let first = backfill(&t.db, store.clone(), &m, &BackfillOptions { max_batches: Some(2), ..base.clone() })
                .await
                .unwrap();
            assert_eq!((first.rows, first.migrated, first.completed), (100, 100, false), "{ctx}: {first:?}");
            let cp = state::read_checkpoint(&t.db, &m).await.unwrap().unwrap();
            assert_eq!(cp.last_pk.map(|k| k.to_text()), Some("100".to_string()), "{ctx}");

            // A storage outage on the third listing of the next run: batches before it are committed.
            let faulty = Arc::new(FaultStore::new(store.clone()));
            faulty.fail(StoreOp::List, 3, FaultKind::Before);
            let err = backfill(&t.db, faulty.clone(), &m, &base).await.unwrap_err();
            assert!(err.is_retryable(), "{ctx}: {err}");
            let cp = state::read_checkpoint(&t.db, &m).await.unwrap().unwrap();
            assert_eq!(cp.last_pk.map(|k| k.to_text()), Some("200".to_string()), "{ctx}");
            assert!(!cp.completed, "{ctx}");
            let filled = column(&t, &table, "file_blob").await.values().filter(|v| v.is_some()).count();
            assert_eq!(filled, 200, "{ctx}");

            let last = backfill(&t.db, store.clone(), &m, &base).await.unwrap();
            assert_eq!(last.resumed_after.as_deref(), Some("200"), "{ctx}");
            assert_eq!((last.rows, last.migrated, last.completed), (100, 100, true), "{ctx}: {last:?}");
            let blobs = column(&t, &table, "file_blob").await;
            for (i, name) in names.iter().enumerate() {
                let v = BlobValue::from_text(blobs[&(i as i64 + 1)].as_deref().unwrap()).unwrap();
                assert_eq!(&v.name, name, "{ctx}");
                assert!(v.is_cached(), "{ctx}");
            }
            // A completed checkpoint makes the next run a fresh, idempotent pass.
            let again = backfill(&t.db, store.clone(), &m, &base).await.unwrap();
            assert_eq!(
                (again.rows, again.migrated, again.already_done, again.resumed_after),
                (300, 0, 300, None),
                "{ctx}"
            );
            drop_table(&t, &table).await;
        }
    }
}

/// A dry run writes nothing; per-row writes give the same values as the batch statement; a row the
/// application changed meanwhile is never overwritten; a conflicting destination is reported and kept.
#[tokio::test]
async fn dry_run_write_modes_and_concurrent_changes() {
    let store = memory_store().await;
    for name in ["w/a.txt", "w/b.txt", "w/c.txt", "w/other.txt"] {
        put(store.as_ref(), name, name).await;
    }
    for t in databases("write modes").await {
        let ctx = t.name;
        let table = unique_table("modes");
        create_table(&t, &table).await;
        insert(&t, &table, &[(1, Some("w/a.txt".into())), (2, Some("w/b.txt".into())), (3, Some("w/c.txt".into()))])
            .await;
        let other = serde_json::json!({ "v": 1, "name": "w/other.txt", "generation": "5" }).to_string();
        let b = t.backend();
        let mut p = Params::new(b);
        let value = p.bind(other.clone());
        let value = if b == DbBackend::Postgres { format!("CAST({value} AS jsonb)") } else { value };
        let sql = format!("UPDATE {} SET file_blob = {value} WHERE id = 3", quote(b, &table));
        t.db.execute_raw(p.statement(sql)).await.unwrap();
        let m = ColumnMigration::new(&table, "file", "file_blob");

        let dry =
            backfill(&t.db, store.clone(), &m, &BackfillOptions { dry_run: true, ..Default::default() }).await.unwrap();
        assert_eq!((dry.migrated, dry.conflicts, dry.report_rows), (2, 1, 1), "{ctx}: {dry:?}");
        assert_eq!(column(&t, &table, "file_blob").await[&1], None, "{ctx}: a dry run writes nothing");

        let s =
            backfill(&t.db, store.clone(), &m, &BackfillOptions { writes: WriteMode::PerRow, ..Default::default() })
                .await
                .unwrap();
        assert_eq!((s.migrated, s.conflicts), (2, 1), "{ctx}: {s:?}");
        let blobs = column(&t, &table, "file_blob").await;
        assert_eq!(BlobValue::from_text(blobs[&1].as_deref().unwrap()).unwrap().name, "w/a.txt", "{ctx}");
        assert_eq!(
            BlobValue::from_text(blobs[&3].as_deref().unwrap()).unwrap().name,
            "w/other.txt",
            "{ctx}: the conflicting destination is kept"
        );
        let report = state::read_report(&t.db, &m).await.unwrap();
        assert_eq!(report.len(), 1, "{ctx}");
        assert_eq!((report[0].pk.as_str(), report[0].reason), ("3", ReportReason::Conflict), "{ctx}");

        // The guard: a batch statement whose rows changed since they were read writes none of them.
        let rows = vec![sea_gcp::migrate::sql::RowWrite {
            pk: sea_gcp::migrate::source::PkValue::Int(2),
            old_from: Some("w/b.txt".into()),
            old_to: None,
            new: "{\"v\":1,\"name\":\"w/b.txt\"}".into(),
        }];
        let stmt = sea_gcp::migrate::sql::update_batch(&m, b, &rows, Some("jsonb"));
        let written = t.db.execute_raw(stmt).await.unwrap().rows_affected();
        assert_eq!(written, 0, "{ctx}: row 2 holds a value now, the stale write must not land");
        drop_table(&t, &table).await;
    }
}

/// The swap is refused while the report lists a missing object, then done with --force; done without
/// force once everything is migrated.
#[tokio::test]
async fn swap_refuses_missing_objects_unless_forced() {
    let store = memory_store().await;
    put(store.as_ref(), "s/here.txt", "x").await;
    for t in databases("swap").await {
        let ctx = t.name;
        for force_case in [false, true] {
            let table = unique_table("swap");
            create_table(&t, &table).await;
            let missing = if force_case { "s/gone.txt" } else { "s/here.txt" };
            insert(&t, &table, &[(1, Some("s/here.txt".into())), (2, Some(missing.into()))]).await;
            let m = ColumnMigration::new(&table, "file", "file_blob");
            backfill(&t.db, store.clone(), &m, &BackfillOptions::default()).await.unwrap();
            if force_case {
                let err = swap_columns(&t.db, &m, false).await.unwrap_err().to_string();
                assert!(err.contains("refusing to swap") && err.contains("--force"), "{ctx}: {err}");
                assert!(column(&t, &table, "file_blob").await.contains_key(&1), "{ctx}: nothing changed");
                let outcome = swap_columns(&t.db, &m, true).await.unwrap();
                assert!(outcome.forced && outcome.report_rows == 1, "{ctx}: {outcome:?}");
            } else {
                let outcome = swap_columns(&t.db, &m, false).await.unwrap();
                assert!(!outcome.forced, "{ctx}");
            }
            // `file` is now the blob column.
            let file = column(&t, &table, "file").await;
            let v = BlobValue::from_text(file[&1].as_deref().unwrap()).unwrap();
            assert!(v.is_cached() && v.name == "s/here.txt", "{ctx}");
            drop_table(&t, &table).await;
        }
    }
}

/// Convert in place (paths become uncached values), then backfill the column onto itself.
#[tokio::test]
async fn in_place_conversion_then_backfill() {
    let store = memory_store().await;
    put(store.as_ref(), "p/one.txt", "1").await;
    put(store.as_ref(), "p/two words.txt", "22").await;
    for t in databases("in place").await {
        let ctx = t.name;
        let table = unique_table("inplace");
        create_table(&t, &table).await;
        let legacy = serde_json::json!({ "path": "p/two words.txt" }).to_string();
        insert(&t, &table, &[(1, Some("p/one.txt".into())), (2, Some(legacy)), (3, Some(String::new())), (4, None)])
            .await;
        let manager = SchemaManager::new(&t.db);
        schema::convert_to_blob_in_place(&manager, &table, "file").await.unwrap();
        let m = ColumnMigration::new(&table, "file", "file");
        let s = backfill(&t.db, store.clone(), &m, &BackfillOptions::default()).await.unwrap();
        assert_eq!((s.migrated, s.blank, s.report_rows), (2, 2, 0), "{ctx}: {s:?}");
        let file = column(&t, &table, "file").await;
        let two = BlobValue::from_text(file[&2].as_deref().unwrap()).unwrap();
        assert_eq!((two.name.as_str(), two.size), ("p/two words.txt", Some(2)), "{ctx}");
        assert_eq!(file[&3], None, "{ctx}: an empty path becomes NULL");
        let again = backfill(&t.db, store.clone(), &m, &BackfillOptions::default()).await.unwrap();
        assert_eq!((again.migrated, again.already_done), (0, 2), "{ctx}");

        schema::convert_blob_to_path_in_place(&manager, &table, "file").await.unwrap();
        let file = column(&t, &table, "file").await;
        assert_eq!(file[&2].as_deref(), Some("p/two words.txt"), "{ctx}");
        drop_table(&t, &table).await;
    }
}

/// The example migration in `examples/migrations/` runs up and down.
#[tokio::test]
async fn example_migration_adds_and_drops_the_blob_column() {
    let t = sqlite().await;
    t.db.execute_unprepared("CREATE TABLE document (id INTEGER PRIMARY KEY, file TEXT NULL)").await.unwrap();
    let manager = SchemaManager::new(&t.db);
    let migration = m20260301_000001_document_file_blob::Migration;
    migration.up(&manager).await.unwrap();
    assert!(manager.has_column("document", "file_blob").await.unwrap());
    migration.down(&manager).await.unwrap();
    assert!(!manager.has_column("document", "file_blob").await.unwrap());
}

/// `sea-gcp migrate-column` through the built binary on SQLite and a local store: dry run, an
/// interrupted run, the resumed run, swap refused, then allowed after the missing file appears.
#[tokio::test]
async fn cli_end_to_end_on_sqlite() {
    let t = sqlite().await;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let settings = tmp.path().join("sea-gcp.toml");
    std::fs::write(
        &settings,
        format!("[stores.media]\nbackend = \"local\"\nroot = {:?}\n", root.display().to_string()),
    )
    .unwrap();
    let store = sea_gcp::storage::open("media", StoreConfig::local(&root)).await.unwrap();
    let mut rows = Vec::new();
    for i in 1..=30i64 {
        let name = format!("cli/{i:02} #?&.txt");
        if i != 7 {
            put(store.as_ref(), &name, "x").await;
        }
        rows.push((i, Some(if i == 3 { serde_json::json!({ "path": name }).to_string() } else { name })));
    }
    create_table(&t, "document").await;
    insert(&t, "document", &rows).await;

    let csv = tmp.path().join("report.csv");
    let Some(binary) = cli_support::cli_binary() else { return };
    let run = |extra: &[&str]| {
        let mut args = vec![
            "migrate-column",
            "--database-url",
            &t.url,
            "--table",
            "document",
            "--from-column",
            "file",
            "--to-column",
            "file_blob",
            "--store",
            "media",
            "--batch-size",
            "10",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(&binary)
            .args(&args)
            .arg("--settings")
            .arg(&settings)
            .arg("--report-csv")
            .arg(&csv)
            .env_remove("SEA_GCP_SETTINGS")
            .env_remove("DATABASE_URL")
            .output()
            .expect("binary runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (ok, out, err) = run(&["--dry-run"]);
    assert!(ok, "{err}");
    assert!(out.contains("would migrate:      29") && out.contains("missing:            1"), "{out}");
    assert!(column(&t, "document", "file_blob").await.values().all(Option::is_none), "dry run writes nothing");

    let (ok, out, err) = run(&["--max-batches", "1"]);
    assert!(ok, "{err}");
    assert!(out.contains("migrated:           9\n") && out.contains("missing:            1"), "{out}");
    assert!(out.contains("status: stopped after 1"), "{out}");

    let (ok, out, err) = run(&["--swap"]);
    assert!(!ok, "the swap must be refused with a missing object: {out}");
    assert!(out.contains("resumed after id = 10") && out.contains("migrated:           20"), "{out}");
    assert!(out.contains("report:             1 row(s)") && out.contains("status: complete"), "{out}");
    assert!(err.contains("refusing to swap") && err.contains("--force"), "{err}");
    let report = std::fs::read_to_string(&csv).unwrap();
    assert!(report.contains("7,cli/07 #?&.txt,missing,"), "{report}");

    put(store.as_ref(), "cli/07 #?&.txt", "late").await;
    let (ok, out, err) = run(&["--swap"]);
    assert!(ok, "{err}\n{out}");
    assert!(out.contains("migrated:           1\n") && out.contains("already done:       29"), "{out}");
    assert!(out.contains("storage calls:      1 (list 1, head 0)"), "{out}");
    assert!(out.contains("swapped: dropped document.file, renamed file_blob to file"), "{out}");
    let file = column(&t, "document", "file").await;
    assert_eq!(BlobValue::from_text(file[&3].as_deref().unwrap()).unwrap().name, "cli/03 #?&.txt");

    let (ok, _, err) = run(&["--dry-run", "--swap"]);
    assert!(!ok && err.contains("--swap cannot be combined with --dry-run"), "{err}");
}
