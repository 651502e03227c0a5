//! Variants on a blob field, on the production path in local mode: a save queues the variants task in
//! its own transaction (a rolled-back save queues nothing), the local Cloud Tasks pushes it to the app's
//! worker route, the task writes each variant beside the original and records it in the row, a variant
//! URL needs no storage call, and replacing or deleting the original deletes its variants. The
//! guarantees of one run (exactly one object per name under failures, lost answers, concurrent runs and
//! a save replacing the original mid-run, on every database) are tested beside `make_variants`.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use sea_gcp::field::{BlobChanges, BlobValue, DeletePolicy, PendingUpload};
use sea_gcp::images::Variant;
use sea_gcp::storage::{GetOptions, PutOptions, PutPayload, Store, UrlOptions};
use sea_gcp::{Gcp, Settings};
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, EntityTrait, Schema, Statement};

mod photos {
    use sea_gcp::field::BlobValue;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "photos")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub title: String,
        pub file: Option<BlobValue>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 3) as u8, (y * 2) as u8, 60]));
    let mut out = Vec::new();
    image::DynamicImage::from(image).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

struct App {
    gcp: Gcp,
    media: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn start() -> (App, sea_gcp::app::Background) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("SEA_GCP__BASE_URL".to_string(), base),
        ("SEA_GCP__STORES__MEDIA__BACKEND".into(), "local".into()),
        ("SEA_GCP__STORES__MEDIA__ROOT".into(), dir.path().join("media").display().to_string()),
        ("SEA_GCP__UPLOADS__ALLOW_ANONYMOUS".into(), "true".into()),
    ];
    let settings = Settings::from_env_vars(vars).unwrap();
    let db = Database::connect(format!("sqlite://{}?mode=rwc", dir.path().join("app.sqlite").display())).await.unwrap();
    let backend = db.get_database_backend();
    db.execute(&Schema::new(backend).create_table_from_entity(photos::Entity)).await.unwrap();
    let gcp = Gcp::builder(settings, db)
        .blob_field_with(photos::Column::File, "media", |f| {
            f.accept(["image/*"]).delete_policy(DeletePolicy::Delete).variant(Variant::limit("thumb", 40, 40))
        })
        .create_tables()
        .build()
        .await
        .unwrap();
    assert!(gcp.local_cloud().is_some(), "local mode");
    let router = gcp.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let background = gcp.spawn_background();
    let media = gcp.blobs().store("media").unwrap().clone();
    (App { gcp, media, _dir: dir }, background)
}

/// A temporary upload, as a browser leaves it through a ticket.
async fn upload(store: &dyn Store, name: &str, bytes: Vec<u8>) -> PendingUpload {
    let temp = format!("_tmp/{}/{name}", uuid::Uuid::now_v7());
    let meta = store
        .put(&temp, PutPayload::Bytes(bytes.into()), PutOptions::create_only().with_content_type("image/png"))
        .await
        .unwrap();
    PendingUpload::trusted(temp, Some(meta.generation), name)
}

async fn row(app: &App, id: i32) -> Option<photos::Model> {
    photos::Entity::find_by_id(id).one(app.gcp.db()).await.unwrap()
}

/// Wait until the row's value records its thumb.
async fn thumb_recorded(app: &App, id: i32) -> BlobValue {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let value = row(app, id).await.and_then(|r| r.file).expect("the row and its file");
        if value.variant("thumb").is_some() {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "the thumb was never recorded: {value:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exists(store: &dyn Store, name: &str) -> bool {
    store.head(name, GetOptions::default()).await.is_ok()
}

async fn queued(app: &App) -> u64 {
    // One count of every entry, whatever its state (an entry may move from pending to sent meanwhile).
    let outbox = app.gcp.task_outbox().expect("variants need the task outbox");
    let db = app.gcp.db();
    let sql = format!("SELECT COUNT(*) AS n FROM {}", outbox.table());
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_image_gets_its_variant_through_the_task_path_and_loses_it_with_the_original() {
    let (app, background) = start().await;
    let (gcp, media) = (&app.gcp, app.media.as_ref());

    // A rolled-back save queues nothing.
    let model = photos::ActiveModel { title: Set("rolled back".into()), ..Default::default() };
    let changes =
        BlobChanges::<photos::Entity>::new().attach(photos::Column::File, upload(media, "a.png", png(120, 80)).await);
    let pending = gcp.blobs().begin_insert(model, changes).await.unwrap();
    pending.rollback().await.unwrap();
    assert_eq!(queued(&app).await, 0, "a rolled-back save queues no variants task");

    // A committed save queues one; the task makes the variant and records it.
    let model = photos::ActiveModel { title: Set("kept".into()), ..Default::default() };
    let changes =
        BlobChanges::<photos::Entity>::new().attach(photos::Column::File, upload(media, "b.png", png(120, 80)).await);
    let pending = gcp.blobs().begin_insert::<photos::Entity>(model, changes).await.unwrap();
    let saved = gcp.commit_save(pending).await.unwrap();
    let id = saved.model.id;
    assert_eq!(queued(&app).await, 1, "one task per saved value");
    let value = thumb_recorded(&app, id).await;
    let thumb = value.variant("thumb").unwrap().clone();
    let generation = value.generation.unwrap();
    assert_eq!(thumb.name, format!("{}.variants/thumb-g{generation}.jpg", value.name));
    assert_eq!((thumb.width, thumb.height, thumb.content_type.as_deref()), (Some(40), Some(27), Some("image/jpeg")));
    assert!(exists(media, &thumb.name).await);
    let dispatches = gcp.local_cloud().unwrap().cloud_tasks().dispatches();
    assert!(
        dispatches.iter().any(|d| d.task_id.starts_with("sea-gcp-variants") && d.status == Some(200)),
        "pushed to the worker route and answered 200: {dispatches:?}"
    );

    // URLs: the variant's when made, the original's for a variant never made.
    let url = gcp.blobs().variant_url(photos::Column::File, &value, "thumb", UrlOptions::default()).await.unwrap();
    assert!(url.contains(".variants/thumb-g"), "{url}");
    let fallback = gcp.blobs().variant_url(photos::Column::File, &value, "poster", UrlOptions::default()).await;
    assert!(!fallback.unwrap().contains(".variants/"), "an unknown variant serves the original");

    // Replacing the original deletes the old variant after the commit and makes the new one.
    let current = row(&app, id).await.unwrap();
    let changes =
        BlobChanges::<photos::Entity>::new().attach(photos::Column::File, upload(media, "c.png", png(60, 90)).await);
    let active: photos::ActiveModel = current.into();
    gcp.commit_save(gcp.blobs().begin_update(active, changes).await.unwrap()).await.unwrap();
    assert!(!exists(media, &thumb.name).await, "the replaced original's variant is deleted with it");
    assert!(!exists(media, &value.name).await, "and the original itself");
    let replaced = thumb_recorded(&app, id).await;
    let new_thumb = replaced.variant("thumb").unwrap().clone();
    assert_ne!(new_thumb.name, thumb.name);
    assert_eq!((new_thumb.width, new_thumb.height), (Some(27), Some(40)));

    // Deleting the row deletes the original and its variants.
    let current = row(&app, id).await.unwrap();
    gcp.blobs().delete(current).await.unwrap();
    assert!(!exists(media, &replaced.name).await);
    assert!(!exists(media, &new_thumb.name).await, "the deleted row's variant is deleted with it");

    background.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_makes_the_variants_of_rows_saved_before_the_variant_was_declared() {
    let dir = tempfile::tempdir().unwrap();
    let settings = || {
        Settings::from_env_vars([
            ("SEA_GCP__STORES__MEDIA__BACKEND".to_string(), "local".to_string()),
            ("SEA_GCP__STORES__MEDIA__ROOT".into(), dir.path().join("media").display().to_string()),
            ("SEA_GCP__UPLOADS__ALLOW_ANONYMOUS".into(), "true".into()),
        ])
        .unwrap()
    };
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.sqlite").display());
    let db = Database::connect(&url).await.unwrap();
    db.execute(&Schema::new(db.get_database_backend()).create_table_from_entity(photos::Entity)).await.unwrap();

    // Saved before the field had variants.
    let before = Gcp::builder(settings(), db.clone()).blob_field(photos::Column::File, "media").create_tables().build();
    let before = before.await.unwrap();
    let media = before.blobs().store("media").unwrap().clone();
    for title in ["one", "two", "three"] {
        let model = photos::ActiveModel { title: Set(title.into()), ..Default::default() };
        let upload = upload(media.as_ref(), &format!("{title}.png"), png(90, 60)).await;
        before
            .blobs()
            .insert(model, BlobChanges::<photos::Entity>::new().attach(photos::Column::File, upload))
            .await
            .unwrap();
    }

    // The same app after the variant was declared.
    let after = Gcp::builder(settings(), db.clone())
        .blob_field_with(photos::Column::File, "media", |f| f.variant(Variant::fill("square", 20, 20)))
        .build()
        .await
        .unwrap();
    let run = |args: &[&str]| {
        let args: Vec<String> = ["sea-gcp"].iter().chain(args).map(|s| s.to_string()).collect();
        let after = after.clone();
        async move {
            let mut out = Vec::new();
            assert!(after.manage_args(args, &mut out).await.unwrap());
            String::from_utf8(out).unwrap()
        }
    };
    let dry = run(&["variants", "backfill", "--dry-run"]).await;
    assert!(dry.contains("photos.file: would make the variants of 3 value(s)"), "{dry}");
    let done = run(&["variants", "backfill"]).await;
    assert!(done.contains("photos.file: made the variants of 3 value(s)"), "{done}");
    assert!(done.contains("3 variant(s) written"), "{done}");
    for row in photos::Entity::find().all(&db).await.unwrap() {
        let square = row.file.as_ref().and_then(|v| v.variant("square")).expect("recorded").clone();
        assert_eq!((square.width, square.height), (Some(20), Some(20)));
        assert!(exists(media.as_ref(), &square.name).await);
    }
    let again = run(&["variants", "backfill"]).await;
    assert!(again.contains("made the variants of 0 value(s)"), "a rerun has nothing to do: {again}");
}

#[tokio::test]
async fn a_field_with_variants_outside_the_app_handle_is_refused_when_built() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    let media: Arc<dyn Store> = Arc::new(sea_gcp::storage::MemoryStore::default_for("media"));
    let built = sea_gcp::Blobs::builder(db)
        .store(media)
        .entity::<photos::Entity>(|e| {
            e.field(sea_gcp::BlobFieldSpec::new(photos::Column::File, "media").variant(Variant::limit("thumb", 8, 8)))
        })
        .build();
    let message = built.unwrap_err().to_string();
    assert!(message.contains("app handle") && message.contains("`tasks` feature"), "{message}");

    let db = Database::connect("sqlite::memory:").await.unwrap();
    let media: Arc<dyn Store> = Arc::new(sea_gcp::storage::MemoryStore::default_for("media"));
    let settings = Settings::from_env_vars([("SEA_GCP__UPLOADS__ALLOW_ANONYMOUS".to_string(), "true".to_string())]);
    let bad = Gcp::builder(settings.unwrap(), db)
        .blobs(move |b| b.store(media))
        .blob_field_with(photos::Column::File, "media", |f| f.variant(Variant::limit("Thumb Nail", 8, 8)))
        .build()
        .await;
    let message = bad.unwrap_err().to_string();
    assert!(message.contains("variant `Thumb Nail`") && message.contains("lowercase"), "{message}");
}
