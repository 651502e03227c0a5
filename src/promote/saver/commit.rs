//! Step 3, after the caller's transaction committed: finish the intents and call `on_change`.

use sea_orm::EntityTrait;

use super::rows::refresh_row_cache;
use super::state::{AppliedSave, CopyState, FieldPlan};
use super::{BlobSaver, CommitReport, RowOp};
use crate::SaveStep;
use crate::field::ChangeEvent;
use crate::field::validate::Scenario;
use crate::promote::replay::{Mode, Resolution, resolve};

impl<E> AppliedSave<E>
where
    E: EntityTrait,
{
    /// After the caller's transaction committed: delete the temporary objects and the
    /// replaced/blanked/deleted-row objects (per policy), make deferred overwrites, clear the intents and
    /// call `on_change`. Failures do not undo the save; they are left in the outbox for replay and
    /// reported.
    pub async fn committed(mut self) -> CommitReport {
        let mut report = CommitReport::default();
        let saver = self.core.saver.clone();
        let (op, row) = (self.core.op, self.core.row.take().expect("an applied save has its row"));
        for plan in &mut self.core.plans {
            let complete = finish(&saver, plan, &row, &mut report).await;
            notify(&saver, plan, op, complete, &row, &mut report);
        }
        report
    }
}

/// Resolve the plan's intent after the commit. False when the value is not final yet (a deferred
/// overwrite or an intent left pending), so `on_change` waits for replay.
async fn finish<E>(saver: &BlobSaver<E>, plan: &mut FieldPlan<E>, row: &E::Model, report: &mut CommitReport) -> bool
where
    E: EntityTrait,
{
    let Some(intent) = &plan.intent else { return true };
    let Ok(spec) = saver.spec(plan.column) else { return true };
    let Ok(store) = saver.store_for(spec) else { return true };
    let outcome =
        resolve(&saver.inner.db, &saver.inner.outbox, store.as_ref(), &intent.id, Mode::AfterCommit, None).await;
    match outcome {
        Ok(Resolution::Finished(deferred)) => {
            report.finished += 1;
            if let (Some(meta), Some(new)) = (deferred, plan.new.as_mut())
                && let Err(e) = refresh_row_cache(saver, plan.column, new, &meta, row).await
            {
                tracing::warn!(intent = %intent.id, error = %e, "could not cache the overwritten object's metadata; refresh() will");
            }
            true
        }
        Ok(Resolution::Failed(e)) | Err(e) => {
            let e = e.at_step(SaveStep::Cleanup, spec.field_name());
            report.left_for_replay.push((intent.id.clone(), e.to_string()));
            !matches!(plan.copy, CopyState::Deferred(_))
        }
        Ok(Resolution::LeftPending) => {
            report.left_for_replay.push((
                intent.id.clone(),
                "the intent is still pending: committed() was called but the transaction did not commit".into(),
            ));
            false
        }
        Ok(Resolution::Gone | Resolution::Undone { .. }) => true,
    }
}

/// Call the field's `on_change` for a changed value that is final.
fn notify<E>(
    saver: &BlobSaver<E>,
    plan: &FieldPlan<E>,
    op: RowOp,
    complete: bool,
    row: &E::Model,
    report: &mut CommitReport,
) where
    E: EntityTrait,
{
    let Ok(spec) = saver.spec(plan.column) else { return };
    let changed = match plan.scenario {
        Some(Scenario::Unchanged | Scenario::Raw) => false,
        Some(_) => true,
        None => op == RowOp::Delete && plan.old.is_some(),
    };
    if let (true, true, Some(f)) = (changed, complete, spec.on_change_fn()) {
        f(&ChangeEvent {
            model: row.clone(),
            table: BlobSaver::<E>::table().to_string(),
            column: spec.column_name().to_string(),
            old: plan.old.clone(),
            new: plan.new.clone(),
        });
        report.notified += 1;
    }
}
