//! Reading a row: its primary key, the object the old column names, and what the blob column holds.
//!
//! The old column may hold a plain object name (`reports/q3.pdf`), django-gcp's legacy JSON
//! (`{"path": "reports/q3.pdf"}`), or — after an in-place conversion — an uncached blob value. NULL and
//! the empty string (Django's blank `FileField`) are blank: nothing to migrate.

use sea_orm::{QueryResult, Value};

use crate::field::BlobValue;
use crate::storage::naming;

/// A primary key value. Keyset pagination compares keys in the database's own order, so the key is bound
/// with its native type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PkValue {
    /// An integer key.
    Int(i64),
    /// A UUID key (PostgreSQL `uuid`).
    Uuid(uuid::Uuid),
    /// A text key.
    Text(String),
}

impl PkValue {
    /// The value to bind.
    pub fn to_value(&self) -> Value {
        match self {
            PkValue::Int(i) => Value::BigInt(Some(*i)),
            PkValue::Uuid(u) => Value::Uuid(Some(*u)),
            PkValue::Text(s) => Value::String(Some(s.clone())),
        }
    }

    /// The key as text (for the report and the checkpoint).
    pub fn to_text(&self) -> String {
        match self {
            PkValue::Int(i) => i.to_string(),
            PkValue::Uuid(u) => u.to_string(),
            PkValue::Text(s) => s.clone(),
        }
    }

    /// The kind, as stored in the checkpoint (`int`, `uuid`, `text`).
    pub fn kind(&self) -> &'static str {
        match self {
            PkValue::Int(_) => "int",
            PkValue::Uuid(_) => "uuid",
            PkValue::Text(_) => "text",
        }
    }

    /// Rebuild a key from its checkpoint form.
    pub(crate) fn from_checkpoint(kind: &str, text: &str) -> Option<PkValue> {
        match kind {
            "int" => text.parse().ok().map(PkValue::Int),
            "uuid" => text.parse().ok().map(PkValue::Uuid),
            "text" => Some(PkValue::Text(text.to_string())),
            _ => None,
        }
    }

    /// Read the key from column `idx` of a row, whatever integer, UUID or text type it has.
    pub fn read(row: &QueryResult, idx: usize) -> Result<PkValue, String> {
        if let Ok(v) = row.try_get_by_index::<i64>(idx) {
            return Ok(PkValue::Int(v));
        }
        if let Ok(v) = row.try_get_by_index::<i32>(idx) {
            return Ok(PkValue::Int(v.into()));
        }
        if let Ok(v) = row.try_get_by_index::<u64>(idx) {
            return i64::try_from(v).map(PkValue::Int).map_err(|_| format!("primary key {v} exceeds i64"));
        }
        if let Ok(v) = row.try_get_by_index::<uuid::Uuid>(idx) {
            return Ok(PkValue::Uuid(v));
        }
        if let Ok(v) = row.try_get_by_index::<String>(idx) {
            return Ok(PkValue::Text(v));
        }
        Err("the primary key is neither an integer, a UUID nor text; pass --primary-key with such a column".into())
    }
}

/// One row as read by the backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    /// Primary key.
    pub pk: PkValue,
    /// The old column, as text.
    pub from: Option<String>,
    /// The blob column, as text.
    pub to: Option<String>,
}

impl SourceRow {
    /// Read `pk, from, to` (as selected by `super::sql::select_page`).
    pub fn read(row: &QueryResult) -> Result<SourceRow, String> {
        let pk = PkValue::read(row, 0)?;
        let from = row.try_get_by_index::<Option<String>>(1).map_err(|e| format!("old column: {e}"))?;
        let to = row.try_get_by_index::<Option<String>>(2).map_err(|e| format!("blob column: {e}"))?;
        Ok(SourceRow { pk, from, to })
    }
}

/// What the old column names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceName {
    /// NULL or empty: nothing to migrate.
    Blank,
    /// An object name (normalised), and the legacy/uncached value it came from when it was JSON.
    Name(String, Option<Box<BlobValue>>),
    /// The value names no usable object (bad JSON shape, `..`, control characters, ...).
    Invalid(String),
}

/// Parse the old column's text.
pub(crate) fn parse_source(text: Option<&str>) -> SourceName {
    let Some(text) = text else { return SourceName::Blank };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return SourceName::Blank;
    }
    let (raw, value) = if trimmed.starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(trimmed) {
            Ok(json) => match BlobValue::from_json(&json) {
                Ok(v) => (v.name.clone(), Some(Box::new(v))),
                Err(e) => return SourceName::Invalid(e),
            },
            // Not JSON after all: a name that happens to start with `{`.
            Err(_) => (text.to_string(), None),
        }
    } else if trimmed == "null" {
        return SourceName::Blank;
    } else {
        (text.to_string(), None)
    };
    match naming::normalize(&raw) {
        Ok(name) => SourceName::Name(name, value),
        Err(e) => SourceName::Invalid(e.to_string()),
    }
}

/// What the blob column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// NULL (or JSON `null`): to be filled.
    Empty,
    /// A blob value (cached or not).
    Value(Box<BlobValue>),
    /// Not a blob value.
    Corrupt(String),
}

/// Parse the blob column's text.
pub(crate) fn parse_destination(text: Option<&str>) -> Destination {
    match text.map(str::trim) {
        None | Some("") | Some("null") => Destination::Empty,
        Some(t) => match BlobValue::from_text(t) {
            Ok(v) => Destination::Value(Box::new(v)),
            Err(e) => Destination::Corrupt(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_legacy_and_blank_values() {
        assert_eq!(parse_source(None), SourceName::Blank);
        assert_eq!(parse_source(Some("")), SourceName::Blank);
        assert!(matches!(parse_source(Some("a b/ü #?&.txt")), SourceName::Name(n, None) if n == "a b/ü #?&.txt"));
        assert!(
            matches!(parse_source(Some(r#"{"path": "x/y.pdf"}"#)), SourceName::Name(n, Some(v)) if n == "x/y.pdf" && v.legacy)
        );
        assert!(matches!(parse_source(Some("{curly}.txt")), SourceName::Name(n, None) if n == "{curly}.txt"));
        assert!(matches!(parse_source(Some("../etc/passwd")), SourceName::Invalid(_)));
        assert!(matches!(parse_source(Some(r#"{"path": 3}"#)), SourceName::Invalid(_)));
    }

    #[test]
    fn checkpoint_keys_round_trip() {
        for pk in [PkValue::Int(-4), PkValue::Uuid(uuid::Uuid::new_v4()), PkValue::Text("a,b".into())] {
            assert_eq!(PkValue::from_checkpoint(pk.kind(), &pk.to_text()), Some(pk));
        }
    }
}
