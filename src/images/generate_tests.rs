//! `make_variants` under failures at every store step, lost answers, concurrent runs and a save
//! replacing the original mid-run, on SQLite, PostgreSQL and MariaDB.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use super::*;
use crate::field::BlobValue;
use crate::field::cas::rows_naming;
use crate::storage::{ListOptions, MemoryStore, StoreOp};
use crate::testing::fault::{FaultKind, FaultStore};

#[allow(unreachable_pub)]
#[path = "../../tests/db_support/mod.rs"]
mod db_support;

const ORIGINAL: &str = "docs/1/photo.png";

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
    let mut out = Vec::new();
    image::DynamicImage::from(image).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

fn variants() -> Vec<Variant> {
    vec![Variant::limit("thumb", 40, 40), Variant::fill("square", 16, 16).format(super::super::Format::Png)]
}

struct Case {
    db: DatabaseConnection,
    table: String,
    memory: Arc<MemoryStore>,
    faulty: Arc<FaultStore>,
    job: VariantJob,
    target: VariantTarget,
}

impl Case {
    /// A fresh table with row 1 holding a freshly written 120 x 80 PNG.
    async fn new(db: &DatabaseConnection, label: &str) -> Self {
        let table = format!("variants_{label}_{}", uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap());
        let json = match db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "JSONB",
            sea_orm::DatabaseBackend::MySql => "JSON",
            _ => "TEXT",
        };
        db.execute_unprepared(&format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, file {json})")).await.unwrap();
        let memory = Arc::new(MemoryStore::default_for("media"));
        let meta =
            memory.put(ORIGINAL, PutPayload::Bytes(png(120, 80).into()), PutOptions::create_only()).await.unwrap();
        let case = Self::with_store(db, table, memory, meta.generation);
        case.set_row(&BlobValue::from_meta(&meta, Some("photo.png".into()))).await;
        case
    }

    fn with_store(db: &DatabaseConnection, table: String, memory: Arc<MemoryStore>, generation: i64) -> Self {
        let faulty = Arc::new(FaultStore::new(memory.clone()));
        let job = VariantJob {
            store: "media".into(),
            table: table.clone(),
            column: "file".into(),
            primary_key: "id".into(),
            name: ORIGINAL.into(),
            generation,
        };
        let target = VariantTarget {
            store: faulty.clone(),
            primary_key: "id".into(),
            variants: variants(),
            max_pixels: 1_000_000,
        };
        Self { db: db.clone(), table, memory, faulty, job, target }
    }

    async fn set_row(&self, value: &BlobValue) {
        let backend = self.db.get_database_backend();
        let (delete, insert) = (
            format!("DELETE FROM {} WHERE id = 1", self.table),
            match backend {
                sea_orm::DatabaseBackend::Postgres => format!("INSERT INTO {} (id, file) VALUES (1, $1)", self.table),
                _ => format!("INSERT INTO {} (id, file) VALUES (1, ?)", self.table),
            },
        );
        self.db.execute_unprepared(&delete).await.unwrap();
        let value: sea_orm::Value = value.clone().into();
        self.db.execute_raw(Statement::from_sql_and_values(backend, insert, [value])).await.unwrap();
    }

    async fn row(&self) -> Option<BlobValue> {
        let column =
            crate::field::cas::Column { table: self.table.clone(), column: "file".into(), primary_key: "id".into() };
        rows_naming(&self.db, &column, ORIGINAL).await.unwrap().into_iter().next().map(|r| r.value)
    }

    async fn objects(&self) -> BTreeSet<String> {
        let page = self.memory.list(ListOptions::default()).await.unwrap();
        page.objects.into_iter().map(|m| m.name).collect()
    }

    async fn run(&self) -> Result<VariantsMade> {
        make_variants(&self.db, &self.target, &self.job).await
    }

    fn expected(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> =
            variants().iter().map(|v| v.object_name(ORIGINAL, self.job.generation)).collect();
        names.insert(ORIGINAL.into());
        names
    }

    /// Every variant exists once at its name, is recorded in the row with its size in pixels, and
    /// nothing else is in the store.
    async fn assert_made(&self, ctx: &str) {
        assert_eq!(
            self.objects().await,
            self.expected(),
            "{ctx}: the store holds the original and one object per variant"
        );
        let row = self.row().await.unwrap_or_else(|| panic!("{ctx}: the row is gone"));
        let thumb = row.variant("thumb").unwrap_or_else(|| panic!("{ctx}: thumb not recorded: {row:?}"));
        assert_eq!((thumb.width, thumb.height), (Some(40), Some(27)), "{ctx}");
        assert_eq!(thumb.content_type.as_deref(), Some("image/jpeg"), "{ctx}");
        let square = row.variant("square").unwrap_or_else(|| panic!("{ctx}: square not recorded"));
        assert_eq!((square.width, square.height), (Some(16), Some(16)), "{ctx}");
        let live = self.memory.head(&thumb.name, GetOptions::default()).await.unwrap();
        assert_eq!(Some(live.generation), thumb.generation, "{ctx}: the recorded generation is the live one");
        assert!(live.metadata.keys().all(|k| k.starts_with("sea-gcp-")), "{ctx}: no metadata of the original");
    }

    async fn drop_table(&self) {
        self.db.execute_unprepared(&format!("DROP TABLE {}", self.table)).await.unwrap();
    }
}

#[tokio::test]
async fn variants_are_made_once_recorded_and_a_rerun_changes_nothing() {
    for db in db_support::databases().await {
        let case = Case::new(&db.conn, "once").await;
        let made = case.run().await.unwrap();
        assert_eq!((made.written, made.found, made.rows_recorded), (2, 0, 1), "{}", db.name);
        case.assert_made(db.name).await;
        let before = case.row().await;
        let again = case.run().await.unwrap();
        assert_eq!(again, VariantsMade::default(), "{}: a rerun finds everything recorded", db.name);
        assert_eq!(case.row().await, before, "{}", db.name);
        case.drop_table().await;
    }
}

#[tokio::test]
async fn a_failure_or_a_lost_answer_at_every_store_step_converges_on_one_variant_per_name() {
    for db in db_support::databases().await {
        let steps = [(StoreOp::Head, 1), (StoreOp::Get, 1), (StoreOp::Put, 1), (StoreOp::Head, 2), (StoreOp::Put, 2)];
        for (op, nth) in steps {
            for kind in [FaultKind::Before, FaultKind::After] {
                let ctx = format!("{}: {op:?} #{nth} {kind:?}", db.name);
                let case = Case::new(&db.conn, "fault").await;
                case.faulty.fail(op, nth, kind);
                let first = case.run().await;
                assert!(first.is_err(), "{ctx}: the injected failure surfaces (the task is retried)");
                case.faulty.clear();
                case.run().await.unwrap_or_else(|e| panic!("{ctx}: the retry: {e}"));
                case.assert_made(&ctx).await;
                assert_eq!(case.run().await.unwrap(), VariantsMade::default(), "{ctx}: then nothing to do");
                case.drop_table().await;
            }
        }
    }
}

#[tokio::test]
async fn concurrent_runs_write_each_variant_once() {
    for db in db_support::databases().await {
        let case = Case::new(&db.conn, "race").await;
        case.faulty.delay(StoreOp::Put, Duration::from_millis(50));
        let (a, b) = tokio::join!(case.run(), case.run());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.written + b.written, 2, "{}: each variant written by one run: {a:?} {b:?}", db.name);
        case.assert_made(db.name).await;
        case.drop_table().await;
    }
}

#[tokio::test]
async fn an_original_replaced_before_or_during_the_run_leaves_no_variant() {
    for db in db_support::databases().await {
        // Before: the row already holds a newer generation.
        let case = Case::new(&db.conn, "before").await;
        let newer = case.memory.put("docs/1/new.png", PutPayload::Bytes(png(10, 10).into()), PutOptions::create_only());
        let newer = BlobValue::from_meta(&newer.await.unwrap(), None);
        case.set_row(&newer).await;
        let made = case.run().await.unwrap();
        assert_eq!((made.written, made.rows_recorded), (0, 0), "{}", db.name);
        assert!(case.objects().await.iter().all(|n| !n.contains(".variants/")), "{}: nothing written", db.name);

        // During: the save lands while the variants are being written; the run deletes what it wrote.
        let case = Case::new(&db.conn, "during").await;
        case.faulty.delay(StoreOp::Put, Duration::from_millis(1500));
        let replace = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            case.set_row(&newer).await;
        };
        let (made, ()) = tokio::join!(case.run(), replace);
        let made = made.unwrap();
        assert_eq!(made.rows_recorded, 0, "{}: {made:?}", db.name);
        assert!(made.discarded >= 1, "{}: what was written is deleted: {made:?}", db.name);
        let left: Vec<_> = case.objects().await.into_iter().filter(|n| n.contains(".variants/")).collect();
        assert!(left.is_empty(), "{}: orphaned variants {left:?}", db.name);
        assert_eq!(case.row().await, None, "{}: the row names the new object", db.name);
        case.drop_table().await;
    }
}

#[tokio::test]
async fn an_original_that_is_not_an_image_is_refused_once_not_retried() {
    for db in db_support::databases().await {
        let table = format!("variants_text_{}", uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap());
        let json = if db.name == "postgres" {
            "JSONB"
        } else if db.name == "mariadb" {
            "JSON"
        } else {
            "TEXT"
        };
        db.conn
            .execute_unprepared(&format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, file {json})"))
            .await
            .unwrap();
        let memory = Arc::new(MemoryStore::default_for("media"));
        let meta = memory.put(ORIGINAL, PutPayload::Bytes(b"not an image".to_vec().into()), PutOptions::create_only());
        let meta = meta.await.unwrap();
        let case = Case::with_store(&db.conn, table, memory, meta.generation);
        case.set_row(&BlobValue::from_meta(&meta, None)).await;
        let made = case.run().await.unwrap();
        assert_eq!(made.refused, ["thumb", "square"], "{}", db.name);
        assert_eq!(case.objects().await.len(), 1, "{}: nothing written", db.name);
        case.drop_table().await;
    }
}

#[tokio::test]
async fn a_backfill_makes_what_is_missing_page_by_page_and_a_rerun_makes_nothing() {
    use crate::images::backfill::{BackfillTarget, backfill_paged};
    for db in db_support::databases().await {
        let case = Case::new(&db.conn, "backfill").await;
        // Four more rows, each with its own original; row 3 already has its variants.
        let backend = db.conn.get_database_backend();
        for id in 2..=5 {
            let name = format!("docs/{id}/photo.png");
            let meta = case.memory.put(&name, PutPayload::Bytes(png(50, 50).into()), PutOptions::create_only());
            let value: sea_orm::Value = BlobValue::from_meta(&meta.await.unwrap(), None).into();
            let sql = match backend {
                sea_orm::DatabaseBackend::Postgres => format!("INSERT INTO {} (id, file) VALUES ($1, $2)", case.table),
                _ => format!("INSERT INTO {} (id, file) VALUES (?, ?)", case.table),
            };
            db.conn.execute_raw(Statement::from_sql_and_values(backend, sql, [id.into(), value])).await.unwrap();
        }
        let field = BackfillTarget {
            store: "media".into(),
            table: case.table.clone(),
            column: "file".into(),
            target: case.target.clone(),
        };
        let mut third = case.job.clone();
        third.name = "docs/3/photo.png".into();
        third.generation = case.memory.head(&third.name, GetOptions::default()).await.unwrap().generation;
        make_variants(&db.conn, &case.target, &third).await.unwrap();

        let dry = backfill_paged(&db.conn, &field, true, 2, |_| {}).await.unwrap();
        assert_eq!((dry.rows, dry.incomplete, dry.written), (5, 4, 0), "{}: a dry run only counts", db.name);
        let mut pages = 0;
        let done = backfill_paged(&db.conn, &field, false, 2, |_| pages += 1).await.unwrap();
        assert_eq!((done.rows, done.incomplete, done.written), (5, 4, 8), "{}: {done:?}", db.name);
        assert_eq!(pages, 3, "{}: five rows, two a page", db.name);
        assert!(done.failed.is_empty(), "{}: {done:?}", db.name);
        let objects = case.objects().await;
        assert_eq!(objects.len(), 15, "{}: five originals and two variants each: {objects:?}", db.name);
        let column =
            crate::field::cas::Column { table: case.table.clone(), column: "file".into(), primary_key: "id".into() };
        for id in 1..=5 {
            let rows = rows_naming(&db.conn, &column, &format!("docs/{id}/photo.png")).await.unwrap();
            let value = &rows[0].value;
            assert!(value.variant("thumb").is_some() && value.variant("square").is_some(), "{}: row {id}", db.name);
            assert!(objects.contains(&value.variant("thumb").unwrap().name), "{}: row {id}", db.name);
        }
        let again = backfill_paged(&db.conn, &field, false, 2, |_| {}).await.unwrap();
        assert_eq!((again.incomplete, again.written, again.found), (0, 0, 0), "{}: a rerun makes nothing", db.name);
        case.drop_table().await;
    }
}
