//! What the backfill could not migrate, and the CSV it writes.

use std::io::Write;
use std::path::Path;

use crate::Result;

/// Why a row was not migrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportReason {
    /// The old column names an object the bucket does not have. The row is left as it is.
    Missing,
    /// The old column holds something that names no object (bad JSON, `..`, control characters), or the
    /// blob column holds something that is not a blob value.
    Invalid,
    /// The blob column already names a different object than the old column (the application wrote it).
    /// Kept as it is; listed so the old object is not lost track of.
    Conflict,
}

impl ReportReason {
    /// `missing`, `invalid`, `conflict`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportReason::Missing => "missing",
            ReportReason::Invalid => "invalid",
            ReportReason::Conflict => "conflict",
        }
    }

    /// Parse [`ReportReason::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "missing" => Some(ReportReason::Missing),
            "invalid" => Some(ReportReason::Invalid),
            "conflict" => Some(ReportReason::Conflict),
            _ => None,
        }
    }
}

/// One row the backfill did not migrate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEntry {
    /// The row's primary key, as text.
    pub pk: String,
    /// The old column's value (the path), as read.
    pub path: Option<String>,
    /// Why.
    pub reason: ReportReason,
    /// Details (the parse error, the other object's name, ...).
    pub detail: String,
}

/// Write `entries` as CSV (`pk,path,reason,detail`, RFC 4180 quoting) to `path`.
pub(crate) fn write_csv(path: &Path, entries: &[ReportEntry]) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "pk,path,reason,detail")?;
    for e in entries {
        writeln!(
            out,
            "{},{},{},{}",
            csv_field(&e.pk),
            csv_field(e.path.as_deref().unwrap_or("")),
            e.reason.as_str(),
            csv_field(&e.detail)
        )?;
    }
    out.flush()?;
    Ok(())
}

/// One CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain name.txt"), "plain name.txt");
        assert_eq!(csv_field("a,b \"c\""), "\"a,b \"\"c\"\"\"");
        for r in [ReportReason::Missing, ReportReason::Invalid, ReportReason::Conflict] {
            assert_eq!(ReportReason::parse(r.as_str()), Some(r));
        }
    }
}
