//! Step 1: check the changes and record an intent per new upload.

use sea_orm::EntityTrait;

use super::state::{BlobDelete, BlobSave, FieldPlan, SaveCore};
use super::{BlobSaver, RowOp};
use crate::field::validate::{self, FieldState};
use crate::field::{BlobChange, BlobChanges, BlobFieldSpec, PendingUpload};
use crate::promote::outbox::{Intent, IntentState};
use crate::storage::naming;
use crate::{Error, Result};

impl<E: EntityTrait> BlobSaver<E> {
    /// Step 1 of an insert: check the changes and record an intent per new upload, in its own committed
    /// transaction. No storage call.
    pub async fn prepare_insert(&self, changes: BlobChanges<E>) -> Result<BlobSave<E>> {
        self.prepare(RowOp::Insert, changes).await
    }

    /// Step 1 of an update (see [`BlobSaver::prepare_insert`]). Checks that need the row's current value
    /// run in [`BlobSave::apply`].
    pub async fn prepare_update(&self, changes: BlobChanges<E>) -> Result<BlobSave<E>> {
        self.prepare(RowOp::Update, changes).await
    }

    /// Step 1 of a row delete. No database or storage call.
    pub fn prepare_delete(&self) -> BlobDelete<E> {
        BlobDelete { core: SaveCore::new(self.clone(), RowOp::Delete, Vec::new()) }
    }

    async fn prepare(&self, op: RowOp, changes: BlobChanges<E>) -> Result<BlobSave<E>> {
        let adding = op == RowOp::Insert;
        let mut plans = Vec::new();
        for spec in &self.inner.fields {
            let change = changes.get(spec.column()).cloned();
            if adding {
                let state = FieldState {
                    field: &spec.field_name(),
                    adding,
                    blankable: spec.is_blankable(),
                    editable: spec.is_editable(),
                    existing: None,
                };
                validate::check(state, change.as_ref())?;
            }
            if let Some(change) = change {
                plans.push(FieldPlan::new(spec.column(), change));
            }
        }
        for (column, _) in &changes.items {
            self.spec(*column)?;
        }
        let mut recorded: Vec<String> = Vec::new();
        for plan in &mut plans {
            let BlobChange::Attach(upload) = &plan.change else { continue };
            let spec = self.spec(plan.column)?;
            let result = async {
                self.store_for(spec)?;
                check_upload(spec, upload)?;
                let mut intent = Intent::new(spec.store_key(), Self::table(), spec.column_name(), IntentState::Pending);
                intent.temp_name = Some(naming::normalize(&upload.temp_name)?);
                intent.temp_generation = upload.generation;
                self.inner.outbox.insert(&self.inner.db, &intent, &spec.field_name()).await?;
                Ok::<_, Error>(intent)
            }
            .await;
            match result {
                Ok(intent) => {
                    recorded.push(intent.id.clone());
                    plan.intent = Some(intent);
                }
                Err(e) => {
                    for id in recorded {
                        let _ = self.inner.outbox.delete(&self.inner.db, &id, Some(IntentState::Pending)).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(BlobSave { core: SaveCore::new(self.clone(), op, plans) })
    }
}

/// The temporary object must be under the field's ingress prefix, and a ticket's binding must name
/// this field.
fn check_upload<E: EntityTrait>(spec: &BlobFieldSpec<E>, upload: &PendingUpload) -> Result<()> {
    let refuse = |message: String| Err(Error::Validation { field: spec.field_name(), message });
    let temp = match naming::normalize(&upload.temp_name) {
        Ok(t) => t,
        Err(e) => return refuse(format!("the upload's temporary name is invalid: {e}")),
    };
    if !temp.starts_with(spec.ingress()) {
        return refuse(format!(
            "the upload `{temp}` is not under this field's ingress prefix `{}`: only issued uploads can be attached",
            spec.ingress()
        ));
    }
    if let Some(binding) = &upload.binding
        && (binding.store != spec.store_key() || binding.field != spec.field_name())
    {
        return refuse(format!(
            "the upload was issued for `{}` in store `{}`, not for this field in store `{}`",
            binding.field,
            binding.store,
            spec.store_key()
        ));
    }
    Ok(())
}
