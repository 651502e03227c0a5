//! Blob field save overhead: storage calls per save (counted) and save latency with a new upload versus
//! a plain SeaORM save of the same row, on the memory store (and the GCS emulator when
//! `STORAGE_EMULATOR_HOST` is set), on SQLite and on PostgreSQL/MariaDB when reachable.
//!
//! `cargo bench --bench save` prints a Markdown section for BENCHMARKS.md. Call budgets are asserted:
//! the run fails if a new upload takes more than 3 storage calls, or an unchanged save or a read of a
//! loaded row takes any.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_gcp::field::{BlobChanges, BlobFieldSpec, BlobValue, DeletePolicy, PendingUpload};
use sea_gcp::promote::{BlobSaver, Outbox};
use sea_gcp::storage::CountingStore;
use sea_gcp::storage::MemoryStore;
use sea_gcp::storage::{PutOptions, PutPayload, Store, UrlOptions};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectOptions, Database, DatabaseConnection, IntoActiveModel, Schema};

/// A plain `DeriveEntityModel` entity with a required and a blankable blob column.
mod doc {
    use sea_gcp::field::BlobValue;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "sea_gcp_bench_docs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub title: String,
        pub cover: BlobValue,
        pub file: Option<BlobValue>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const SAVES: usize = 200;

async fn connect(url: &str) -> Option<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(4).connect_timeout(Duration::from_secs(3)).sqlx_logging(false);
    Database::connect(opts).await.ok()
}

async fn upload(store: &dyn Store, i: usize) -> PendingUpload {
    let body = format!("upload number {i} ").repeat(64);
    upload_bytes(store, &format!("f{i}.txt"), body.into_bytes(), "text/plain").await
}

/// `bytes` uploaded as a browser would, under the ingress prefix.
async fn upload_bytes(store: &dyn Store, file: &str, bytes: Vec<u8>, content_type: &str) -> PendingUpload {
    let name = format!("_tmp/{}/{file}", uuid::Uuid::now_v7());
    let options = PutOptions::create_only().with_content_type(content_type);
    let meta = store.put(&name, PutPayload::Bytes(bytes.into()), options).await.unwrap();
    PendingUpload::trusted(name, Some(meta.generation), file)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Row {
    db: &'static str,
    store: &'static str,
    plain: Duration,
    blob: Duration,
}

/// The bench's documents table and outbox, created anew.
async fn fresh_tables(db: &DatabaseConnection) -> Outbox {
    let backend = db.get_database_backend();
    db.execute_unprepared("DROP TABLE IF EXISTS sea_gcp_bench_docs").await.unwrap();
    db.execute(&Schema::new(backend).create_table_from_entity(doc::Entity)).await.unwrap();
    let outbox = Outbox::new("sea_gcp_bench_outbox");
    outbox.drop(db).await.unwrap();
    outbox.create(db).await.unwrap();
    outbox
}

async fn bench(db: &DatabaseConnection, dbname: &'static str, store: Arc<dyn Store>, storename: &'static str) -> Row {
    let outbox = fresh_tables(db).await;
    let counting = Arc::new(CountingStore::new(store.clone()));
    let saver = BlobSaver::new(db.clone())
        .store(counting.clone())
        .outbox(outbox.clone())
        .field(BlobFieldSpec::new(doc::Column::Cover, "media"))
        .field(BlobFieldSpec::new(doc::Column::File, "media").blank(true).delete_policy(DeletePolicy::Delete));

    // Calls per save, counted.
    let up = upload(store.as_ref(), 0).await;
    counting.reset();
    let saved = saver
        .insert(
            doc::ActiveModel { title: Set("counted".into()), ..Default::default() },
            BlobChanges::new().attach(doc::Column::Cover, up),
        )
        .await
        .unwrap();
    let new_upload = counting.counts();
    assert!(new_upload.remote() <= 3, "a new upload took {new_upload}");
    let up = upload(store.as_ref(), 1).await;
    let saved = saver
        .update(saved.model.into_active_model(), BlobChanges::new().attach(doc::Column::File, up))
        .await
        .unwrap()
        .model;
    let up = upload(store.as_ref(), 2).await;
    counting.reset();
    let saved =
        saver.update(saved.into_active_model(), BlobChanges::new().attach(doc::Column::File, up)).await.unwrap().model;
    let replace = counting.counts();
    counting.reset();
    let mut am = saved.clone().into_active_model();
    am.title = Set("renamed".into());
    saver.update(am, BlobChanges::new()).await.unwrap();
    let unchanged = counting.counts();
    assert_eq!(unchanged.remote(), 0, "an unchanged save took {unchanged}");
    let loaded = doc::Entity::find_by_id(saved.id).one(db).await.unwrap().unwrap();
    counting.reset();
    let _ = (loaded.cover.size, loaded.cover.content_type.as_deref());
    let _ = loaded.cover.pinned_url(counting.as_ref(), UrlOptions::default()).await.unwrap();
    let read = counting.counts();
    assert_eq!(read.remote(), 0, "reading a loaded row took {read}");
    if dbname == "sqlite" && storename == "memory" {
        println!("| new upload (insert) | {} | {new_upload} |", new_upload.remote());
        println!("| new upload replacing one (update, delete policy) | {} | {replace} |", replace.remote());
        println!("| unchanged blob (update of other columns) | {} | {unchanged} |", unchanged.remote());
        println!("| size, type and pinned URL from a loaded row | {} | {read} |", read.remote());
        println!();
    }

    // Latency: a plain SeaORM insert of the same row (cached values precomputed) vs a save with a new upload.
    let cover: BlobValue = saved.cover.clone();
    let mut uploads = Vec::with_capacity(SAVES);
    for i in 0..SAVES {
        uploads.push(upload(store.as_ref(), 100 + i).await);
    }
    let mut plain = Vec::with_capacity(SAVES);
    let mut blob = Vec::with_capacity(SAVES);
    for (i, up) in uploads.into_iter().enumerate() {
        let am = doc::ActiveModel { title: Set(format!("plain {i}")), cover: Set(cover.clone()), ..Default::default() };
        let t = Instant::now();
        am.insert(db).await.unwrap();
        plain.push(t.elapsed());
        let am = doc::ActiveModel { title: Set(format!("blob {i}")), ..Default::default() };
        let t = Instant::now();
        saver.insert(am, BlobChanges::new().attach(doc::Column::Cover, up)).await.unwrap();
        blob.push(t.elapsed());
    }
    db.execute_unprepared("DROP TABLE IF EXISTS sea_gcp_bench_docs").await.unwrap();
    outbox.drop(db).await.unwrap();
    Row { db: dbname, store: storename, plain: median(plain), blob: median(blob) }
}

async fn emulator_store() -> Option<Arc<dyn Store>> {
    let host = std::env::var("STORAGE_EMULATOR_HOST").ok().filter(|h| !h.is_empty())?;
    let bucket = format!("bench-{}", uuid::Uuid::new_v4().simple());
    reqwest::Client::new()
        .post(format!("{host}/storage/v1/b?project=test"))
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .ok()?;
    let config =
        sea_gcp::StoreConfig { bucket_name: bucket, api_endpoint: Some(host), ..sea_gcp::StoreConfig::gcs("x") };
    sea_gcp::storage::open("media", config).await.ok()
}

/// The added cost of reading an upload's first bytes: identification (an accept list) and image analysis
/// (feature `images`) against a field that reads nothing, on a 1024 x 768 JPEG, interleaved saves.
#[cfg(feature = "images")]
async fn inspection(db: &DatabaseConnection, store: Arc<dyn Store>, storename: &str) {
    let outbox = fresh_tables(db).await;
    let photo =
        image::RgbImage::from_fn(1024, 768, |x, y| image::Rgb([(x / 4) as u8, (y / 3) as u8, ((x + y) / 7) as u8]));
    let mut jpeg = Vec::new();
    image::DynamicImage::from(photo).write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    let counting = Arc::new(CountingStore::new(store.clone()));
    let spec = || BlobFieldSpec::new(doc::Column::Cover, "media");
    let savers = [
        ("no read (no accept list)", spec().analyze_images(false)),
        ("identification (accept list)", spec().accept(["image/*"]).analyze_images(false)),
        ("identification and image analysis", spec().accept(["image/*"])),
    ]
    .map(|(label, field)| {
        (label, BlobSaver::new(db.clone()).store(counting.clone()).outbox(outbox.clone()).field(field))
    });
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); savers.len()];
    let mut calls = vec![String::new(); savers.len()];
    for i in 0..SAVES {
        for (k, (_, saver)) in savers.iter().enumerate() {
            let up = upload_bytes(store.as_ref(), "photo.jpg", jpeg.clone(), "image/jpeg").await;
            counting.reset();
            let am = doc::ActiveModel { title: Set(format!("p{i}")), ..Default::default() };
            let t = Instant::now();
            saver.insert(am, BlobChanges::new().attach(doc::Column::Cover, up)).await.unwrap();
            times[k].push(t.elapsed());
            calls[k] = counting.counts().to_string();
        }
    }
    println!(
        "### Reading the first bytes: {storename}, {} KiB JPEG, median of {SAVES} interleaved inserts\n",
        jpeg.len() / 1024
    );
    println!("| field | storage calls | insert | added |");
    println!("|---|---|---|---|");
    let base = median(times[0].clone());
    for (k, (label, _)) in savers.iter().enumerate() {
        let m = median(times[k].clone());
        println!(
            "| {label} | {} | {:.2} ms | +{:.2} ms |",
            calls[k],
            m.as_secs_f64() * 1e3,
            (m.as_secs_f64() - base.as_secs_f64()) * 1e3
        );
    }
    println!();
    db.execute_unprepared("DROP TABLE IF EXISTS sea_gcp_bench_docs").await.unwrap();
    outbox.drop(db).await.unwrap();
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite =
            connect(&format!("sqlite://{}?mode=rwc", dir.path().join("bench.sqlite").display())).await.unwrap();
        sqlite.execute_unprepared("PRAGMA journal_mode=WAL").await.unwrap();
        let mut dbs = vec![("sqlite", sqlite)];
        let pg = std::env::var("SEA_GCP_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        match connect(&pg).await {
            Some(db) => dbs.push(("postgres", db)),
            None => eprintln!("SKIPPED: PostgreSQL at {pg}"),
        }
        let my = std::env::var("SEA_GCP_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        match connect(&my).await {
            Some(db) => dbs.push(("mariadb", db)),
            None => eprintln!("SKIPPED: MariaDB/MySQL at {my}"),
        }
        let emulator = emulator_store().await;
        if emulator.is_none() {
            eprintln!("SKIPPED: GCS emulator (STORAGE_EMULATOR_HOST not set or unreachable)");
        }

        println!("### Storage calls per save (counted with `CountingStore`)\n");
        println!("| save | remote calls | calls |");
        println!("|---|---|---|");
        let mut rows = Vec::new();
        for (name, db) in &dbs {
            let memory: Arc<dyn Store> = Arc::new(MemoryStore::default_for("media"));
            rows.push(bench(db, name, memory, "memory").await);
            if let Some(gcs) = &emulator {
                rows.push(bench(db, name, gcs.clone(), "gcs emulator").await);
            }
        }
        #[cfg(feature = "images")]
        {
            inspection(&dbs[0].1, Arc::new(MemoryStore::default_for("media")), "SQLite, memory store").await;
            if let Some(gcs) = &emulator {
                inspection(&dbs[0].1, gcs.clone(), "SQLite, GCS emulator").await;
            }
        }
        println!("### Save latency, median of {SAVES} inserts\n");
        println!("| database | store | plain SeaORM insert | insert with new upload | ratio | overhead |");
        println!("|---|---|---|---|---|---|");
        for r in &rows {
            println!(
                "| {} | {} | {:.2} ms | {:.2} ms | {:.1}x | +{:.2} ms |",
                r.db,
                r.store,
                r.plain.as_secs_f64() * 1e3,
                r.blob.as_secs_f64() * 1e3,
                r.blob.as_secs_f64() / r.plain.as_secs_f64(),
                (r.blob.as_secs_f64() - r.plain.as_secs_f64()) * 1e3
            );
        }
    });
}
