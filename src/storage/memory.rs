//! [`MemoryStore`]: objects in memory, faithful to GCS's rules.
//!
//! Generations are microsecond timestamps that only grow, metagenerations start at 1 and grow on every
//! patch, every precondition is checked exactly as GCS checks it (412 → [`Error::Precondition`]), and
//! with versioning on, overwritten and deleted generations stay readable by generation. It is the
//! reference the other backends are tested against, and the store to use in application tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;

use super::naming::Keyspace;
use super::policy::{self, Checksums};
use super::{
    BackendKind, CopyOptions, DeleteOptions, GetOptions, GetResult, ListOptions, ListPage, MetadataPatch, ObjectMeta,
    PresignedRequest, PutOptions, PutPayload, SignedUploadOptions, Store, UrlOptions,
};
use crate::config::StoreConfig;
use crate::{Error, Result};

#[derive(Debug, Clone)]
struct Version {
    meta: ObjectMeta,
    data: Bytes,
}

#[derive(Debug, Default)]
struct Entry {
    live: Option<Version>,
    noncurrent: Vec<Version>,
}

/// An in-memory store. Cheap to create; every instance is independent.
#[derive(Debug)]
pub struct MemoryStore {
    key: String,
    config: StoreConfig,
    keyspace: Keyspace,
    versioning: bool,
    objects: Mutex<BTreeMap<String, Entry>>,
}

impl MemoryStore {
    /// A memory store named `key` with `config` (its backend field is ignored).
    pub fn new(key: &str, config: StoreConfig) -> Result<Self> {
        config.validate(key)?;
        Ok(Self {
            key: key.to_string(),
            keyspace: Keyspace::new(key, &config.location)?,
            config,
            versioning: false,
            objects: Mutex::new(BTreeMap::new()),
        })
    }

    /// A memory store with default options.
    pub fn default_for(key: &str) -> Self {
        Self::new(key, StoreConfig::memory()).expect("default memory config is valid")
    }

    /// Turn object versioning on or off (noncurrent generations kept on overwrite and delete).
    pub fn with_versioning(mut self, on: bool) -> Self {
        self.versioning = on;
        self
    }

    fn not_found(&self, name: &str) -> Error {
        Error::NotFound { store: self.key.clone(), name: name.to_string() }
    }

    fn precondition(&self, name: &str, message: String) -> Error {
        Error::Precondition { store: self.key.clone(), name: name.to_string(), message }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn find(&self, entry: Option<&Entry>, generation: Option<i64>) -> Option<Version> {
        let entry = entry?;
        match generation {
            None => entry.live.clone(),
            Some(g) => entry.live.iter().chain(entry.noncurrent.iter()).find(|v| v.meta.generation == g).cloned(),
        }
    }

    fn live_versions(entry: Option<&Entry>) -> Option<(i64, i64)> {
        entry.and_then(|e| e.live.as_ref()).map(|v| (v.meta.generation, v.meta.metageneration))
    }

    /// Insert a new live version under `key`, keeping the old one as noncurrent when versioning.
    fn install(&self, map: &mut BTreeMap<String, Entry>, key: String, version: Version) {
        let entry = map.entry(key).or_default();
        if let Some(old) = entry.live.take()
            && self.versioning
        {
            entry.noncurrent.push(old);
        }
        entry.live = Some(version);
    }
}

/// Build the metadata of a fresh generation from merged write parameters.
fn fresh_meta(name: String, params: &super::ObjectParameters, data: &[u8]) -> ObjectMeta {
    let (crc32c, md5) = Checksums::of(data);
    let now = Utc::now();
    ObjectMeta {
        name,
        size: data.len() as u64,
        content_type: params.content_type.clone(),
        content_encoding: params.content_encoding.clone(),
        content_language: params.content_language.clone(),
        cache_control: params.cache_control.clone(),
        content_disposition: params.content_disposition.clone(),
        crc32c: Some(crc32c),
        md5: Some(md5),
        generation: policy::next_generation(),
        metageneration: 1,
        storage_class: Some(params.storage_class.clone().unwrap_or_else(|| "STANDARD".into())),
        custom_time: params.custom_time,
        metadata: params.metadata.clone(),
        created: Some(now),
        updated: Some(now),
    }
}

/// Serve a read from an in-memory buffer: range, gzip decoding, one-chunk stream.
pub(crate) fn serve_bytes(name: &str, meta: ObjectMeta, data: Bytes, opts: &GetOptions) -> Result<GetResult> {
    let size = data.len() as u64;
    let range = match opts.range {
        None => 0..size,
        Some(r) => {
            r.resolve(size).ok_or_else(|| Error::InvalidRange { name: name.to_string(), range: r.to_string(), size })?
        }
    };
    let slice = data.slice(range.start as usize..range.end as usize);
    let mut body = futures_util::stream::once(async move { Ok(slice) }).boxed();
    if policy::should_gunzip(meta.content_encoding.as_deref(), opts.raw, opts.range.is_some()) {
        body = policy::gunzip_stream(body);
    }
    Ok(GetResult { meta, range, body })
}

#[async_trait]
impl Store for MemoryStore {
    fn key(&self) -> &str {
        &self.key
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Memory
    }

    fn config(&self) -> &StoreConfig {
        &self.config
    }

    async fn put(&self, name: &str, payload: PutPayload, opts: PutOptions) -> Result<ObjectMeta> {
        let (rel, key) = self.keyspace.key(name)?;
        let write = policy::prepare_write(&self.config, &rel, &opts);
        let data = if write.gzip {
            let stream = policy::gzip_stream(payload.into_stream(1 << 20).await?);
            PutPayload::stream(stream, None).into_bytes().await?
        } else {
            payload.into_bytes().await?
        };
        let meta = fresh_meta(rel.clone(), &write.params, &data);
        let mut map = self.lock();
        opts.preconditions.check(Self::live_versions(map.get(&key))).map_err(|m| self.precondition(&rel, m))?;
        self.install(&mut map, key, Version { meta: meta.clone(), data });
        Ok(meta)
    }

    async fn get(&self, name: &str, opts: GetOptions) -> Result<GetResult> {
        let (rel, key) = self.keyspace.key(name)?;
        let version = {
            let map = self.lock();
            let entry = map.get(&key);
            opts.preconditions.check(Self::live_versions(entry)).map_err(|m| {
                if entry.and_then(|e| e.live.as_ref()).is_none() {
                    self.not_found(&rel)
                } else {
                    self.precondition(&rel, m)
                }
            })?;
            self.find(entry, opts.generation).ok_or_else(|| self.not_found(&rel))?
        };
        serve_bytes(&rel, version.meta, version.data, &opts)
    }

    async fn head(&self, name: &str, opts: GetOptions) -> Result<ObjectMeta> {
        let (rel, key) = self.keyspace.key(name)?;
        let map = self.lock();
        let entry = map.get(&key);
        let version = self.find(entry, opts.generation).ok_or_else(|| self.not_found(&rel))?;
        opts.preconditions.check(Self::live_versions(entry)).map_err(|m| self.precondition(&rel, m))?;
        Ok(version.meta)
    }

    async fn delete(&self, name: &str, opts: DeleteOptions) -> Result<()> {
        let (rel, key) = self.keyspace.key(name)?;
        let mut map = self.lock();
        let entry = map.get_mut(&key).ok_or_else(|| self.not_found(&rel))?;
        let live = entry.live.as_ref().map(|v| (v.meta.generation, v.meta.metageneration));
        match opts.generation {
            Some(g) if entry.live.as_ref().is_some_and(|v| v.meta.generation == g) => {
                opts.preconditions.check(live).map_err(|m| self.precondition(&rel, m))?;
                entry.live = None;
            }
            Some(g) => {
                let idx =
                    entry.noncurrent.iter().position(|v| v.meta.generation == g).ok_or_else(|| self.not_found(&rel))?;
                opts.preconditions.check(live).map_err(|m| self.precondition(&rel, m))?;
                entry.noncurrent.remove(idx);
            }
            None => {
                if live.is_none() {
                    return Err(self.not_found(&rel));
                }
                opts.preconditions.check(live).map_err(|m| self.precondition(&rel, m))?;
                let old = entry.live.take().expect("checked above");
                if self.versioning {
                    entry.noncurrent.push(old);
                }
            }
        }
        if entry.live.is_none() && entry.noncurrent.is_empty() {
            map.remove(&key);
        }
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str, opts: CopyOptions) -> Result<ObjectMeta> {
        let (src_rel, src_key) = self.keyspace.key(from)?;
        let (dst_rel, dst_key) = self.keyspace.key(to)?;
        let mut map = self.lock();
        let src_entry = map.get(&src_key);
        let source = self.find(src_entry, opts.source_generation).ok_or_else(|| self.not_found(&src_rel))?;
        let src_live = Self::live_versions(src_entry);
        policy::check_copy_source(&opts, src_live).map_err(|m| self.precondition(&src_rel, m))?;
        opts.destination.check(Self::live_versions(map.get(&dst_key))).map_err(|m| self.precondition(&dst_rel, m))?;
        let meta = policy::copied_meta(&source.meta, dst_rel, opts.params.as_ref());
        self.install(&mut map, dst_key, Version { meta: meta.clone(), data: source.data });
        Ok(meta)
    }

    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        let prefix = super::naming::normalize_prefix(opts.prefix.as_deref().unwrap_or(""))?;
        let full_prefix = self.keyspace.prefix_key(&prefix)?;
        let map = self.lock();
        let start = opts.page_token.as_ref().map(|t| format!("{}{}", self.keyspace.prefix(), t));
        // Start at the prefix or the start offset, whichever comes later (names are sorted).
        let first = match &opts.start_offset {
            Some(offset) => full_prefix.clone().max(format!("{}{}", self.keyspace.prefix(), offset)),
            None => full_prefix.clone(),
        };
        let items = map
            .range(first..)
            .take_while(|(k, _)| k.starts_with(&full_prefix))
            .filter(|(k, _)| start.as_ref().is_none_or(|s| *k > s))
            .map(|(k, entry)| {
                let mut versions: Vec<ObjectMeta> = if opts.versions {
                    entry.noncurrent.iter().chain(entry.live.iter()).map(|v| v.meta.clone()).collect()
                } else {
                    entry.live.iter().map(|v| v.meta.clone()).collect()
                };
                versions.sort_by_key(|m| m.generation);
                (self.keyspace.relative(k), versions)
            });
        Ok(super::listing::list_sorted(items, &prefix, &opts))
    }

    async fn patch_metadata(&self, name: &str, patch: MetadataPatch) -> Result<ObjectMeta> {
        let (rel, key) = self.keyspace.key(name)?;
        let mut map = self.lock();
        let live = map.get_mut(&key).and_then(|e| e.live.as_mut()).ok_or_else(|| self.not_found(&rel))?;
        patch
            .preconditions
            .check(Some((live.meta.generation, live.meta.metageneration)))
            .map_err(|m| self.precondition(&rel, m))?;
        patch.apply_to(&mut live.meta);
        live.meta.metageneration += 1;
        live.meta.updated = Some(Utc::now());
        Ok(live.meta.clone())
    }

    async fn list_generations(&self, name: &str) -> Result<Vec<ObjectMeta>> {
        let (_, key) = self.keyspace.key(name)?;
        let map = self.lock();
        let mut all: Vec<ObjectMeta> = map
            .get(&key)
            .map(|e| e.noncurrent.iter().chain(e.live.iter()).map(|v| v.meta.clone()).collect())
            .unwrap_or_default();
        all.sort_by_key(|m| m.generation);
        Ok(all)
    }

    async fn url(&self, name: &str, opts: UrlOptions) -> Result<String> {
        let (_, key) = self.keyspace.key(name)?;
        let mut url = format!("memory://{}/{}", self.key, crate::encoding::path(&key));
        if let Some(g) = opts.generation {
            url.push_str(&format!("?generation={g}"));
        }
        Ok(url)
    }

    async fn signed_upload(&self, _name: &str, _opts: SignedUploadOptions) -> Result<PresignedRequest> {
        Err(Error::NotSupported {
            operation: "signed_upload",
            backend: "memory",
            hint: "browsers cannot reach a memory store; use the local store (with the upload routes) or GCS".into(),
        })
    }

    async fn versioning_enabled(&self) -> Result<bool> {
        Ok(self.versioning)
    }
}

impl MemoryStore {}
