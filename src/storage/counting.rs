//! [`CountingStore`]: a decorator that counts the calls made to the store it wraps.
//!
//! Used by the benchmarks and tests to prove call budgets ("a save with a new upload makes at most three
//! storage calls", "reading a cached blob value makes none"). Only the required [`Store`] methods are
//! counted; the provided ones (`exists`, `get_bytes`, `save`, `list_all`) are counted through the calls
//! they make.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{
    BackendKind, CopyOptions, DeleteOptions, GetOptions, GetResult, ListOptions, ListPage, MetadataPatch, ObjectMeta,
    PresignedRequest, PutOptions, PutPayload, SignedUploadOptions, Store, UrlOptions,
};
use crate::Result;
use crate::config::StoreConfig;

/// One [`Store`] operation, as counted by [`CountingStore`] and targeted by
/// `FaultStore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreOp {
    /// [`Store::put`].
    Put,
    /// [`Store::get`].
    Get,
    /// [`Store::head`].
    Head,
    /// [`Store::delete`].
    Delete,
    /// [`Store::copy`].
    Copy,
    /// [`Store::list`].
    List,
    /// [`Store::patch_metadata`].
    PatchMetadata,
    /// [`Store::list_generations`].
    ListGenerations,
    /// [`Store::url`] (a local computation on most backends, but counted).
    Url,
    /// [`Store::signed_upload`].
    SignedUpload,
    /// [`Store::versioning_enabled`].
    VersioningEnabled,
}

impl StoreOp {
    /// Every operation, in declaration order.
    pub(crate) const ALL: [StoreOp; 11] = [
        StoreOp::Put,
        StoreOp::Get,
        StoreOp::Head,
        StoreOp::Delete,
        StoreOp::Copy,
        StoreOp::List,
        StoreOp::PatchMetadata,
        StoreOp::ListGenerations,
        StoreOp::Url,
        StoreOp::SignedUpload,
        StoreOp::VersioningEnabled,
    ];

    /// The operation's name (`copy`, `patch_metadata`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            StoreOp::Put => "put",
            StoreOp::Get => "get",
            StoreOp::Head => "head",
            StoreOp::Delete => "delete",
            StoreOp::Copy => "copy",
            StoreOp::List => "list",
            StoreOp::PatchMetadata => "patch_metadata",
            StoreOp::ListGenerations => "list_generations",
            StoreOp::Url => "url",
            StoreOp::SignedUpload => "signed_upload",
            StoreOp::VersioningEnabled => "versioning_enabled",
        }
    }

    /// True for operations that reach the storage service (everything but [`StoreOp::Url`], which signs
    /// or formats locally).
    pub(crate) fn is_remote(&self) -> bool {
        !matches!(self, StoreOp::Url)
    }

    fn index(&self) -> usize {
        *self as usize
    }
}

impl fmt::Display for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Call counts by operation, taken with [`CountingStore::counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallCounts([u64; 11]);

impl CallCounts {
    /// Calls of one operation.
    pub fn get(&self, op: StoreOp) -> u64 {
        self.0[op.index()]
    }

    /// Calls that reach the storage service (all but [`StoreOp::Url`]).
    pub fn remote(&self) -> u64 {
        StoreOp::ALL.iter().filter(|op| op.is_remote()).map(|op| self.get(*op)).sum()
    }

    /// Every call, [`StoreOp::Url`] included.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Counts accumulated since `earlier` was taken.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        let mut out = [0u64; 11];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self.0[i].saturating_sub(earlier.0[i]);
        }
        CallCounts(out)
    }
}

impl fmt::Display for CallCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            StoreOp::ALL.iter().filter(|op| self.get(**op) > 0).map(|op| format!("{op}={}", self.get(*op))).collect();
        if parts.is_empty() { f.write_str("no calls") } else { f.write_str(&parts.join(" ")) }
    }
}

/// A [`Store`] that forwards every call to `inner` and counts it.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    counts: [AtomicU64; 11],
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingStore").field("inner", &self.inner).field("counts", &self.counts()).finish()
    }
}

impl CountingStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner, counts: Default::default() }
    }

    /// The calls counted so far.
    pub fn counts(&self) -> CallCounts {
        let mut out = [0u64; 11];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self.counts[i].load(Ordering::SeqCst);
        }
        CallCounts(out)
    }

    /// Set every count back to zero.
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn hit(&self, op: StoreOp) {
        self.counts[op.index()].fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for CountingStore {
    fn key(&self) -> &str {
        self.inner.key()
    }

    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn config(&self) -> &StoreConfig {
        self.inner.config()
    }

    async fn put(&self, name: &str, payload: PutPayload, opts: PutOptions) -> Result<ObjectMeta> {
        self.hit(StoreOp::Put);
        self.inner.put(name, payload, opts).await
    }

    async fn get(&self, name: &str, opts: GetOptions) -> Result<GetResult> {
        self.hit(StoreOp::Get);
        self.inner.get(name, opts).await
    }

    async fn head(&self, name: &str, opts: GetOptions) -> Result<ObjectMeta> {
        self.hit(StoreOp::Head);
        self.inner.head(name, opts).await
    }

    async fn delete(&self, name: &str, opts: DeleteOptions) -> Result<()> {
        self.hit(StoreOp::Delete);
        self.inner.delete(name, opts).await
    }

    async fn copy(&self, from: &str, to: &str, opts: CopyOptions) -> Result<ObjectMeta> {
        self.hit(StoreOp::Copy);
        self.inner.copy(from, to, opts).await
    }

    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        self.hit(StoreOp::List);
        self.inner.list(opts).await
    }

    async fn patch_metadata(&self, name: &str, patch: MetadataPatch) -> Result<ObjectMeta> {
        self.hit(StoreOp::PatchMetadata);
        self.inner.patch_metadata(name, patch).await
    }

    async fn list_generations(&self, name: &str) -> Result<Vec<ObjectMeta>> {
        self.hit(StoreOp::ListGenerations);
        self.inner.list_generations(name).await
    }

    async fn url(&self, name: &str, opts: UrlOptions) -> Result<String> {
        self.hit(StoreOp::Url);
        self.inner.url(name, opts).await
    }

    async fn signed_upload(&self, name: &str, opts: SignedUploadOptions) -> Result<PresignedRequest> {
        self.hit(StoreOp::SignedUpload);
        self.inner.signed_upload(name, opts).await
    }

    async fn versioning_enabled(&self) -> Result<bool> {
        self.hit(StoreOp::VersioningEnabled);
        self.inner.versioning_enabled().await
    }
}
