//! Saves that share their transaction with the caller's own writes: the row, its blobs and anything
//! else the caller writes in the same transaction (an outbox task, an audit row) commit together or not
//! at all. The save begins the transaction itself, after recording its intents through the pool (on
//! SQLite a transaction begun first would hold the write lock those intents wait for).

use sea_orm::{ActiveModelBehavior, ActiveModelTrait, DatabaseTransaction, EntityTrait, IntoActiveModel};

use super::state::AppliedSave;
use super::{BlobSaver, Saved};
use crate::field::BlobChanges;
use crate::{Error, Result, SaveStep};

/// A save applied in a transaction that is not committed yet: write more in [`txn`](Self::txn), then
/// [`commit`](Self::commit). Dropped without commit, the transaction rolls back and the next repair
/// removes what the save had copied (its intents were recorded before the transaction began).
pub struct PendingSave<E: EntityTrait> {
    txn: DatabaseTransaction,
    applied: AppliedSave<E>,
}

impl<E: EntityTrait> std::fmt::Debug for PendingSave<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSave").field("op", &self.applied.op()).finish_non_exhaustive()
    }
}

impl<E: EntityTrait> PendingSave<E> {
    /// The transaction, for the caller's other writes.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The row as written (its primary key is known, also for inserts).
    pub fn model(&self) -> &E::Model {
        self.applied.model()
    }

    /// Commit, then do the after-commit work (delete temporary and replaced objects, `on_change`). A
    /// failed commit undoes the save's copies.
    pub async fn commit(self) -> Result<Saved<E::Model>> {
        if let Err(e) = self.txn.commit().await {
            self.applied.abort().await;
            return Err(Error::from(e).at_step(SaveStep::Commit, BlobSaver::<E>::table()));
        }
        let model = self.applied.model().clone();
        let report = self.applied.committed().await;
        Ok(Saved { model, report })
    }

    /// Roll back and undo the save's copies now (rather than at the next repair).
    pub async fn rollback(self) -> Result<()> {
        let rolled_back = self.txn.rollback().await;
        self.applied.abort().await;
        Ok(rolled_back?)
    }
}

impl<E> BlobSaver<E>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    /// Insert `model` with `changes` in a transaction that stays open: write more in
    /// [`PendingSave::txn`], then [`PendingSave::commit`]. The intents are recorded first, through
    /// the saver's pool, then the transaction begins (SQLite: `BEGIN IMMEDIATE`); on failure it is
    /// rolled back and nothing is left behind.
    pub async fn begin_insert(&self, model: E::ActiveModel, changes: BlobChanges<E>) -> Result<PendingSave<E>> {
        let save = self.prepare_insert(changes).await?;
        self.begin_and_apply(save, model).await
    }

    /// Update `model` with `changes` in a transaction that stays open (see
    /// [`begin_insert`](Self::begin_insert)).
    pub async fn begin_update(&self, model: E::ActiveModel, changes: BlobChanges<E>) -> Result<PendingSave<E>> {
        let save = self.prepare_update(changes).await?;
        self.begin_and_apply(save, model).await
    }

    async fn begin_and_apply(&self, save: super::state::BlobSave<E>, model: E::ActiveModel) -> Result<PendingSave<E>> {
        let txn = match self.begin().await {
            Ok(txn) => txn,
            Err(e) => {
                save.abort().await;
                return Err(e);
            }
        };
        Self::apply_in(txn, save, model).await
    }

    async fn apply_in(
        txn: DatabaseTransaction,
        save: super::state::BlobSave<E>,
        model: E::ActiveModel,
    ) -> Result<PendingSave<E>> {
        match save.apply(&txn, model).await {
            Ok(applied) => Ok(PendingSave { txn, applied }),
            Err(failed) => {
                // Roll back before undoing the copies: no commit can then reference a deleted object.
                let _ = txn.rollback().await;
                Err(failed.abort().await)
            }
        }
    }
}
