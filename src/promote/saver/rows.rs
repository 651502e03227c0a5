//! Row helpers of the save: load the row being updated, decode and guard blob columns, the primary key
//! as a condition and as text, and the after-overwrite cache refresh.

use sea_orm::sea_query::SimpleExpr;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Iterable, ModelTrait,
    PrimaryKeyToColumn, QueryFilter, QuerySelect, Value,
};

use super::BlobSaver;
use crate::field::column::{find_checked, from_sea_value, to_sea_value};
use crate::field::{BlobFieldSpec, BlobValue};
use crate::storage::ObjectMeta;
use crate::{Error, Result};

/// After a deferred overwrite: cache the new generation in the row, unless the row changed meanwhile.
pub(super) async fn refresh_row_cache<E>(
    saver: &BlobSaver<E>,
    column: E::Column,
    value: &mut BlobValue,
    meta: &ObjectMeta,
    row: &E::Model,
) -> Result<()>
where
    E: EntityTrait,
{
    let original = value.original_name.clone();
    let expected = value.clone();
    *value = BlobValue::from_meta(meta, original);
    value.name = expected.name.clone();
    // The overwrite copied the bytes analysed at promotion.
    value.set_dimensions(expected.dimensions());
    let txn = saver.begin().await?;
    let current = find_checked(&txn, E::find().filter(key_condition::<E>(row)).lock_exclusive()).await?;
    let Some(current) = current.into_iter().next() else { return Ok(txn.commit().await?) };
    let stored = decode::<E>(BlobSaver::<E>::table(), column, &current)?;
    if stored.as_ref().is_some_and(|s| s.name == expected.name && s.generation.is_none()) {
        E::update_many()
            .col_expr(column, SimpleExpr::Value(to_sea_value(Some(value))))
            .filter(key_condition::<E>(row))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The row `model` (an update's active model) names, loaded with its blob columns checked.
pub(super) async fn load_existing<E, C>(txn: &C, model: &E::ActiveModel) -> Result<E::Model>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
    C: ConnectionTrait,
{
    let mut condition = Condition::all();
    for key in E::PrimaryKey::iter() {
        let column = key.into_column();
        match model.get(column) {
            ActiveValue::Set(v) | ActiveValue::Unchanged(v) => condition = condition.add(column.eq(v)),
            ActiveValue::NotSet => {
                return Err(Error::InvalidArgument(format!(
                    "an update needs the primary key: `{}.{}` is not set",
                    E::default().table_name(),
                    column_str::<E>(column)
                )));
            }
        }
    }
    // Locked until the caller's transaction ends (`SELECT ... FOR UPDATE`; SQLite has a single writer,
    // `BEGIN IMMEDIATE` in the one-call methods): a concurrent save of the same row waits and then sees
    // this save's value as the one it replaces, so no promoted object is left unreferenced.
    find_checked(txn, E::find().filter(condition).lock_exclusive()).await?.into_iter().next().ok_or_else(|| {
        Error::Database(sea_orm::DbErr::RecordNotFound(format!(
            "no `{}` row with this primary key to update",
            E::default().table_name()
        )))
    })
}

/// A blob column of a loaded model, or [`Error::CorruptColumn`].
pub(super) fn decode<E: EntityTrait>(table: &str, column: E::Column, model: &E::Model) -> Result<Option<BlobValue>> {
    from_sea_value(&model.get(column)).map_err(|message| Error::CorruptColumn {
        table: table.to_string(),
        column: column_str::<E>(column).to_string(),
        row: key_text::<E>(model),
        message,
    })
}

/// Refuse a blob column written directly into the active model (not through [`BlobChanges`]).
pub(super) fn refuse_direct_write<E>(
    spec: &BlobFieldSpec<E>,
    model: &E::ActiveModel,
    old: Option<&BlobValue>,
) -> Result<()>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
{
    if let ActiveValue::Set(v) = model.get(spec.column()) {
        let same = from_sea_value(&v).map(|new| new.as_ref() == old).unwrap_or(false);
        if !same {
            return Err(Error::Validation {
                field: spec.field_name(),
                message: "a blob column cannot be set directly on the ActiveModel (that would neither check nor promote it): use BlobChanges::attach or ::blank, or BlobChanges::raw for migrations and fixtures"
                    .into(),
            });
        }
    }
    Ok(())
}

pub(super) fn column_str<E: EntityTrait>(column: E::Column) -> &'static str {
    use sea_orm::IdenStatic;
    column.as_str()
}

/// `WHERE` the primary key equals `model`'s.
pub(super) fn key_condition<E: EntityTrait>(model: &E::Model) -> Condition {
    E::PrimaryKey::iter().fold(Condition::all(), |c, key| {
        let column = key.into_column();
        c.add(column.eq(model.get(column)))
    })
}

/// The primary key of `model` as text (`42`, `"a1b2"`, `1,2`).
pub(super) fn key_text<E: EntityTrait>(model: &E::Model) -> String {
    E::PrimaryKey::iter().map(|key| value_text(&model.get(key.into_column()))).collect::<Vec<_>>().join(",")
}

fn value_text(v: &Value) -> String {
    match v {
        Value::TinyInt(Some(x)) => x.to_string(),
        Value::SmallInt(Some(x)) => x.to_string(),
        Value::Int(Some(x)) => x.to_string(),
        Value::BigInt(Some(x)) => x.to_string(),
        Value::TinyUnsigned(Some(x)) => x.to_string(),
        Value::SmallUnsigned(Some(x)) => x.to_string(),
        Value::Unsigned(Some(x)) => x.to_string(),
        Value::BigUnsigned(Some(x)) => x.to_string(),
        Value::String(Some(x)) => format!("{x:?}"),
        Value::Uuid(Some(x)) => x.to_string(),
        other => format!("{other:?}"),
    }
}
