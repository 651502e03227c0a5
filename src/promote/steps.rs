//! The storage steps of the protocol, shared by the saver and replay. Each is idempotent and guarded by
//! a precondition, so running it twice (a retry, or replay after a crash) is harmless.

use crate::storage::{
    CopyOptions, DeleteOptions, GetOptions, MetadataPatch, ObjectMeta, ObjectParameters, Preconditions, Store,
};
use crate::{Error, Result};

use super::outbox::Intent;

/// Metadata key naming the intent that claimed a temporary object or created a destination.
pub(crate) const TAG_INTENT: &str = "sea-gcp-intent";
/// Metadata key, on a claimed temporary object, naming the destination it is being promoted to.
pub(crate) const TAG_DESTINATION: &str = "sea-gcp-destination";

/// Claim the temporary object for `intent_id` (the "head" step): one metadata patch that records the
/// destination on the object itself (so replay can find a copy made before a crash, even when the
/// destination was computed inside a transaction that never committed) and returns the object's
/// metadata (size, content type, generation) for the limit checks. With `generation`, the patch
/// applies only to that generation.
pub(crate) async fn claim(
    store: &dyn Store,
    temp: &str,
    generation: Option<i64>,
    intent_id: &str,
    destination: &str,
) -> Result<ObjectMeta> {
    let mut patch = MetadataPatch::default();
    patch.metadata.insert(TAG_INTENT.into(), Some(intent_id.into()));
    patch.metadata.insert(TAG_DESTINATION.into(), Some(destination.into()));
    if let Some(g) = generation {
        patch.preconditions.if_generation_match = Some(g);
    }
    // Constant values of the protocol's own keys, pinned to the upload's generation: a repeat after a
    // lost answer sets the same values again, so the store may retry it.
    patch.repeatable = true;
    store.patch_metadata(temp, patch).await
}

/// The live object at `destination` when this intent created it (it carries the intent's tag), or
/// `None`. Resolves a create-only copy that failed with 412 because a retry of the same copy found the
/// first attempt's object (its answer was lost): that is the copy succeeding, not a conflict.
pub(crate) async fn created_by(store: &dyn Store, destination: &str, intent_id: &str) -> Result<Option<ObjectMeta>> {
    match store.head(destination, GetOptions::default()).await {
        Ok(meta) if meta.metadata.get(TAG_INTENT).map(String::as_str) == Some(intent_id) => Ok(Some(meta)),
        Ok(_) | Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Copy `temp` (exactly `temp_generation`, at `temp_metageneration` when given) to `destination`.
/// The destination inherits the claimed temporary object's metadata, its `sea-gcp-intent` tag included;
/// `params` (from `update_attributes`, with the tag added) are laid over it when given. `None` keeps the
/// copy a single request on GCS, which otherwise reads the source first to merge metadata.
/// `expect_destination` is the destination precondition: `Some(0)` for create-only.
pub(crate) async fn copy(
    store: &dyn Store,
    temp: &str,
    (temp_generation, temp_metageneration): (i64, Option<i64>),
    destination: &str,
    params: Option<ObjectParameters>,
    expect_destination: Option<i64>,
) -> Result<ObjectMeta> {
    let opts = CopyOptions {
        if_source_generation_match: Some(temp_generation),
        if_source_metageneration_match: temp_metageneration,
        destination: Preconditions { if_generation_match: expect_destination, ..Preconditions::default() },
        params,
        ..CopyOptions::default()
    };
    store.copy(temp, destination, opts).await
}

/// Delete `name` at `generation` (any generation when `None`). Already gone, or replaced by a newer
/// generation (not ours to delete), counts as done. Returns whether this call deleted it.
pub(crate) async fn delete_quietly(store: &dyn Store, name: &str, generation: Option<i64>) -> Result<bool> {
    let opts = match generation {
        Some(g) => DeleteOptions::if_generation(g),
        None => DeleteOptions::default(),
    };
    match store.delete(name, opts).await {
        Ok(()) => Ok(true),
        Err(Error::NotFound { .. } | Error::Precondition { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Undo a promotion that did not commit: delete the destination if (and only if) this intent created
/// it. With a `known_generation` (from the copy response) that generation is deleted; otherwise the
/// destination is read and deleted only when it carries the intent's tag. Returns whether it deleted.
pub(crate) async fn undo_destination(
    store: &dyn Store,
    destination: &str,
    intent_id: &str,
    known_generation: Option<i64>,
) -> Result<bool> {
    if let Some(g) = known_generation {
        return delete_quietly(store, destination, Some(g)).await;
    }
    match store.head(destination, GetOptions::default()).await {
        Ok(meta) if meta.metadata.get(TAG_INTENT).map(String::as_str) == Some(intent_id) => {
            delete_quietly(store, destination, Some(meta.generation)).await
        }
        Ok(_) | Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What the temporary object of a pending intent says about the intent's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaimState {
    /// The object was claimed by this intent for this destination (a copy may exist there).
    Claimed(String),
    /// The object exists but this intent never claimed it: nothing was copied.
    NotClaimed,
    /// The object is gone: a copy, if one was made, cannot be located from it.
    TempGone,
}

/// Read a pending intent's temporary object to learn whether (and where) it may have been copied.
pub(crate) async fn claim_state(store: &dyn Store, intent: &Intent) -> Result<ClaimState> {
    let Some(temp) = intent.temp_name.as_deref() else { return Ok(ClaimState::NotClaimed) };
    match store.head(temp, GetOptions::default()).await {
        Ok(meta) if meta.metadata.get(TAG_INTENT).map(String::as_str) == Some(intent.id.as_str()) => {
            Ok(meta.metadata.get(TAG_DESTINATION).cloned().map(ClaimState::Claimed).unwrap_or(ClaimState::NotClaimed))
        }
        Ok(_) => Ok(ClaimState::NotClaimed),
        Err(Error::NotFound { .. }) => Ok(ClaimState::TempGone),
        Err(e) => Err(e),
    }
}

/// After-commit work of a `done` intent: the deferred overwrite copy (if any), then deleting the
/// temporary object and the obsolete objects. Returns the deferred copy's metadata when one was made
/// (or found already made).
pub(crate) async fn finish(store: &dyn Store, intent: &Intent) -> Result<Option<ObjectMeta>> {
    let mut deferred = None;
    if intent.overwrite
        && let (Some(temp), Some(dest)) = (intent.temp_name.as_deref(), intent.destination.as_deref())
    {
        deferred = Some(deferred_copy(store, intent, temp, dest).await?);
    }
    if let Some(temp) = intent.temp_name.as_deref() {
        delete_quietly(store, temp, intent.temp_generation).await?;
    }
    for obj in &intent.obsolete {
        if Some(obj.name.as_str()) == intent.destination.as_deref() {
            continue;
        }
        delete_quietly(store, &obj.name, obj.generation).await?;
    }
    Ok(deferred)
}

/// The in-place overwrite, after the commit: skipped when the destination already carries this
/// intent's tag (done before a crash); otherwise guarded by the destination's current generation so a
/// concurrent writer is not silently overwritten.
async fn deferred_copy(store: &dyn Store, intent: &Intent, temp: &str, dest: &str) -> Result<ObjectMeta> {
    let current = match store.head(dest, GetOptions::default()).await {
        Ok(meta) if meta.metadata.get(TAG_INTENT).map(String::as_str) == Some(intent.id.as_str()) => {
            return Ok(meta);
        }
        Ok(meta) => meta.generation,
        Err(Error::NotFound { .. }) => 0,
        Err(e) => return Err(e),
    };
    let generation = intent
        .temp_generation
        .ok_or_else(|| Error::InvalidArgument(format!("intent {} has no temporary generation to copy", intent.id)))?;
    let params = intent.attributes.clone().filter(|a| *a != ObjectParameters::default()).map(|mut a| {
        a.metadata.insert(TAG_INTENT.into(), intent.id.clone());
        a
    });
    match copy(store, temp, (generation, None), dest, params, Some(current)).await {
        // A retried copy whose first attempt took effect: the destination now carries our tag.
        Err(e @ Error::Precondition { .. }) => created_by(store, dest, &intent.id).await?.ok_or(e),
        other => other,
    }
}
