//! Image analysis at promotion (feature `images`): width and height as displayed, cached in the row
//! from a bounded read, and the refusals (decompression bombs, unreadable headers, headers buried past
//! 1 MiB) that must change nothing. Every case runs on the memory store and on the local store, on every
//! database that is available.

mod field_support;
mod image_support;

use std::sync::Arc;

use field_support::*;
use image::{ImageFormat, Rgb};
use image_support::*;
use sea_gcp::Error;
use sea_gcp::field::{BlobChanges, BlobFieldSpec};
use sea_gcp::promote::BlobSaver;
use sea_gcp::storage::LocalStore;
use sea_gcp::storage::{CountingStore, StoreOp};
use sea_gcp::{Store, StoreConfig};
use sea_orm::{ActiveValue::Set, EntityTrait};

fn new_doc(title: &str) -> docs::ActiveModel {
    docs::ActiveModel { title: Set(title.into()), ..Default::default() }
}

async fn stores() -> (Vec<(&'static str, Arc<dyn Store>)>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn Store> = Arc::new(LocalStore::new("media", StoreConfig::local(dir.path())).await.unwrap());
    (vec![("memory", memory(false) as Arc<dyn Store>), ("local", local)], dir)
}

/// (file, bytes, declared type, displayed dimensions, ranged reads).
type Accepted = (&'static str, Vec<u8>, &'static str, (u32, u32), u64);

#[tokio::test]
async fn images_are_measured_at_promotion_and_bombs_change_nothing() {
    let jpeg = encode(&gradient(40, 20), ImageFormat::Jpeg);
    let png16: image::DynamicImage =
        image::ImageBuffer::<Rgb<u16>, _>::from_fn(33, 17, |x, _| Rgb([x as u16 * 1000, 0, 65535])).into();
    let accepted: Vec<Accepted> = vec![
        ("photo.jpg", jpeg.clone(), "image/jpeg", (40, 20), 1),
        ("phone.jpg", with_segments(&jpeg, &[exif_orientation(6)]), "image/jpeg", (20, 40), 1),
        ("mirror.jpg", with_segments(&jpeg, &[exif_orientation(2)]), "image/jpeg", (40, 20), 1),
        ("left.jpg", with_segments(&jpeg, &[exif_orientation(8)]), "image/jpeg", (20, 40), 1),
        ("print.jpg", cmyk_jpeg(24, 10), "image/jpeg", (24, 10), 1),
        ("deep.png", encode(&png16, ImageFormat::Png), "image/png", (33, 17), 1),
        ("anim.gif", animated_gif(), "image/gif", (30, 12), 1),
        ("still.webp", encode(&gradient(16, 9), ImageFormat::WebP), "image/webp", (16, 9), 1),
        ("anim.webp", animated_webp(24, 14, 3), "image/webp", (24, 14), 1),
        ("generic.png", encode(&gradient(5, 4), ImageFormat::Png), "application/octet-stream", (5, 4), 1),
        // A header behind 240 KB of metadata: one more bounded read finds it.
        ("exif-heavy.jpg", with_segments(&jpeg, &padding(4)), "image/jpeg", (40, 20), 2),
    ];
    let refused: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("bomb.png", declared_png(50_000, 50_000), "image/png", "2500.0 megapixels"),
        ("wide.png", declared_png(100_001, 1_000), "image/png", "at most 100.0 megapixels"),
        ("cut.png", encode(&gradient(5, 4), ImageFormat::Png)[..20].to_vec(), "image/png", "header cannot be read"),
        ("cut.jpg", jpeg[..40].to_vec(), "image/jpeg", "header cannot be read"),
        ("buried.jpg", with_segments(&jpeg, &padding(18)), "image/jpeg", "not found in its first 1024 KiB"),
    ];

    for db in field_support::databases().await {
        let (conn, db_name) = (&db.conn, db.name);
        let (stores, _dir) = stores().await;
        for (store_name, store) in stores {
            let ctx = format!("{db_name}/{store_name}");
            let counting = Arc::new(CountingStore::new(store.clone()));
            let tables = Tables::create(conn).await;
            let saver = BlobSaver::<docs::Entity>::new(conn.clone())
                .store(counting.clone())
                .outbox(tables.outbox.clone())
                .field(BlobFieldSpec::new(docs::Column::File, "media").accept(["image/*"]));

            for (file, bytes, declared, dims, reads) in &accepted {
                let up = upload(store.as_ref(), file, bytes, declared).await;
                counting.reset();
                let saved = saver.insert(new_doc(file), BlobChanges::new().attach(docs::Column::File, up)).await;
                let saved = saved.unwrap_or_else(|e| panic!("{ctx}: {file}: {e}"));
                let calls = counting.counts();
                assert_eq!(calls.get(StoreOp::Get), *reads, "{ctx}: {file}: ranged reads: {calls}");
                assert!(calls.remote() <= 3 + reads, "{ctx}: {file}: {calls}");
                let value = saved.model.file.clone().unwrap();
                assert_eq!(value.dimensions(), Some(*dims), "{ctx}: {file}");
                // Cached in the row: read back with no storage call.
                counting.reset();
                let row = docs::Entity::find_by_id(saved.model.id).one(conn).await.unwrap().unwrap();
                assert_eq!(row.file.unwrap().dimensions(), Some(*dims), "{ctx}: {file}: from the row");
                assert_eq!(counting.counts().remote(), 0);
            }

            let rows_before = docs::Entity::find().all(conn).await.unwrap().len();
            let objects_before = permanent_objects(store.as_ref()).await;
            for (file, bytes, declared, why) in &refused {
                let up = upload(store.as_ref(), file, bytes, declared).await;
                let err = saver.insert(new_doc(file), BlobChanges::new().attach(docs::Column::File, up)).await;
                let err = err.expect_err(file);
                assert!(matches!(&err, Error::Validation { .. }) && err.to_string().contains(why), "{ctx}: {err}");
            }
            assert_eq!(
                docs::Entity::find().all(conn).await.unwrap().len(),
                rows_before,
                "{ctx}: refused saves wrote rows"
            );
            assert_eq!(permanent_objects(store.as_ref()).await, objects_before, "{ctx}: refused saves left objects");

            // A PDF on a field that accepts anything: no read at all, no dimensions.
            let open = BlobSaver::<docs::Entity>::new(conn.clone())
                .store(counting.clone())
                .outbox(tables.outbox.clone())
                .field(BlobFieldSpec::new(docs::Column::File, "media"));
            let up = upload(store.as_ref(), "doc.pdf", b"%PDF-1.7\n", "application/pdf").await;
            counting.reset();
            let saved = open.insert(new_doc("pdf"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
            assert_eq!(counting.counts().get(StoreOp::Get), 0, "{ctx}: a PDF on an open field is not read");
            assert_eq!(saved.model.file.unwrap().dimensions(), None);

            // Analysis off: no dimensions, and the pixel limit does not apply.
            let off = BlobSaver::<docs::Entity>::new(conn.clone())
                .store(store.clone())
                .outbox(tables.outbox.clone())
                .field(BlobFieldSpec::new(docs::Column::File, "media").accept(["image/*"]).analyze_images(false));
            let up = upload(store.as_ref(), "bomb.png", &declared_png(50_000, 50_000), "image/png").await;
            let saved = off.insert(new_doc("off"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
            assert_eq!(saved.model.file.unwrap().dimensions(), None, "{ctx}");
            tables.drop(conn).await;
        }
    }
}

/// An overwrite at the same name is made after the commit (a deferred overwrite): the row's cache is
/// refreshed from the new generation and keeps the dimensions read from the bytes it copied.
#[tokio::test]
async fn a_deferred_overwrite_keeps_the_dimensions_of_the_bytes_it_copied() {
    use sea_gcp::field::OverwriteMode;
    use sea_orm::IntoActiveModel;
    for db in field_support::databases().await {
        let conn = &db.conn;
        let store = memory(true);
        let tables = Tables::create(conn).await;
        let saver =
            BlobSaver::<docs::Entity>::new(conn.clone()).store(store.clone()).outbox(tables.outbox.clone()).field(
                BlobFieldSpec::new(docs::Column::File, "media")
                    .accept(["image/*"])
                    .overwrite_mode(OverwriteMode::UpdateVersioned)
                    .destination(|ctx| Ok((format!("fixed/{}.img", ctx.model.id), ctx.allow_overwrite))),
            );
        let first = upload(store.as_ref(), "a.png", &encode(&gradient(40, 20), ImageFormat::Png), "image/png").await;
        let saved = saver.insert(new_doc("o"), BlobChanges::new().attach(docs::Column::File, first)).await.unwrap();
        let second = upload(store.as_ref(), "b.png", &encode(&gradient(12, 30), ImageFormat::Png), "image/png").await;
        let saved = saver
            .update(saved.model.into_active_model(), BlobChanges::new().attach(docs::Column::File, second))
            .await
            .unwrap();
        let row = docs::Entity::find_by_id(saved.model.id).one(conn).await.unwrap().unwrap().file.unwrap();
        assert!(row.generation.is_some(), "{}: the cache was refreshed", db.name);
        assert_eq!(row.dimensions(), Some((12, 30)), "{}", db.name);
        tables.drop(conn).await;
    }
}
