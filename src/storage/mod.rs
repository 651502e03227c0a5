//! The [`Store`] API and its backends.
//!
//! One async, object-safe trait ([`Store`], used as `Arc<dyn Store>`) with three backends that pass one
//! behaviour suite (`tests/store_behaviour.rs`):
//!
//! * [`gcs::GcsStore`]: Google Cloud Storage over the JSON API (`gcloud-storage`).
//! * [`local::LocalStore`]: a directory; metadata in sidecar files, generations emulated.
//! * [`memory::MemoryStore`]: in memory, faithful to GCS's generation and precondition rules.
//!
//! Names are relative to the store's `location` and are normalised by [`naming::normalize`] before any
//! request is sent. Store-wide options (gzip, object parameters, content-type guessing) are applied by
//! `policy`, shared by every backend, so that they behave the same everywhere.

#[cfg(any(feature = "testing", feature = "orm"))]
pub(crate) mod counting;
pub(crate) mod download;
pub(crate) mod file;
#[cfg(feature = "gcs")]
pub(crate) mod gcs;
mod listing;
pub(crate) mod local;
pub(crate) mod media_type;
pub(crate) mod memory;
pub(crate) use crate::naming;
mod payload;
pub(crate) mod policy;
pub(crate) mod retry;
mod types;

#[cfg(any(feature = "testing", feature = "orm"))]
pub use counting::{CallCounts, CountingStore, StoreOp};
pub use download::{DownloadOptions, Downloaded, download_to_file};
pub use file::FileWriter;
#[cfg(feature = "gcs")]
pub use gcs::GcsStore;
pub use local::LocalStore;
pub use memory::MemoryStore;

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

pub use payload::{ByteStream, GetResult, PutPayload};
#[cfg(feature = "axum")]
pub(crate) use types::method_serde;
pub use types::{
    ByteRange, CopyOptions, DeleteOptions, GetOptions, ListOptions, ListPage, MetadataPatch, ObjectMeta,
    ObjectParameters, Preconditions, PresignedRequest, PutOptions, SignedUploadOptions, UrlOptions,
};

use crate::config::{BackendConfig, StoreConfig};
use crate::{Error, Result};

/// Which kind of backend a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Google Cloud Storage.
    Gcs,
    /// Local filesystem.
    Local,
    /// In memory.
    Memory,
}

impl BackendKind {
    /// Lowercase name (`gcs`, `local`, `memory`).
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendKind::Gcs => "gcs",
            BackendKind::Local => "local",
            BackendKind::Memory => "memory",
        }
    }
}

/// An object store: GCS, a local directory or memory, behind one API.
///
/// All names are relative to the store's configured `location` and normalised first
/// ([`naming::normalize`]); invalid names fail with [`Error::InvalidName`] before any request.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// The store's key (`media`, `static`, ...).
    fn key(&self) -> &str;

    /// The backend kind.
    fn kind(&self) -> BackendKind;

    /// The store's configuration.
    fn config(&self) -> &StoreConfig;

    /// Write an object. Store options apply: object parameters merged under `opts.params`, the content
    /// type guessed from the name when unset, gzip per `gzip`/`gzip_content_types`. Returns the new
    /// generation's metadata. With `if_generation_match = Some(0)` it is create-only.
    async fn put(&self, name: &str, payload: PutPayload, opts: PutOptions) -> Result<ObjectMeta>;

    /// Read an object (or a range, or a pinned generation). Gzip written by the store is undone unless
    /// `opts.raw`.
    async fn get(&self, name: &str, opts: GetOptions) -> Result<GetResult>;

    /// Metadata of the live object (or of `opts.generation`).
    async fn head(&self, name: &str, opts: GetOptions) -> Result<ObjectMeta>;

    /// Delete the live object (or `opts.generation`), subject to `opts.preconditions`.
    async fn delete(&self, name: &str, opts: DeleteOptions) -> Result<()>;

    /// Server-side copy within the store. Returns the destination's metadata (the copy response: no
    /// extra read needed).
    async fn copy(&self, from: &str, to: &str, opts: CopyOptions) -> Result<ObjectMeta>;

    /// One page of a listing.
    async fn list(&self, opts: ListOptions) -> Result<ListPage>;

    /// Patch metadata of the live object; bumps its metageneration.
    async fn patch_metadata(&self, name: &str, patch: MetadataPatch) -> Result<ObjectMeta>;

    /// Every stored generation of `name`, oldest first (one entry on an unversioned bucket).
    async fn list_generations(&self, name: &str) -> Result<Vec<ObjectMeta>>;

    /// A URL for `name`: public when the store's ACL is `publicRead` or `querystring_auth` is off,
    /// otherwise signed (V4 on GCS; the server's own HMAC on the local store).
    async fn url(&self, name: &str, opts: UrlOptions) -> Result<String>;

    /// A request a browser can send to upload `name` directly: a signed PUT bound to the content type,
    /// a content-length range and (by default) create-only; or a resumable session URI.
    async fn signed_upload(&self, name: &str, opts: SignedUploadOptions) -> Result<PresignedRequest>;

    /// Whether the bucket keeps noncurrent generations (object versioning).
    async fn versioning_enabled(&self) -> Result<bool>;

    /// Does the live object exist?
    async fn exists(&self, name: &str) -> Result<bool> {
        match self.head(name, GetOptions::default()).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Read a whole object into memory.
    async fn get_bytes(&self, name: &str) -> Result<bytes::Bytes> {
        self.get(name, GetOptions::default()).await?.bytes().await
    }

    /// django's `Storage.save`: write `payload` under `name` and return the name actually used. With
    /// `file_overwrite = true` the object is overwritten; with `false` the write is create-only and, when
    /// the name is taken, retried under `name_<7 random chars>.ext` — race-free, with no `exists()` check.
    /// Streams cannot be replayed, so with `file_overwrite = false` they are buffered first; pass
    /// bytes or a file to avoid that.
    async fn save(&self, name: &str, payload: PutPayload, opts: PutOptions) -> Result<ObjectMeta> {
        if self.config().file_overwrite || !opts.preconditions.is_empty() {
            return self.put(name, payload, opts).await;
        }
        let payload = match payload {
            PutPayload::Stream { .. } => PutPayload::Bytes(payload.into_bytes().await?),
            other => other,
        };
        let mut candidate = naming::normalize(name)?;
        for _ in 0..100 {
            let again = match &payload {
                PutPayload::Bytes(b) => PutPayload::Bytes(b.clone()),
                PutPayload::File(p) => PutPayload::File(p.clone()),
                PutPayload::Stream { .. } => unreachable!("streams were buffered above"),
            };
            let attempt = PutOptions { preconditions: Preconditions::create_only(), ..opts.clone() };
            match self.put(&candidate, again, attempt).await {
                Err(Error::Precondition { .. }) => candidate = naming::alternative_name(&naming::normalize(name)?),
                other => return other,
            }
        }
        Err(Error::Precondition {
            store: self.key().to_string(),
            name: name.to_string(),
            message: "no free name found after 100 attempts".into(),
        })
    }

    /// Every object under `prefix` (all pages), as a stream.
    fn list_all(&self, prefix: Option<String>) -> BoxStream<'_, Result<ObjectMeta>> {
        let state = Some(ListOptions { prefix, ..ListOptions::default() });
        futures_util::stream::try_unfold(state, move |state| async move {
            let Some(opts) = state else { return Ok(None) };
            let page = self.list(opts.clone()).await?;
            let next = page.next_page_token.map(|t| ListOptions { page_token: Some(t), ..opts });
            Ok::<_, Error>(Some((futures_util::stream::iter(page.objects.into_iter().map(Ok)), next)))
        })
        .try_flatten()
        .boxed()
    }
}

impl crate::Settings {
    /// Build store `key` (`media`, `static` or any configured name) from these settings.
    pub async fn open(&self, key: &str) -> Result<Arc<dyn Store>> {
        let canonical = crate::config::canonical_store_key(key);
        let config = self.store_config(&canonical)?.clone();
        open(&canonical, config).await
    }
}

/// Build a store from its configuration.
pub async fn open(key: &str, config: StoreConfig) -> Result<Arc<dyn Store>> {
    config.validate(key)?;
    Ok(match &config.backend {
        BackendConfig::Memory => Arc::new(memory::MemoryStore::new(key, config)?),
        BackendConfig::Local => Arc::new(local::LocalStore::new(key, config).await?),
        #[cfg(feature = "gcs")]
        BackendConfig::Gcs => Arc::new(gcs::GcsStore::new(key, config).await?),
        #[cfg(not(feature = "gcs"))]
        BackendConfig::Gcs => {
            return Err(Error::config(
                key.to_string(),
                "the GCS backend is not in this build: enable the `gcs` feature of sea-gcp",
            ));
        }
    })
}
