//! Variant throughput through the task path, for `scripts/bench-variants.sh`: the app handle in local
//! mode (SQLite, a local store, the local Cloud Tasks pushing to the app's worker route with signed
//! tokens) saves every file given to a field with `Variant::limit("thumb", 400, 400)`; the clock runs from
//! the first save to the last variant recorded in its row. In the same run, the floor: the same variants
//! rendered from the same bytes in memory by the same renderer on as many threads as the machine has
//! cores, with no database, storage or task.
//!
//! `cargo run --release --example bench_variants --features images,tasks -- FILE...`
//! Prints `key value` lines.

use std::time::{Duration, Instant};

use sea_gcp::field::{BlobChanges, PendingUpload};
use sea_gcp::images::{Variant, render};
use sea_gcp::storage::{PutOptions, PutPayload};
use sea_gcp::{Gcp, Settings};
use sea_orm::{ConnectionTrait, Database, EntityTrait, Schema};

mod photos {
    use sea_gcp::field::BlobValue;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "photos")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub file: Option<BlobValue>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const MAX_PIXELS: u64 = 200_000_000;

fn content_type(file: &str) -> &'static str {
    if file.ends_with(".png") { "image/png" } else { "image/jpeg" }
}

/// Render every file's thumb on `threads` threads, each taking the next file as it finishes one; the wall
/// time.
fn floor(files: &[(String, Vec<u8>)], threads: usize) -> Duration {
    let thumb = Variant::limit("thumb", 400, 400);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (thumb, next) = (thumb.clone(), &next);
            scope.spawn(move || {
                while let Some((name, bytes)) = files.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                    render(bytes, &thumb, MAX_PIXELS).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
            });
        }
    });
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let files: Vec<(String, Vec<u8>)> = std::env::args()
        .skip(1)
        .map(|f| (f.clone(), std::fs::read(&f).unwrap_or_else(|e| panic!("{f}: {e}"))))
        .collect();
    if files.is_empty() {
        eprintln!("usage: bench_variants FILE...");
        return;
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = Settings::from_env_vars([
        ("SEA_GCP__BASE_URL".to_string(), format!("http://{}", listener.local_addr().unwrap())),
        ("SEA_GCP__STORES__MEDIA__BACKEND".into(), "local".into()),
        ("SEA_GCP__STORES__MEDIA__ROOT".into(), dir.path().join("media").display().to_string()),
        ("SEA_GCP__UPLOADS__ALLOW_ANONYMOUS".into(), "true".into()),
    ])
    .unwrap();
    let db = Database::connect(format!("sqlite://{}?mode=rwc", dir.path().join("app.sqlite").display())).await.unwrap();
    db.execute_unprepared("PRAGMA journal_mode=WAL").await.unwrap();
    db.execute(&Schema::new(db.get_database_backend()).create_table_from_entity(photos::Entity)).await.unwrap();
    let gcp = Gcp::builder(settings, db)
        .blob_field_with(photos::Column::File, "media", |f| {
            f.max_pixels(MAX_PIXELS).variant(Variant::limit("thumb", 400, 400))
        })
        .create_tables()
        .build()
        .await
        .unwrap();
    let router = gcp.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let background = gcp.spawn_background();
    let media = gcp.blobs().store("media").unwrap().clone();

    // Uploads in place first (a browser's part), then the saves and the variants on the clock.
    let mut uploads = Vec::new();
    for (i, (name, bytes)) in files.iter().enumerate() {
        let temp = format!("_tmp/{i}/{}", name.rsplit('/').next().unwrap());
        let opts = PutOptions::create_only().with_content_type(content_type(name));
        let meta = media.put(&temp, PutPayload::Bytes(bytes.clone().into()), opts).await.unwrap();
        uploads.push(PendingUpload::trusted(temp.clone(), Some(meta.generation), temp.rsplit('/').next().unwrap()));
    }
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let mut save_time = Duration::ZERO;
    for upload in uploads {
        let model = photos::ActiveModel::default();
        let changes = BlobChanges::<photos::Entity>::new().attach(photos::Column::File, upload);
        let one = Instant::now();
        let pending = gcp.blobs().begin_insert(model, changes).await.unwrap();
        gcp.commit_save(pending).await.unwrap();
        save_time += one.elapsed();
    }
    loop {
        let rows = photos::Entity::find().all(gcp.db()).await.unwrap();
        if rows.iter().all(|r| r.file.as_ref().is_some_and(|v| v.variant("thumb").is_some())) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "variants not made within 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let task_path = start.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    background.stop().await;

    let floor_cpu_before = cpu_seconds();
    let floor = floor(&files, threads);
    let floor_cpu = cpu_seconds() - floor_cpu_before;
    let n = files.len() as f64;
    println!("files {}", files.len());
    println!("threads {threads}");
    println!("task_path_seconds {:.3}", task_path.as_secs_f64());
    println!("task_path_per_second {:.2}", n / task_path.as_secs_f64());
    println!("task_path_cpu_seconds {cpu:.3}");
    println!("save_ms_mean {:.2}", save_time.as_secs_f64() * 1000.0 / n);
    println!("floor_seconds {:.3}", floor.as_secs_f64());
    println!("floor_per_second {:.2}", n / floor.as_secs_f64());
    println!("floor_cpu_seconds {floor_cpu:.3}");
    println!("ratio_to_floor {:.2}", floor.as_secs_f64() / task_path.as_secs_f64());
}

/// User plus system CPU seconds of this process so far (Linux: /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks, 100 per second).
    (ticks(11) + ticks(12)) / 100.0
}
