//! [`UrlCache`]: the same signed URL for the same object within an expiry window.
//!
//! A page that shows the same image on every request would otherwise get a new URL each time (the
//! signing time is part of the URL), which defeats browser and CDN caches and costs an RSA signature per
//! view. The cache rounds the signing time down to the start of a window and keys the URL by (bucket,
//! object, generation, method, every other request option, window start), so all calls within a window
//! return the same URL.
//!
//! Lifetime guarantee: a URL signed at window start `w` with requested lifetime `e` gets `e + window`
//! (capped at GCS's 7 days), so whenever it is served it is still valid for at least `e` (at least
//! `7 days - window` when the cap applies). The request's own `timestamp` is ignored.
//!
//! Lookups take a read lock on one of 16 shards and allocate nothing; a miss signs outside any lock.
//! Entries of past windows are dropped when a shard grows past its share of the capacity.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::url::{MAX_EXPIRATION, sign_url, sign_url_blocking};
use super::{Signer, V4Request};
use crate::{Error, Result};

const SHARDS: usize = 16;

struct Entry {
    request: V4Request,
    generation: Option<i64>,
    window_start: i64,
    url: Arc<str>,
}

type Shard = HashMap<u64, Vec<Entry>>;

/// Caches signed URLs per object, generation, options and expiry window.
pub struct UrlCache {
    signer: Arc<dyn Signer>,
    window_secs: i64,
    capacity_per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[RwLock<Shard>]>,
}

impl std::fmt::Debug for UrlCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlCache")
            .field("signer", &self.signer)
            .field("window_secs", &self.window_secs)
            .field("len", &self.len())
            .finish()
    }
}

impl UrlCache {
    /// A cache that signs with `signer` and rounds signing times down to multiples of `window` (at least
    /// one second, less than 7 days). Holds up to 100,000 URLs by default.
    pub fn new(signer: Arc<dyn Signer>, window: Duration) -> Result<Self> {
        if window.as_secs() == 0 || window >= MAX_EXPIRATION {
            return Err(Error::InvalidArgument(format!(
                "URL cache window of {}s is out of range: use between 1 second and 7 days, e.g. 15m",
                window.as_secs()
            )));
        }
        Ok(Self {
            signer,
            window_secs: window.as_secs() as i64,
            capacity_per_shard: 100_000 / SHARDS,
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        })
    }

    /// Keep about `capacity` URLs before dropping those of past windows.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity_per_shard = capacity.div_ceil(SHARDS).max(1);
        self
    }

    /// How many URLs are cached.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget every URL.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    fn window_start(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(self.window_secs) * self.window_secs
    }

    fn fingerprint(&self, req: &V4Request, generation: Option<i64>, window_start: i64) -> u64 {
        let mut h = self.hasher.build_hasher();
        let V4Request { bucket, object, method, expiration, timestamp: _, headers, query_params, endpoint } = req;
        (bucket, object, method.as_str(), expiration, headers, query_params, endpoint).hash(&mut h);
        (generation, window_start).hash(&mut h);
        h.finish()
    }

    fn same(entry: &Entry, req: &V4Request, generation: Option<i64>, window_start: i64) -> bool {
        let e = &entry.request;
        entry.window_start == window_start
            && entry.generation == generation
            && e.bucket == req.bucket
            && e.object == req.object
            && e.method == req.method
            && e.expiration == req.expiration
            && e.headers == req.headers
            && e.query_params == req.query_params
            && e.endpoint == req.endpoint
    }

    fn lookup(&self, hash: u64, req: &V4Request, generation: Option<i64>, window_start: i64) -> Option<Arc<str>> {
        let shard = self.shards[(hash as usize) % SHARDS].read().unwrap_or_else(|e| e.into_inner());
        shard.get(&hash)?.iter().find(|e| Self::same(e, req, generation, window_start)).map(|e| Arc::clone(&e.url))
    }

    fn insert(&self, hash: u64, req: &V4Request, generation: Option<i64>, window_start: i64, url: Arc<str>) {
        let mut shard = self.shards[(hash as usize) % SHARDS].write().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= self.capacity_per_shard {
            shard.retain(|_, entries| {
                entries.retain(|e| e.window_start >= window_start);
                !entries.is_empty()
            });
            if shard.len() >= self.capacity_per_shard {
                shard.clear();
            }
        }
        let mut request = req.clone();
        request.timestamp = None;
        let bucket = shard.entry(hash).or_default();
        if !bucket.iter().any(|e| Self::same(e, req, generation, window_start)) {
            bucket.push(Entry { request, generation, window_start, url });
        }
    }

    /// The request actually signed: window start as signing time, lifetime extended by the window.
    fn signed_request(&self, req: &V4Request, generation: Option<i64>, window_start: i64) -> Result<V4Request> {
        let mut signed = req.clone();
        signed.timestamp = Some(
            DateTime::from_timestamp(window_start, 0)
                .ok_or_else(|| Error::InvalidArgument(format!("signing time {window_start} is out of range")))?,
        );
        signed.expiration = (req.expiration + Duration::from_secs(self.window_secs as u64)).min(MAX_EXPIRATION);
        if let Some(generation) = generation {
            signed.query_params.insert("generation".into(), generation.to_string());
        }
        Ok(signed)
    }

    /// The URL for `req` (and object `generation`, added as the `generation` query parameter) at `now`,
    /// signing it on a miss. Needs an in-memory signer (key or HMAC); see [`UrlCache::url`] otherwise.
    pub fn url_blocking(&self, req: &V4Request, generation: Option<i64>, now: DateTime<Utc>) -> Result<Arc<str>> {
        let window_start = self.window_start(now);
        let hash = self.fingerprint(req, generation, window_start);
        if let Some(url) = self.lookup(hash, req, generation, window_start) {
            return Ok(url);
        }
        crate::signing::check_expiration(req.expiration)?;
        let signed = self.signed_request(req, generation, window_start)?;
        let url: Arc<str> = sign_url_blocking(&*self.signer, &signed, now)?.url.into();
        self.insert(hash, req, generation, window_start, Arc::clone(&url));
        Ok(url)
    }

    /// The URL for `req` and `generation` now, signing it on a miss (any signer).
    pub async fn url(&self, req: &V4Request, generation: Option<i64>) -> Result<Arc<str>> {
        let now = Utc::now();
        if self.signer.local_credential_id().is_some() {
            return self.url_blocking(req, generation, now);
        }
        let window_start = self.window_start(now);
        let hash = self.fingerprint(req, generation, window_start);
        if let Some(url) = self.lookup(hash, req, generation, window_start) {
            return Ok(url);
        }
        crate::signing::check_expiration(req.expiration)?;
        let signed = self.signed_request(req, generation, window_start)?;
        let url: Arc<str> = sign_url(&*self.signer, &signed).await?.url.into();
        self.insert(hash, req, generation, window_start, Arc::clone(&url));
        Ok(url)
    }
}
