//! Static files: django-gcp's `collectstatic` onto a store (`sea-gcp sync-static DIR --store static`).
//!
//! [`plan`] walks a local directory and compares it with **one listing** of the store (not a request per
//! file): a file is uploaded when its name is new or its MD5 differs from the object's. Objects this
//! module wrote carry the MD5 of the uncompressed source in metadata (`source-md5`), so gzip-encoded
//! objects compare correctly too; for objects written by other tools, the object's own MD5 (or CRC32C
//! when MD5 is absent, as for composite objects) is compared. [`execute`] uploads in parallel with the
//! store's options (content type guessed per file, gzip per `gzip_content_types`, `cache_control` from
//! `object_parameters`) and, with `delete`, removes objects no longer present locally.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{StreamExt, TryStreamExt};
use md5::Digest;

use crate::storage::{DeleteOptions, ObjectMeta, PutOptions, PutPayload, Store};
use crate::{Error, Result};

/// Metadata key holding the MD5 (base64) of the uncompressed local file an object was synced from.
pub(crate) const SOURCE_MD5_KEY: &str = "source-md5";

/// Options for [`plan`] and [`execute`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Upload under this prefix of the store (relative to its location). Empty: the store's root.
    pub prefix: String,
    /// Delete objects under the prefix that have no local file.
    pub delete: bool,
    /// Uploads and deletes in flight at once.
    pub concurrency: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self { prefix: String::new(), delete: false, concurrency: 8 }
    }
}

impl SyncOptions {
    /// Upload under `prefix` of the store.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Delete objects under the prefix that have no local file.
    pub fn with_delete(mut self, delete: bool) -> Self {
        self.delete = delete;
        self
    }

    /// Uploads and deletes in flight at once (at least 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }
}

/// Why a file is uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadReason {
    /// No object of that name.
    New,
    /// The object's content differs.
    Changed,
}

/// One file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUpload {
    /// Local path.
    pub path: PathBuf,
    /// Object name (relative to the store's location).
    pub name: String,
    /// File size.
    pub size: u64,
    /// MD5 of the file, base64.
    pub md5: String,
    /// Why.
    pub reason: UploadReason,
}

/// What a sync will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// Files to upload.
    pub uploads: Vec<PlannedUpload>,
    /// Files already up to date.
    pub unchanged: Vec<String>,
    /// Objects to delete (only with `delete`).
    pub deletes: Vec<String>,
    /// Storage list calls made to plan.
    pub list_calls: usize,
}

/// A progress event from [`execute`].
#[derive(Debug, Clone)]
pub enum SyncEvent {
    /// An upload finished.
    Uploaded {
        /// Object name.
        name: String,
        /// Bytes read from disk.
        bytes: u64,
    },
    /// A delete finished.
    Deleted {
        /// Object name.
        name: String,
    },
}

/// What [`execute`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Objects uploaded.
    pub uploaded: usize,
    /// Bytes uploaded (uncompressed).
    pub bytes: u64,
    /// Files skipped as unchanged.
    pub unchanged: usize,
    /// Objects deleted.
    pub deleted: usize,
}

fn walk(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| Error::InvalidArgument(format!("cannot read directory {}: {e}", d.display())))?;
        for entry in entries {
            let entry = entry?;
            let ft = entry.file_type()?;
            let path = entry.path();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let rel = path.strip_prefix(dir).expect("walked under dir");
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::InvalidName {
                        name: rel.display().to_string(),
                        reason: "the file name is not valid UTF-8".into(),
                    })?
                    .join("/");
                out.push((name, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn file_md5(path: &Path) -> Result<(u64, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = md5::Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, B64.encode(hasher.finalize())))
}

fn unchanged(meta: &ObjectMeta, md5: &str, size: u64) -> bool {
    if let Some(source) = meta.metadata.get(SOURCE_MD5_KEY) {
        return source == md5;
    }
    meta.content_encoding.is_none() && meta.size == size && meta.md5.as_deref() == Some(md5)
}

/// Compare `dir` with the store under `opts.prefix`.
pub async fn plan(store: &dyn Store, dir: &Path, opts: &SyncOptions) -> Result<SyncPlan> {
    let dir = dir.to_path_buf();
    let prefix = if opts.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", crate::storage::naming::normalize(&opts.prefix)?.trim_end_matches('/'))
    };
    let files = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || -> Result<Vec<(String, PathBuf, u64, String)>> {
            walk(&dir)?
                .into_iter()
                .map(|(name, path)| {
                    let (size, md5) = file_md5(&path)?;
                    Ok((name, path, size, md5))
                })
                .collect()
        }
    })
    .await
    .map_err(|e| Error::InvalidArgument(format!("walking {} failed: {e}", dir.display())))??;

    let mut remote: BTreeMap<String, ObjectMeta> = BTreeMap::new();
    let mut list_calls = 0;
    let mut list_opts =
        crate::storage::ListOptions { prefix: (!prefix.is_empty()).then(|| prefix.clone()), ..Default::default() };
    loop {
        let page = store.list(list_opts.clone()).await?;
        list_calls += 1;
        remote.extend(page.objects.into_iter().map(|m| (m.name.clone(), m)));
        match page.next_page_token {
            Some(t) => list_opts.page_token = Some(t),
            None => break,
        }
    }

    let mut plan = SyncPlan { list_calls, ..Default::default() };
    for (rel, path, size, md5) in files {
        let name = format!("{prefix}{rel}");
        match remote.remove(&name) {
            Some(meta) if unchanged(&meta, &md5, size) => plan.unchanged.push(name),
            Some(_) => plan.uploads.push(PlannedUpload { path, name, size, md5, reason: UploadReason::Changed }),
            None => plan.uploads.push(PlannedUpload { path, name, size, md5, reason: UploadReason::New }),
        }
    }
    if opts.delete {
        plan.deletes = remote.into_keys().collect();
    }
    Ok(plan)
}

/// Carry out `plan`: parallel uploads, then deletes. `on_event` is called as each finishes.
pub async fn execute(
    store: &dyn Store,
    plan: &SyncPlan,
    opts: &SyncOptions,
    on_event: impl Fn(SyncEvent) + Send + Sync,
) -> Result<SyncReport> {
    let concurrency = opts.concurrency.max(1);
    let on_event = &on_event;
    let bytes: u64 = futures_util::stream::iter(plan.uploads.iter())
        .map(|up| async move {
            let mut put = PutOptions::default();
            put.params.metadata.insert(SOURCE_MD5_KEY.into(), up.md5.clone());
            store.put(&up.name, PutPayload::File(up.path.clone()), put).await?;
            on_event(SyncEvent::Uploaded { name: up.name.clone(), bytes: up.size });
            Ok::<_, Error>(up.size)
        })
        .buffer_unordered(concurrency)
        .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
        .await?;
    futures_util::stream::iter(plan.deletes.iter())
        .map(|name| async move {
            match store.delete(name, DeleteOptions::default()).await {
                Ok(()) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            on_event(SyncEvent::Deleted { name: name.clone() });
            Ok(())
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(SyncReport { uploaded: plan.uploads.len(), bytes, unchanged: plan.unchanged.len(), deleted: plan.deletes.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::storage::GetOptions;
    use crate::storage::memory::MemoryStore;

    #[tokio::test]
    async fn syncs_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("css")).unwrap();
        std::fs::write(dir.path().join("css/site.css"), "body { color: red }".repeat(50)).unwrap();
        std::fs::write(dir.path().join("app.js"), "console.log(1)").unwrap();
        std::fs::write(dir.path().join("logo.png"), [0x89, b'P', b'N', b'G']).unwrap();
        let mut config = StoreConfig::memory();
        config.gzip = true;
        config.object_parameters.cache_control = Some("public, max-age=31536000".into());
        let store = MemoryStore::new("static", config).unwrap();
        store.put("stale.txt", PutPayload::from("old"), PutOptions::default()).await.unwrap();

        let opts = SyncOptions { delete: true, ..Default::default() };
        let first = plan(&store, dir.path(), &opts).await.unwrap();
        assert_eq!(first.uploads.len(), 3);
        assert!(first.uploads.iter().all(|u| u.reason == UploadReason::New));
        assert_eq!(first.deletes, ["stale.txt"]);
        assert_eq!(first.list_calls, 1);
        let report = execute(&store, &first, &opts, |_| {}).await.unwrap();
        assert_eq!((report.uploaded, report.deleted), (3, 1));
        let css = store.head("css/site.css", GetOptions::default()).await.unwrap();
        assert_eq!(css.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(css.content_type.as_deref(), Some("text/css"));
        assert_eq!(css.cache_control.as_deref(), Some("public, max-age=31536000"));
        assert_eq!(store.head("logo.png", GetOptions::default()).await.unwrap().content_encoding, None);

        // Nothing changed: nothing to do, even for the gzipped file.
        let second = plan(&store, dir.path(), &opts).await.unwrap();
        assert!(second.uploads.is_empty() && second.deletes.is_empty(), "{second:?}");
        assert_eq!(second.unchanged.len(), 3);

        std::fs::write(dir.path().join("app.js"), "console.log(2)").unwrap();
        let third = plan(&store, dir.path(), &opts).await.unwrap();
        assert_eq!(third.uploads.len(), 1);
        assert_eq!((third.uploads[0].name.as_str(), third.uploads[0].reason), ("app.js", UploadReason::Changed));
    }

    #[tokio::test]
    async fn prefix_and_foreign_objects() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "same").unwrap();
        let store = MemoryStore::default_for("static");
        // Written by another tool, identical bytes, no source-md5: recognised as unchanged by MD5.
        store.put("v1/a.txt", PutPayload::from("same"), PutOptions::default()).await.unwrap();
        store.put("other/keep.txt", PutPayload::from("x"), PutOptions::default()).await.unwrap();
        let opts = SyncOptions { prefix: "v1".into(), delete: true, ..Default::default() };
        let p = plan(&store, dir.path(), &opts).await.unwrap();
        assert!(p.uploads.is_empty() && p.deletes.is_empty(), "{p:?}");
        assert!(plan(&store, Path::new("/definitely/missing"), &opts).await.is_err());
    }
}
