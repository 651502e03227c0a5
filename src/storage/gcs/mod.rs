//! [`GcsStore`]: Google Cloud Storage over the JSON API (`gcloud-storage`).
//!
//! One file per operation: [`client`](self) builds the connection (endpoint, credentials), `convert`
//! maps objects and errors, and `put`, `get`, `copy`, `list`, `delete`, `patch`, `url` and
//! `upload_session` implement the [`Store`] methods. Every call goes through the store's
//! [`RetryPolicy`] (see [`crate::storage::retry`] for which calls are retried).
//!
//! Semantics match [`MemoryStore`](super::memory::MemoryStore), the reference backend:
//! * names are relative to the store's `location`, and results name objects relative to it;
//! * writes carry the merged object parameters of [`policy::prepare_write`] (content type, encoding,
//!   language, cache control, disposition, custom metadata, storage class, custom time, predefined ACL)
//!   and are gzip-compressed when the store's gzip policy says so;
//! * reads ask GCS for the stored bytes (`Accept-Encoding: gzip`, so GCS does not decompress them) and
//!   undo the store's gzip per [`policy::should_gunzip`];
//! * preconditions are sent as GCS's query parameters (`ifGenerationMatch`, ...), so a mismatch is GCS's
//!   own 412 ([`Error::Precondition`]).
//!
//! Uploads: bytes and small streams of known size are sent in one multipart request. Streams of unknown
//! or large size, files, and anything larger than `blob_chunk_size` when it is set, go through a resumable
//! session in chunks of `blob_chunk_size` (16 MiB when unset), holding one chunk in memory at a time.
//!
//! Lost answers: a guarded one-request upload carries a per-request id in its metadata ([`TAG_UPLOAD`],
//! `sea-gcp-upload`); when a retry of it is answered 412, the live object is read and, if it carries that
//! id and the bytes' CRC32C and MD5, it is the result (the first attempt wrote it). A metadata patch
//! marked [`MetadataPatch::repeatable`] is retried under `ifGenerationMatch` too.
//!
//! Caveats of the emulator (fake-gcs-server), which this backend's tests run against: it ignores
//! `ifGenerationMatch` on uploads, copy and delete, and omits `metageneration` from patch responses
//! (read as unknown: [`ObjectMeta::known_metageneration`]), so `tests/gcs_requests.rs` also checks the
//! requests sent and `tests/save_under_faults.rs` puts a proxy answering GCS's 412s in front of it.

pub(crate) mod client;
mod convert;
mod copy;
mod delete;
mod get;
mod list;
mod patch;
mod put;
mod upload_session;
mod url;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest_middleware::ClientWithMiddleware;

use self::client::Connection;
use self::convert::Ctx;
use super::naming::Keyspace;
use super::retry::{Idempotency, RetryPolicy};
use super::{
    BackendKind, CopyOptions, DeleteOptions, GetOptions, GetResult, ListOptions, ListPage, MetadataPatch, ObjectMeta,
    PresignedRequest, PutOptions, PutPayload, SignedUploadOptions, Store, UrlOptions,
};
use crate::config::{SigningConfig, StoreConfig};
use crate::signing::Signer;
use crate::{Error, Result};

/// The HMAC access id (and secret) of the throwaway key that signs URLs against an emulator when
/// `signing = auto` (see [`GcsStore`]'s URL methods). Never used against Google.
pub(crate) const EMULATOR_HMAC_ACCESS_ID: &str = "sea-gcp-emulator";

/// A store on a Google Cloud Storage bucket.
#[derive(Debug)]
pub struct GcsStore {
    key: String,
    config: StoreConfig,
    keyspace: Keyspace,
    conn: Connection,
    retry: RetryPolicy,
    signer: tokio::sync::OnceCell<Arc<dyn Signer>>,
}

impl GcsStore {
    /// Connect store `key` to the bucket in `config`. The endpoint is `api_endpoint`, else
    /// `STORAGE_EMULATOR_HOST` (anonymous), else Google's with Application Default Credentials.
    pub async fn new(key: &str, config: StoreConfig) -> Result<Self> {
        Self::with_http_client(key, config, client::default_http_client()?).await
    }

    /// Like [`GcsStore::new`], sending every request through `http`: a `reqwest-middleware` client
    /// whose middleware can record, trace, throttle or inject faults (the request tests use it to check
    /// the query parameters and headers sent). Give its inner `reqwest::Client` connect and read
    /// timeouts; the store adds its own retries on top.
    pub async fn with_http_client(key: &str, config: StoreConfig, http: ClientWithMiddleware) -> Result<Self> {
        config.validate(key)?;
        let keyspace = Keyspace::new(key, &config.location)?;
        let conn = Connection::new(key, &config, http).await?;
        Ok(Self {
            key: key.to_string(),
            retry: RetryPolicy::new(config.retry.clone()),
            config,
            keyspace,
            conn,
            signer: tokio::sync::OnceCell::new(),
        })
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.config.bucket_name
    }

    /// The JSON API endpoint requests go to (Google's, `api_endpoint` or the emulator's).
    pub fn endpoint(&self) -> &str {
        &self.conn.endpoint.url
    }

    fn ctx<'a>(&'a self, name: &'a str) -> Ctx<'a> {
        Ctx { store: &self.key, name }
    }

    /// The signer for URLs, created from `config.signing` on first use and kept.
    ///
    /// Against an emulator with `signing = auto` and no service-account key in
    /// `GOOGLE_APPLICATION_CREDENTIALS`, URLs are signed with a throwaway HMAC key
    /// ([`EMULATOR_HMAC_ACCESS_ID`]): emulators do not check signatures, and `auto` would otherwise ask
    /// the metadata server, which does not exist outside Google Cloud. Against Google, `auto` is never
    /// replaced.
    async fn signer(&self) -> Result<&Arc<dyn Signer>> {
        self.signer
            .get_or_try_init(|| async {
                let no_key = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").is_none_or(|p| p.is_empty());
                if self.conn.endpoint.emulator.is_some() && self.config.signing == SigningConfig::Auto && no_key {
                    let signer = crate::signing::HmacSigner::new(EMULATOR_HMAC_ACCESS_ID, EMULATOR_HMAC_ACCESS_ID)?;
                    return Ok(Arc::new(signer) as Arc<dyn Signer>);
                }
                crate::signing::signer_from_config(&self.config.signing).await
            })
            .await
    }
}

#[async_trait]
impl Store for GcsStore {
    fn key(&self) -> &str {
        &self.key
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Gcs
    }

    fn config(&self) -> &StoreConfig {
        &self.config
    }

    async fn put(&self, name: &str, payload: PutPayload, opts: PutOptions) -> Result<ObjectMeta> {
        put::put(self, name, payload, opts).await
    }

    async fn get(&self, name: &str, opts: GetOptions) -> Result<GetResult> {
        get::get(self, name, opts).await
    }

    async fn head(&self, name: &str, opts: GetOptions) -> Result<ObjectMeta> {
        get::head(self, name, opts).await
    }

    async fn delete(&self, name: &str, opts: DeleteOptions) -> Result<()> {
        delete::delete(self, name, opts).await
    }

    async fn copy(&self, from: &str, to: &str, opts: CopyOptions) -> Result<ObjectMeta> {
        copy::copy(self, from, to, opts).await
    }

    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        list::list(self, opts).await
    }

    async fn patch_metadata(&self, name: &str, patch: MetadataPatch) -> Result<ObjectMeta> {
        patch::patch_metadata(self, name, patch).await
    }

    async fn list_generations(&self, name: &str) -> Result<Vec<ObjectMeta>> {
        list::list_generations(self, name).await
    }

    async fn url(&self, name: &str, opts: UrlOptions) -> Result<String> {
        url::url(self, name, opts).await
    }

    async fn signed_upload(&self, name: &str, opts: SignedUploadOptions) -> Result<PresignedRequest> {
        if opts.resumable {
            upload_session::start(self, name, opts).await
        } else {
            url::signed_put(self, name, opts).await
        }
    }

    async fn versioning_enabled(&self) -> Result<bool> {
        let ctx = self.ctx("(bucket)");
        let req = gcloud_storage::http::buckets::get::GetBucketRequest {
            bucket: self.bucket().to_string(),
            ..Default::default()
        };
        let bucket = self
            .retry
            .run("gcs.versioning_enabled", Idempotency::Always, || async {
                self.conn.client.get_bucket(&req).await.map_err(|e| ctx.gcloud(e))
            })
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::config(
                    Some(self.key.clone()),
                    format!("bucket `{}` does not exist; create it or fix bucket_name", self.bucket()),
                ),
                other => other,
            })?;
        Ok(bucket.versioning.is_some_and(|v| v.enabled))
    }
}
