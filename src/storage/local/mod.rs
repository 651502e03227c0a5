//! [`LocalStore`]: a directory on the local filesystem with GCS's semantics.
//!
//! Layout under `root`:
//!
//! * `objects/<dir>.d/.../<last segment>.json`: the live object's [`ObjectMeta`] (the sidecar; see
//!   [`layout`] for why every pair of names can coexist, and for the move from the previous `meta/`
//!   layout, done when the store opens);
//! * `blobs/<generation>`: the bytes of each generation;
//! * `tmp/`: writes in progress and resumable upload sessions (`tmp/sessions/*.part`); files left there by
//!   abandoned uploads or crashes are removed by [`LocalStore::remove_stale_temp_files`] (which
//!   `sea-gcp cleanup` and the local routes' timer call).
//!
//! A write streams into `tmp/`, then renames it to `blobs/<new generation>`, then atomically replaces the
//! sidecar: the sidecar rename is the commit point, so a crash leaves either the old object or the new
//! one (plus at worst an unreferenced blob file), never a torn one. Because bytes live under their
//! generation rather than their name, names that a filesystem could not hold side by side (`a` and
//! `a/b`, `dir/`) work as they do on GCS.
//!
//! Generations and metagenerations are emulated, and every precondition is checked exactly as GCS does,
//! under a per-store lock: the store is meant for one process (development, tests, single-node
//! deployments). Object versioning is not emulated: [`Store::versioning_enabled`] is false.
//!
//! URLs point at the crate's own routes under `base_url` and are signed with the server's HMAC
//! ([`signature::UrlSigner`]), so downloads and direct uploads follow the same flow as on GCS.

mod cleanup;
pub(crate) mod layout;
pub(crate) mod signature;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use signature::UrlSigner;
pub(crate) use signature::encode_path;

use super::naming::Keyspace;
use super::policy::{self, Checksums};
use super::{
    BackendKind, CopyOptions, DeleteOptions, GetOptions, GetResult, ListOptions, ListPage, MetadataPatch, ObjectMeta,
    PresignedRequest, PutOptions, PutPayload, SignedUploadOptions, Store, UrlOptions,
};
use crate::config::{SigningConfig, StoreConfig};
use crate::{Error, Result};
use http::Method;

/// Longest name segment the local store accepts: filesystems cap a file name at 255 bytes and the sidecar
/// layout adds `.json` (or `.d` to a directory).
pub(crate) const MAX_SEGMENT_BYTES: usize = 250;

/// Environment variable holding the secret that signs local-store URLs (stable across restarts).
pub(crate) const SECRET_ENV: &str = "SEA_GCP_SECRET_KEY";

/// A store in a local directory.
#[derive(Debug)]
pub struct LocalStore {
    key: String,
    config: StoreConfig,
    keyspace: Keyspace,
    root: PathBuf,
    base_url: String,
    signer: UrlSigner,
    lock: tokio::sync::Mutex<()>,
}

impl LocalStore {
    /// Open (creating if needed) the store at `config.root`.
    ///
    /// URLs are signed with `SEA_GCP_SECRET_KEY`, else an HMAC secret from `signing`, else a random
    /// secret for this process (URLs then stop working after a restart).
    pub async fn new(key: &str, config: StoreConfig) -> Result<Self> {
        config.validate(key)?;
        let root =
            config.root.clone().ok_or_else(|| Error::config(Some(key.to_string()), "a local store needs `root`"))?;
        for dir in [layout::OBJECTS_DIR, "blobs", "tmp"] {
            tokio::fs::create_dir_all(root.join(dir)).await.map_err(|e| {
                Error::config(Some(key.to_string()), format!("cannot create {}: {e}", root.join(dir).display()))
            })?;
        }
        layout::migrate_legacy(&root, &root.join(layout::OBJECTS_DIR)).await.map_err(|e| {
            Error::config(
                Some(key.to_string()),
                format!(
                    "cannot move the sidecars under {} to the current layout: {e}",
                    root.join(layout::LEGACY_META_DIR).display()
                ),
            )
        })?;
        let secret = std::env::var(SECRET_ENV).ok().filter(|s| !s.is_empty()).or_else(|| match &config.signing {
            SigningConfig::Hmac { secret, .. } => Some(secret.expose().to_string()),
            _ => None,
        });
        let signer = secret.map_or_else(|| UrlSigner::ephemeral(key), UrlSigner::new);
        let base_url =
            config.base_url.clone().unwrap_or_else(|| format!("/storage/{key}")).trim_end_matches('/').to_string();
        Ok(Self {
            key: key.to_string(),
            keyspace: Keyspace::new(key, &config.location)?,
            config,
            root,
            base_url,
            signer,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Use `secret` to sign and verify this store's URLs.
    pub fn with_url_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.signer = UrlSigner::new(secret);
        self
    }

    /// The URL signer (the routes serving this store verify requests with it).
    pub(crate) fn url_signer(&self) -> &UrlSigner {
        &self.signer
    }

    /// The base URL of the routes serving this store.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The directory of resumable upload sessions served by the local routes (`tmp/sessions`).
    pub(crate) fn sessions_dir(&self) -> PathBuf {
        self.root.join("tmp").join("sessions")
    }

    /// The keyspace (location prefix) of this store.
    pub(crate) fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    fn not_found(&self, name: &str) -> Error {
        Error::NotFound { store: self.key.clone(), name: name.to_string() }
    }

    fn precondition(&self, name: &str, message: String) -> Error {
        Error::Precondition { store: self.key.clone(), name: name.to_string(), message }
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Backend {
            backend: "local",
            store: self.key.clone(),
            status: None,
            retryable: false,
            source: Box::new(e),
        }
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        layout::sidecar_path(&self.root.join(layout::OBJECTS_DIR), key)
    }

    fn blob_path(&self, generation: i64) -> PathBuf {
        self.root.join("blobs").join(generation.to_string())
    }

    async fn read_meta(&self, key: &str) -> Result<Option<ObjectMeta>> {
        match tokio::fs::read(self.meta_path(key)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                self.io(std::io::Error::other(format!("corrupt sidecar {}: {e}", self.meta_path(key).display())))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::NotADirectory => {
                Ok(None)
            }
            Err(e) => Err(self.io(e)),
        }
    }

    async fn write_meta(&self, key: &str, meta: &ObjectMeta) -> Result<()> {
        let path = self.meta_path(key);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| self.io(e))?;
        }
        let tmp = self.root.join("tmp").join(format!("{}.json", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, serde_json::to_vec(meta).expect("ObjectMeta serialises"))
            .await
            .map_err(|e| self.io(e))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| self.io(e))
    }

    async fn remove_meta(&self, key: &str) -> Result<()> {
        let path = self.meta_path(key);
        tokio::fs::remove_file(&path).await.map_err(|e| self.io(e))?;
        // Prune now-empty parent directories up to objects/.
        let stop = self.root.join(layout::OBJECTS_DIR);
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == stop || tokio::fs::remove_dir(&d).await.is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }

    async fn remove_blob(&self, generation: i64) {
        if let Err(e) = tokio::fs::remove_file(self.blob_path(generation)).await {
            tracing::warn!(store = %self.key, generation, "could not remove blob file: {e}");
        }
    }

    /// Stream `payload` into a temp file; returns (path, size, crc32c, md5).
    async fn spool(&self, payload: PutPayload, gzip: bool) -> Result<(PathBuf, u64, String, String)> {
        let chunk = self.config.blob_chunk_size.unwrap_or(1 << 20) as usize;
        let mut stream = payload.into_stream(chunk).await?;
        if gzip {
            stream = policy::gzip_stream(stream);
        }
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| self.io(e))?;
        let mut sums = Checksums::default();
        let result: Result<()> = async {
            while let Some(bytes) = stream.try_next().await.map_err(|e| self.io(e))? {
                sums.update(&bytes);
                file.write_all(&bytes).await.map_err(|e| self.io(e))?;
            }
            file.flush().await.map_err(|e| self.io(e))?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        let size = sums.len();
        let (crc, md5) = sums.finish();
        Ok((tmp, size, crc, md5))
    }

    /// Install a new live generation whose bytes are at `blob` (already named by generation).
    async fn commit(&self, key: &str, meta: &ObjectMeta, old: Option<&ObjectMeta>) -> Result<()> {
        self.write_meta(key, meta).await?;
        if let Some(old) = old
            && old.generation != meta.generation
        {
            self.remove_blob(old.generation).await;
        }
        Ok(())
    }

    fn key_of(&self, name: &str) -> Result<(String, String)> {
        let (rel, key) = self.keyspace.key(name)?;
        if let Some(segment) = key.split('/').find(|s| s.len() > MAX_SEGMENT_BYTES) {
            return Err(Error::InvalidName {
                name: rel.chars().take(120).collect(),
                reason: format!(
                    "the local store keeps one file per name segment and a segment of {} bytes exceeds the \
                     filesystem's limit ({MAX_SEGMENT_BYTES} bytes here); shorten it (GCS itself would accept it)",
                    segment.len()
                ),
            });
        }
        Ok((rel, key))
    }

    async fn signed_url(
        &self,
        method: &str,
        key: &str,
        mut params: BTreeMap<String, String>,
        ttl: std::time::Duration,
    ) -> String {
        let expires = Utc::now().timestamp() + ttl.as_secs() as i64;
        params.insert("expires".into(), expires.to_string());
        let query = self.signer.sign(method, key, &params);
        format!("{}/{}?{query}", self.base_url, encode_path(key))
    }
}

#[async_trait]
impl Store for LocalStore {
    fn key(&self) -> &str {
        &self.key
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Local
    }

    fn config(&self) -> &StoreConfig {
        &self.config
    }

    async fn put(&self, name: &str, payload: PutPayload, opts: PutOptions) -> Result<ObjectMeta> {
        let (rel, key) = self.key_of(name)?;
        let write = policy::prepare_write(&self.config, &rel, &opts);
        let (tmp, size, crc32c, md5) = self.spool(payload, write.gzip).await?;
        let _guard = self.lock.lock().await;
        let old = self.read_meta(&key).await?;
        if let Err(m) = opts.preconditions.check(old.as_ref().map(|m| (m.generation, m.metageneration))) {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(self.precondition(&rel, m));
        }
        let now = Utc::now();
        let p = &write.params;
        let meta = ObjectMeta {
            name: rel,
            size,
            content_type: p.content_type.clone(),
            content_encoding: p.content_encoding.clone(),
            content_language: p.content_language.clone(),
            cache_control: p.cache_control.clone(),
            content_disposition: p.content_disposition.clone(),
            crc32c: Some(crc32c),
            md5: Some(md5),
            generation: policy::next_generation(),
            metageneration: 1,
            storage_class: Some(p.storage_class.clone().unwrap_or_else(|| "STANDARD".into())),
            custom_time: p.custom_time,
            metadata: p.metadata.clone(),
            created: Some(now),
            updated: Some(now),
        };
        tokio::fs::rename(&tmp, self.blob_path(meta.generation)).await.map_err(|e| self.io(e))?;
        self.commit(&key, &meta, old.as_ref()).await?;
        Ok(meta)
    }

    async fn get(&self, name: &str, opts: GetOptions) -> Result<GetResult> {
        let (rel, key) = self.key_of(name)?;
        let (meta, mut file) = {
            let _guard = self.lock.lock().await;
            let meta = self.read_meta(&key).await?.ok_or_else(|| self.not_found(&rel))?;
            opts.preconditions
                .check(Some((meta.generation, meta.metageneration)))
                .map_err(|m| self.precondition(&rel, m))?;
            if opts.generation.is_some_and(|g| g != meta.generation) {
                return Err(self.not_found(&rel));
            }
            let file = tokio::fs::File::open(self.blob_path(meta.generation)).await.map_err(|e| self.io(e))?;
            (meta, file)
        };
        let size = meta.size;
        let range = match opts.range {
            None => 0..size,
            Some(r) => {
                r.resolve(size).ok_or_else(|| Error::InvalidRange { name: rel.clone(), range: r.to_string(), size })?
            }
        };
        if range.start > 0 {
            file.seek(std::io::SeekFrom::Start(range.start)).await.map_err(|e| self.io(e))?;
        }
        let chunk = self.config.blob_chunk_size.unwrap_or(256 * 1024) as usize;
        let mut body = tokio_util::io::ReaderStream::with_capacity(file.take(range.end - range.start), chunk).boxed();
        if policy::should_gunzip(meta.content_encoding.as_deref(), opts.raw, opts.range.is_some()) {
            body = policy::gunzip_stream(body);
        }
        Ok(GetResult { meta, range, body })
    }

    async fn head(&self, name: &str, opts: GetOptions) -> Result<ObjectMeta> {
        let (rel, key) = self.key_of(name)?;
        let meta = self.read_meta(&key).await?.ok_or_else(|| self.not_found(&rel))?;
        if opts.generation.is_some_and(|g| g != meta.generation) {
            return Err(self.not_found(&rel));
        }
        opts.preconditions
            .check(Some((meta.generation, meta.metageneration)))
            .map_err(|m| self.precondition(&rel, m))?;
        Ok(meta)
    }

    async fn delete(&self, name: &str, opts: DeleteOptions) -> Result<()> {
        let (rel, key) = self.key_of(name)?;
        let _guard = self.lock.lock().await;
        let meta = self.read_meta(&key).await?.ok_or_else(|| self.not_found(&rel))?;
        if opts.generation.is_some_and(|g| g != meta.generation) {
            return Err(self.not_found(&rel));
        }
        opts.preconditions
            .check(Some((meta.generation, meta.metageneration)))
            .map_err(|m| self.precondition(&rel, m))?;
        self.remove_meta(&key).await?;
        self.remove_blob(meta.generation).await;
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str, opts: CopyOptions) -> Result<ObjectMeta> {
        let (src_rel, src_key) = self.key_of(from)?;
        let (dst_rel, dst_key) = self.key_of(to)?;
        let _guard = self.lock.lock().await;
        let source = self.read_meta(&src_key).await?.ok_or_else(|| self.not_found(&src_rel))?;
        if opts.source_generation.is_some_and(|g| g != source.generation) {
            return Err(self.not_found(&src_rel));
        }
        policy::check_copy_source(&opts, Some((source.generation, source.metageneration)))
            .map_err(|m| self.precondition(&src_rel, m))?;
        let old = self.read_meta(&dst_key).await?;
        opts.destination
            .check(old.as_ref().map(|m| (m.generation, m.metageneration)))
            .map_err(|m| self.precondition(&dst_rel, m))?;
        let meta = policy::copied_meta(&source, dst_rel, opts.params.as_ref());
        let dst_blob = self.blob_path(meta.generation);
        if tokio::fs::hard_link(self.blob_path(source.generation), &dst_blob).await.is_err() {
            tokio::fs::copy(self.blob_path(source.generation), &dst_blob).await.map_err(|e| self.io(e))?;
        }
        self.commit(&dst_key, &meta, old.as_ref()).await?;
        Ok(meta)
    }

    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        let prefix = super::naming::normalize_prefix(opts.prefix.as_deref().unwrap_or(""))?;
        let full_prefix = self.keyspace.prefix_key(&prefix)?;
        // Walk only the deepest directory that the prefix names.
        let objects = self.root.join(layout::OBJECTS_DIR);
        let dir_part = match full_prefix.rfind('/') {
            Some(i) => &full_prefix[..i],
            None => "",
        };
        let mut keys = Vec::new();
        let mut stack = vec![(layout::directory_path(&objects, dir_part), dir_part.to_string())];
        while let Some((dir, rel_dir)) = stack.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(|e| self.io(e))? {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                let join = |segment: &str| {
                    if rel_dir.is_empty() { segment.to_string() } else { format!("{rel_dir}/{segment}") }
                };
                let ft = entry.file_type().await.map_err(|e| self.io(e))?;
                if ft.is_dir() {
                    let Some(segment) = layout::directory_segment(&file_name) else { continue };
                    let joined = join(segment);
                    if joined.starts_with(&full_prefix) || full_prefix.starts_with(&format!("{joined}/")) {
                        stack.push((entry.path(), joined));
                    }
                } else if let Some(segment) = layout::file_segment(&file_name) {
                    // An empty last segment is the placeholder `dir/`.
                    let key = join(segment);
                    if key.starts_with(&full_prefix) {
                        keys.push(key);
                    }
                }
            }
        }
        keys.sort();
        let mut items = Vec::new();
        for key in &keys {
            let rel = self.keyspace.relative(key);
            if opts.page_token.as_deref().is_some_and(|t| rel <= t) {
                continue;
            }
            items.push((rel, ()));
        }
        // Page on names first, then read sidecars only for the objects on the page.
        let placeholders =
            items.iter().map(|(rel, _)| (*rel, vec![ObjectMeta { name: rel.to_string(), ..Default::default() }]));
        let mut page = super::listing::list_sorted(placeholders, &prefix, &opts);
        let mut objects = Vec::with_capacity(page.objects.len());
        for placeholder in &page.objects {
            let key = format!("{}{}", self.keyspace.prefix(), placeholder.name);
            // A concurrent delete may have removed it since the walk; skip it as GCS's listing would.
            if let Some(meta) = self.read_meta(&key).await? {
                objects.push(meta);
            }
        }
        page.objects = objects;
        Ok(page)
    }

    async fn patch_metadata(&self, name: &str, patch: MetadataPatch) -> Result<ObjectMeta> {
        let (rel, key) = self.key_of(name)?;
        let _guard = self.lock.lock().await;
        let mut meta = self.read_meta(&key).await?.ok_or_else(|| self.not_found(&rel))?;
        patch
            .preconditions
            .check(Some((meta.generation, meta.metageneration)))
            .map_err(|m| self.precondition(&rel, m))?;
        patch.apply_to(&mut meta);
        meta.metageneration += 1;
        meta.updated = Some(Utc::now());
        self.write_meta(&key, &meta).await?;
        Ok(meta)
    }

    async fn list_generations(&self, name: &str) -> Result<Vec<ObjectMeta>> {
        let (_, key) = self.key_of(name)?;
        Ok(self.read_meta(&key).await?.into_iter().collect())
    }

    async fn url(&self, name: &str, opts: UrlOptions) -> Result<String> {
        let (_, key) = self.key_of(name)?;
        let mut params = BTreeMap::new();
        if let Some(g) = opts.generation {
            params.insert("generation".to_string(), g.to_string());
        }
        if let Some(d) = &opts.response_content_disposition {
            params.insert("response-content-disposition".to_string(), d.clone());
        }
        if let Some(t) = &opts.response_content_type {
            params.insert("response-content-type".to_string(), t.clone());
        }
        // Response overrides count only on signed URLs (as on GCS), so asking for one signs the URL.
        let overrides = opts.response_content_disposition.is_some() || opts.response_content_type.is_some();
        if self.config.public_urls() && !opts.force_signed && !overrides && opts.method == Method::GET {
            let mut url = format!("{}/{}", self.base_url, encode_path(&key));
            if !params.is_empty() {
                let q: Vec<String> =
                    params.iter().map(|(k, v)| format!("{k}={}", signature::encode_query(v))).collect();
                url.push('?');
                url.push_str(&q.join("&"));
            }
            return Ok(url);
        }
        let ttl = opts.expires_in.unwrap_or(self.config.expiration);
        if ttl > std::time::Duration::from_secs(7 * 86_400) {
            return Err(Error::InvalidArgument("a signed URL may live at most 7 days".into()));
        }
        Ok(self.signed_url(opts.method.as_str(), &key, params, ttl).await)
    }

    async fn signed_upload(&self, name: &str, opts: SignedUploadOptions) -> Result<PresignedRequest> {
        let (_, key) = self.key_of(name)?;
        let mut params = BTreeMap::new();
        params.insert("upload".to_string(), if opts.resumable { "resumable" } else { "put" }.to_string());
        params.insert("max".to_string(), opts.max_size.to_string());
        params.insert("ct".to_string(), opts.content_type.clone());
        if opts.create_only {
            params.insert("create".to_string(), "1".to_string());
        }
        let url = self.signed_url("PUT", &key, params, opts.expires_in).await;
        let mut headers = BTreeMap::new();
        headers.insert("content-type".to_string(), opts.content_type.clone());
        headers.insert("x-goog-content-length-range".to_string(), format!("0,{}", opts.max_size));
        if opts.create_only {
            headers.insert("x-goog-if-generation-match".to_string(), "0".to_string());
        }
        Ok(PresignedRequest { method: Method::PUT, url, headers })
    }

    async fn versioning_enabled(&self) -> Result<bool> {
        Ok(false)
    }
}
