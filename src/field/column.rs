//! SeaORM integration of [`BlobValue`]: a blob column is a field of a `DeriveEntityModel` entity.
//!
//! ```ignore
//! #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
//! #[sea_orm(table_name = "documents")]
//! pub struct Model {
//!     #[sea_orm(primary_key)]
//!     pub id: i32,
//!     pub title: String,
//!     pub file: BlobValue,              // required
//!     pub thumbnail: Option<BlobValue>, // blankable: SQL NULL is blank
//! }
//! ```
//!
//! The column type is [`ColumnType::JsonBinary`]: `jsonb` on PostgreSQL, `json` on MySQL/MariaDB and
//! `jsonb_text` (text affinity) on SQLite. Values are written as JSON and read from JSON or text, in
//! the versioned shape or django-gcp's legacy `{"path": ...}`.
//!
//! A column holding garbage (not JSON, wrong shape, unknown version) fails to load with a
//! [`DbErr::Type`] that names the column, and never panics nor reads as blank. SeaORM's row decoding
//! does not know the table or the row, so use [`find_checked`] (or [`scan_column`] for a whole table) to
//! get [`Error::CorruptColumn`] naming table, column and row.

use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{
    ColIdx, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IdenStatic, Iterable, PrimaryKeyToColumn,
    PrimaryKeyTrait, QueryResult, QuerySelect, QueryTrait, Select, TryGetError, TryGetable, TryGetableMany, Value,
};
use serde_json::Value as Json;

use super::value::{BlobValue, snippet};
use crate::{Error, Result};

/// Marks the [`DbErr::Type`] messages produced when a blob column cannot be decoded.
pub(crate) const CORRUPT_MARKER: &str = "sea-gcp: corrupt blob column";

impl From<BlobValue> for Value {
    fn from(v: BlobValue) -> Self {
        Value::Json(Some(Box::new(v.to_json())))
    }
}

impl Nullable for BlobValue {
    fn null() -> Value {
        Value::Json(None)
    }
}

impl ValueType for BlobValue {
    fn try_from(v: Value) -> std::result::Result<Self, ValueTypeErr> {
        match v {
            Value::Json(Some(json)) => BlobValue::from_json(&json).map_err(|_| ValueTypeErr),
            Value::String(Some(text)) => BlobValue::from_text(&text).map_err(|_| ValueTypeErr),
            _ => Err(ValueTypeErr),
        }
    }

    fn type_name() -> String {
        "BlobValue".to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::Json
    }

    fn column_type() -> ColumnType {
        ColumnType::JsonBinary
    }
}

impl sea_orm::IntoActiveValue<BlobValue> for BlobValue {
    fn into_active_value(self) -> sea_orm::ActiveValue<BlobValue> {
        sea_orm::ActiveValue::Set(self)
    }
}

impl TryGetable for BlobValue {
    fn try_get_by<I: ColIdx>(res: &QueryResult, index: I) -> std::result::Result<Self, TryGetError> {
        let column = index.as_str().map(str::to_owned).or_else(|| index.as_usize().map(|i| format!("#{i}")));
        let column = column.unwrap_or_default();
        match read_raw(res, index)? {
            None => Err(TryGetError::Null(column)),
            Some(raw) => raw.decode().map_err(|message| {
                let row = row_hint(res);
                TryGetError::DbErr(DbErr::Type(format!(
                    "{CORRUPT_MARKER} `{column}`{row}: {message}; sea_gcp::field::find_checked names the table \
                     and row, sea_gcp::field::scan_column lists every bad row"
                )))
            }),
        }
    }
}

/// A blob column's cell as stored: JSON (PostgreSQL, MySQL) or text (SQLite, or JSON the driver could not
/// decode).
#[derive(Debug, Clone, PartialEq)]
pub enum RawCell {
    /// A JSON value.
    Json(Json),
    /// Text that should hold JSON.
    Text(String),
}

impl RawCell {
    /// Decode into a [`BlobValue`], or say why not.
    pub fn decode(&self) -> std::result::Result<BlobValue, String> {
        match self {
            RawCell::Json(Json::String(text)) => {
                // Some drivers hand back JSON text stored in a JSON column as a string scalar.
                BlobValue::from_text(text).or_else(|_| BlobValue::from_json(&Json::String(text.clone())))
            }
            RawCell::Json(json) => BlobValue::from_json(json),
            RawCell::Text(text) => BlobValue::from_text(text),
        }
    }
}

/// Read a blob column's cell without interpreting it: `None` for SQL NULL.
pub fn read_raw<I: ColIdx>(res: &QueryResult, index: I) -> std::result::Result<Option<RawCell>, TryGetError> {
    match <Option<Json> as TryGetable>::try_get_by(res, index) {
        Ok(v) => Ok(v.map(RawCell::Json)),
        Err(json_err) => match <Option<String> as TryGetable>::try_get_by(res, index) {
            Ok(v) => Ok(v.map(RawCell::Text)),
            Err(_) => match <Option<Vec<u8>> as TryGetable>::try_get_by(res, index) {
                Ok(Some(bytes)) => Ok(Some(RawCell::Text(String::from_utf8_lossy(&bytes).into_owned()))),
                Ok(None) => Ok(None),
                Err(_) => Err(json_err),
            },
        },
    }
}

/// " (row id=…)" when the result has an `id` column, else nothing.
fn row_hint(res: &QueryResult) -> String {
    let names = res.column_names();
    if !names.iter().any(|n| n == "id") {
        return String::new();
    }
    let id = <Option<i64> as TryGetable>::try_get_by(res, "id")
        .ok()
        .flatten()
        .map(|v| v.to_string())
        .or_else(|| <Option<String> as TryGetable>::try_get_by(res, "id").ok().flatten().map(|s| format!("{s:?}")));
    id.map(|id| format!(" (row id={id})")).unwrap_or_default()
}

/// One row whose blob column could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRow {
    /// The row's primary key, as text.
    pub row: String,
    /// What is wrong.
    pub message: String,
}

impl CorruptRow {
    /// This row as [`Error::CorruptColumn`].
    pub(crate) fn into_error(self, table: &str, column: &str) -> Error {
        Error::CorruptColumn { table: table.into(), column: column.into(), row: self.row, message: self.message }
    }
}

/// Load the models `select` finds. When a blob column cannot be decoded, the error is
/// [`Error::CorruptColumn`] naming the table, the column and the first bad row, instead of SeaORM's
/// row-blind [`DbErr::Type`].
pub async fn find_checked<E, C>(db: &C, select: Select<E>) -> Result<Vec<E::Model>>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    match select.clone().all(db).await {
        Ok(models) => Ok(models),
        Err(err) if err.to_string().contains(CORRUPT_MARKER) => {
            for column in E::Column::iter() {
                if !matches!(column.def().get_column_type(), ColumnType::JsonBinary | ColumnType::Json) {
                    continue;
                }
                if let Some(bad) = scan_select::<E, C>(db, select.clone(), column).await?.into_iter().next() {
                    return Err(bad.into_error(E::default().table_name(), column.as_str()));
                }
            }
            Err(err.into())
        }
        Err(err) => Err(err.into()),
    }
}

/// Every row of `E`'s table whose `column` cannot be decoded as a blob value (SQL NULL is fine).
pub async fn scan_column<E, C>(db: &C, column: E::Column) -> Result<Vec<CorruptRow>>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    scan_select::<E, C>(db, E::find(), column).await
}

async fn scan_select<E, C>(db: &C, select: Select<E>, column: E::Column) -> Result<Vec<CorruptRow>>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let pk_columns: Vec<E::Column> = E::PrimaryKey::iter().map(|pk| pk.into_column()).collect();
    let mut query = select.select_only();
    for c in &pk_columns {
        query = query.column(*c);
    }
    query = query.column_as(column, "sea_gcp_blob");
    let stmt = query.build(db.get_database_backend());
    let rows = db.query_all_raw(stmt).await?;
    let mut bad = Vec::new();
    for res in rows {
        let pk = <<E::PrimaryKey as PrimaryKeyTrait>::ValueType as TryGetableMany>::try_get_many_by_index(&res)
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|e| format!("<unreadable key: {e:?}>"));
        let message = match read_raw(&res, "sea_gcp_blob") {
            Ok(None) => continue,
            Ok(Some(raw)) => match raw.decode() {
                Ok(_) => continue,
                Err(m) => m,
            },
            Err(e) => format!("unreadable cell: {}", snippet(&format!("{e:?}"))),
        };
        bad.push(CorruptRow { row: pk, message });
    }
    Ok(bad)
}

/// Read a blob column from a SeaORM value (`Model::get(column)`): `None` for NULL.
pub(crate) fn from_sea_value(value: &Value) -> std::result::Result<Option<BlobValue>, String> {
    match value {
        Value::Json(None) | Value::String(None) => Ok(None),
        Value::Json(Some(json)) => BlobValue::from_json(json).map(Some),
        Value::String(Some(text)) => BlobValue::from_text(text).map(Some),
        other => Err(format!("not a blob column value: {other:?}")),
    }
}

/// The SeaORM value that stores `value` (SQL NULL for `None`).
pub(crate) fn to_sea_value(value: Option<&BlobValue>) -> Value {
    match value {
        Some(v) => v.clone().into(),
        None => Value::Json(None),
    }
}
