//! [`BlobSaver`]: save a SeaORM model together with its blob fields, crash-safely.
//!
//! # Two ways to save
//!
//! * One call, one transaction of the saver's own: [`BlobSaver::insert`], [`BlobSaver::update`],
//!   [`BlobSaver::delete`].
//! * Inside the caller's transaction, in steps whose order the types enforce: `prepare_*` gives a
//!   [`BlobSave`] (or a [`BlobDelete`]), whose `apply` gives an [`AppliedSave`] (or, on error, a
//!   [`FailedSave`]); only an applied save can be `committed`.
//!
//! ```ignore
//! let save = saver.prepare_insert(changes).await?;      // validate; record intents (own transaction)
//! let txn = db.begin().await?;                          // the caller's transaction
//! let applied = match save.apply(&txn, active_model).await {
//!     Ok(applied) => applied,
//!     Err(failed) => { txn.rollback().await?; return Err(failed.abort().await) }
//! };
//! // ... more work in `txn` ...
//! match txn.commit().await {
//!     Ok(()) => { applied.committed().await; }          // delete temp + replaced objects, on_change
//!     Err(e) => { applied.abort().await; return Err(e.into()) }
//! }
//! ```
//!
//! `prepare_*` writes to the outbox in its own committed transaction, so call it before the caller's
//! transaction writes anything (SQLite has a single writer: a separate write would wait for the
//! caller's transaction). Call `abort` after the rollback, for the same reason. A save that is dropped
//! without `committed`/`abort` is repaired by [`replay`](super::replay::replay).
//!
//! # Hooks
//!
//! SeaORM runs `ActiveModelBehavior` hooks only for single-row `insert`/`update`/`save`/`delete`, never
//! for `insert_many`/`update_many`/`delete_many` (sea-orm#1138), and a hook has no way to receive the
//! pending upload nor a second connection for the outbox. Blob fields are therefore saved through this
//! explicit API; the model's own hooks still run, because the saver calls `ActiveModelTrait::insert`,
//! `update` and `delete`. Bulk statements that touch blob columns bypass the protocol: use
//! [`BlobChange::Raw`](crate::field::BlobChange::Raw) semantics (no promotion, no deletion) for them.
//!
//! # Files
//!
//! One step a file: [`prepare`](BlobSaver::prepare_insert), `apply` (row writes), `apply_delete`,
//! `promote_one` (claim, check and copy one upload), `commit` (after-commit work), `abort`; `one_call`
//! runs them in the saver's own transaction; `rows` has the row helpers; `state` the typestates.

mod abort;
mod apply;
mod apply_delete;
mod commit;
mod in_txn;
mod one_call;
mod prepare;
mod promote_one;
mod rows;
mod state;
#[cfg(feature = "images")]
pub(crate) mod variants;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{DatabaseConnection, EntityTrait};

pub use in_txn::PendingSave;
pub use state::{AppliedSave, BlobDelete, BlobSave, FailedSave};

use super::outbox::Outbox;
use crate::field::BlobFieldSpec;
use crate::storage::Store;
use crate::{Error, Result};

/// How long a bucket's versioning state is trusted before it is read again.
pub(crate) const DEFAULT_VERSIONING_TTL: Duration = Duration::from_secs(300);

/// Saves models of entity `E` with their blob fields. Cheap to clone.
pub struct BlobSaver<E: EntityTrait> {
    inner: Arc<Inner<E>>,
}

struct Inner<E: EntityTrait> {
    db: DatabaseConnection,
    stores: BTreeMap<String, Arc<dyn Store>>,
    fields: Vec<BlobFieldSpec<E>>,
    outbox: Outbox,
    versioning_ttl: Duration,
    versioning: Mutex<HashMap<String, (Instant, bool)>>,
    #[cfg(feature = "images")]
    variant_queue: Option<Arc<dyn crate::images::generate::VariantQueue>>,
}

impl<E: EntityTrait> Clone for BlobSaver<E> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<E: EntityTrait> fmt::Debug for BlobSaver<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobSaver")
            .field("table", &E::default().table_name())
            .field("stores", &self.inner.stores.keys().collect::<Vec<_>>())
            .field("fields", &self.inner.fields)
            .field("outbox", &self.inner.outbox)
            .finish()
    }
}

/// The row operation of a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOp {
    /// Insert a row.
    Insert,
    /// Update a row.
    Update,
    /// Delete a row.
    Delete,
}

/// What the after-commit work did (see `BlobSave::committed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Intents completed (temporary and obsolete objects deleted, deferred copies made).
    pub finished: usize,
    /// Intents left in the outbox for replay, with the error that stopped them.
    pub left_for_replay: Vec<(String, String)>,
    /// `on_change` callbacks called.
    pub notified: usize,
}

/// A saved model and its after-commit report (from the one-call methods).
#[derive(Debug, Clone)]
pub struct Saved<M> {
    /// The model as stored.
    pub model: M,
    /// After-commit work.
    pub report: CommitReport,
}

impl<E: EntityTrait> BlobSaver<E> {
    /// A saver writing the outbox through `db` (a pool, not a transaction: intents are recorded in
    /// their own transactions).
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                stores: BTreeMap::new(),
                fields: Vec::new(),
                outbox: Outbox::default(),
                versioning_ttl: DEFAULT_VERSIONING_TTL,
                versioning: Mutex::new(HashMap::new()),
                #[cfg(feature = "images")]
                variant_queue: None,
            }),
        }
    }

    /// Apply a configuration change. Clones share their configuration; configuring one that has been
    /// cloned gives it its own copy first (copy-on-write), so the other clones are unaffected.
    fn edit(mut self, f: impl FnOnce(&mut Inner<E>)) -> Self {
        if Arc::get_mut(&mut self.inner).is_none() {
            let i = &self.inner;
            let versioning = i.versioning.lock().map(|m| m.clone()).unwrap_or_default();
            self.inner = Arc::new(Inner {
                db: i.db.clone(),
                stores: i.stores.clone(),
                fields: i.fields.clone(),
                outbox: i.outbox.clone(),
                versioning_ttl: i.versioning_ttl,
                versioning: Mutex::new(versioning),
                #[cfg(feature = "images")]
                variant_queue: i.variant_queue.clone(),
            });
        }
        f(Arc::get_mut(&mut self.inner).expect("uniquely owned after the copy above"));
        self
    }

    /// Register a store (by its key). Every field's store must be registered.
    pub fn store(self, store: Arc<dyn Store>) -> Self {
        self.edit(|i| {
            i.stores.insert(store.key().to_string(), store);
        })
    }

    /// Register a blob field.
    pub fn field(self, spec: BlobFieldSpec<E>) -> Self {
        self.edit(|i| i.fields.push(spec))
    }

    /// Use an outbox in another table (default `sea_gcp_outbox`).
    pub fn outbox(self, outbox: Outbox) -> Self {
        self.edit(|i| i.outbox = outbox)
    }

    /// How long to trust a bucket's versioning state (default 5 minutes; zero reads it on every save
    /// that needs it).
    pub(crate) fn versioning_ttl(self, ttl: Duration) -> Self {
        self.edit(|i| i.versioning_ttl = ttl)
    }

    /// Queue the variants of new images through `queue`, in each save's transaction.
    #[cfg(feature = "images")]
    pub(crate) fn variant_queue(self, queue: Arc<dyn crate::images::generate::VariantQueue>) -> Self {
        self.edit(|i| i.variant_queue = Some(queue))
    }

    /// The outbox.
    pub fn outbox_table(&self) -> &Outbox {
        &self.inner.outbox
    }

    /// The registered stores.
    pub fn stores(&self) -> Vec<Arc<dyn Store>> {
        self.inner.stores.values().cloned().collect()
    }

    /// The registered fields.
    pub fn fields(&self) -> &[BlobFieldSpec<E>] {
        &self.inner.fields
    }

    /// The database connection the outbox is written through.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub(crate) fn table() -> &'static str {
        E::default().table_name()
    }

    fn spec(&self, column: E::Column) -> Result<&BlobFieldSpec<E>> {
        use sea_orm::IdenStatic;
        self.inner.fields.iter().find(|f| f.column_name() == column.as_str()).ok_or_else(|| {
            Error::config(
                None,
                format!(
                    "`{}.{}` is not a registered blob field: add it with BlobSaver::field(BlobFieldSpec::new(..))",
                    Self::table(),
                    column.as_str()
                ),
            )
        })
    }

    fn store_for(&self, spec: &BlobFieldSpec<E>) -> Result<Arc<dyn Store>> {
        self.inner.stores.get(spec.store_key()).cloned().ok_or_else(|| {
            Error::config(
                Some(spec.store_key().to_string()),
                format!(
                    "blob field `{}` uses store `{}`, which was not given to the BlobSaver",
                    spec.field_name(),
                    spec.store_key()
                ),
            )
        })
    }

    /// The bucket's versioning state, read through `store` and cached for the TTL.
    async fn versioning(&self, store: &dyn Store) -> Result<bool> {
        let key = store.key().to_string();
        let cached = self.inner.versioning.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied();
        if let Some((at, on)) = cached
            && at.elapsed() < self.inner.versioning_ttl
        {
            return Ok(on);
        }
        let on = store.versioning_enabled().await?;
        self.inner.versioning.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (Instant::now(), on));
        Ok(on)
    }
}
