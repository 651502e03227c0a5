//! Step 2 of a row delete: read the row as stored, under the row lock, delete it and record the
//! objects it holds for deletion after the commit.

use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
};

use super::BlobSaver;
use super::rows::{decode, key_condition, key_text};
use super::state::{AppliedSave, BlobDelete, FailedSave, FieldPlan, SaveCore};
use crate::field::column::find_checked;
use crate::field::{BlobChange, DeletePolicy};
use crate::promote::outbox::{Intent, IntentState, ObjectRef};
use crate::{Error, Result, SaveStep};

impl<E> BlobDelete<E>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    /// Delete the row with `model`'s primary key in `txn` and record (in `txn`) the objects to delete
    /// after the commit, per each field's delete policy. On error, roll `txn` back; nothing else is
    /// left to undo.
    ///
    /// Only the primary key of `model` is used: the row is read again under the lock an update takes
    /// (`SELECT ... FOR UPDATE`; SQLite has a single writer), and the objects it holds *then* are the
    /// ones deleted, so a replacement that committed after `model` was loaded is not orphaned. A row
    /// that is already gone (a concurrent delete) deletes nothing.
    pub async fn apply<C: ConnectionTrait>(
        mut self,
        txn: &C,
        model: E::Model,
    ) -> std::result::Result<AppliedSave<E>, FailedSave<E>> {
        match delete(&mut self.core, txn, &model).await {
            Ok(current) => {
                self.core.row = Some(current.unwrap_or(model));
                Ok(AppliedSave { core: self.core })
            }
            Err(error) => Err(FailedSave { core: self.core, error }),
        }
    }
}

/// Delete the row as stored and plan its objects' deletion; `None` when no such row exists.
async fn delete<E, C>(core: &mut SaveCore<E>, txn: &C, model: &E::Model) -> Result<Option<E::Model>>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    C: ConnectionTrait,
{
    let saver = core.saver.clone();
    let table = BlobSaver::<E>::table();
    let locked = E::find().filter(key_condition::<E>(model)).lock_exclusive();
    let read = find_checked(txn, locked).await.map_err(|e| e.at_step(SaveStep::RowWrite, table))?;
    let Some(current) = read.into_iter().next() else { return Ok(None) };
    let row_key = key_text::<E>(&current);
    for spec in saver.fields() {
        let old = decode::<E>(table, spec.column(), &current)?;
        let mut plan = FieldPlan::new(spec.column(), BlobChange::Blank);
        if let Some(old_value) = old.as_ref().filter(|_| spec.policy() == DeletePolicy::Delete) {
            let mut intent = Intent::new(spec.store_key(), table, spec.column_name(), IntentState::Done);
            intent.obsolete.push(ObjectRef { name: old_value.name.clone(), generation: old_value.generation });
            intent
                .obsolete
                .extend(spec.derived_objects(old_value).into_iter().map(|name| ObjectRef { name, generation: None }));
            intent.row_key = Some(row_key.clone());
            let inserted = saver.inner.outbox.insert(txn, &intent, &spec.field_name()).await;
            inserted.map_err(|e| e.at_step(SaveStep::RowWrite, spec.field_name()))?;
            plan.intent = Some(intent);
        }
        plan.old = old;
        core.plans.push(plan);
    }
    current
        .clone()
        .into_active_model()
        .delete(txn)
        .await
        .map_err(|e| Error::from(e).at_step(SaveStep::RowWrite, table))?;
    Ok(Some(current))
}
