//! [`FaultStore`]: a decorator that fails or delays chosen calls, for crash-safety tests and latency benchmarks.
//!
//! A fault targets one [`StoreOp`] and a call number of that operation (counted from 1 since the store
//! was created or [`FaultStore::reset`] was called), or every call of it. Two kinds exist:
//!
//! * [`FaultKind::Before`]: the call fails without reaching the wrapped store (the request never left).
//! * [`FaultKind::After`]: the call reaches the wrapped store and takes effect, then fails (the response
//!   was lost). This is the nastier case for a protocol: the object was copied or deleted, but the caller
//!   does not know it.
//!
//! Injected failures are [`Error::Backend`] with status 503 and `retryable = true`, like a GCS outage.
//!
//! [`FaultStore::delay`] adds latency instead: every call of an operation waits before reaching the
//! wrapped store, as a round trip to GCS would (benchmarks use it to weigh sequential against concurrent
//! calls on a local store).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::config::StoreConfig;
use crate::storage::StoreOp;
use crate::storage::{
    BackendKind, CopyOptions, DeleteOptions, GetOptions, GetResult, ListOptions, ListPage, MetadataPatch, ObjectMeta,
    PresignedRequest, PutOptions, PutPayload, SignedUploadOptions, Store, UrlOptions,
};
use crate::{Error, Result};

/// When an injected failure happens relative to the real call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Fail without performing the call.
    Before,
    /// Perform the call, then report a failure (the effect happened; the response was lost).
    After,
}

/// Which calls of an operation a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultWhen {
    /// Only the n-th call (1-based).
    Nth(u64),
    /// Every call from the n-th on (1-based).
    From(u64),
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    op: StoreOp,
    when: FaultWhen,
    kind: FaultKind,
}

/// A [`Store`] that forwards to `inner` except where a fault has been injected.
pub struct FaultStore {
    inner: Arc<dyn Store>,
    calls: [AtomicU64; 11],
    rules: Mutex<Vec<Rule>>,
    delays: Mutex<Vec<(StoreOp, Duration)>>,
    fired: AtomicU64,
    /// Numbers (1-based, among `get`s that succeed) of the reads whose bytes are corrupted.
    corrupt: Mutex<Vec<u64>>,
    reads: AtomicU64,
}

impl fmt::Debug for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultStore")
            .field("inner", &self.inner)
            .field("rules", &*self.rules.lock().unwrap_or_else(|p| p.into_inner()))
            .field("delays", &*self.delays.lock().unwrap_or_else(|p| p.into_inner()))
            .finish()
    }
}

impl FaultStore {
    /// Wrap `inner` with no faults.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: Default::default(),
            rules: Mutex::new(Vec::new()),
            delays: Mutex::new(Vec::new()),
            fired: AtomicU64::new(0),
            corrupt: Mutex::new(Vec::new()),
            reads: AtomicU64::new(0),
        }
    }

    /// Make the `nth` successful `get` (1-based, counted from now on) return its bytes with the first byte
    /// flipped, as bit rot or a proxy rewriting bytes in transit would: the call succeeds and only a
    /// checksum can tell. Cleared by [`FaultStore::clear`].
    pub fn corrupt_get(&self, nth: u64) -> &Self {
        let base = self.reads.load(Ordering::SeqCst);
        self.corrupt.lock().unwrap_or_else(|p| p.into_inner()).push(base + nth);
        self
    }

    /// Make every call of `op` wait `latency` before it reaches the wrapped store (a simulated round
    /// trip; replaces an earlier delay of `op`). Cleared by [`FaultStore::clear`].
    pub fn delay(&self, op: StoreOp, latency: Duration) -> &Self {
        let mut delays = self.delays.lock().unwrap_or_else(|p| p.into_inner());
        delays.retain(|(o, _)| *o != op);
        delays.push((op, latency));
        self
    }

    /// Fail the `nth` call (1-based) of `op` in the way `kind` says.
    pub fn fail(&self, op: StoreOp, nth: u64, kind: FaultKind) -> &Self {
        self.add(Rule { op, when: FaultWhen::Nth(nth.max(1)), kind })
    }

    /// Remove every fault and delay (call counts are kept).
    pub fn clear(&self) {
        self.lock().clear();
        self.delays.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.corrupt.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Remove every fault and set the call counts back to zero.
    pub fn reset(&self) {
        self.clear();
        for c in &self.calls {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// How many calls of `op` were made (failed ones included).
    pub fn calls(&self, op: StoreOp) -> u64 {
        self.calls[op as usize].load(Ordering::SeqCst)
    }

    /// How many injected failures have fired.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn add(&self, rule: Rule) -> &Self {
        self.lock().push(rule);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count the call and return the fault that applies to it, if any.
    fn check(&self, op: StoreOp) -> (u64, Option<FaultKind>) {
        let n = self.calls[op as usize].fetch_add(1, Ordering::SeqCst) + 1;
        let kind = self
            .lock()
            .iter()
            .find(|r| {
                r.op == op
                    && match r.when {
                        FaultWhen::Nth(k) => k == n,
                        FaultWhen::From(k) => n >= k,
                    }
            })
            .map(|r| r.kind);
        if kind.is_some() {
            self.fired.fetch_add(1, Ordering::SeqCst);
        }
        (n, kind)
    }

    fn injected(&self, op: StoreOp, n: u64, kind: FaultKind) -> Error {
        let when = match kind {
            FaultKind::Before => "before",
            FaultKind::After => "after",
        };
        Error::Backend {
            backend: "fault",
            store: self.inner.key().to_string(),
            status: Some(503),
            retryable: true,
            source: format!("injected fault {when} {op} call #{n}").into(),
        }
    }

    async fn run<T, F>(&self, op: StoreOp, call: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let delay = self.delays.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(o, _)| *o == op).map(|d| d.1);
        if let Some(latency) = delay {
            tokio::time::sleep(latency).await;
        }
        match self.check(op) {
            (_, None) => call.await,
            (n, Some(FaultKind::Before)) => Err(self.injected(op, n, FaultKind::Before)),
            (n, Some(FaultKind::After)) => {
                let _ = call.await;
                Err(self.injected(op, n, FaultKind::After))
            }
        }
    }
}

#[async_trait]
impl Store for FaultStore {
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
        self.run(StoreOp::Put, self.inner.put(name, payload, opts)).await
    }

    async fn get(&self, name: &str, opts: GetOptions) -> Result<GetResult> {
        let mut got = self.run(StoreOp::Get, self.inner.get(name, opts)).await?;
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        if self.corrupt.lock().unwrap_or_else(|p| p.into_inner()).contains(&n) {
            self.fired.fetch_add(1, Ordering::SeqCst);
            got.body = flip_first_byte(got.body);
        }
        Ok(got)
    }

    async fn head(&self, name: &str, opts: GetOptions) -> Result<ObjectMeta> {
        self.run(StoreOp::Head, self.inner.head(name, opts)).await
    }

    async fn delete(&self, name: &str, opts: DeleteOptions) -> Result<()> {
        self.run(StoreOp::Delete, self.inner.delete(name, opts)).await
    }

    async fn copy(&self, from: &str, to: &str, opts: CopyOptions) -> Result<ObjectMeta> {
        self.run(StoreOp::Copy, self.inner.copy(from, to, opts)).await
    }

    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        self.run(StoreOp::List, self.inner.list(opts)).await
    }

    async fn patch_metadata(&self, name: &str, patch: MetadataPatch) -> Result<ObjectMeta> {
        self.run(StoreOp::PatchMetadata, self.inner.patch_metadata(name, patch)).await
    }

    async fn list_generations(&self, name: &str) -> Result<Vec<ObjectMeta>> {
        self.run(StoreOp::ListGenerations, self.inner.list_generations(name)).await
    }

    async fn url(&self, name: &str, opts: UrlOptions) -> Result<String> {
        self.run(StoreOp::Url, self.inner.url(name, opts)).await
    }

    async fn signed_upload(&self, name: &str, opts: SignedUploadOptions) -> Result<PresignedRequest> {
        self.run(StoreOp::SignedUpload, self.inner.signed_upload(name, opts)).await
    }

    async fn versioning_enabled(&self) -> Result<bool> {
        self.run(StoreOp::VersioningEnabled, self.inner.versioning_enabled()).await
    }
}

/// `body` with the first byte of its first non-empty piece flipped.
fn flip_first_byte(body: crate::storage::ByteStream) -> crate::storage::ByteStream {
    use futures_util::StreamExt as _;
    let mut done = false;
    body.map(move |piece| {
        let piece = piece?;
        if done || piece.is_empty() {
            return Ok(piece);
        }
        done = true;
        let mut bytes = piece.to_vec();
        bytes[0] ^= 0xff;
        Ok(bytes::Bytes::from(bytes))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStore;

    #[tokio::test(start_paused = true)]
    async fn delays_apply_to_their_operation_until_cleared() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new("m", StoreConfig::memory()).unwrap());
        let store = FaultStore::new(inner);
        store.put("a.txt", PutPayload::from("x"), PutOptions::default()).await.unwrap();
        store.delay(StoreOp::List, Duration::from_millis(50)).delay(StoreOp::List, Duration::from_millis(80));
        let started = tokio::time::Instant::now();
        assert_eq!(store.list(ListOptions::default()).await.unwrap().objects.len(), 1);
        assert_eq!(started.elapsed(), Duration::from_millis(80), "the later delay replaces the earlier");
        let started = tokio::time::Instant::now();
        store.head("a.txt", GetOptions::default()).await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO, "other operations are not delayed");
        store.clear();
        let started = tokio::time::Instant::now();
        store.list(ListOptions::default()).await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(store.calls(StoreOp::List), 2);
    }
}
