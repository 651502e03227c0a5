//! Undo a save that did not commit: delete the destinations it created and remove its intents.

use sea_orm::EntityTrait;

use super::state::{AppliedSave, BlobSave, CopyState, FailedSave, SaveCore};
use crate::Error;
use crate::promote::replay::{Mode, Resolution, resolve};

impl<E: EntityTrait> BlobSave<E> {
    /// Give up before `apply` (e.g. the caller's transaction could not begin): remove the intents
    /// `prepare_*` recorded. Returns how many destinations were deleted (none: nothing was copied yet).
    pub async fn abort(self) -> usize {
        undo(&self.core).await
    }
}

impl<E: EntityTrait> AppliedSave<E> {
    /// After the caller's rollback or a failed commit: delete destinations this save created and remove
    /// its intents. Safe when the transaction did commit after all (a `done` intent is left alone).
    /// Returns how many destinations were deleted; failures are left to replay.
    pub async fn abort(self) -> usize {
        undo(&self.core).await
    }
}

impl<E: EntityTrait> FailedSave<E> {
    /// After the caller's rollback: delete destinations this save created, remove its intents, and
    /// return the error `apply` failed with.
    pub async fn abort(self) -> Error {
        undo(&self.core).await;
        self.error
    }
}

async fn undo<E: EntityTrait>(core: &SaveCore<E>) -> usize {
    let saver = &core.saver;
    let mut deleted = 0;
    for plan in &core.plans {
        let Some(intent) = &plan.intent else { continue };
        if intent.temp_name.is_none() {
            continue; // deletion-only intents lived in the rolled-back transaction
        }
        let Ok(spec) = saver.spec(plan.column) else { continue };
        let Ok(store) = saver.store_for(spec) else { continue };
        let hint = match &plan.copy {
            CopyState::Copied(dest, generation) => Some((dest.clone(), Some(*generation))),
            CopyState::Attempted(dest) | CopyState::Deferred(dest) => Some((dest.clone(), None)),
            CopyState::NotAttempted => None,
        };
        if let Ok(Resolution::Undone { deleted: true, .. }) =
            resolve(&saver.inner.db, &saver.inner.outbox, store.as_ref(), &intent.id, Mode::Undo, hint).await
        {
            deleted += 1;
        }
    }
    deleted
}
