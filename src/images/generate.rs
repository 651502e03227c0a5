//! Making a blob field's variants after its save committed, exactly once per name, with nothing
//! orphaned: the work of the built-in variants task (`docs/images.md`).
//!
//! A run is idempotent, so a retry after a crash, a lost answer or a redelivered task converges:
//! 1. the rows still holding the original at `generation` are read (none: a newer save replaced it; what
//!    an earlier run wrote is deleted, and the run ends);
//! 2. each variant not yet recorded in every such row is found at its deterministic name (an earlier
//!    run wrote it) or rendered from the original's bytes at that generation and written create-only (a
//!    `412` means a concurrent run wrote it first: it is read instead);
//! 3. each row is updated by compare-and-set on the cell it was read as; a row that changed meanwhile is
//!    read again, and left alone once it no longer holds that generation;
//! 4. when no row holds the generation any more, the variants written are deleted, so a save that
//!    replaced the original meanwhile leaves no orphan.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};

use super::{Variant, render};
use crate::field::VariantValue;
use crate::field::cas::{Column, compare_and_set, rows_naming};
use crate::promote::steps::delete_quietly;
use crate::storage::{GetOptions, ObjectMeta, PutOptions, PutPayload, Store};
use crate::{Error, Result};

/// Metadata keys a variant object carries: which original it was made from, and its size in pixels (so
/// a run that finds it made can record it without decoding it).
const TAG_VARIANT_OF: &str = "sea-gcp-variant-of";
const TAG_WIDTH: &str = "sea-gcp-width";
const TAG_HEIGHT: &str = "sea-gcp-height";

/// Rows are read again at most this often when saves keep changing them under a run.
const CAS_ATTEMPTS: usize = 5;

/// What a variants task is given: the blob column, and the original it makes variants of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VariantJob {
    /// The field's store key.
    pub(crate) store: String,
    /// The entity's table.
    pub(crate) table: String,
    /// The blob column.
    pub(crate) column: String,
    /// The table's single-column primary key.
    pub(crate) primary_key: String,
    /// The original's object name.
    pub(crate) name: String,
    /// The original's generation the variants are made of.
    pub(crate) generation: i64,
}

/// Where a field's variants are made: its store, its variants and the pixel limit.
#[derive(Clone)]
pub(crate) struct VariantTarget {
    pub(crate) store: Arc<dyn Store>,
    /// The table's single-column primary key.
    pub(crate) primary_key: String,
    pub(crate) variants: Vec<Variant>,
    pub(crate) max_pixels: u64,
}

impl std::fmt::Debug for VariantTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VariantTarget")
            .field("store", &self.store.key())
            .field("variants", &self.variants.iter().map(Variant::name).collect::<Vec<_>>())
            .field("max_pixels", &self.max_pixels)
            .finish()
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct VariantsMade {
    /// Variant objects this run wrote.
    pub(crate) written: usize,
    /// Variant objects found already written (by an earlier or concurrent run).
    pub(crate) found: usize,
    /// Rows this run recorded variants in.
    pub(crate) rows_recorded: usize,
    /// Variant objects deleted because no row holds the original's generation any more.
    pub(crate) discarded: usize,
    /// Variants the original cannot be made into (not an image, corrupt, over the pixel limit).
    pub(crate) refused: Vec<String>,
}

/// Make and record the variants of `job`'s original (see the module docs). Safe to run any number of
/// times, concurrently too.
pub(crate) async fn make_variants(
    db: &impl ConnectionTrait,
    target: &VariantTarget,
    job: &VariantJob,
) -> Result<VariantsMade> {
    let column = Column { table: job.table.clone(), column: job.column.clone(), primary_key: job.primary_key.clone() };
    let store = target.store.as_ref();
    let mut made = VariantsMade::default();
    let holding = |rows: Vec<crate::field::cas::RowValue>| -> Vec<_> {
        rows.into_iter().filter(|r| r.value.generation == Some(job.generation)).collect()
    };
    let rows = holding(rows_naming(db, &column, &job.name).await?);
    if rows.is_empty() {
        made.discarded = discard(store, target, job).await?;
        return Ok(made);
    }
    if rows.iter().all(|r| !r.value.content_type.as_deref().is_some_and(|t| t.starts_with("image/"))) {
        tracing::debug!(name = %job.name, "no variants of an original that is not an image");
        return Ok(made);
    }
    let missing: Vec<&Variant> =
        target.variants.iter().filter(|v| rows.iter().any(|r| !r.value.variants.contains_key(v.name()))).collect();
    if missing.is_empty() {
        return Ok(made);
    }

    // Find or make each missing variant; the original is read once, only when one must be rendered.
    let mut original: Option<Bytes> = None;
    let mut values: BTreeMap<String, VariantValue> = BTreeMap::new();
    for variant in missing {
        let object = variant.object_name(&job.name, job.generation);
        let meta = match store.head(&object, GetOptions::default()).await {
            Ok(meta) => {
                made.found += 1;
                meta
            }
            Err(Error::NotFound { .. }) => {
                let bytes = match &original {
                    Some(bytes) => bytes.clone(),
                    None => match read_original(store, job).await? {
                        Some(bytes) => original.insert(bytes).clone(),
                        // The original's generation is gone: a newer save replaced it.
                        None => {
                            made.discarded = discard(store, target, job).await?;
                            return Ok(made);
                        }
                    },
                };
                match write(store, variant, &object, job, &bytes, target.max_pixels).await? {
                    Wrote(meta) => {
                        made.written += 1;
                        meta
                    }
                    Found(meta) => {
                        made.found += 1;
                        meta
                    }
                    Refused(reason) => {
                        tracing::warn!(
                            store = store.key(),
                            name = %job.name,
                            variant = variant.name(),
                            reason,
                            "variant not made: the original cannot be made into it; its URL serves the original"
                        );
                        made.refused.push(variant.name().to_string());
                        continue;
                    }
                }
            }
            Err(e) => return Err(e),
        };
        values.insert(variant.name().to_string(), recorded(&meta));
    }

    // Record them in every row holding the generation, each by compare-and-set.
    for row in rows {
        let mut current = row;
        for attempt in 0.. {
            let mut value = current.value.clone();
            let before = value.variants.len();
            for (name, v) in &values {
                value.variants.entry(name.clone()).or_insert_with(|| v.clone());
            }
            if value.variants.len() == before {
                break;
            }
            if compare_and_set(db, &column, &current.pk, &current.raw, Some(&value)).await? {
                made.rows_recorded += 1;
                break;
            }
            if attempt + 1 >= CAS_ATTEMPTS {
                return Err(Error::Database(sea_orm::DbErr::Custom(format!(
                    "row {} of {}.{} kept changing while its variants were recorded; the task is retried",
                    current.pk, job.table, job.column
                ))));
            }
            let again = holding(rows_naming(db, &column, &job.name).await?);
            match again.into_iter().find(|r| r.pk == current.pk) {
                Some(row) => current = row,
                None => break,
            }
        }
    }
    if holding(rows_naming(db, &column, &job.name).await?).is_empty() {
        made.discarded = discard(store, target, job).await?;
    }
    Ok(made)
}

/// The original's bytes at the job's generation; `None` when that generation is gone.
async fn read_original(store: &dyn Store, job: &VariantJob) -> Result<Option<Bytes>> {
    let opts = GetOptions { generation: Some(job.generation), ..GetOptions::default() };
    match store.get(&job.name, opts).await {
        Ok(got) => Ok(Some(got.bytes().await?)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What writing one variant came to.
enum Written {
    /// This call wrote it.
    Wrote(ObjectMeta),
    /// A concurrent run wrote it first.
    Found(ObjectMeta),
    /// The original cannot be made into it (not an image, corrupt, over the pixel limit): retrying
    /// cannot help.
    Refused(String),
}
use Written::{Found, Refused, Wrote};

/// Render `variant` of `original` and write it create-only at `object`.
async fn write(
    store: &dyn Store,
    variant: &Variant,
    object: &str,
    job: &VariantJob,
    original: &Bytes,
    max_pixels: u64,
) -> Result<Written> {
    let (bytes, variant_owned) = (original.clone(), variant.clone());
    let rendered = tokio::task::spawn_blocking(move || render(&bytes, &variant_owned, max_pixels))
        .await
        .map_err(|e| Error::Io(std::io::Error::other(format!("the variant renderer stopped: {e}"))))?;
    let rendered = match rendered {
        Ok(rendered) => rendered,
        Err(reason) => return Ok(Refused(reason)),
    };
    let mut opts = PutOptions::create_only().with_content_type(rendered.content_type);
    opts.params.metadata.insert(TAG_VARIANT_OF.into(), format!("{}#{}", job.name, job.generation));
    opts.params.metadata.insert(TAG_WIDTH.into(), rendered.width.to_string());
    opts.params.metadata.insert(TAG_HEIGHT.into(), rendered.height.to_string());
    match store.put(object, PutPayload::Bytes(rendered.bytes.into()), opts).await {
        Ok(meta) => Ok(Wrote(meta)),
        Err(Error::Precondition { .. }) => Ok(Found(store.head(object, GetOptions::default()).await?)),
        Err(e) => Err(e),
    }
}

/// The value a row records for a variant object.
fn recorded(meta: &ObjectMeta) -> VariantValue {
    let pixels = |key: &str| meta.metadata.get(key).and_then(|v| v.parse().ok());
    VariantValue {
        name: meta.name.clone(),
        generation: Some(meta.generation),
        size: Some(meta.size),
        content_type: meta.content_type.clone(),
        width: pixels(TAG_WIDTH),
        height: pixels(TAG_HEIGHT),
    }
}

/// Delete the job's variants (no row holds the original's generation any more). Returns how many were
/// there.
async fn discard(store: &dyn Store, target: &VariantTarget, job: &VariantJob) -> Result<usize> {
    let mut deleted = 0;
    for variant in &target.variants {
        if delete_quietly(store, &variant.object_name(&job.name, job.generation), None).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Puts a variants job into the save's own transaction, as a statement the saver runs there (the app
/// handle's: an entry of its task outbox).
pub(crate) trait VariantQueue: Send + Sync {
    /// The statement that queues `job` on `backend`; `None` when variants are not made (tasks disabled).
    fn statement(&self, backend: sea_orm::DatabaseBackend, job: &VariantJob) -> Result<Option<sea_orm::Statement>>;
}

#[cfg(all(test, feature = "testing"))]
#[path = "generate_tests.rs"]
mod tests;
