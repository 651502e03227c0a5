//! Blob fields: a SeaORM column that names an object in a [`Store`](crate::Store) and caches its
//! metadata.
//!
//! * [`BlobValue`]: the column's value and its versioned JSON shape (`value`), usable as a
//!   `DeriveEntityModel` field, `Option<BlobValue>` for blankable columns.
//! * [`BlobFieldSpec`]: how a column behaves on save: store, ingress prefix, overwrite mode, limits,
//!   delete policy and callbacks (`spec`).
//! * [`BlobChanges`]: what a save changes: attach a [`PendingUpload`], blank, or a raw value
//!   (`change`), checked against django-gcp's matrix (`validate`).
//!
//! Saving is done by [`promote::BlobSaver`](crate::promote::BlobSaver), which runs the crash-safe
//! promotion protocol.

#[cfg(feature = "images")]
pub(crate) mod analyze;
pub(crate) mod cas;
pub(crate) mod change;
pub(crate) mod column;
pub(crate) mod sniff;
pub(crate) mod spec;
pub(crate) mod validate;
pub(crate) mod value;

pub use change::{BlobChange, BlobChanges, PendingUpload, TicketUse, UploadBinding, VerifiedUpload};
pub use column::{CorruptRow, RawCell, find_checked, read_raw, scan_column};
pub use spec::{
    AttributesContext, BlobFieldSpec, ChangeEvent, DeletePolicy, DestinationContext, OverwriteMode, safe_file_name,
};
pub use validate::Scenario;
pub use value::{BlobValue, Drift, VariantValue};
