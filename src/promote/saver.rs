//! [`BlobSaver`]: save a SeaORM model together with its blob fields, crash-safely.
//!
//! # Two ways to save
//!
//! * One call, one transaction of the saver's own: [`BlobSaver::insert`], [`BlobSaver::update`],
//!   [`BlobSaver::delete`].
//! * Inside the caller's transaction, in four steps:
//!
//! ```ignore
//! let mut save = saver.prepare_insert(changes).await?; // validate; record intents (own transaction)
//! let txn = db.begin().await?;                         // the caller's transaction
//! let model = match save.apply(&txn, active_model).await {
//!     Ok(model) => model,
//!     Err(e) => { txn.rollback().await?; save.abort().await; return Err(e) }
//! };
//! // ... more work in `txn` ...
//! match txn.commit().await {
//!     Ok(()) => { save.committed().await; }            // delete temp + replaced objects, on_change
//!     Err(e) => { save.abort().await; return Err(e.into()) }
//! }
//! ```
//!
//! `prepare_*` writes to the outbox in its own committed transaction, so call it before the caller's
//! transaction writes anything (SQLite has a single writer: a separate write would wait for the
//! caller's transaction). Call [`BlobSave::abort`] after the rollback, for the same reason. A save
//! that is dropped without `committed`/`abort` is repaired by [`replay`](super::replay::replay).
//!
//! # Hooks
//!
//! SeaORM runs `ActiveModelBehavior` hooks only for single-row `insert`/`update`/`save`/`delete`, never
//! for `insert_many`/`update_many`/`delete_many` (sea-orm#1138), and a hook has no way to receive the
//! pending upload nor a second connection for the outbox. Blob fields are therefore saved through this
//! explicit API; the model's own hooks still run, because the saver calls `ActiveModelTrait::insert`,
//! `update` and `delete`. Bulk statements that touch blob columns bypass the protocol: use
//! [`BlobChange::Raw`] semantics (no promotion, no deletion) for them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::sea_query::SimpleExpr;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, Iterable, ModelTrait, PrimaryKeyToColumn, QueryFilter, QuerySelect,
    SqliteTransactionMode, TransactionOptions, TransactionTrait, Value,
};

use super::outbox::{Intent, IntentState, ObjectRef, Outbox};
use super::replay::{Mode, Resolution, resolve};
use super::steps::{self, TAG_INTENT};
use crate::field::column::{find_checked, from_sea_value, to_sea_value};
use crate::field::spec::default_destination;
use crate::field::validate::{self, FieldState, Scenario};
use crate::field::{
    AttributesContext, BlobChange, BlobChanges, BlobFieldSpec, BlobValue, ChangeEvent, DeletePolicy,
    DestinationContext, PendingUpload,
};
use crate::storage::{ObjectMeta, ObjectParameters, Store, naming};
use crate::{Error, Result, SaveStep};

/// How long a bucket's versioning state is trusted before it is read again.
pub const DEFAULT_VERSIONING_TTL: Duration = Duration::from_secs(300);

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

/// What the after-commit work did (see [`BlobSave::committed`]).
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

impl<E> BlobSaver<E>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
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
    pub fn versioning_ttl(self, ttl: Duration) -> Self {
        self.edit(|i| i.versioning_ttl = ttl)
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

    fn table() -> &'static str {
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

    /// Step 1 of an insert: check the changes and record an intent per new upload, in its own committed
    /// transaction. No storage call.
    pub async fn prepare_insert(&self, changes: BlobChanges<E>) -> Result<BlobSave<E>> {
        self.prepare(RowOp::Insert, changes).await
    }

    /// Step 1 of an update (see [`BlobSaver::prepare_insert`]). Checks that need the row's current value
    /// run in [`BlobSave::apply`].
    pub async fn prepare_update(&self, changes: BlobChanges<E>) -> Result<BlobSave<E>> {
        self.prepare(RowOp::Update, changes).await
    }

    /// Step 1 of a row delete. No database or storage call.
    pub fn prepare_delete(&self) -> BlobSave<E> {
        BlobSave { saver: self.clone(), op: RowOp::Delete, plans: Vec::new(), state: SaveState::Prepared, row: None }
    }

    async fn prepare(&self, op: RowOp, changes: BlobChanges<E>) -> Result<BlobSave<E>> {
        let adding = op == RowOp::Insert;
        let mut plans = Vec::new();
        for spec in &self.inner.fields {
            let change = changes.get(spec.column()).cloned();
            if adding {
                let state = FieldState {
                    field: &spec.field_name(),
                    adding,
                    blankable: spec.is_blankable(),
                    editable: spec.is_editable(),
                    existing: None,
                };
                validate::check(state, change.as_ref())?;
            }
            if let Some(change) = change {
                plans.push(FieldPlan::new(spec.column(), change));
            }
        }
        for (column, _) in &changes.items {
            self.spec(*column)?;
        }
        let mut recorded: Vec<String> = Vec::new();
        for plan in &mut plans {
            let BlobChange::Attach(upload) = &plan.change else { continue };
            let spec = self.spec(plan.column)?;
            let result = async {
                self.store_for(spec)?;
                check_upload(spec, upload)?;
                let mut intent = Intent::new(spec.store_key(), Self::table(), spec.column_name(), IntentState::Pending);
                intent.temp_name = Some(naming::normalize(&upload.temp_name)?);
                intent.temp_generation = upload.generation;
                self.inner.outbox.insert(&self.inner.db, &intent, &spec.field_name()).await?;
                Ok::<_, Error>(intent)
            }
            .await;
            match result {
                Ok(intent) => {
                    recorded.push(intent.id.clone());
                    plan.intent = Some(intent);
                }
                Err(e) => {
                    for id in recorded {
                        let _ = self.inner.outbox.delete(&self.inner.db, &id, Some(IntentState::Pending)).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(BlobSave { saver: self.clone(), op, plans, state: SaveState::Prepared, row: None })
    }

    async fn begin(&self) -> Result<sea_orm::DatabaseTransaction> {
        let opts = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(self.inner.db.begin_with_options(opts).await?)
    }

    /// Insert `model` with `changes`, in a transaction of the saver's own, and finish the after-commit
    /// work. On any failure nothing is left behind: no row, no destination object.
    pub async fn insert(&self, model: E::ActiveModel, changes: BlobChanges<E>) -> Result<Saved<E::Model>> {
        let save = self.prepare_insert(changes).await?;
        self.run(save, model).await
    }

    /// Update `model` with `changes` (see [`BlobSaver::insert`]).
    pub async fn update(&self, model: E::ActiveModel, changes: BlobChanges<E>) -> Result<Saved<E::Model>> {
        let save = self.prepare_update(changes).await?;
        self.run(save, model).await
    }

    /// Delete the row of `model`; its blob objects are deleted after the commit per each field's
    /// delete policy.
    pub async fn delete(&self, model: E::Model) -> Result<CommitReport> {
        let mut save = self.prepare_delete();
        let txn = self.begin().await?;
        if let Err(e) = save.apply_delete(&txn, model).await {
            txn.rollback().await?;
            save.abort().await;
            return Err(e);
        }
        txn.commit().await.map_err(|e| Error::from(e).at_step(SaveStep::Commit, Self::table()))?;
        Ok(save.committed().await)
    }

    async fn run(&self, mut save: BlobSave<E>, model: E::ActiveModel) -> Result<Saved<E::Model>> {
        let txn = match self.begin().await {
            Ok(txn) => txn,
            Err(e) => {
                save.abort().await;
                return Err(e);
            }
        };
        let model = match save.apply(&txn, model).await {
            Ok(model) => model,
            Err(e) => {
                let _ = txn.rollback().await;
                save.abort().await;
                return Err(e);
            }
        };
        if let Err(e) = txn.commit().await {
            save.abort().await;
            return Err(Error::from(e).at_step(SaveStep::Commit, Self::table()));
        }
        let report = save.committed().await;
        Ok(Saved { model, report })
    }
}

/// The temporary object must be under the field's ingress prefix, and a ticket's binding must name
/// this field.
fn check_upload<E: EntityTrait>(spec: &BlobFieldSpec<E>, upload: &PendingUpload) -> Result<()> {
    let refuse = |message: String| Err(Error::Validation { field: spec.field_name(), message });
    let temp = match naming::normalize(&upload.temp_name) {
        Ok(t) => t,
        Err(e) => return refuse(format!("the upload's temporary name is invalid: {e}")),
    };
    if !temp.starts_with(spec.ingress()) {
        return refuse(format!(
            "the upload `{temp}` is not under this field's ingress prefix `{}`: only issued uploads can be attached",
            spec.ingress()
        ));
    }
    if let Some(binding) = &upload.binding
        && (binding.store != spec.store_key() || binding.field != spec.field_name())
    {
        return refuse(format!(
            "the upload was issued for `{}` in store `{}`, not for this field in store `{}`",
            binding.field,
            binding.store,
            spec.store_key()
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaveState {
    Prepared,
    Applied,
    Finished,
}

/// Where the promoting copy of a plan got to (for abort).
#[derive(Debug, Clone, PartialEq, Eq)]
enum CopyState {
    NotAttempted,
    /// The copy was sent; its outcome is unknown (error or lost response).
    Attempted(String),
    /// The copy succeeded: destination and generation.
    Copied(String, i64),
    /// The destination exists and will be overwritten after the commit.
    Deferred(String),
}

struct FieldPlan<E: EntityTrait> {
    column: E::Column,
    change: BlobChange,
    scenario: Option<Scenario>,
    intent: Option<Intent>,
    old: Option<BlobValue>,
    new: Option<BlobValue>,
    copy: CopyState,
}

impl<E: EntityTrait> FieldPlan<E> {
    fn new(column: E::Column, change: BlobChange) -> Self {
        Self { column, change, scenario: None, intent: None, old: None, new: None, copy: CopyState::NotAttempted }
    }
}

/// One save in progress (see the module docs for the steps).
pub struct BlobSave<E: EntityTrait> {
    saver: BlobSaver<E>,
    op: RowOp,
    plans: Vec<FieldPlan<E>>,
    state: SaveState,
    row: Option<E::Model>,
}

impl<E: EntityTrait> fmt::Debug for BlobSave<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobSave")
            .field("op", &self.op)
            .field("state", &self.state)
            .field("intents", &self.plans.iter().filter_map(|p| p.intent.as_ref().map(|i| &i.id)).collect::<Vec<_>>())
            .finish()
    }
}

impl<E> BlobSave<E>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    /// The row operation.
    pub fn op(&self) -> RowOp {
        self.op
    }

    /// The scenario of each changed field, once applied (`table.column` → scenario).
    pub fn scenarios(&self) -> Vec<(String, Scenario)> {
        self.plans
            .iter()
            .filter_map(|p| {
                p.scenario.map(|s| (format!("{}.{}", BlobSaver::<E>::table(), column_str::<E>(p.column)), s))
            })
            .collect()
    }

    /// The ids of the outbox intents this save recorded.
    pub fn intent_ids(&self) -> Vec<String> {
        self.plans.iter().filter_map(|p| p.intent.as_ref().map(|i| i.id.clone())).collect()
    }

    /// Step 2: write the row and promote the uploads, inside the caller's transaction `txn`.
    ///
    /// Inserts first (so a database-generated primary key is known), then per new upload: compute
    /// attributes and destination, claim the temporary object (checking size and content type), copy
    /// it create-only to the destination (or defer an allowed overwrite to after the commit), write the
    /// cached metadata into the row and mark the intent done — all in `txn`.
    pub async fn apply<C: ConnectionTrait>(&mut self, txn: &C, mut model: E::ActiveModel) -> Result<E::Model> {
        if self.state != SaveState::Prepared || self.op == RowOp::Delete {
            return Err(Error::InvalidArgument("BlobSave::apply runs once, on an insert or update save".into()));
        }
        self.state = SaveState::Applied;
        let saver = self.saver.clone();
        let table = BlobSaver::<E>::table();
        let adding = self.op == RowOp::Insert;

        // The row as stored, for updates.
        let existing_model = if adding { None } else { Some(load_existing::<E, C>(txn, &model).await?) };

        // Validate every field, refuse direct writes to blob columns, and set the first write's values.
        for spec in saver.fields() {
            let column = spec.column();
            let old = match &existing_model {
                Some(m) => decode::<E>(table, column, m)?,
                None => None,
            };
            let plan_idx = self.plans.iter().position(|p| column_str::<E>(p.column) == spec.column_name());
            let change = plan_idx.map(|i| self.plans[i].change.clone());
            let scenario = validate::check(
                FieldState {
                    field: &spec.field_name(),
                    adding,
                    blankable: spec.is_blankable(),
                    editable: spec.is_editable(),
                    existing: old.as_ref(),
                },
                change.as_ref(),
            )?;
            if !matches!(change, Some(BlobChange::Raw(_))) {
                refuse_direct_write(spec, &model, old.as_ref())?;
            }
            match &change {
                Some(BlobChange::Attach(upload)) if adding => {
                    // Placeholder for NOT NULL columns, replaced before the transaction commits.
                    model.set(column, BlobValue::uncached(upload.temp_name.clone()).into());
                }
                Some(BlobChange::Attach(_)) => model.not_set(column),
                Some(BlobChange::Blank) => model.set(column, to_sea_value(None)),
                Some(BlobChange::Raw(v)) => model.set(column, to_sea_value(v.as_ref())),
                None => {}
            }
            if let Some(i) = plan_idx {
                let plan = &mut self.plans[i];
                plan.scenario = Some(scenario);
                plan.old = old;
            }
        }

        // Write the row: insert first, so a database-generated key is known to get_destination_path.
        let row_write = |e: sea_orm::DbErr| Error::from(e).at_step(SaveStep::RowWrite, table);
        let mut row = if adding {
            model.insert(txn).await.map_err(row_write)?
        } else if model.is_changed() {
            model.update(txn).await.map_err(row_write)?
        } else {
            existing_model.clone().expect("updates load the existing row")
        };
        let row_key = key_text::<E>(&row);

        // Promote each new upload.
        let mut written: Vec<(E::Column, Value)> = Vec::new();
        for plan in &mut self.plans {
            let spec = saver.spec(plan.column)?;
            match plan.change.clone() {
                BlobChange::Attach(upload) => {
                    let store = saver.store_for(spec)?;
                    promote_one(&saver, spec, &store, plan, &upload, &row, adding).await?;
                    let (db, outbox, field) = (saver.connection(), &saver.inner.outbox, spec.field_name());
                    super::used_tickets::record(txn, db, outbox, spec.store_key(), &field, &upload, plan.new.as_ref())
                        .await?;
                    let intent = plan.intent.as_mut().expect("attach plans have an intent");
                    intent.row_key = Some(row_key.clone());
                    written.push((plan.column, to_sea_value(plan.new.as_ref())));
                }
                BlobChange::Blank => {
                    plan.new = None;
                    if let Some(old) = plan.old.as_ref().filter(|_| spec.policy() == DeletePolicy::Delete) {
                        let mut intent = Intent::new(spec.store_key(), table, spec.column_name(), IntentState::Done);
                        intent.obsolete.push(ObjectRef { name: old.name.clone(), generation: old.generation });
                        intent.row_key = Some(row_key.clone());
                        plan.intent = Some(intent);
                    }
                }
                BlobChange::Raw(v) => plan.new = v,
            }
        }

        // Cache the promoted values in the row, and mark the intents done — same transaction.
        if !written.is_empty() {
            let mut update = E::update_many();
            for (column, value) in &written {
                update = update.col_expr(*column, SimpleExpr::Value(value.clone()));
                row.try_set(*column, value.clone())?;
            }
            update.filter(key_condition::<E>(&row)).exec(txn).await.map_err(row_write)?;
        }
        for plan in &self.plans {
            let Some(intent) = &plan.intent else { continue };
            let spec = saver.spec(plan.column)?;
            if intent.temp_name.is_some() {
                let marked = saver.inner.outbox.mark_done(txn, intent).await;
                if !marked.map_err(|e| e.at_step(SaveStep::RowWrite, spec.field_name()))? {
                    return Err(Error::Database(sea_orm::DbErr::Custom(format!(
                        "outbox intent {} for `{}` was reclaimed by replay (the save took longer than the grace \
                         period); roll back and save again",
                        intent.id,
                        spec.field_name()
                    ))));
                }
            } else {
                let inserted = saver.inner.outbox.insert(txn, intent, &spec.field_name()).await;
                inserted.map_err(|e| e.at_step(SaveStep::RowWrite, spec.field_name()))?;
            }
        }
        self.row = Some(row.clone());
        Ok(row)
    }

    /// Step 2 of a row delete: delete the row in `txn` and record (in `txn`) the objects to delete after
    /// the commit, per each field's delete policy.
    pub async fn apply_delete<C: ConnectionTrait>(&mut self, txn: &C, model: E::Model) -> Result<()> {
        if self.state != SaveState::Prepared || self.op != RowOp::Delete {
            return Err(Error::InvalidArgument("BlobSave::apply_delete runs once, on a delete save".into()));
        }
        self.state = SaveState::Applied;
        let saver = self.saver.clone();
        let table = BlobSaver::<E>::table();
        let row_key = key_text::<E>(&model);
        for spec in saver.fields() {
            let old = decode::<E>(table, spec.column(), &model)?;
            let mut plan = FieldPlan::new(spec.column(), BlobChange::Blank);
            if let Some(old_value) = old.as_ref().filter(|_| spec.policy() == DeletePolicy::Delete) {
                let mut intent = Intent::new(spec.store_key(), table, spec.column_name(), IntentState::Done);
                intent.obsolete.push(ObjectRef { name: old_value.name.clone(), generation: old_value.generation });
                intent.row_key = Some(row_key.clone());
                let inserted = saver.inner.outbox.insert(txn, &intent, &spec.field_name()).await;
                inserted.map_err(|e| e.at_step(SaveStep::RowWrite, spec.field_name()))?;
                plan.intent = Some(intent);
            }
            plan.old = old;
            self.plans.push(plan);
        }
        model
            .clone()
            .into_active_model()
            .delete(txn)
            .await
            .map_err(|e| Error::from(e).at_step(SaveStep::RowWrite, table))?;
        self.row = Some(model);
        Ok(())
    }

    /// Step 3, after the caller's transaction committed: delete the temporary objects and the
    /// replaced/blanked/deleted-row objects (per policy), make deferred overwrites, clear the intents and
    /// call `on_change`. Failures do not undo the save; they are left in the outbox for replay and
    /// reported.
    pub async fn committed(mut self) -> CommitReport {
        let mut report = CommitReport::default();
        if self.state != SaveState::Applied {
            return report;
        }
        self.state = SaveState::Finished;
        let saver = self.saver.clone();
        let table = BlobSaver::<E>::table();
        for plan in &mut self.plans {
            let Ok(spec) = saver.spec(plan.column) else { continue };
            let mut complete = true;
            if let Some(intent) = &plan.intent {
                let Ok(store) = saver.store_for(spec) else { continue };
                let outcome =
                    resolve(&saver.inner.db, &saver.inner.outbox, store.as_ref(), &intent.id, Mode::AfterCommit, None)
                        .await;
                match outcome {
                    Ok(Resolution::Finished(deferred)) => {
                        report.finished += 1;
                        if let (Some(meta), Some(new), Some(row)) = (deferred, plan.new.as_mut(), self.row.as_ref())
                            && let Err(e) = refresh_row_cache(&saver, plan.column, new, &meta, row).await
                        {
                            tracing::warn!(intent = %intent.id, error = %e, "could not cache the overwritten object's metadata; refresh() will");
                        }
                    }
                    Ok(Resolution::Failed(e)) | Err(e) => {
                        complete = !matches!(plan.copy, CopyState::Deferred(_));
                        let e = e.at_step(SaveStep::Cleanup, spec.field_name());
                        report.left_for_replay.push((intent.id.clone(), e.to_string()));
                    }
                    Ok(Resolution::LeftPending) => {
                        complete = false;
                        report.left_for_replay.push((
                            intent.id.clone(),
                            "the intent is still pending: committed() was called but the transaction did not commit"
                                .into(),
                        ));
                    }
                    Ok(Resolution::Gone | Resolution::Undone { .. }) => {}
                }
            }
            let notify = match plan.scenario {
                Some(Scenario::Unchanged | Scenario::Raw) => false,
                Some(_) => true,
                None => self.op == RowOp::Delete && plan.old.is_some(),
            };
            if let (true, true, Some(f), Some(row)) = (notify, complete, spec.on_change_fn(), self.row.as_ref()) {
                f(&ChangeEvent {
                    model: row.clone(),
                    table: table.to_string(),
                    column: spec.column_name().to_string(),
                    old: plan.old.clone(),
                    new: plan.new.clone(),
                });
                report.notified += 1;
            }
        }
        report
    }

    /// After a failed `apply` and the caller's rollback (or a failed commit): delete destinations this
    /// save created and remove its intents. Safe when the transaction did commit after all (a `done`
    /// intent is left alone). Returns how many destinations were deleted; failures are left to replay.
    pub async fn abort(mut self) -> usize {
        self.state = SaveState::Finished;
        let saver = self.saver.clone();
        let mut deleted = 0;
        for plan in &self.plans {
            let Some(intent) = &plan.intent else { continue };
            if intent.temp_name.is_none() {
                continue; // deletion-only intents lived in the rolled-back transaction
            }
            let Ok(spec) = saver.spec(plan.column) else { continue };
            let Ok(store) = saver.store_for(spec) else { continue };
            let hint = match &plan.copy {
                CopyState::Copied(dest, generation) => Some((dest.clone(), Some(*generation))),
                CopyState::Attempted(dest) | CopyState::Deferred(dest) => Some((dest.clone(), None)),
                CopyState::NotAttempted => None,
            };
            if let Ok(Resolution::Undone { deleted: true, .. }) =
                resolve(&saver.inner.db, &saver.inner.outbox, store.as_ref(), &intent.id, Mode::Undo, hint).await
            {
                deleted += 1;
            }
        }
        deleted
    }
}

/// Promote one upload inside the caller's transaction (see [`BlobSave::apply`]).
async fn promote_one<E>(
    saver: &BlobSaver<E>,
    spec: &BlobFieldSpec<E>,
    store: &Arc<dyn Store>,
    plan: &mut FieldPlan<E>,
    upload: &PendingUpload,
    row: &E::Model,
    adding: bool,
) -> Result<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    let refuse = |message: String| Error::Validation { field: spec.field_name(), message };
    let table = BlobSaver::<E>::table().to_string();
    let column = spec.column_name().to_string();
    let intent = plan.intent.as_mut().expect("attach plans have an intent");
    let temp = intent.temp_name.clone().expect("attach intents name their temporary object");

    // The overwrite decision, reading the bucket's versioning only when it can matter.
    let mode = spec.mode();
    let versioning =
        if mode.is_versioned() && mode.applies(adding) { saver.versioning(store.as_ref()).await? } else { false };
    let allow = mode.allows(adding, versioning);
    let existing_path = plan.old.as_ref().map(|v| v.name.clone());

    let attributes = match spec.attributes_fn() {
        Some(f) => f(&AttributesContext {
            model: row.clone(),
            table: table.clone(),
            column: column.clone(),
            original_name: upload.original_name.clone(),
            existing_path: existing_path.clone(),
            temporary_path: temp.clone(),
            adding,
        })?,
        None => ObjectParameters::default(),
    };
    let ctx = DestinationContext {
        model: row.clone(),
        table,
        column,
        original_name: upload.original_name.clone(),
        attributes: attributes.clone(),
        existing_path,
        temporary_path: temp.clone(),
        allow_overwrite: allow,
        adding,
        store: store.clone(),
    };
    let (destination, allow) = match spec.destination_fn() {
        Some(f) => f(ctx).await?,
        None => (default_destination(&ctx), allow),
    };
    let dest = naming::normalize(&destination)
        .map_err(|e| refuse(format!("get_destination_path returned an invalid object name: {e}")))?;
    if !spec.ingress().is_empty() && dest.starts_with(spec.ingress()) {
        return Err(refuse(format!(
            "get_destination_path returned `{dest}`, inside the ingress prefix `{}`; return a permanent location",
            spec.ingress()
        )));
    }

    // Claim the temporary object (the head step): records the destination on it, returns its metadata.
    let temp_meta =
        steps::claim(store.as_ref(), &temp, intent.temp_generation, &intent.id, &dest).await.map_err(|e| match e {
            Error::NotFound { .. } => refuse(format!(
                "upload incomplete or failed: no object `{temp}` in store `{}`; upload the file again",
                spec.store_key()
            )),
            Error::Precondition { .. } => refuse(format!(
                "the upload `{temp}` was replaced after it was issued (generation mismatch); upload the file again"
            )),
            other => other.at_step(SaveStep::Claim, spec.field_name()),
        })?;
    intent.temp_generation = Some(temp_meta.generation);

    if let Some(max) = spec.size_limit()
        && temp_meta.size > max
    {
        return Err(refuse(format!("the upload is {} bytes; at most {max} bytes are allowed", temp_meta.size)));
    }
    let content_type = attributes
        .content_type
        .clone()
        .or_else(|| temp_meta.content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".into());
    if !spec.accepts_content_type(&content_type) {
        return Err(refuse(format!(
            "content type `{content_type}` is not accepted; accepted: {}",
            spec.accepted().join(", ")
        )));
    }

    // Copy create-only, tagged with the intent. An allowed overwrite of an existing object is deferred
    // to after the commit: it could not be undone on an unversioned bucket.
    // The claimed temporary object carries the intent's tag; the copy inherits it. Attributes are laid
    // over it only when there are some (on GCS that costs a read of the source inside the copy).
    let params = (attributes != ObjectParameters::default()).then(|| {
        let mut p = attributes.clone();
        p.metadata.insert(TAG_INTENT.into(), intent.id.clone());
        p
    });
    plan.copy = CopyState::Attempted(dest.clone());
    let source = (temp_meta.generation, temp_meta.known_metageneration());
    let copied = match steps::copy(store.as_ref(), &temp, source, &dest, params, Some(0)).await {
        // 412 from a retry whose first attempt made the copy (its answer was lost): the destination
        // carries this intent's tag, so the copy succeeded. Only this intent writes that tag.
        Err(e @ Error::Precondition { .. }) if matches!(&e, Error::Precondition { name, .. } if *name == dest) => {
            match steps::created_by(store.as_ref(), &dest, &intent.id).await {
                Ok(Some(meta)) => Ok(meta),
                Ok(None) => Err(e),
                Err(other) => return Err(other.at_step(SaveStep::Copy, spec.field_name())),
            }
        }
        other => other,
    };
    match copied {
        Ok(meta) => {
            plan.new = Some(BlobValue::from_meta(&meta, Some(upload.original_name.clone())));
            intent.dest_generation = Some(meta.generation);
            plan.copy = CopyState::Copied(dest.clone(), meta.generation);
        }
        Err(Error::Precondition { name, .. }) if name == dest && allow => {
            let mut value = BlobValue::from_meta(&temp_meta, Some(upload.original_name.clone()));
            value.name = dest.clone();
            value.generation = None;
            value.metageneration = None;
            value.updated = None;
            if attributes.content_type.is_some() {
                value.content_type = attributes.content_type.clone();
            }
            value.metadata.extend(crate::field::value::user_metadata(&attributes.metadata));
            plan.new = Some(value);
            intent.overwrite = true;
            intent.attributes = Some(attributes);
            plan.copy = CopyState::Deferred(dest.clone());
        }
        Err(Error::Precondition { name, .. }) if name == dest => {
            plan.copy = CopyState::NotAttempted;
            let case = if adding { "adding a row" } else { "updating a row" };
            let hint = if mode.is_versioned() && !versioning { " (the bucket has no object versioning)" } else { "" };
            return Err(refuse(format!(
                "an object already exists at `{dest}` and overwrite mode `{mode}` does not allow replacing it when {case}{hint}; return another path from get_destination_path"
            )));
        }
        Err(e) => return Err(e.at_step(SaveStep::Copy, spec.field_name())),
    }
    intent.destination = Some(dest.clone());
    if let Some(old) = plan.old.as_ref().filter(|old| spec.policy() == DeletePolicy::Delete && old.name != dest) {
        intent.obsolete.push(ObjectRef { name: old.name.clone(), generation: old.generation });
    }
    Ok(())
}

/// After a deferred overwrite: cache the new generation in the row, unless the row changed meanwhile.
async fn refresh_row_cache<E>(
    saver: &BlobSaver<E>,
    column: E::Column,
    value: &mut BlobValue,
    meta: &ObjectMeta,
    row: &E::Model,
) -> Result<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    let original = value.original_name.clone();
    let expected = value.clone();
    *value = BlobValue::from_meta(meta, original);
    value.name = expected.name.clone();
    let txn = saver.begin().await?;
    let current = find_checked(&txn, E::find().filter(key_condition::<E>(row)).lock_exclusive()).await?;
    let Some(current) = current.into_iter().next() else { return Ok(txn.commit().await?) };
    let stored = decode::<E>(BlobSaver::<E>::table(), column, &current)?;
    if stored.as_ref().is_some_and(|s| s.name == expected.name && s.generation.is_none()) {
        E::update_many()
            .col_expr(column, SimpleExpr::Value(to_sea_value(Some(value))))
            .filter(key_condition::<E>(row))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The row `model` (an update's active model) names, loaded with its blob columns checked.
async fn load_existing<E, C>(txn: &C, model: &E::ActiveModel) -> Result<E::Model>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
    C: ConnectionTrait,
{
    let mut condition = Condition::all();
    for key in E::PrimaryKey::iter() {
        let column = key.into_column();
        match model.get(column) {
            ActiveValue::Set(v) | ActiveValue::Unchanged(v) => condition = condition.add(column.eq(v)),
            ActiveValue::NotSet => {
                return Err(Error::InvalidArgument(format!(
                    "an update needs the primary key: `{}.{}` is not set",
                    E::default().table_name(),
                    column_str::<E>(column)
                )));
            }
        }
    }
    // Locked until the caller's transaction ends (`SELECT ... FOR UPDATE`; SQLite has a single writer,
    // `BEGIN IMMEDIATE` in the one-call methods): a concurrent save of the same row waits and then sees
    // this save's value as the one it replaces, so no promoted object is left unreferenced.
    find_checked(txn, E::find().filter(condition).lock_exclusive()).await?.into_iter().next().ok_or_else(|| {
        Error::Database(sea_orm::DbErr::RecordNotFound(format!(
            "no `{}` row with this primary key to update",
            E::default().table_name()
        )))
    })
}

/// A blob column of a loaded model, or [`Error::CorruptColumn`].
fn decode<E: EntityTrait>(table: &str, column: E::Column, model: &E::Model) -> Result<Option<BlobValue>> {
    from_sea_value(&model.get(column)).map_err(|message| Error::CorruptColumn {
        table: table.to_string(),
        column: column_str::<E>(column).to_string(),
        row: key_text::<E>(model),
        message,
    })
}

/// Refuse a blob column written directly into the active model (not through [`BlobChanges`]).
fn refuse_direct_write<E>(spec: &BlobFieldSpec<E>, model: &E::ActiveModel, old: Option<&BlobValue>) -> Result<()>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
{
    if let ActiveValue::Set(v) = model.get(spec.column()) {
        let same = from_sea_value(&v).map(|new| new.as_ref() == old).unwrap_or(false);
        if !same {
            return Err(Error::Validation {
                field: spec.field_name(),
                message: "a blob column cannot be set directly on the ActiveModel (that would neither check nor promote it): use BlobChanges::attach or ::blank, or BlobChanges::raw for migrations and fixtures"
                    .into(),
            });
        }
    }
    Ok(())
}

fn column_str<E: EntityTrait>(column: E::Column) -> &'static str {
    use sea_orm::IdenStatic;
    column.as_str()
}

/// `WHERE` the primary key equals `model`'s.
fn key_condition<E: EntityTrait>(model: &E::Model) -> Condition {
    E::PrimaryKey::iter().fold(Condition::all(), |c, key| {
        let column = key.into_column();
        c.add(column.eq(model.get(column)))
    })
}

/// The primary key of `model` as text (`42`, `"a1b2"`, `1,2`).
fn key_text<E: EntityTrait>(model: &E::Model) -> String {
    E::PrimaryKey::iter().map(|key| value_text(&model.get(key.into_column()))).collect::<Vec<_>>().join(",")
}

fn value_text(v: &Value) -> String {
    match v {
        Value::TinyInt(Some(x)) => x.to_string(),
        Value::SmallInt(Some(x)) => x.to_string(),
        Value::Int(Some(x)) => x.to_string(),
        Value::BigInt(Some(x)) => x.to_string(),
        Value::TinyUnsigned(Some(x)) => x.to_string(),
        Value::SmallUnsigned(Some(x)) => x.to_string(),
        Value::Unsigned(Some(x)) => x.to_string(),
        Value::BigUnsigned(Some(x)) => x.to_string(),
        Value::String(Some(x)) => format!("{x:?}"),
        Value::Uuid(Some(x)) => x.to_string(),
        other => format!("{other:?}"),
    }
}
