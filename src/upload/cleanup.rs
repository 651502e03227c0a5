//! Expire abandoned uploads (django-gcp's `cleanup_tmp_files`): temp objects under the ingress prefix
//! that were never promoted, and, on a local store, the files interrupted writes and abandoned
//! resumable sessions left under `tmp/`.
//!
//! Used by `sea-gcp cleanup` (any store) and by the timer of
//! [`local_store_routes_with`](super::local_store_routes_with). On GCS a lifecycle rule on the ingress
//! prefix does the same without a job (`docs/direct-uploads.md`); this is for buckets without one.
//!
//! An object is expired when it was created more than [`CleanupOptions::older_than`] ago, and deleted
//! only if its generation is still the one listed (`ifGenerationMatch`), so an object rewritten in the
//! meantime is left alone. Objects whose listing carries no creation or update time are kept.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use futures_util::TryStreamExt;

use super::field::DEFAULT_INGRESS_PREFIX;
use crate::config::BackendConfig;
use crate::storage::local::LocalStore;
use crate::storage::{DeleteOptions, Store, naming};
use crate::{Error, Result, Settings};

/// What [`cleanup_temp_objects`] and [`cleanup_local_store`] expire.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupOptions {
    /// Expire what is older than this (default 1 day, the age of the lifecycle rule `doctor` suggests).
    pub older_than: Duration,
    /// Prefixes whose objects are temporary (default [`DEFAULT_INGRESS_PREFIX`], `_tmp/`). None may be
    /// empty.
    pub prefixes: Vec<String>,
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
}

impl Default for CleanupOptions {
    fn default() -> Self {
        Self {
            older_than: Duration::from_secs(86_400),
            prefixes: vec![DEFAULT_INGRESS_PREFIX.to_string()],
            dry_run: false,
        }
    }
}

impl CleanupOptions {
    /// Expire what is older than `older_than`.
    pub fn with_older_than(mut self, older_than: Duration) -> Self {
        self.older_than = older_than;
        self
    }

    /// Expire objects under these prefixes (instead of `_tmp/`).
    pub fn with_prefixes(mut self, prefixes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.prefixes = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Only report.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What a cleanup removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupReport {
    /// The store's key.
    pub store: String,
    /// Nothing was removed.
    pub dry_run: bool,
    /// Expired objects, by name.
    pub objects: Vec<String>,
    /// Expired temp files of a local store, relative to its root.
    pub files: Vec<PathBuf>,
    /// Old objects kept because their listing has no creation time.
    pub undated: usize,
    /// Objects whose delete failed, with the error.
    pub failed: Vec<(String, String)>,
}

impl CleanupReport {
    /// Nothing expired, nothing failed.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.files.is_empty() && self.failed.is_empty()
    }
}

impl std::fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.dry_run { "would remove" } else { "removed" };
        write!(
            f,
            "store `{}`: {verb} {} temp object(s) and {} temp file(s)",
            self.store,
            self.objects.len(),
            self.files.len()
        )?;
        if self.undated > 0 {
            write!(f, "; kept {} object(s) with no creation time", self.undated)?;
        }
        if !self.failed.is_empty() {
            write!(f, "; {} delete(s) failed", self.failed.len())?;
        }
        Ok(())
    }
}

fn check_prefixes(opts: &CleanupOptions) -> Result<Vec<String>> {
    if opts.prefixes.is_empty() {
        return Err(Error::InvalidArgument("no prefix to clean up: give the ingress prefix, e.g. _tmp/".into()));
    }
    opts.prefixes
        .iter()
        .map(|p| {
            if p.trim().is_empty() {
                return Err(Error::InvalidArgument(
                    "an empty prefix would expire every object in the store: give the ingress prefix, e.g. _tmp/"
                        .into(),
                ));
            }
            naming::normalize_prefix(p)
        })
        .collect()
}

/// Delete the objects under `opts.prefixes` created more than `opts.older_than` ago (each only if
/// its generation is unchanged). Works on every backend.
pub async fn cleanup_temp_objects(store: &dyn Store, opts: &CleanupOptions) -> Result<CleanupReport> {
    let prefixes = check_prefixes(opts)?;
    let older_than = chrono::Duration::from_std(opts.older_than)
        .map_err(|_| Error::InvalidArgument("--older-than is too large".into()))?;
    let cutoff = Utc::now() - older_than;
    let mut report = CleanupReport { store: store.key().to_string(), dry_run: opts.dry_run, ..Default::default() };
    for prefix in prefixes {
        let mut listing = store.list_all(Some(prefix));
        while let Some(meta) = listing.try_next().await? {
            let Some(created) = meta.created.or(meta.updated) else {
                report.undated += 1;
                continue;
            };
            if created > cutoff {
                continue;
            }
            if opts.dry_run {
                report.objects.push(meta.name);
                continue;
            }
            match store.delete(&meta.name, DeleteOptions::if_generation(meta.generation)).await {
                Ok(()) => report.objects.push(meta.name),
                // Gone already, or rewritten since the listing: not abandoned after all.
                Err(e) if e.is_not_found() || e.is_precondition() => {}
                Err(e) => {
                    tracing::warn!(store = store.key(), object = %meta.name, error = %e, "could not expire a temp object");
                    report.failed.push((meta.name, e.to_string()));
                }
            }
        }
    }
    report.objects.sort();
    report.objects.dedup();
    Ok(report)
}

/// [`cleanup_temp_objects`] on a local store, plus its stale temp files
/// (`LocalStore::remove_stale_temp_files`).
pub async fn cleanup_local_store(store: &LocalStore, opts: &CleanupOptions) -> Result<CleanupReport> {
    let mut report = cleanup_temp_objects(store, opts).await?;
    report.files = store.remove_stale_temp_files(opts.older_than, opts.dry_run).await?;
    Ok(report)
}

/// Clean up the store `key` of `settings`: [`cleanup_local_store`] for a local store,
/// [`cleanup_temp_objects`] for the others.
pub async fn cleanup_configured_store(settings: &Settings, key: &str, opts: &CleanupOptions) -> Result<CleanupReport> {
    let config = settings.store_config(key)?.clone();
    if config.backend == BackendConfig::Local {
        let canonical = crate::config::canonical_store_key(key);
        let store = LocalStore::new(&canonical, config).await?;
        cleanup_local_store(&store, opts).await
    } else {
        let store = settings.open(key).await?;
        cleanup_temp_objects(store.as_ref(), opts).await
    }
}
