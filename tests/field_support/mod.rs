//! Shared fixtures of the blob-field suites (`tests/field_save.rs`, `tests/promote_faults.rs`): the
//! databases (SQLite always; PostgreSQL and MariaDB when reachable), a test entity whose table name is
//! unique per test, stores, uploads and the invariant checks.

#![allow(dead_code)]

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;

use sea_gcp::field::{BlobFieldSpec, BlobValue, DeletePolicy, PendingUpload};
use sea_gcp::promote::{BlobSaver, Outbox};
use sea_gcp::storage::MemoryStore;
use sea_gcp::storage::{GetOptions, PutOptions, PutPayload, Store};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Schema};

thread_local! {
    /// The docs table of the running test (tests run one per thread, on a current-thread runtime).
    pub static DOCS_TABLE: Cell<&'static str> = const { Cell::new("docs") };
}

/// A document with a blankable blob (`file`) and a required one (`cover`, NOT NULL).
pub mod docs {
    use sea_gcp::field::BlobValue;
    use sea_orm::entity::prelude::*;

    #[derive(Copy, Clone, Default, Debug, DeriveEntity)]
    pub struct Entity;

    impl EntityName for Entity {
        fn table_name(&self) -> &'static str {
            super::DOCS_TABLE.with(|t| t.get())
        }
    }

    #[derive(Clone, Debug, PartialEq, DeriveModel, DeriveActiveModel)]
    pub struct Model {
        pub id: i32,
        pub title: String,
        pub file: Option<BlobValue>,
        pub cover: Option<BlobValue>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveColumn)]
    pub enum Column {
        Id,
        Title,
        File,
        Cover,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DerivePrimaryKey)]
    pub enum PrimaryKey {
        Id,
    }

    impl PrimaryKeyTrait for PrimaryKey {
        type ValueType = i32;
        fn auto_increment() -> bool {
            true
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter)]
    pub enum Relation {}

    impl ColumnTrait for Column {
        type EntityName = Entity;
        fn def(&self) -> ColumnDef {
            match self {
                Self::Id => ColumnType::Integer.def(),
                Self::Title => ColumnType::String(StringLen::N(200)).def(),
                Self::File => ColumnType::JsonBinary.def().null(),
                Self::Cover => ColumnType::JsonBinary.def().null(),
            }
        }
    }

    impl RelationTrait for Relation {
        fn def(&self) -> RelationDef {
            unreachable!("no relations")
        }
    }

    #[async_trait::async_trait]
    impl ActiveModelBehavior for ActiveModel {
        /// A row write fails when the title says so: the "row write" fault point.
        async fn before_save<C: ConnectionTrait>(self, _db: &C, _insert: bool) -> Result<Self, DbErr> {
            if let sea_orm::ActiveValue::Set(title) = &self.title
                && title == "fail-write"
            {
                return Err(DbErr::Custom("injected row write failure".into()));
            }
            Ok(self)
        }
    }
}

#[path = "../db_support/mod.rs"]
mod db_support;
#[allow(unused_imports)]
pub use db_support::{TestDb, databases, skip_or_fail};

/// Per-test tables: the docs table (unique name, set for this thread) and an outbox.
pub struct Tables {
    /// The docs table name.
    pub docs: &'static str,
    /// The outbox.
    pub outbox: Outbox,
}

impl Tables {
    /// Create both tables on `db`.
    pub async fn create(db: &DatabaseConnection) -> Tables {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let docs: &'static str = Box::leak(format!("docs_{suffix}").into_boxed_str());
        DOCS_TABLE.with(|t| t.set(docs));
        let backend: DbBackend = db.get_database_backend();
        let stmt = Schema::new(backend).create_table_from_entity(docs::Entity);
        db.execute(&stmt).await.unwrap();
        let outbox = Outbox::new(format!("outbox_{suffix}"));
        outbox.create(db).await.unwrap();
        Tables { docs, outbox }
    }

    /// Drop both tables.
    pub async fn drop(&self, db: &DatabaseConnection) {
        db.execute_unprepared(&format!("DROP TABLE IF EXISTS {}", self.docs)).await.unwrap();
        self.outbox.drop(db).await.unwrap();
    }
}

/// A fresh memory store keyed `media`.
pub fn memory(versioning: bool) -> Arc<MemoryStore> {
    Arc::new(MemoryStore::default_for("media").with_versioning(versioning))
}

/// The default field spec of `docs.file`: blankable, delete replaced objects, destination
/// `docs/<id>/<name>` computed from the database-generated key.
pub fn file_spec() -> BlobFieldSpec<docs::Entity> {
    BlobFieldSpec::new(docs::Column::File, "media").blank(true).delete_policy(DeletePolicy::Delete).destination(|ctx| {
        Ok((
            format!("docs/{}/{}-{}", ctx.model.id, uuid::Uuid::new_v4().simple(), ctx.original_name),
            ctx.allow_overwrite,
        ))
    })
}

/// `docs.cover`: blankable, kept on replace (the default policy), default destination.
pub fn cover_spec() -> BlobFieldSpec<docs::Entity> {
    BlobFieldSpec::new(docs::Column::Cover, "media").blank(true)
}

/// A saver for `docs` with `file` (and `cover`) on `store`.
pub fn saver(db: &DatabaseConnection, tables: &Tables, store: Arc<dyn Store>) -> BlobSaver<docs::Entity> {
    BlobSaver::new(db.clone()).store(store).outbox(tables.outbox.clone()).field(file_spec()).field(cover_spec())
}

/// Upload `bytes` as a temporary object under `_tmp/`, as a browser would through a ticket.
pub async fn upload(store: &dyn Store, original: &str, bytes: &[u8], content_type: &str) -> PendingUpload {
    let temp = format!("_tmp/{}/{}", uuid::Uuid::now_v7(), original);
    let meta = store
        .put(&temp, PutPayload::Bytes(bytes.to_vec().into()), PutOptions::create_only().with_content_type(content_type))
        .await
        .unwrap();
    PendingUpload::trusted(temp, Some(meta.generation), original)
}

/// Every blob value stored in the docs table.
pub async fn referenced(db: &DatabaseConnection) -> Vec<BlobValue> {
    let rows = docs::Entity::find().all(db).await.unwrap();
    rows.into_iter().flat_map(|r| [r.file, r.cover]).flatten().collect()
}

/// Live object names outside the ingress prefix.
pub async fn permanent_objects(store: &dyn Store) -> BTreeSet<String> {
    use futures::TryStreamExt;
    let all: Vec<_> = store.list_all(None).try_collect().await.unwrap();
    all.into_iter().map(|m| m.name).filter(|n| !n.starts_with("_tmp/")).collect()
}

/// Live objects under the ingress prefix.
pub async fn temp_objects(store: &dyn Store) -> BTreeSet<String> {
    use futures::TryStreamExt;
    let all: Vec<_> = store.list_all(Some("_tmp/".into())).try_collect().await.unwrap();
    all.into_iter().map(|m| m.name).collect()
}

/// Invariants 1 and 4: every committed reference names a live object, at the cached generation.
pub async fn assert_references_live(db: &DatabaseConnection, store: &dyn Store, ctx: &str) {
    for value in referenced(db).await {
        let meta = store
            .head(&value.name, GetOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{ctx}: a committed row references `{}`, which is gone: {e}", value.name));
        if let Some(g) = value.generation {
            assert_eq!(g, meta.generation, "{ctx}: cached generation of `{}` is stale", value.name);
            assert_eq!(value.size, Some(meta.size), "{ctx}: cached size of `{}`", value.name);
        }
    }
}

/// Invariants 3 and 5 (with the delete policy on): after replay, the permanent objects are exactly
/// those committed rows reference (plus `also`), and the outbox is empty.
pub async fn assert_no_orphans(
    db: &DatabaseConnection,
    store: &dyn Store,
    outbox: &Outbox,
    also: &BTreeSet<String>,
    ctx: &str,
) {
    let mut want: BTreeSet<String> = referenced(db).await.into_iter().map(|v| v.name).collect();
    want.extend(also.iter().cloned());
    let have = permanent_objects(store).await;
    assert_eq!(have, want, "{ctx}: permanent objects differ from the referenced ones");
    let left = outbox.list(db, None).await.unwrap();
    assert!(left.is_empty(), "{ctx}: outbox not empty after replay: {left:?}");
}

/// The GCS emulator's address and a fresh bucket on it, or `None` after a loud skip (a failure with
/// `SEA_GCP_REQUIRE_ALL=1`).
pub async fn emulator_bucket(what: &str) -> Option<(String, String)> {
    let host = match std::env::var("STORAGE_EMULATOR_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => {
            skip_or_fail(&format!("{what} on the GCS emulator"), "STORAGE_EMULATOR_HOST is not set".into());
            return None;
        }
    };
    let bucket = format!("fields-{}", uuid::Uuid::new_v4().simple());
    sea_gcp::testing::conformance::create_emulator_bucket(&host, &bucket, false).await;
    Some((host, bucket))
}

/// A GCS store on the emulator's `bucket`, isolated under a fresh location prefix.
pub async fn emulator_store(host: &str, bucket: &str) -> Arc<dyn Store> {
    let config = sea_gcp::StoreConfig {
        bucket_name: bucket.to_string(),
        api_endpoint: Some(host.to_string()),
        location: uuid::Uuid::new_v4().simple().to_string(),
        ..sea_gcp::StoreConfig::gcs("x")
    };
    sea_gcp::storage::open("media", config).await.expect("GCS store on the emulator")
}
