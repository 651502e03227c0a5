//! The one-call saves: prepare, apply, commit and finish in a transaction of the saver's own.

use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, EntityTrait, IntoActiveModel, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};

use super::state::BlobSave;
use super::{BlobSaver, CommitReport, Saved};
use crate::field::BlobChanges;
use crate::{Error, Result, SaveStep};

impl<E: EntityTrait> BlobSaver<E> {
    /// A transaction of the saver's own (SQLite: `BEGIN IMMEDIATE`, so the row lock is taken at once).
    pub(super) async fn begin(&self) -> Result<sea_orm::DatabaseTransaction> {
        let opts = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(self.inner.db.begin_with_options(opts).await?)
    }
}

impl<E> BlobSaver<E>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    /// Insert `model` with `changes`, in a transaction of the saver's own, and finish the after-commit
    /// work. On any failure nothing is left behind: no row, no destination object.
    pub async fn insert(&self, model: E::ActiveModel, changes: BlobChanges<E>) -> Result<Saved<E::Model>> {
        let save = self.prepare_insert(changes).await?;
        self.run(save, model).await
    }

    /// Update `model` with `changes` (see [`BlobSaver::insert`]).
    pub async fn update(&self, model: E::ActiveModel, changes: BlobChanges<E>) -> Result<Saved<E::Model>> {
        let save = self.prepare_update(changes).await?;
        self.run(save, model).await
    }

    /// Delete the row with `model`'s primary key; the blob objects the row holds when it is deleted
    /// (read under the row lock, not taken from `model`, which may be stale) are deleted after the
    /// commit per each field's delete policy. Deleting a row that is already gone succeeds and deletes
    /// nothing.
    pub async fn delete(&self, model: E::Model) -> Result<CommitReport> {
        let save = self.prepare_delete();
        let txn = self.begin().await?;
        let applied = match save.apply(&txn, model).await {
            Ok(applied) => applied,
            Err(failed) => {
                txn.rollback().await?;
                return Err(failed.abort().await);
            }
        };
        txn.commit().await.map_err(|e| Error::from(e).at_step(SaveStep::Commit, Self::table()))?;
        Ok(applied.committed().await)
    }

    async fn run(&self, save: BlobSave<E>, model: E::ActiveModel) -> Result<Saved<E::Model>> {
        let txn = match self.begin().await {
            Ok(txn) => txn,
            Err(e) => {
                save.abort().await;
                return Err(e);
            }
        };
        let applied = match save.apply(&txn, model).await {
            Ok(applied) => applied,
            Err(failed) => {
                let _ = txn.rollback().await;
                return Err(failed.abort().await);
            }
        };
        if let Err(e) = txn.commit().await {
            applied.abort().await;
            return Err(Error::from(e).at_step(SaveStep::Commit, Self::table()));
        }
        let model = applied.model().clone();
        let report = applied.committed().await;
        Ok(Saved { model, report })
    }
}
