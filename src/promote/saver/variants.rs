//! Step 2, last part (feature `images`): queue the variants of each new image in the save's own
//! transaction, so a rolled-back save queues nothing and a committed one exactly one job per value.

use sea_orm::{ConnectionTrait, EntityTrait, Iterable, PrimaryKeyToColumn};

use super::BlobSaver;
use super::state::FieldPlan;
use crate::field::BlobChange;
use crate::images::generate::VariantJob;
use crate::{Error, Result, SaveStep};

/// The single-column primary key of `E` (variants address rows by it).
pub(crate) fn single_primary_key<E: EntityTrait>() -> Result<&'static str> {
    use sea_orm::IdenStatic;
    let mut keys = E::PrimaryKey::iter();
    match (keys.next(), keys.next()) {
        (Some(key), None) => Ok(key.into_column().as_str()),
        _ => Err(Error::config(
            None,
            format!(
                "`{}` has a composite primary key: blob fields with variants need a single-column key",
                E::default().table_name()
            ),
        )),
    }
}

/// Put one variants job per new value of a field with variants into `txn`.
pub(super) async fn queue<E, C>(saver: &BlobSaver<E>, plans: &[FieldPlan<E>], txn: &C) -> Result<()>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    for plan in plans {
        if !matches!(plan.change, BlobChange::Attach(_)) {
            continue;
        }
        let spec = saver.spec(plan.column)?;
        if spec.variants().is_empty() {
            continue;
        }
        // An in-place overwrite copied after the commit has no generation yet; backfill makes its variants.
        let Some((name, generation)) = plan.new.as_ref().and_then(|v| Some((v.name.clone(), v.generation?))) else {
            continue;
        };
        let queue = saver.inner.variant_queue.as_ref().ok_or_else(|| {
            Error::config(
                Some(spec.store_key().to_string()),
                format!(
                    "blob field `{}` has variants, which are made by a task: build the app handle (Gcp) with the \
                     `tasks` feature",
                    spec.field_name()
                ),
            )
        })?;
        let job = VariantJob {
            store: spec.store_key().to_string(),
            table: BlobSaver::<E>::table().to_string(),
            column: spec.column_name().to_string(),
            primary_key: single_primary_key::<E>()?.to_string(),
            name,
            generation,
        };
        if let Some(statement) = queue.statement(txn.get_database_backend(), &job)? {
            let queued = txn.execute_raw(statement).await;
            queued.map_err(|e| Error::from(e).at_step(SaveStep::RowWrite, spec.field_name()))?;
        }
    }
    Ok(())
}
