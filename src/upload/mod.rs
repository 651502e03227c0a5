//! Direct browser uploads: tickets, signed PUTs and resumable sessions, the axum routes, and the widget.
//!
//! The flow (see `docs/direct-uploads.md`):
//!
//! 1. The widget (`GET /uploads/widget.js`) enhances `<input type=file data-sea-gcp-field="entity.column">`
//!    and asks `POST /uploads` for a ticket with `{field, filename, size, content_type}`.
//! 2. [`UploadRouter`] takes JSON only, checks the field's limits ([`UploadField`]) and the application's
//!    [`Authorize`] hook (required; its [`Grant`] may bind the ticket to a user or session), chooses the temp name (`<ingress prefix><uuid v7>/<sanitised filename>`), and answers with a
//!    signed [`TicketClaims`] ticket plus `{method, url, headers}` for a signed PUT or a resumable session.
//! 3. The browser sends the bytes straight to the bucket (or, on a [`LocalStore`](crate::storage::local::LocalStore),
//!    to [`local_store_routes`]) and puts the ticket into a hidden input named after the field.
//! 4. The form posts the ticket, never a path. [`UploadVerifier`] checks signature, expiry, field and
//!    subject binding and the temp object, and yields a [`TicketUpload`], which
//!    [`BlobChanges::attach`](crate::field::BlobChanges::attach) takes; the save protocol records the
//!    ticket's nonce in the used-ticket table in the row's transaction
//!    ([`UsedTicketTable`](crate::promote::UsedTicketTable); [`TicketLedger`] is that check as a trait),
//!    so a ticket promotes at most once for its whole lifetime.
//!
//! With the `gcs` feature, [`doctor::check_bucket`] says what a bucket needs for this flow (CORS, lifecycle on the ingress prefix).

pub mod cleanup;
#[cfg(feature = "gcs")]
pub mod doctor;
mod field;
mod filename;
pub(crate) mod local;
pub(crate) mod plain;
mod refusal;
mod router;
mod ticket;
mod verify;

pub use field::{DEFAULT_INGRESS_PREFIX, UploadField, UploadFields};
pub use filename::{MAX_FILENAME_BYTES, temp_name};
pub use local::{ActiveContent, LocalRoutesOptions, SANDBOX_CSP, local_store_routes, local_store_routes_with};
pub use refusal::{AllowAll, AuthenticateFn, Authorize, AuthorizeFn, Grant, Refusal};
pub use router::{TicketRequest, TicketResponse, UploadRouter};
pub use ticket::{
    TICKET_VERSION, TicketClaims, TicketLedger, TicketProblem, TicketRejection, TicketSigner, UsedTickets,
};
pub(crate) use verify::CLEAR_SUFFIX;
pub use verify::{Submission, TicketUpload, UploadVerifier};
