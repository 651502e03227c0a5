//! [`Gcp`]: the application's one handle on sea-gcp, built from [`Settings`] and a database connection.
//!
//! The application registers its blob fields, event handlers and tasks on the builder; the handle then
//! mounts every route under one prefix ([`Gcp::router`]), runs every background loop
//! ([`Gcp::spawn_background`]), answers management commands ([`Gcp::manage`]) and gives handlers what
//! they need: `State<Gcp>` for the database, the blob registry and the task queue, and
//! [`BlobForm`](crate::BlobForm) through `FromRef`.
//!
//! ```no_run
//! # #[cfg(feature = "tasks")]
//! # mod demo {
//! use axum::{Router, extract::State, routing::post};
//! use sea_gcp::tasks::{Task, TaskContext};
//! use sea_gcp::{BoxError, Gcp, Settings};
//! use sea_orm::TransactionTrait;
//!
//! struct SendReceipt;
//!
//! #[async_trait::async_trait]
//! impl Task for SendReceipt {
//!     const NAME: &'static str = "send-receipt";
//!     type Payload = u64;
//!     type Output = ();
//!     async fn run(&self, order: u64, _: TaskContext) -> Result<(), BoxError> {
//!         println!("receipt for order {order}");
//!         Ok(())
//!     }
//! }
//!
//! async fn order(State(gcp): State<Gcp>) -> sea_gcp::Result<&'static str> {
//!     let txn = gcp.db().begin().await?;
//!     // ... insert the order in `txn` ...
//!     gcp.enqueue_in(&txn, SendReceipt, &42).await?;
//!     gcp.commit(txn).await?; // sent right after the commit; never if it rolls back
//!     Ok("ordered")
//! }
//!
//! async fn main_() -> Result<(), BoxError> {
//!     let db = sea_orm::Database::connect("sqlite://app.db?mode=rwc").await?;
//!     let gcp = Gcp::builder(Settings::load()?, db).task(SendReceipt).build().await?;
//!     if gcp.manage().await? {
//!         return Ok(()); // `cargo run -- sea-gcp tasks sync` and friends
//!     }
//!     sea_gcp::create_tables(gcp.db()).await?;
//!     let app = Router::new().route("/orders", post(order)).with_state(gcp.clone()).merge(gcp.router());
//!     let background = gcp.spawn_background();
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//!     axum::serve(listener, app).await?;
//!     background.stop().await;
//!     Ok(())
//! }
//! # }
//! ```

mod background;
mod builder;
mod manage;
#[cfg(feature = "tasks")]
mod tasks;
#[cfg(all(feature = "tasks", feature = "images"))]
mod variants;

use std::sync::Arc;

use axum::extract::FromRef;
pub use background::Background;
pub use builder::GcpBuilder;
use sea_orm::DatabaseConnection;

use crate::blobs::Blobs;
use crate::config::Settings;
use crate::storage::local::LocalStore;

/// The application's handle on sea-gcp; see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Gcp {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    db: DatabaseConnection,
    blobs: Blobs,
    locals: Vec<Arc<LocalStore>>,
    uploads_open: bool,
    #[cfg(feature = "events")]
    events: Option<crate::events::EventsRouter>,
    #[cfg(feature = "tasks")]
    tasks: Option<tasks::TaskPart>,
}

impl std::fmt::Debug for Gcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Gcp");
        d.field("prefix", &self.inner.settings.prefix).field("blobs", &self.inner.blobs);
        #[cfg(feature = "tasks")]
        d.field("tasks", &self.inner.tasks.as_ref().map(|t| &t.tasks));
        d.finish_non_exhaustive()
    }
}

impl Gcp {
    /// A builder from `settings` (see [`Settings::load`]) and the application's database.
    pub fn builder(settings: Settings, db: DatabaseConnection) -> GcpBuilder {
        GcpBuilder::new(settings, db)
    }

    /// A builder from this process's settings ([`Settings::load`]: `sea-gcp.toml`, django-gcp's
    /// variables, `SEA_GCP__*`) and the application's database.
    pub fn load(db: DatabaseConnection) -> crate::Result<GcpBuilder> {
        Ok(GcpBuilder::new(Settings::load()?, db))
    }

    /// The settings the handle was built from.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The database connection.
    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// The stores and blob fields (saves, URLs, repair).
    pub fn blobs(&self) -> &Blobs {
        &self.inner.blobs
    }

    /// Begin a transaction for a request's writes (on SQLite `BEGIN IMMEDIATE`, so a save that reads
    /// then writes a row holds the lock from the start instead of failing to upgrade it).
    pub async fn begin(&self) -> crate::Result<sea_orm::DatabaseTransaction> {
        use sea_orm::TransactionTrait as _;
        let options = sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(self.inner.db.begin_with_options(options).await?)
    }

    /// Commit `txn`, then send the tasks it enqueued ([`enqueue_in`](Self::enqueue_in)) from this process
    /// at once; the dispatcher's poll, on any instance, is the fallback.
    pub async fn commit(&self, txn: sea_orm::DatabaseTransaction) -> crate::Result<()> {
        #[cfg(feature = "tasks")]
        if let Some(tasks) = self.tasks() {
            return tasks.commit_and_send(txn).await;
        }
        Ok(txn.commit().await?)
    }

    /// Commit a blob save made in the caller's transaction ([`Blobs::begin_insert`]), with the tasks
    /// enqueued in it, then send those tasks at once and finish the save's after-commit work.
    pub async fn commit_save<E: sea_orm::EntityTrait>(
        &self,
        save: crate::promote::PendingSave<E>,
    ) -> crate::Result<crate::promote::Saved<E::Model>> {
        let saved = save.commit().await?;
        #[cfg(feature = "tasks")]
        if let Some(tasks) = self.tasks() {
            tasks.wake_dispatcher();
        }
        Ok(saved)
    }

    /// Every route of the enabled subsystems, under [`Settings::prefix`] (default `/gcp`): upload tickets
    /// and the widget's assets (`/gcp/uploads`), the signed routes of local stores (`/gcp/storage/KEY`),
    /// Pub/Sub and Eventarc pushes (`/gcp/events/KIND/REF`) and the tasks worker (`/gcp/tasks/NAME`,
    /// `/gcp/subscriber-tasks/NAME`). Merge it after giving your own router its state:
    /// `Router::new().route(..).with_state(gcp.clone()).merge(gcp.router())`.
    pub fn router(&self) -> axum::Router {
        let inner = &self.inner;
        let mut router = axum::Router::new();
        if inner.uploads_open
            && let Ok(uploads) = inner.blobs.upload_router()
        {
            router = router.merge(uploads.router());
        }
        for local in &inner.locals {
            router = router.merge(crate::upload::local_store_routes(local.clone()));
        }
        #[cfg(feature = "events")]
        if let Some(events) = &inner.events {
            router = router.merge(events.clone().into_router());
        }
        #[cfg(feature = "tasks")]
        if let Some(part) = &inner.tasks {
            let worker = part.worker.clone();
            router = if inner.settings.prefix.is_empty() {
                router.merge(worker)
            } else {
                router.nest(&inner.settings.prefix, worker)
            };
        }
        router
    }
}

impl FromRef<Gcp> for Blobs {
    fn from_ref(gcp: &Gcp) -> Blobs {
        gcp.inner.blobs.clone()
    }
}

impl FromRef<Gcp> for DatabaseConnection {
    fn from_ref(gcp: &Gcp) -> DatabaseConnection {
        gcp.inner.db.clone()
    }
}
