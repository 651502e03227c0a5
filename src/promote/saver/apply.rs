//! Step 2 of an insert or update: write the row and promote the uploads, in the caller's transaction.

use sea_orm::sea_query::SimpleExpr;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, ModelTrait, QueryFilter,
    Value,
};

use super::rows::{column_str, decode, key_condition, key_text, load_existing, refuse_direct_write};
use super::state::{AppliedSave, BlobSave, FailedSave, FieldPlan, SaveCore};
use super::{BlobSaver, RowOp};
use crate::field::column::to_sea_value;
use crate::field::validate::{self, FieldState};
use crate::field::{BlobChange, BlobValue, DeletePolicy};
use crate::promote::outbox::{Intent, IntentState, ObjectRef};
use crate::{Error, Result, SaveStep};

impl<E> BlobSave<E>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    /// Step 2: write the row and promote the uploads, inside the caller's transaction `txn`.
    ///
    /// Inserts first (so a database-generated primary key is known), then per new upload: compute
    /// attributes and destination, claim the temporary object (checking size and content type), copy
    /// it create-only to the destination (or defer an allowed overwrite to after the commit), write the
    /// cached metadata into the row and mark the intent done — all in `txn`.
    ///
    /// On error, roll `txn` back and call [`FailedSave::abort`].
    pub async fn apply<C: ConnectionTrait>(
        mut self,
        txn: &C,
        model: E::ActiveModel,
    ) -> std::result::Result<AppliedSave<E>, FailedSave<E>> {
        match write(&mut self.core, txn, model).await {
            Ok(row) => {
                self.core.row = Some(row);
                Ok(AppliedSave { core: self.core })
            }
            Err(e) => Err(self.failed(e)),
        }
    }
}

async fn write<E, C>(core: &mut SaveCore<E>, txn: &C, mut model: E::ActiveModel) -> Result<E::Model>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    C: ConnectionTrait,
{
    let saver = core.saver.clone();
    let adding = core.op == RowOp::Insert;
    // The row as stored, for updates.
    let existing = if adding { None } else { Some(load_existing::<E, C>(txn, &model).await?) };
    check_fields(&saver, &mut core.plans, adding, existing.as_ref(), &mut model)?;

    // Write the row: insert first, so a database-generated key is known to get_destination_path.
    let mut row = if adding {
        model.insert(txn).await.map_err(row_write::<E>)?
    } else if model.is_changed() {
        model.update(txn).await.map_err(row_write::<E>)?
    } else {
        existing.expect("updates load the existing row")
    };

    let written = promote_all(&saver, &mut core.plans, txn, &row, adding).await?;
    cache_values::<E, C>(txn, &mut row, &written).await?;
    record_intents(&saver, &core.plans, txn).await?;
    #[cfg(feature = "images")]
    super::variants::queue(&saver, &core.plans, txn).await?;
    Ok(row)
}

fn row_write<E: EntityTrait>(e: sea_orm::DbErr) -> Error {
    Error::from(e).at_step(SaveStep::RowWrite, E::default().table_name())
}

/// Validate every field, refuse direct writes to blob columns, and set the first write's values.
fn check_fields<E>(
    saver: &BlobSaver<E>,
    plans: &mut [FieldPlan<E>],
    adding: bool,
    existing: Option<&E::Model>,
    model: &mut E::ActiveModel,
) -> Result<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    let table = BlobSaver::<E>::table();
    for spec in saver.fields() {
        let column = spec.column();
        let old = match existing {
            Some(m) => decode::<E>(table, column, m)?,
            None => None,
        };
        let plan_idx = plans.iter().position(|p| column_str::<E>(p.column) == spec.column_name());
        let change = plan_idx.map(|i| plans[i].change.clone());
        let scenario = validate::check(
            FieldState {
                field: &spec.field_name(),
                adding,
                blankable: spec.is_blankable(),
                editable: spec.is_editable(),
                existing: old.as_ref(),
            },
            change.as_ref(),
        )?;
        if !matches!(change, Some(BlobChange::Raw(_))) {
            refuse_direct_write(spec, model, old.as_ref())?;
        }
        match &change {
            Some(BlobChange::Attach(upload)) if adding => {
                // Placeholder for NOT NULL columns, replaced before the transaction commits.
                model.set(column, BlobValue::uncached(upload.temp_name.clone()).into());
            }
            Some(BlobChange::Attach(_)) => model.not_set(column),
            Some(BlobChange::Blank) => model.set(column, to_sea_value(None)),
            Some(BlobChange::Raw(v)) => model.set(column, to_sea_value(v.as_ref())),
            None => {}
        }
        if let Some(i) = plan_idx {
            plans[i].scenario = Some(scenario);
            plans[i].old = old;
        }
    }
    Ok(())
}

/// Promote each new upload (see [`super::promote_one`]) and plan the deletions of blanked values.
/// Returns the values to cache in the row.
async fn promote_all<E, C>(
    saver: &BlobSaver<E>,
    plans: &mut [FieldPlan<E>],
    txn: &C,
    row: &E::Model,
    adding: bool,
) -> Result<Vec<(E::Column, Value)>>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    C: ConnectionTrait,
{
    let table = BlobSaver::<E>::table();
    let row_key = key_text::<E>(row);
    let mut written = Vec::new();
    for plan in plans {
        let spec = saver.spec(plan.column)?;
        match plan.change.clone() {
            BlobChange::Attach(upload) => {
                let store = saver.store_for(spec)?;
                super::promote_one::promote_one(saver, spec, &store, plan, &upload, row, adding).await?;
                let (db, outbox, field) = (saver.connection(), &saver.inner.outbox, spec.field_name());
                crate::promote::used_tickets::record(
                    txn,
                    db,
                    outbox,
                    spec.store_key(),
                    &field,
                    &upload,
                    plan.new.as_ref(),
                )
                .await?;
                let intent = plan.intent.as_mut().expect("attach plans have an intent");
                intent.row_key = Some(row_key.clone());
                written.push((plan.column, to_sea_value(plan.new.as_ref())));
            }
            BlobChange::Blank => {
                plan.new = None;
                if let Some(old) = plan.old.as_ref().filter(|_| spec.policy() == DeletePolicy::Delete) {
                    let mut intent = Intent::new(spec.store_key(), table, spec.column_name(), IntentState::Done);
                    intent.obsolete.push(ObjectRef { name: old.name.clone(), generation: old.generation });
                    intent
                        .obsolete
                        .extend(spec.derived_objects(old).into_iter().map(|name| ObjectRef { name, generation: None }));
                    intent.row_key = Some(row_key.clone());
                    plan.intent = Some(intent);
                }
            }
            BlobChange::Raw(v) => plan.new = v,
        }
    }
    Ok(written)
}

/// Cache the promoted values in the row (same transaction).
async fn cache_values<E, C>(txn: &C, row: &mut E::Model, written: &[(E::Column, Value)]) -> Result<()>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    if written.is_empty() {
        return Ok(());
    }
    let mut update = E::update_many();
    for (column, value) in written {
        update = update.col_expr(*column, SimpleExpr::Value(value.clone()));
        row.try_set(*column, value.clone())?;
    }
    update.filter(key_condition::<E>(row)).exec(txn).await.map_err(row_write::<E>)?;
    Ok(())
}

/// Mark the upload intents done and insert the deletion-only ones (same transaction).
async fn record_intents<E, C>(saver: &BlobSaver<E>, plans: &[FieldPlan<E>], txn: &C) -> Result<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    C: ConnectionTrait,
{
    for plan in plans {
        let Some(intent) = &plan.intent else { continue };
        let spec = saver.spec(plan.column)?;
        if intent.temp_name.is_some() {
            let marked = saver.inner.outbox.mark_done(txn, intent).await;
            if !marked.map_err(|e| e.at_step(SaveStep::RowWrite, spec.field_name()))? {
                return Err(Error::Database(sea_orm::DbErr::Custom(format!(
                    "outbox intent {} for `{}` was reclaimed by replay (the save took longer than the grace \
                     period); roll back and save again",
                    intent.id,
                    spec.field_name()
                ))));
            }
        } else {
            let inserted = saver.inner.outbox.insert(txn, intent, &spec.field_name()).await;
            inserted.map_err(|e| e.at_step(SaveStep::RowWrite, spec.field_name()))?;
        }
    }
    Ok(())
}
