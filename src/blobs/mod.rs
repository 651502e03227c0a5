//! [`Blobs`]: one registry per application for stores and blob fields, and everything built on them.
//!
//! Configure stores and each entity's blob fields once; from the one object get the save API
//! ([`Blobs::insert`], [`Blobs::update`], [`Blobs::delete`]), replay ([`Blobs::repair`]), the tables
//! ([`Blobs::create_tables`]) and, with the `axum` feature, the upload routes ([`Blobs::router`]), the
//! form extractor [`BlobForm`] and the file input ([`Blobs::input`]).
//!
//! The README's quick start, an entity with a blob field saved from a browser upload:
//!
//! ```no_run
//! # use axum::{Router, extract::State, response::Redirect, routing::post};
//! # use sea_gcp::{BlobForm, Blobs, field::BlobFieldSpec, upload::{Grant, Refusal}};
//! # use sea_orm::ActiveValue::Set;
//! # mod document { use sea_orm::entity::prelude::*; use sea_gcp::field::BlobValue;
//! #   #[derive(Clone, Debug, PartialEq, DeriveEntityModel)] #[sea_orm(table_name = "documents")]
//! #   pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String, pub file: Option<BlobValue> }
//! #   #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)] pub enum Relation {}
//! #   impl ActiveModelBehavior for ActiveModel {} }
//! # #[derive(serde::Deserialize)] struct NewDoc { title: String }
//! # fn user_id(_: &axum::http::request::Parts) -> Option<String> { None }
//! # async fn demo(db: sea_orm::DatabaseConnection, media: std::sync::Arc<dyn sea_gcp::Store>) -> sea_gcp::Result<()> {
//! let blobs = Blobs::builder(db).store(media).secret("a long random secret")
//!     .authenticate_fn(|req| match user_id(req) {
//!         Some(id) => Ok(Grant::for_subject(id)), // tickets verify for this user only
//!         None => Err(Refusal::unauthenticated("sign in to upload")),
//!     })
//!     .entity(|e| e.field(BlobFieldSpec::new(document::Column::File, "media").max_size(20 << 20)))
//!     .build()?;
//! let app: Router = Router::new().route("/documents", post(create)).merge(blobs.router()).with_state(blobs);
//!
//! async fn create(blobs: State<Blobs>, form: BlobForm<document::Entity, NewDoc>) -> sea_gcp::Result<Redirect> {
//!     let model = document::ActiveModel { title: Set(form.fields.title), ..Default::default() };
//!     blobs.insert(model, form.changes).await?;
//!     Ok(Redirect::to("/"))
//! }
//! # let _ = app; Ok(()) }
//! ```
//!
//! In the form page, `blobs.input(document::Column::File)` renders the `<input type=file>` the widget
//! (`/uploads/widget.js`) enhances ([`FileInput`]). At startup, [`Blobs::create_tables`] (or the
//! migrations) and [`Blobs::repair`].
//!
//! The field's limits, accepted types, ingress prefix and blankness are stated once, on the
//! [`BlobFieldSpec`]; the upload field of each is derived from it ([`UploadField::from_spec`]), and
//! a field whose blankness was not chosen is blankable exactly when its column is nullable
//! ([`BlobFieldSpec::blank_from_column`]). The explicit, transaction-level API stays available:
//! [`Blobs::saver`] is the entity's [`BlobSaver`].
//!
//! [`UploadField::from_spec`]: crate::upload::UploadField::from_spec

#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "axum")]
mod render;

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ActiveModelBehavior, ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel, ModelTrait};

#[cfg(feature = "axum")]
pub use extract::{BlobForm, BlobFormRejection, KeptUpload};
#[cfg(feature = "axum")]
pub use render::FileInput;

use crate::field::{BlobChanges, BlobFieldSpec};
use crate::promote::{BlobSaver, CommitReport, Outbox, ReplayReport, Saved, UsedTicketTable, replay_outbox};
use crate::storage::Store;
use crate::{Error, Result};

#[cfg(feature = "axum")]
use crate::upload::{Authorize, TicketSigner, UploadField, UploadFields, UploadRouter};

/// How old an outbox intent must be before [`Blobs::repair`] resolves it (saves in flight on other
/// instances are younger).
pub(crate) const DEFAULT_REPAIR_GRACE: Duration = Duration::from_secs(3600);

#[cfg(feature = "axum")]
type Tune = Arc<dyn Fn(UploadField) -> UploadField + Send + Sync>;

/// One entity's blob fields, as given to [`BlobsBuilder::entity`].
pub struct EntityFields<E: EntityTrait> {
    specs: Vec<BlobFieldSpec<E>>,
    #[cfg(feature = "axum")]
    tuning: Vec<(String, Tune)>,
}

impl<E: EntityTrait> EntityFields<E> {
    /// Add a blob field. Its blankness follows the column's nullability unless
    /// [`BlobFieldSpec::blank`] chose.
    pub fn field(mut self, spec: BlobFieldSpec<E>) -> Self {
        self.specs.push(spec.blank_from_column());
        self
    }

    /// Add a blob field with upload transport tuning (resumable threshold, chunk size, ticket lifetime).
    #[cfg(feature = "axum")]
    pub fn field_with(
        mut self,
        spec: BlobFieldSpec<E>,
        tune: impl Fn(UploadField) -> UploadField + Send + Sync + 'static,
    ) -> Self {
        self.tuning.push((spec.field_name(), Arc::new(tune)));
        self.field(spec)
    }
}

/// A type-erased entity registration: its saver and what the registry needs of it.
struct EntityEntry {
    saver: Arc<dyn Any + Send + Sync>,
    #[cfg(feature = "axum")]
    uploads: Vec<UploadField>,
    /// (`table.column`, store key) of each field.
    fields: Vec<(String, String)>,
    /// Where the variants of each field with variants are made, by (`table`, `column`).
    #[cfg(feature = "images")]
    variants: Vec<((String, String), crate::images::generate::VariantTarget)>,
}

/// Registers one entity once the builder's stores are known.
type Register = Box<dyn FnOnce(&BlobsBuilder) -> Result<(TypeId, EntityEntry)>>;

/// Builds a [`Blobs`] registry; see the module docs.
pub struct BlobsBuilder {
    db: DatabaseConnection,
    stores: BTreeMap<String, Arc<dyn Store>>,
    outbox: Outbox,
    versioning_ttl: Option<Duration>,
    pending: Vec<Register>,
    #[cfg(feature = "images")]
    variant_queue: Option<Arc<dyn crate::images::generate::VariantQueue>>,
    #[cfg(feature = "axum")]
    upload: UploadConfig,
}

#[cfg(feature = "axum")]
#[derive(Default)]
struct UploadConfig {
    signer: Option<TicketSigner>,
    authorize: Option<Arc<dyn Authorize>>,
    allow_all: bool,
    base: Option<String>,
    tune: Option<Tune>,
    locals: Vec<Arc<crate::storage::local::LocalStore>>,
}

impl fmt::Debug for BlobsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobsBuilder")
            .field("stores", &self.stores.keys().collect::<Vec<_>>())
            .field("entities", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl BlobsBuilder {
    /// Register a store (by its key). Every field's store must be registered.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.stores.insert(store.key().to_string(), store);
        self
    }

    /// Register a local store and, with the `axum` feature, serve its signed URLs from
    /// [`Blobs::router`] ([`local_store_routes`](crate::upload::local_store_routes)).
    #[cfg_attr(not(feature = "axum"), allow(unused_mut))]
    pub fn local_store(mut self, store: Arc<crate::storage::local::LocalStore>) -> Self {
        #[cfg(feature = "axum")]
        self.upload.locals.push(store.clone());
        self.store(store)
    }

    /// Serve the signed URLs of `local` from [`Blobs::router`] when there is one (the store itself is
    /// registered with [`BlobsBuilder::store`]): for apps that choose the backend at startup.
    #[cfg(feature = "axum")]
    pub fn local_routes(mut self, local: Option<Arc<crate::storage::local::LocalStore>>) -> Self {
        self.upload.locals.extend(local);
        self
    }

    /// Use an outbox in another table (default `sea_gcp_outbox`) for every entity.
    pub fn outbox(mut self, outbox: Outbox) -> Self {
        self.outbox = outbox;
        self
    }

    /// How long every entity's saver trusts a bucket's versioning state (default 5 minutes; zero reads it
    /// on every save that needs it).
    pub fn versioning_ttl(mut self, ttl: Duration) -> Self {
        self.versioning_ttl = Some(ttl);
        self
    }

    /// Register the blob fields of entity `E` (`.entity(|e| e.field(BlobFieldSpec::new(..)))`).
    pub fn entity<E>(mut self, fields: impl FnOnce(EntityFields<E>) -> EntityFields<E>) -> Self
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    {
        let fields = fields(EntityFields {
            specs: Vec::new(),
            #[cfg(feature = "axum")]
            tuning: Vec::new(),
        });
        self.pending.push(Box::new(move |b: &BlobsBuilder| {
            let mut saver = BlobSaver::<E>::new(b.db.clone()).outbox(b.outbox.clone());
            if let Some(ttl) = b.versioning_ttl {
                saver = saver.versioning_ttl(ttl);
            }
            #[cfg(feature = "images")]
            if let Some(queue) = &b.variant_queue {
                saver = saver.variant_queue(queue.clone());
            }
            #[cfg(feature = "images")]
            let mut variants = Vec::new();
            for store in b.stores.values() {
                saver = saver.store(store.clone());
            }
            let mut names = Vec::new();
            #[cfg(feature = "axum")]
            let mut uploads = Vec::new();
            for spec in &fields.specs {
                let store = b.stores.get(spec.store_key()).ok_or_else(|| {
                    Error::config(
                        Some(spec.store_key().to_string()),
                        format!(
                            "blob field `{}` uses store `{}`: register it with Blobs::builder(db).store(..)",
                            spec.field_name(),
                            spec.store_key()
                        ),
                    )
                })?;
                #[cfg(feature = "axum")]
                {
                    let mut upload = UploadField::from_spec(spec, store.clone());
                    if let Some(tune) = &b.upload.tune {
                        upload = tune(upload);
                    }
                    for (_, tune) in fields.tuning.iter().filter(|(id, _)| *id == spec.field_name()) {
                        upload = tune(upload);
                    }
                    uploads.push(upload);
                }
                #[cfg(feature = "images")]
                if !spec.variants().is_empty() {
                    variants.push(variant_target(spec, store, b.variant_queue.is_some())?);
                }
                #[cfg(not(any(feature = "axum", feature = "images")))]
                let _ = store;
                names.push((spec.field_name(), spec.store_key().to_string()));
                saver = saver.field(spec.clone());
            }
            let entry = EntityEntry {
                saver: Arc::new(saver),
                #[cfg(feature = "axum")]
                uploads,
                fields: names,
                #[cfg(feature = "images")]
                variants,
            };
            Ok((TypeId::of::<E>(), entry))
        }));
        self
    }

    /// Queue the variants of new images through `queue` (the app handle's task outbox).
    #[cfg(feature = "images")]
    pub(crate) fn variant_queue(mut self, queue: Arc<dyn crate::images::generate::VariantQueue>) -> Self {
        self.variant_queue = Some(queue);
        self
    }

    /// Sign upload tickets with this signer (required for [`Blobs::router`] and [`BlobForm`]).
    #[cfg(feature = "axum")]
    pub(crate) fn ticket_signer(mut self, signer: TicketSigner) -> Self {
        self.upload.signer = Some(signer);
        self
    }

    /// Sign upload tickets with a key derived from `secret` ([`TicketSigner::new`]).
    #[cfg(feature = "axum")]
    pub fn secret(self, secret: impl AsRef<[u8]>) -> Self {
        self.ticket_signer(TicketSigner::new(secret))
    }

    /// Who may upload to which field, and the subject (user or session id) each ticket is bound to.
    /// [`BlobForm`] asks the same hook for the subject a posted ticket must be bound to.
    #[cfg(feature = "axum")]
    pub fn authorize(mut self, hook: impl Authorize) -> Self {
        self.upload.authorize = Some(Arc::new(hook));
        self
    }

    /// [`BlobsBuilder::authorize`] with a synchronous closure ([`AuthorizeFn`](crate::upload::AuthorizeFn)).
    #[cfg(feature = "axum")]
    pub fn authorize_fn<F>(self, hook: F) -> Self
    where
        F: Fn(
                &axum::http::request::Parts,
                &UploadField,
            ) -> std::result::Result<crate::upload::Grant, crate::upload::Refusal>
            + Send
            + Sync
            + 'static,
    {
        self.authorize(crate::upload::AuthorizeFn(hook))
    }

    /// [`BlobsBuilder::authorize`] with a closure that decides from the request alone, the same for
    /// every field ([`AuthenticateFn`](crate::upload::AuthenticateFn)): it runs before the requested
    /// field is looked at, so a refused caller cannot learn which fields exist.
    #[cfg(feature = "axum")]
    pub fn authenticate_fn<F>(self, hook: F) -> Self
    where
        F: Fn(&axum::http::request::Parts) -> std::result::Result<crate::upload::Grant, crate::upload::Refusal>
            + Send
            + Sync
            + 'static,
    {
        self.authorize(crate::upload::AuthenticateFn(hook))
    }

    /// Let anyone upload, with unbound tickets (development, public forms; logs a warning).
    #[cfg(feature = "axum")]
    pub fn allow_all(mut self) -> Self {
        self.upload.allow_all = true;
        self
    }

    /// Mount the upload routes under `base` instead of `/uploads`.
    #[cfg(feature = "axum")]
    pub(crate) fn upload_base(mut self, base: impl Into<String>) -> Self {
        self.upload.base = Some(base.into());
        self
    }

    /// Transport tuning applied to every upload field (resumable threshold, chunk size, ticket lifetime).
    #[cfg(feature = "axum")]
    pub fn tune_uploads(mut self, tune: impl Fn(UploadField) -> UploadField + Send + Sync + 'static) -> Self {
        self.upload.tune = Some(Arc::new(tune));
        self
    }

    /// Check the configuration and build the registry. Fails with a configuration error naming the
    /// field when a field's store is not registered, a field is registered twice, or an entity is
    /// registered twice.
    pub fn build(mut self) -> Result<Blobs> {
        let pending = std::mem::take(&mut self.pending);
        let mut entities = HashMap::new();
        for register in pending {
            let (id, entry) = register(&self)?;
            if entities.insert(id, entry).is_some() {
                return Err(Error::config(None, "an entity is registered twice with Blobs::builder().entity(..)"));
            }
        }
        #[cfg(feature = "axum")]
        let uploads = {
            let mut fields = UploadFields::new();
            for entry in entities.values() {
                for field in &entry.uploads {
                    fields = fields.register(field.clone())?;
                }
            }
            let up = &self.upload;
            match &up.signer {
                Some(signer) => {
                    let mut router = UploadRouter::new(fields, signer.clone());
                    if let Some(base) = &up.base {
                        router = router.base(base.clone());
                    }
                    if let Some(hook) = &up.authorize {
                        router = router.authorize(SharedHook(hook.clone()));
                    } else if up.allow_all {
                        router = router.allow_all();
                    }
                    Some(router)
                }
                None => None,
            }
        };
        Ok(Blobs {
            inner: Arc::new(Inner {
                db: self.db,
                stores: self.stores,
                outbox: self.outbox,
                entities,
                #[cfg(feature = "axum")]
                uploads,
                #[cfg(feature = "axum")]
                authorize: self.upload.authorize,
                #[cfg(feature = "axum")]
                locals: self.upload.locals,
            }),
        })
    }
}

#[cfg(feature = "axum")]
struct SharedHook(Arc<dyn Authorize>);

#[cfg(feature = "axum")]
#[async_trait::async_trait]
impl Authorize for SharedHook {
    async fn authenticate(
        &self,
        request: &axum::http::request::Parts,
    ) -> std::result::Result<(), crate::upload::Refusal> {
        self.0.authenticate(request).await
    }

    async fn authorize(
        &self,
        request: &axum::http::request::Parts,
        field: &UploadField,
    ) -> std::result::Result<crate::upload::Grant, crate::upload::Refusal> {
        self.0.authorize(request, field).await
    }
}

struct Inner {
    db: DatabaseConnection,
    stores: BTreeMap<String, Arc<dyn Store>>,
    outbox: Outbox,
    entities: HashMap<TypeId, EntityEntry>,
    #[cfg(feature = "axum")]
    uploads: Option<UploadRouter>,
    #[cfg(feature = "axum")]
    authorize: Option<Arc<dyn Authorize>>,
    #[cfg(feature = "axum")]
    locals: Vec<Arc<crate::storage::local::LocalStore>>,
}

/// The application's stores and blob fields; see the module docs. Cheap to clone; put it in the
/// axum state (`Blobs: FromRef<S>`) for [`BlobForm`].
#[derive(Clone)]
pub struct Blobs {
    inner: Arc<Inner>,
}

impl fmt::Debug for Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<&String> = self.inner.entities.values().flat_map(|e| e.fields.iter().map(|(f, _)| f)).collect();
        f.debug_struct("Blobs")
            .field("stores", &self.inner.stores.keys().collect::<Vec<_>>())
            .field("fields", &fields)
            .field("outbox", &self.inner.outbox)
            .finish_non_exhaustive()
    }
}

impl Blobs {
    /// Start a registry whose savers and outbox use `db` (a pool, not a transaction).
    pub fn builder(db: DatabaseConnection) -> BlobsBuilder {
        BlobsBuilder {
            db,
            stores: BTreeMap::new(),
            outbox: Outbox::default(),
            versioning_ttl: None,
            pending: Vec::new(),
            #[cfg(feature = "images")]
            variant_queue: None,
            #[cfg(feature = "axum")]
            upload: UploadConfig::default(),
        }
    }

    /// The store registered as `key`.
    pub fn store(&self, key: &str) -> Result<&Arc<dyn Store>> {
        self.inner.stores.get(key).ok_or_else(|| {
            Error::config(
                Some(key.to_string()),
                format!("store `{key}` is not registered with Blobs::builder().store(..)"),
            )
        })
    }

    /// Every registered store.
    pub fn stores(&self) -> Vec<Arc<dyn Store>> {
        self.inner.stores.values().cloned().collect()
    }

    /// The database connection.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// The saver of entity `E`: the transaction-level API (`prepare_*`, `apply`, `committed`, `abort`).
    pub fn saver<E: EntityTrait>(&self) -> Result<&BlobSaver<E>> {
        self.inner.entities.get(&TypeId::of::<E>()).and_then(|e| e.saver.downcast_ref::<BlobSaver<E>>()).ok_or_else(
            || {
                Error::config(
                    None,
                    format!(
                        "entity `{}` has no blob fields registered: add it with Blobs::builder().entity(..)",
                        E::default().table_name()
                    ),
                )
            },
        )
    }

    /// Insert `model` with `changes` (one transaction; see [`BlobSaver::insert`]).
    pub async fn insert<E>(&self, model: E::ActiveModel, changes: BlobChanges<E>) -> Result<Saved<E::Model>>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    {
        self.saver::<E>()?.insert(model, changes).await
    }

    /// Insert `model` with `changes` in a transaction that stays open, so that other writes (an
    /// enqueued task, an audit row) commit with it: write them in [`PendingSave::txn`], then
    /// [`PendingSave::commit`] (or [`Gcp::commit_save`](crate::Gcp::commit_save), which also sends
    /// the tasks at once). See [`BlobSaver::begin_insert`].
    ///
    /// [`PendingSave::txn`]: crate::promote::PendingSave::txn
    /// [`PendingSave::commit`]: crate::promote::PendingSave::commit
    pub async fn begin_insert<E>(
        &self,
        model: E::ActiveModel,
        changes: BlobChanges<E>,
    ) -> Result<crate::promote::PendingSave<E>>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    {
        self.saver::<E>()?.begin_insert(model, changes).await
    }

    /// Update `model` with `changes` in a transaction that stays open (see [`Blobs::begin_insert`]).
    pub async fn begin_update<E>(
        &self,
        model: E::ActiveModel,
        changes: BlobChanges<E>,
    ) -> Result<crate::promote::PendingSave<E>>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    {
        self.saver::<E>()?.begin_update(model, changes).await
    }

    /// Update `model` with `changes` (see [`BlobSaver::update`]).
    pub async fn update<E>(&self, model: E::ActiveModel, changes: BlobChanges<E>) -> Result<Saved<E::Model>>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    {
        self.saver::<E>()?.update(model, changes).await
    }

    /// Delete the row of `model`; its objects go per each field's delete policy (see
    /// [`BlobSaver::delete`]).
    pub async fn delete<M>(&self, model: M) -> Result<CommitReport>
    where
        M: ModelTrait + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel> + Sync,
        M::Entity: EntityTrait<Model = M>,
        <M::Entity as EntityTrait>::ActiveModel: ActiveModelTrait<Entity = M::Entity> + ActiveModelBehavior + Send,
    {
        self.saver::<M::Entity>()?.delete(model).await
    }

    /// Create the outbox and used-ticket tables if missing (development and tests; production runs the
    /// migrations `CreateOutbox` and `CreateUsedTickets`).
    pub async fn create_tables(&self) -> Result<()> {
        self.inner.outbox.create(&self.inner.db).await?;
        UsedTicketTable::for_outbox(&self.inner.outbox).create(&self.inner.db).await
    }

    /// Replay the outbox for every registered store: intents older than an hour are
    /// finished or undone (call it at startup; `sea-gcp repair` does the same).
    pub async fn repair(&self) -> Result<ReplayReport> {
        self.repair_older_than(DEFAULT_REPAIR_GRACE).await
    }

    /// [`Blobs::repair`] with another grace period (`Duration::ZERO` when no save can be in flight).
    pub async fn repair_older_than(&self, grace: Duration) -> Result<ReplayReport> {
        replay_outbox(&self.inner.db, &self.inner.outbox, &self.stores(), grace).await
    }

    /// A URL of `value`, a value of the blob field `column`, from the field's store
    /// ([`Store::url`]: signed unless the store serves public URLs).
    pub async fn url<C: sea_orm::ColumnTrait>(
        &self,
        column: C,
        value: &crate::field::BlobValue,
        options: crate::storage::UrlOptions,
    ) -> Result<String> {
        use sea_orm::EntityName;
        let id = format!("{}.{}", C::EntityName::default().table_name(), column.as_str());
        let key = self
            .inner
            .entities
            .values()
            .flat_map(|e| e.fields.iter())
            .find(|(field, _)| *field == id)
            .map(|(_, store)| store.clone())
            .ok_or_else(|| Error::config(None, format!("`{id}` is not a blob field registered with Blobs")))?;
        self.store(&key)?.url(&value.name, options).await
    }

    /// A short-lived URL that downloads `value` (of the blob field `column`) as an attachment under its
    /// download name (the uploaded file's name), valid for `lifetime`: signed (a
    /// local-route URL on the local store) even when the store serves public URLs.
    pub async fn download_url<C: sea_orm::ColumnTrait>(
        &self,
        column: C,
        value: &crate::field::BlobValue,
        lifetime: Duration,
    ) -> Result<String> {
        let options = crate::storage::UrlOptions::new()
            .with_expires_in(lifetime)
            .with_attachment(value.download_name())
            .with_force_signed(true);
        self.url(column, value, options).await
    }

    /// A URL of the variant `variant` of `value` (of the blob field `column`) when it has been made, else
    /// of `value` itself: a page asks for the thumbnail and shows the original until the variants task
    /// has run, with no storage call either way (feature `images`; see `docs/images.md`).
    #[cfg(feature = "images")]
    pub async fn variant_url<C: sea_orm::ColumnTrait>(
        &self,
        column: C,
        value: &crate::field::BlobValue,
        variant: &str,
        options: crate::storage::UrlOptions,
    ) -> Result<String> {
        match value.variant(variant) {
            Some(made) => {
                let mut shown = crate::field::BlobValue::uncached(made.name.clone());
                shown.generation = made.generation;
                self.url(column, &shown, options).await
            }
            None => self.url(column, value, options).await,
        }
    }

    /// Where the variants of `table.column` are made, when that field has variants.
    #[cfg(feature = "images")]
    pub(crate) fn variant_target(&self, table: &str, column: &str) -> Option<&crate::images::generate::VariantTarget> {
        self.inner
            .entities
            .values()
            .flat_map(|e| e.variants.iter())
            .find(|((t, c), _)| t == table && c == column)
            .map(|(_, target)| target)
    }

    /// Every field with variants, for `sea-gcp variants backfill`.
    #[cfg(feature = "images")]
    pub(crate) fn variant_fields(&self) -> Vec<crate::images::backfill::BackfillTarget> {
        let mut fields: Vec<_> = self
            .inner
            .entities
            .values()
            .flat_map(|e| e.variants.iter())
            .map(|((table, column), target)| crate::images::backfill::BackfillTarget {
                store: target.store.key().to_string(),
                table: table.clone(),
                column: column.clone(),
                target: target.clone(),
            })
            .collect();
        fields.sort_by(|a, b| (&a.table, &a.column).cmp(&(&b.table, &b.column)));
        fields
    }

    /// True when some registered field has variants.
    #[cfg(feature = "images")]
    pub(crate) fn has_variants(&self) -> bool {
        self.inner.entities.values().any(|e| !e.variants.is_empty())
    }

    #[cfg(feature = "axum")]
    fn uploads(&self) -> Result<&UploadRouter> {
        self.inner.uploads.as_ref().ok_or_else(|| {
            Error::config(None, "uploads need a ticket key: call Blobs::builder(..).secret(..) or .ticket_signer(..)")
        })
    }

    /// The upload routes (`POST /uploads`, the widget's script and stylesheet) and the signed routes of
    /// every registered local store.
    ///
    /// # Panics
    ///
    /// When no ticket key ([`BlobsBuilder::secret`]) or no authorisation ([`BlobsBuilder::authorize`] or
    /// [`BlobsBuilder::allow_all`]) was configured.
    #[cfg(feature = "axum")]
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        let uploads = match self.uploads() {
            Ok(u) => u,
            Err(e) => panic!("{e}"),
        };
        let mut router = uploads.router();
        for local in &self.inner.locals {
            router = router.merge(crate::upload::local_store_routes(local.clone()));
        }
        router
    }

    /// The upload field `table.column`, if registered.
    #[cfg(feature = "axum")]
    pub(crate) fn upload_field(&self, id: &str) -> Option<&Arc<UploadField>> {
        self.inner.uploads.as_ref().and_then(|u| u.fields().get(id))
    }

    /// The upload router (for [`UploadRouter::issue`] or [`UploadRouter::verifier`]).
    #[cfg(feature = "axum")]
    pub fn upload_router(&self) -> Result<&UploadRouter> {
        self.uploads()
    }
}

/// Check a field's variants and say where they are made.
#[cfg(feature = "images")]
fn variant_target<E: EntityTrait>(
    spec: &BlobFieldSpec<E>,
    store: &Arc<dyn Store>,
    queued: bool,
) -> Result<((String, String), crate::images::generate::VariantTarget)> {
    let field = spec.field_name();
    let config = |message: String| Error::config(Some(spec.store_key().to_string()), message);
    if !queued {
        return Err(config(format!(
            "blob field `{field}` has variants, which a task makes after the save commits: register the field on              the app handle (Gcp) built with the `tasks` feature"
        )));
    }
    let primary_key = crate::promote::saver::variants::single_primary_key::<E>()?.to_string();
    for variant in spec.variants() {
        let name = variant.name();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(config(format!(
                "variant `{name}` of blob field `{field}`: use 1 to 64 lowercase letters, digits, `_` or `-` (it is \
                 part of the object name)"
            )));
        }
    }
    let key = (E::default().table_name().to_string(), spec.column_name().to_string());
    let target = crate::images::generate::VariantTarget {
        store: store.clone(),
        primary_key,
        variants: spec.variants().to_vec(),
        max_pixels: spec.pixel_limit(),
    };
    Ok((key, target))
}
