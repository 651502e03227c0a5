//! django-gcp's validation matrix (adding/updating × blank allowed × editable) and the six scenarios of a
//! save. Checks that need no storage call; size and content type are checked against the upload itself
//! during the save.

use super::change::BlobChange;
use super::value::BlobValue;
use crate::{Error, Result};

/// What a save does to one blob field (django-gcp's six scenarios).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Inserting a row with no value.
    AddBlank,
    /// Inserting a row with a new upload.
    AddValid,
    /// Clearing a value.
    ValidToBlank,
    /// Attaching an upload to a blank field.
    BlankToValid,
    /// Replacing a value with a new upload.
    ValidToValid,
    /// Leaving the field as it is.
    Unchanged,
    /// Setting a raw value through the escape hatch.
    Raw,
}

/// The facts the matrix needs about one field of one save.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldState<'a> {
    /// `table.column`, for messages.
    pub field: &'a str,
    /// True when the row is being inserted.
    pub adding: bool,
    /// Whether the field allows blank.
    pub blankable: bool,
    /// Whether updates may change it.
    pub editable: bool,
    /// The value in the database before the save (updates).
    pub existing: Option<&'a BlobValue>,
}

/// Check `change` (`None`: the field is not mentioned) against the matrix and name the scenario.
pub(crate) fn check(state: FieldState<'_>, change: Option<&BlobChange>) -> Result<Scenario> {
    let refuse = |message: String| Err(Error::Validation { field: state.field.to_string(), message });
    let existing = if state.adding { None } else { state.existing };
    match change {
        Some(BlobChange::Raw(_)) => Ok(Scenario::Raw),
        None if !state.adding => Ok(Scenario::Unchanged),
        None | Some(BlobChange::Blank) if state.adding => {
            if state.blankable {
                Ok(Scenario::AddBlank)
            } else {
                refuse(
                    "a value is required when adding a row: attach an upload (BlobChanges::attach), or allow \
                     blank on the field"
                        .into(),
                )
            }
        }
        Some(BlobChange::Attach(_)) if state.adding => Ok(Scenario::AddValid),
        Some(BlobChange::Blank) => match existing {
            None => Ok(Scenario::Unchanged),
            Some(_) if !state.blankable => refuse(
                "this field cannot be blank: attach a new upload to replace the value, or leave the field unchanged"
                    .into(),
            ),
            Some(_) => Ok(Scenario::ValidToBlank),
        },
        Some(BlobChange::Attach(_)) => {
            if !state.editable {
                return refuse(
                    "cannot change a field that is not editable: it is set when the row is added; leave it \
                     unchanged"
                        .into(),
                );
            }
            Ok(if existing.is_some() { Scenario::ValidToValid } else { Scenario::BlankToValid })
        }
        None => unreachable!("`None` is handled above for both adding and updating"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::change::PendingUpload;

    fn state(adding: bool, blankable: bool, editable: bool, existing: Option<&BlobValue>) -> FieldState<'_> {
        FieldState { field: "docs.file", adding, blankable, editable, existing }
    }

    #[test]
    fn the_matrix() {
        let v = BlobValue::uncached("a");
        let attach = BlobChange::Attach(PendingUpload::trusted("_tmp/x/a", None, "a"));
        let blank = BlobChange::Blank;
        use Scenario::*;
        // adding × blankable
        assert_eq!(check(state(true, true, true, None), None).unwrap(), AddBlank);
        assert_eq!(check(state(true, true, true, None), Some(&blank)).unwrap(), AddBlank);
        assert_eq!(check(state(true, true, true, None), Some(&attach)).unwrap(), AddValid);
        // adding × not blankable
        let e = check(state(true, false, true, None), None).unwrap_err().to_string();
        assert!(e.contains("docs.file") && e.contains("required"), "{e}");
        assert!(check(state(true, false, true, None), Some(&blank)).is_err());
        assert_eq!(check(state(true, false, false, None), Some(&attach)).unwrap(), AddValid);
        // updating × blankable × editable
        assert_eq!(check(state(false, true, true, Some(&v)), Some(&blank)).unwrap(), ValidToBlank);
        assert_eq!(check(state(false, true, true, Some(&v)), Some(&attach)).unwrap(), ValidToValid);
        assert_eq!(check(state(false, true, true, None), Some(&attach)).unwrap(), BlankToValid);
        assert_eq!(check(state(false, true, true, Some(&v)), None).unwrap(), Unchanged);
        // updating × blankable × not editable: blank allowed (as django-gcp), attach refused
        assert_eq!(check(state(false, true, false, Some(&v)), Some(&blank)).unwrap(), ValidToBlank);
        let e = check(state(false, true, false, Some(&v)), Some(&attach)).unwrap_err().to_string();
        assert!(e.contains("not editable"), "{e}");
        // updating × not blankable
        let e = check(state(false, false, true, Some(&v)), Some(&blank)).unwrap_err().to_string();
        assert!(e.contains("cannot be blank"), "{e}");
        assert_eq!(check(state(false, false, true, Some(&v)), Some(&attach)).unwrap(), ValidToValid);
        assert!(check(state(false, false, false, Some(&v)), Some(&attach)).is_err());
        assert_eq!(check(state(false, false, false, Some(&v)), None).unwrap(), Unchanged);
        // raw is always allowed
        assert_eq!(check(state(true, false, false, None), Some(&BlobChange::Raw(None))).unwrap(), Raw);
    }
}
