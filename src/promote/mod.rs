//! The save protocol: promotion from temporary ingress to destination, the outbox, and replay.

pub mod migration;
pub mod outbox;
pub mod replay;
pub mod saver;
pub mod steps;
pub mod used_tickets;

pub use outbox::{Intent, IntentState, ObjectRef, Outbox};
pub use replay::{ReplayReport, replay, replay_outbox};
pub use saver::{AppliedSave, BlobDelete, BlobSave, BlobSaver, CommitReport, FailedSave, PendingSave, RowOp, Saved};
pub use used_tickets::UsedTicketTable;
