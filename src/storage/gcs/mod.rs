//! Google Cloud Storage backend (PLACEHOLDER: being implemented).

use async_trait::async_trait;

use super::*;
use crate::config::StoreConfig;
use crate::{Error, Result};

/// A GCS-backed store.
#[derive(Debug)]
pub struct GcsStore {
    key: String,
    config: StoreConfig,
}

impl GcsStore {
    /// Connect.
    pub async fn new(key: &str, config: StoreConfig) -> Result<Self> {
        Ok(Self { key: key.into(), config })
    }
    fn ni(&self) -> Error {
        Error::NotSupported { operation: "gcs", backend: "gcs", hint: "not implemented yet".into() }
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
    async fn put(&self, _: &str, _: PutPayload, _: PutOptions) -> Result<ObjectMeta> {
        Err(self.ni())
    }
    async fn get(&self, _: &str, _: GetOptions) -> Result<GetResult> {
        Err(self.ni())
    }
    async fn head(&self, _: &str, _: GetOptions) -> Result<ObjectMeta> {
        Err(self.ni())
    }
    async fn delete(&self, _: &str, _: DeleteOptions) -> Result<()> {
        Err(self.ni())
    }
    async fn copy(&self, _: &str, _: &str, _: CopyOptions) -> Result<ObjectMeta> {
        Err(self.ni())
    }
    async fn list(&self, _: ListOptions) -> Result<ListPage> {
        Err(self.ni())
    }
    async fn patch_metadata(&self, _: &str, _: MetadataPatch) -> Result<ObjectMeta> {
        Err(self.ni())
    }
    async fn list_generations(&self, _: &str) -> Result<Vec<ObjectMeta>> {
        Err(self.ni())
    }
    async fn url(&self, _: &str, _: UrlOptions) -> Result<String> {
        Err(self.ni())
    }
    async fn signed_upload(&self, _: &str, _: SignedUploadOptions) -> Result<PresignedRequest> {
        Err(self.ni())
    }
    async fn versioning_enabled(&self) -> Result<bool> {
        Err(self.ni())
    }
}
