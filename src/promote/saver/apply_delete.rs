//! Step 2 of a row delete: delete the row and record the objects to delete after the commit.

use sea_orm::{ActiveModelBehavior, ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel};

use super::BlobSaver;
use super::rows::{decode, key_text};
use super::state::{AppliedSave, BlobDelete, FailedSave, FieldPlan, SaveCore};
use crate::field::{BlobChange, DeletePolicy};
use crate::promote::outbox::{Intent, IntentState, ObjectRef};
use crate::{Error, Result, SaveStep};

impl<E> BlobDelete<E>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    /// Delete the row of `model` in `txn` and record (in `txn`) the objects to delete after the commit,
    /// per each field's delete policy. On error, roll `txn` back; nothing else is left to undo.
    pub async fn apply<C: ConnectionTrait>(
        mut self,
        txn: &C,
        model: E::Model,
    ) -> std::result::Result<AppliedSave<E>, FailedSave<E>> {
        match delete(&mut self.core, txn, &model).await {
            Ok(()) => {
                self.core.row = Some(model);
                Ok(AppliedSave { core: self.core })
            }
            Err(error) => Err(FailedSave { core: self.core, error }),
        }
    }
}

async fn delete<E, C>(core: &mut SaveCore<E>, txn: &C, model: &E::Model) -> Result<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    C: ConnectionTrait,
{
    let saver = core.saver.clone();
    let table = BlobSaver::<E>::table();
    let row_key = key_text::<E>(model);
    for spec in saver.fields() {
        let old = decode::<E>(table, spec.column(), model)?;
        let mut plan = FieldPlan::new(spec.column(), BlobChange::Blank);
        if let Some(old_value) = old.as_ref().filter(|_| spec.policy() == DeletePolicy::Delete) {
            let mut intent = Intent::new(spec.store_key(), table, spec.column_name(), IntentState::Done);
            intent.obsolete.push(ObjectRef { name: old_value.name.clone(), generation: old_value.generation });
            intent.row_key = Some(row_key.clone());
            let inserted = saver.inner.outbox.insert(txn, &intent, &spec.field_name()).await;
            inserted.map_err(|e| e.at_step(SaveStep::RowWrite, spec.field_name()))?;
            plan.intent = Some(intent);
        }
        plan.old = old;
        core.plans.push(plan);
    }
    model
        .clone()
        .into_active_model()
        .delete(txn)
        .await
        .map_err(|e| Error::from(e).at_step(SaveStep::RowWrite, table))?;
    Ok(())
}
