//! [`GcpBuilder`]: registration of blob fields, event handlers and tasks, then one `build`.

use std::any::{Any, TypeId};
use std::sync::Arc;

use sea_orm::{ActiveModelBehavior, ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel};

use super::{Gcp, Inner};
use crate::blobs::{BlobsBuilder, EntityFields};
use crate::config::{BackendConfig, Settings, SigningConfig, StoreConfig};
use crate::storage::local::LocalStore;
use crate::{Error, Result, Secret};

type Customize = Box<dyn FnOnce(BlobsBuilder) -> BlobsBuilder + Send>;

/// The blob fields registered one by one, per entity, until `build` registers each entity once.
struct EntitySpecs<E: EntityTrait>(Vec<crate::field::BlobFieldSpec<E>>);

/// Registers one entity's [`EntitySpecs`] (type-erased) on the blob registry.
type RegisterFields = fn(Box<dyn Any + Send>, BlobsBuilder) -> BlobsBuilder;

/// Builds a [`Gcp`]; see the [module docs](super). Nothing here calls the network: tokens, keys and the
/// project id are fetched when first needed.
pub struct GcpBuilder {
    settings: Settings,
    db: DatabaseConnection,
    blobs: Vec<Customize>,
    fields: Vec<(TypeId, RegisterFields, Box<dyn Any + Send>)>,
    create_tables: bool,
    #[cfg(feature = "events")]
    events: Vec<(String, bool, Arc<dyn crate::events::EventHandler>)>,
    #[cfg(feature = "tasks")]
    tasks: crate::tasks::RegistryBuilder,
    #[cfg(feature = "tasks")]
    task_count: usize,
}

impl std::fmt::Debug for GcpBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpBuilder").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The media store when the settings name none: a directory beside the app, like Django's `MEDIA_ROOT`.
pub(super) const DEFAULT_MEDIA_ROOT: &str = ".sea-gcp/media";

impl GcpBuilder {
    pub(super) fn new(settings: Settings, db: DatabaseConnection) -> Self {
        Self {
            settings,
            db,
            blobs: Vec::new(),
            fields: Vec::new(),
            create_tables: false,
            #[cfg(feature = "events")]
            events: Vec::new(),
            #[cfg(feature = "tasks")]
            tasks: crate::tasks::Registry::builder(),
            #[cfg(feature = "tasks")]
            task_count: 0,
        }
    }

    /// Register the blob fields of entity `E`:
    /// `.entity(|e| e.field(BlobFieldSpec::new(document::Column::File, "media").max_size(20 << 20)))`.
    pub fn entity<E>(mut self, fields: impl FnOnce(EntityFields<E>) -> EntityFields<E> + Send + 'static) -> Self
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    {
        self.blobs.push(Box::new(move |b| b.entity::<E>(fields)));
        self
    }

    /// Add a blob field: `.blob_field(document::Column::File, "media")`, a column of type `BlobValue`
    /// (or `Option<BlobValue>`, which may be cleared) whose files go to the store `media`. Fields of one
    /// entity may be added one by one. Limits and the accept list: [`blob_field_with`](Self::blob_field_with).
    pub fn blob_field<C, E>(self, column: C, store: impl Into<String>) -> Self
    where
        C: sea_orm::ColumnTrait<EntityName = E>,
        E: EntityTrait<Column = C>,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    {
        self.blob_field_with(column, store, |f| f)
    }

    /// [`blob_field`](Self::blob_field) with options:
    /// `.blob_field_with(document::Column::File, "media", |f| f.max_size(20 << 20).accept(["application/pdf"]))`.
    pub fn blob_field_with<C, E>(
        mut self,
        column: C,
        store: impl Into<String>,
        options: impl FnOnce(crate::field::BlobFieldSpec<E>) -> crate::field::BlobFieldSpec<E>,
    ) -> Self
    where
        C: sea_orm::ColumnTrait<EntityName = E>,
        E: EntityTrait<Column = C>,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    {
        let spec = options(crate::field::BlobFieldSpec::new(column, store));
        let id = TypeId::of::<E>();
        if let Some((_, _, held)) = self.fields.iter_mut().find(|(t, _, _)| *t == id)
            && let Some(specs) = held.downcast_mut::<EntitySpecs<E>>()
        {
            specs.0.push(spec);
            return self;
        }
        fn register<E>(held: Box<dyn Any + Send>, blobs: BlobsBuilder) -> BlobsBuilder
        where
            E: EntityTrait,
            E::Model: IntoActiveModel<E::ActiveModel> + Sync,
            E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
        {
            let specs = held.downcast::<EntitySpecs<E>>().map(|s| s.0).unwrap_or_default();
            blobs.entity::<E>(move |mut fields| {
                for spec in specs {
                    fields = fields.field(spec);
                }
                fields
            })
        }
        self.fields.push((id, register::<E>, Box::new(EntitySpecs::<E>(vec![spec]))));
        self
    }

    /// Decide who may upload: `hook(request)` returns a [`Grant`](crate::upload::Grant) binding the ticket
    /// to the session or user, or a refusal ([`BlobsBuilder::authenticate_fn`]). Without it, uploads need
    /// `[uploads] allow_anonymous`.
    pub fn authenticate_uploads<F>(mut self, hook: F) -> Self
    where
        F: Fn(&axum::http::request::Parts) -> std::result::Result<crate::upload::Grant, crate::upload::Refusal>
            + Send
            + Sync
            + 'static,
    {
        self.blobs.push(Box::new(move |b| b.authenticate_fn(hook)));
        self
    }

    /// Anything else of the blob registry ([`BlobsBuilder`]): an `Authorize` hook binding tickets to the
    /// user, upload tuning, a versioning TTL.
    pub fn blobs(mut self, customize: impl FnOnce(BlobsBuilder) -> BlobsBuilder + Send + 'static) -> Self {
        self.blobs.push(Box::new(customize));
        self
    }

    /// Handle Pub/Sub or Eventarc pushes of `kind` (`POST {prefix}/events/{kind}/{reference}`), verified
    /// against `[events]`: a closure `|event| async { Ok(()) }` or an [`EventHandler`](crate::events::EventHandler).
    #[cfg(feature = "events")]
    pub fn on_event(mut self, kind: impl Into<String>, handler: impl crate::events::EventHandler) -> Self {
        self.events.push((kind.into(), false, Arc::new(handler)));
        self
    }

    /// Handle every event kind starting with `prefix` (the longest prefix wins; exact kinds first).
    #[cfg(feature = "events")]
    pub fn on_event_prefix(mut self, prefix: impl Into<String>, handler: impl crate::events::EventHandler) -> Self {
        self.events.push((prefix.into(), true, Arc::new(handler)));
        self
    }

    /// Register a task: on-demand, and periodic as well when it declares a
    /// [`SCHEDULE`](crate::tasks::Task::SCHEDULE) (`const SCHEDULE: Option<&str> = Some("0 3 * * *")`).
    #[cfg(feature = "tasks")]
    pub fn task<T: crate::tasks::Task>(mut self, task: T) -> Self {
        self.tasks = self.tasks.task(task);
        self.task_count += 1;
        self
    }

    /// Register a periodic task: its schedule is declared on the task
    /// ([`PeriodicTask::schedule`](crate::tasks::PeriodicTask::schedule)); `manage` syncs it to Cloud
    /// Scheduler, and the local scheduler fires it in local mode.
    #[cfg(feature = "tasks")]
    pub fn periodic<T: crate::tasks::PeriodicTask>(mut self, task: T) -> Self {
        self.tasks = self.tasks.periodic(task);
        self.task_count += 1;
        self
    }

    /// Register a Pub/Sub subscriber task (its topic is declared on the task).
    #[cfg(feature = "tasks")]
    pub fn subscriber<T: crate::tasks::SubscriberTask>(mut self, task: T) -> Self {
        self.tasks = self.tasks.subscriber(task);
        self.task_count += 1;
        self
    }

    /// Create or upgrade sea-gcp's tables when building ([`create_tables`](crate::create_tables); safe
    /// at every start). Without it, add [`migrations`](crate::migrations) to your migrator.
    pub fn create_tables(mut self) -> Self {
        self.create_tables = true;
        self
    }

    /// Open the stores, check every registration against the settings and build the handle. In local
    /// task mode this starts the local Cloud Tasks and Scheduler on loopback ports.
    pub async fn build(self) -> Result<Gcp> {
        let settings = self.settings;
        let prefix = settings.prefix.clone();
        if self.create_tables {
            crate::create_tables(&self.db).await?;
        }
        let secret = match &settings.uploads.secret {
            Some(secret) if secret.len() >= 32 => secret.clone(),
            Some(secret) => {
                return Err(Error::config(
                    None,
                    format!(
                        "[uploads] secret is {} bytes; use at least 32 (e.g. `openssl rand -hex 32`)",
                        secret.len()
                    ),
                ));
            }
            // Deployed (a project, or Cloud Run), a key of one process would make every ticket issued by
            // one instance fail on the others: refuse when anything signs with it.
            None if deployed(&settings) && (!self.blobs.is_empty() || !self.fields.is_empty()) => {
                return Err(Error::config(
                    None,
                    "uploads need a shared key when deployed: set [uploads] secret (SEA_GCP__UPLOADS__SECRET, at least \
                     32 bytes, e.g. from Secret Manager); a random key per instance would refuse tickets issued by \
                     another instance",
                ));
            }
            None => {
                tracing::warn!(
                    "no [uploads] secret (SEA_GCP__UPLOADS__SECRET): signing upload tickets and local URLs with a \
                     random key for this process only; set one for more than one process or instance"
                );
                Secret::new(format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()))
            }
        };

        let mut blobs = crate::blobs::Blobs::builder(self.db.clone());
        let mut locals = Vec::new();
        let mut keys: Vec<String> = settings.store_keys().map(String::from).collect();
        if !keys.iter().any(|k| k == "media") {
            keys.push("media".into());
        }
        for key in &keys {
            let mut config =
                settings.store_config(key).cloned().unwrap_or_else(|_| StoreConfig::local(DEFAULT_MEDIA_ROOT));
            if config.backend == BackendConfig::Local {
                config.base_url.get_or_insert_with(|| format!("{prefix}/storage/{key}"));
                if matches!(config.signing, SigningConfig::Auto) {
                    config.signing = SigningConfig::Hmac { access_id: "local".into(), secret: secret.expose().into() };
                }
                let local = Arc::new(LocalStore::new(key, config).await?.with_url_secret(secret.expose()));
                locals.push(local.clone());
                blobs = blobs.store(local);
            } else {
                blobs = blobs.store(crate::storage::open(key, config).await?);
            }
        }
        blobs = blobs.secret(secret.expose()).upload_base(format!("{prefix}/uploads"));
        if let Some(ttl) = settings.uploads.ticket_lifetime {
            blobs = blobs.tune_uploads(move |f| f.ticket_ttl(ttl));
        }
        let anonymous = settings.uploads.allow_anonymous;
        if anonymous {
            blobs = blobs.allow_all();
        }
        let entities = !self.blobs.is_empty() || !self.fields.is_empty();
        for (_, register, held) in self.fields {
            blobs = register(held, blobs);
        }
        for customize in self.blobs {
            blobs = customize(blobs);
        }
        #[cfg(all(feature = "tasks", feature = "images"))]
        let variant_queue = Arc::new(super::variants::OutboxQueue::default());
        #[cfg(all(feature = "tasks", feature = "images"))]
        {
            blobs = blobs.variant_queue(variant_queue.clone());
        }
        let blobs = blobs.build()?;
        let uploads_open = blobs.upload_router().is_ok_and(|u| u.is_open());
        if entities && !uploads_open {
            return Err(Error::config(
                None,
                "blob fields are registered but nobody may upload: call .authenticate_uploads(..) on the builder, \
                 or set [uploads] allow_anonymous = true (SEA_GCP__UPLOADS__ALLOW_ANONYMOUS=true) for development",
            ));
        }

        #[cfg(feature = "tasks")]
        #[cfg_attr(not(feature = "images"), allow(unused_mut))]
        let (mut registry, mut task_count) = (self.tasks, self.task_count);
        #[cfg(all(feature = "tasks", feature = "images"))]
        if blobs.has_variants() {
            registry = registry.task(super::variants::MakeVariants { blobs: blobs.clone() });
            task_count += 1;
        }
        #[cfg(feature = "tasks")]
        let tasks = if task_count > 0 {
            Some(super::tasks::TaskPart::build(&settings, registry.build()?).await?)
        } else {
            None
        };
        #[cfg(all(feature = "tasks", feature = "images"))]
        if let Some(part) = &tasks {
            variant_queue.set(part.tasks.clone(), part.outbox.clone());
        }

        #[cfg(feature = "events")]
        let events = if self.events.is_empty() {
            None
        } else {
            #[cfg(feature = "tasks")]
            let local = tasks.as_ref().and_then(|t| t.local.as_ref());
            #[cfg(not(feature = "tasks"))]
            let local: Option<&()> = None;
            let mut router = crate::events::EventsRouter::new(events_policy(&settings, local)?)
                .with_path(format!("{prefix}/events"));
            for (kind, is_prefix, handler) in self.events {
                router = if is_prefix {
                    router.on_prefix(kind, SharedHandler(handler))
                } else {
                    router.on_shared(kind, handler)
                };
            }
            Some(router)
        };

        Ok(Gcp {
            inner: Arc::new(Inner {
                settings,
                db: self.db,
                blobs,
                locals,
                uploads_open,
                #[cfg(feature = "events")]
                events,
                #[cfg(feature = "tasks")]
                tasks,
            }),
        })
    }
}

/// True when the settings describe a deployment rather than a laptop: a project is set, or the process
/// runs on Cloud Run.
fn deployed(settings: &Settings) -> bool {
    settings.project_id.is_some() || std::env::var_os("K_SERVICE").is_some()
}

#[cfg(feature = "events")]
struct SharedHandler(Arc<dyn crate::events::EventHandler>);

#[cfg(feature = "events")]
#[async_trait::async_trait]
impl crate::events::EventHandler for SharedHandler {
    async fn handle(&self, event: crate::events::Event) -> std::result::Result<(), crate::events::HandlerError> {
        self.0.handle(event).await
    }
}

/// Who may push events: Google-signed tokens for `[events] invoker_emails`, audience under
/// `external_url` (else `base_url`); in local task mode, also the local issuer's tokens.
#[cfg(all(feature = "events", feature = "tasks"))]
fn events_policy(settings: &Settings, local: Option<&crate::local::LocalCloud>) -> Result<crate::auth::InvokerPolicy> {
    events_policy_with(settings, local.map(|l| (l.verifier(), crate::local::LOCAL_INVOKER)))
}

#[cfg(all(feature = "events", not(feature = "tasks")))]
fn events_policy(settings: &Settings, _local: Option<&()>) -> Result<crate::auth::InvokerPolicy> {
    events_policy_with(settings, None)
}

#[cfg(feature = "events")]
fn events_policy_with(
    settings: &Settings,
    local: Option<(crate::auth::OidcVerifier, &str)>,
) -> Result<crate::auth::InvokerPolicy> {
    use crate::auth::{InvokerPolicy, OidcVerifier};
    let events = &settings.events;
    if !events.authenticate {
        return Ok(InvokerPolicy::disabled());
    }
    let base = events.external_url.clone().or_else(|| settings.base_url.clone()).ok_or_else(|| {
        Error::config(
            None,
            "events need the URL Google pushes to, the audience of its tokens: set base_url (BASE_URL) or \
             [events] external_url",
        )
    })?;
    let (verifier, extra) = match local {
        Some((verifier, email)) => (verifier, Some(email.to_string())),
        None => (OidcVerifier::google(), None),
    };
    Ok(InvokerPolicy::new(verifier, base).allow_emails(events.invoker_emails.iter().cloned().chain(extra)))
}
