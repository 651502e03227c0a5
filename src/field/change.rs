//! Pending changes to blob fields, as objects (Active Storage style): attach a verified upload, blank
//! the field, or (escape hatch) set a raw value. A save applies them; fields not mentioned are unchanged.

use std::fmt;

use sea_orm::{EntityTrait, IdenStatic};

use super::value::BlobValue;

/// Who may promote an upload: the store and `table.column` an upload ticket was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadBinding {
    /// Store key the ticket was issued for.
    pub store: String,
    /// `table.column` the ticket was issued for.
    pub field: String,
}

/// A new upload, ready to be promoted: a temporary object the client was issued and has written.
///
/// This is the seam between direct uploads and saving. A ticket verifier (the `upload` module) checks
/// the ticket's signature, expiry and field binding and returns a `PendingUpload` through
/// [`VerifiedUpload`]; server-side code that wrote the temporary object itself can build one with
/// [`PendingUpload::trusted`]. Never build one from names a client sent: knowing an object's name must
/// not be enough to claim it (invariant 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    /// The temporary object's name (under the field's ingress prefix).
    pub temp_name: String,
    /// The generation the upload created, when known (then the promotion copies exactly it).
    pub generation: Option<i64>,
    /// The file name the user chose.
    pub original_name: String,
    /// The store and field the upload was issued for, when a ticket says so (checked on save).
    pub binding: Option<UploadBinding>,
    /// The ticket the upload came with, when it came with one: the save records its nonce so that the
    /// ticket promotes at most once, and checks the declared size.
    pub ticket: Option<TicketUse>,
}

/// What the save protocol needs of an upload ticket: its nonce (recorded, in the row's transaction,
/// until the ticket expires), its expiry and the size the browser declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketUse {
    /// The ticket's random nonce.
    pub nonce: String,
    /// The ticket's expiry, Unix seconds (the record is kept until then).
    pub expires: i64,
    /// The size the browser declared when it asked for the ticket; the promoted object may not be larger.
    pub declared_size: u64,
}

impl PendingUpload {
    /// An upload whose temporary object the server trusts (written by the server itself, or already
    /// verified by other means).
    pub fn trusted(temp_name: impl Into<String>, generation: Option<i64>, original_name: impl Into<String>) -> Self {
        Self {
            temp_name: temp_name.into(),
            generation,
            original_name: original_name.into(),
            binding: None,
            ticket: None,
        }
    }

    /// Bind to a store and `table.column`: the save refuses it for any other field.
    pub fn bound_to(mut self, store: impl Into<String>, field: impl Into<String>) -> Self {
        self.binding = Some(UploadBinding { store: store.into(), field: field.into() });
        self
    }

    /// Came with this ticket: the save refuses a second promotion of it (`ticket_replayed`).
    pub(crate) fn with_ticket(mut self, ticket: TicketUse) -> Self {
        self.ticket = Some(ticket);
        self
    }
}

/// Something that has been verified to name an upload the client was issued (an upload ticket).
pub trait VerifiedUpload {
    /// The upload to promote.
    fn into_pending_upload(self) -> PendingUpload;
}

impl VerifiedUpload for PendingUpload {
    fn into_pending_upload(self) -> PendingUpload {
        self
    }
}

/// One pending change to a blob field.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobChange {
    /// Promote a new upload into the field (adding a value, or replacing one).
    Attach(PendingUpload),
    /// Clear the field (SQL NULL). The replaced object is deleted after commit per the delete policy.
    Blank,
    /// Escape hatch for migrations and fixtures: store this value as it is, with no validation, no
    /// promotion and no deletion. Never use it with client input: naming an object must not grant it.
    Raw(Option<BlobValue>),
}

impl BlobChange {
    /// A short name (`attach`, `blank`, `raw`) for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            BlobChange::Attach(_) => "attach",
            BlobChange::Blank => "blank",
            BlobChange::Raw(_) => "raw",
        }
    }
}

/// The pending changes of one save, by column of entity `E`.
pub struct BlobChanges<E: EntityTrait> {
    pub(crate) items: Vec<(E::Column, BlobChange)>,
}

impl<E: EntityTrait> Default for BlobChanges<E> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<E: EntityTrait> Clone for BlobChanges<E> {
    fn clone(&self) -> Self {
        Self { items: self.items.clone() }
    }
}

impl<E: EntityTrait> fmt::Debug for BlobChanges<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.items.iter().map(|(c, ch)| (c.as_str(), ch))).finish()
    }
}

impl<E: EntityTrait> BlobChanges<E> {
    /// No changes: every blob field keeps its value.
    pub fn new() -> Self {
        Self::default()
    }

    /// Promote `upload` into `column` (replaces an earlier change of the same column).
    pub fn attach(self, column: E::Column, upload: impl VerifiedUpload) -> Self {
        self.with(column, BlobChange::Attach(upload.into_pending_upload()))
    }

    /// Blank `column`.
    pub fn blank(self, column: E::Column) -> Self {
        self.with(column, BlobChange::Blank)
    }

    /// Escape hatch: store `value` in `column` as it is (see [`BlobChange::Raw`]).
    pub fn raw(self, column: E::Column, value: Option<BlobValue>) -> Self {
        self.with(column, BlobChange::Raw(value))
    }

    /// Set the change of `column`.
    pub fn with(mut self, column: E::Column, change: BlobChange) -> Self {
        self.items.retain(|(c, _)| c.as_str() != column.as_str());
        self.items.push((column, change));
        self
    }

    /// The change for `column`, if any.
    pub fn get(&self, column: E::Column) -> Option<&BlobChange> {
        self.items.iter().find(|(c, _)| c.as_str() == column.as_str()).map(|(_, ch)| ch)
    }

    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
