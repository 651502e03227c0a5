//! The save protocol: promotion from temporary ingress to destination, the outbox, and replay.

pub(crate) mod migration;
pub(crate) mod outbox;
pub(crate) mod replay;
pub(crate) mod saver;
pub(crate) mod steps;
pub(crate) mod used_tickets;

pub use migration::OutboxMigrator;
pub use outbox::{Intent, IntentState, ObjectRef, Outbox};
pub use replay::{ReplayReport, replay, replay_outbox};
pub use saver::{AppliedSave, BlobDelete, BlobSave, BlobSaver, CommitReport, FailedSave, PendingSave, RowOp, Saved};
pub use used_tickets::UsedTicketTable;
