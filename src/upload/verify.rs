//! Turning a posted form value into a verified upload the save protocol can promote.
//!
//! The form posts, per upload field, the ticket in an input named after the field (empty: no change)
//! and, for blankable fields, `<name>__clear=1` to clear it. [`Submission::parse`] reads that;
//! [`UploadVerifier::verify`] checks the ticket (signature, expiry, field binding), then `head`s the
//! temp object: it must exist, be within the ticket's size limit and carry the bound content type. The
//! result, [`TicketUpload`], names the exact generation to promote. A raw object path is never
//! accepted: it fails as a malformed ticket.

use std::sync::Arc;

use chrono::Utc;

use super::field::UploadFields;
use super::plain::size_text;
use super::ticket::{TicketClaims, TicketLedger, TicketProblem, TicketRejection, TicketSigner};
use crate::field::{PendingUpload, TicketUse, VerifiedUpload};
use crate::promote::UsedTicketTable;
use crate::storage::{GetOptions, media_type};

/// Suffix of the hidden input that asks to clear a blankable field.
pub(crate) const CLEAR_SUFFIX: &str = "__clear";

/// What the form asked for one upload field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Nothing posted: keep the current value.
    Keep,
    /// Clear the field (blankable fields only).
    Clear,
    /// A new upload: the ticket, still unverified.
    Ticket(String),
}

impl Submission {
    /// From the posted value of the field's input and of `<name>__clear`.
    pub fn parse(value: Option<&str>, clear: Option<&str>) -> Self {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some(ticket) => Submission::Ticket(ticket.to_string()),
            None if clear.is_some_and(|c| matches!(c, "1" | "on" | "true")) => Submission::Clear,
            None => Submission::Keep,
        }
    }
}

/// A verified upload, ready for promotion: the temp object at an exact generation. Pass it to
/// [`BlobChanges::attach`](crate::field::BlobChanges::attach) (it is a [`VerifiedUpload`]); the save
/// records the ticket's nonce in the used-ticket table, which refuses a second promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketUpload {
    /// Store key.
    pub store: String,
    /// Field id (`entity.column`).
    pub field: String,
    /// Temp object name (relative to the store's location).
    pub temp_name: String,
    /// The temp object's generation (promote with `if_source_generation_match`).
    pub generation: Option<i64>,
    /// Its size in bytes.
    pub size: u64,
    /// Its content type.
    pub content_type: String,
    /// The file name the user picked.
    pub original_name: String,
    /// The ticket's claims.
    pub claims: TicketClaims,
}

/// Verifies posted tickets against the field registry and the stores.
#[derive(Debug, Clone)]
pub struct UploadVerifier {
    signer: TicketSigner,
    fields: Arc<UploadFields>,
    used: Option<(sea_orm::DatabaseConnection, UsedTicketTable)>,
}

impl UploadVerifier {
    /// A verifier using the router's signer and fields.
    pub fn new(signer: TicketSigner, fields: Arc<UploadFields>) -> Self {
        Self { signer, fields, used: None }
    }

    /// Read the used-ticket table `table` through `db` when a ticket's upload is gone, so that a
    /// ticket posted again after its save committed is refused as [`TicketProblem::Replayed`] (409
    /// `ticket_replayed`) rather than as a missing upload. [`Blobs`](crate::Blobs) sets it.
    pub fn with_used_tickets(mut self, db: sea_orm::DatabaseConnection, table: UsedTicketTable) -> Self {
        self.used = Some((db, table));
        self
    }

    /// Was the ticket with `nonce` already saved? False when unknown (no table configured, or it
    /// could not be read: logged).
    async fn already_saved(&self, field: &str, nonce: &str) -> bool {
        let Some((db, table)) = &self.used else { return false };
        match table.contains(db, nonce).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(field, table = table.table(), "reading the used-ticket table failed: {e}");
                false
            }
        }
    }

    /// Verify `ticket` for `field` now, posted by no particular subject: a ticket bound to a subject
    /// is refused (use [`UploadVerifier::verify_for`]).
    pub async fn verify(&self, field: &str, ticket: &str) -> Result<TicketUpload, TicketRejection> {
        self.verify_at(field, ticket, None, Utc::now().timestamp()).await
    }

    /// Verify `ticket` for `field` now, posted by `subject` (the same user or session id the
    /// [`Authorize`](super::Authorize) hook bound the ticket to).
    pub async fn verify_for(
        &self,
        field: &str,
        ticket: &str,
        subject: Option<&str>,
    ) -> Result<TicketUpload, TicketRejection> {
        self.verify_at(field, ticket, subject, Utc::now().timestamp()).await
    }

    /// Verify `ticket` for `field`, posted by `subject`, at `now_unix`: signature, expiry, field and
    /// subject binding, then the temp object's existence, size (at most the declared size) and content
    /// type.
    pub async fn verify_at(
        &self,
        field: &str,
        ticket: &str,
        subject: Option<&str>,
        now_unix: i64,
    ) -> Result<TicketUpload, TicketRejection> {
        let spec = self.fields.get(field).ok_or_else(|| {
            TicketRejection::new(TicketProblem::WrongField, field, format!("`{field}` is not an upload field"))
        })?;
        let claims = self.signer.verify(ticket, spec.store.key(), field, now_unix)?;
        if let Some(bound) = claims.sub.as_deref()
            && subject != Some(bound)
        {
            return Err(TicketRejection::new(
                TicketProblem::WrongSubject,
                field,
                format!("the upload ticket for `{field}` was issued to another user or session; upload the file again"),
            ));
        }
        let bad = |m: String| TicketRejection::new(TicketProblem::BadUpload, field, m);
        if !claims.name.starts_with(&spec.ingress_prefix) {
            return Err(bad(format!("the ticket's object is outside the ingress prefix {:?}", spec.ingress_prefix)));
        }
        let meta = match spec.store.head(&claims.name, GetOptions::default()).await {
            Ok(meta) => meta,
            // The temp object is deleted when its save commits: a ticket posted again after that is a
            // replay (a second click on Save, the back button), not a missing upload.
            Err(e) if e.is_not_found() && self.already_saved(field, &claims.nonce).await => {
                return Err(TicketRejection::new(
                    TicketProblem::Replayed,
                    field,
                    format!("the upload for `{field}` was already saved once with this ticket"),
                ));
            }
            Err(e) if e.is_not_found() => {
                return Err(bad(format!("no file was uploaded for `{field}` with this ticket; upload it again"))
                    .with_message("No file arrived for this upload. Upload the file again."));
            }
            Err(e) => {
                tracing::warn!(field, store = spec.store.key(), "checking an uploaded file failed: {e}");
                return Err(bad(format!("the uploaded file for `{field}` could not be checked: {e}"))
                    .with_message("The uploaded file could not be checked. Try again in a moment."));
            }
        };
        if meta.size > claims.max_size {
            return Err(bad(format!(
                "the uploaded file is {} bytes; `{field}` accepts at most {} bytes",
                meta.size, claims.max_size
            ))
            .with_message(format!(
                "The file is {}; the largest file accepted here is {}.",
                size_text(meta.size),
                size_text(claims.max_size)
            )));
        }
        if meta.size > claims.size {
            return Err(bad(format!(
                "the uploaded file is {} bytes, but {} bytes were declared for its ticket; upload the file again",
                meta.size, claims.size
            ))
            .with_message("The uploaded file is larger than announced. Upload the file again."));
        }
        let stored_type = meta.content_type.clone().unwrap_or_default();
        if !media_type::same(&stored_type, &claims.content_type) {
            return Err(bad(format!(
                "the uploaded file has content type {stored_type:?}, but the ticket allows {:?}",
                claims.content_type
            ))
            .with_message("The uploaded file's type changed during the upload. Upload the file again."));
        }
        Ok(TicketUpload {
            store: claims.store.clone(),
            field: field.to_string(),
            temp_name: claims.name.clone(),
            generation: Some(meta.generation),
            size: meta.size,
            content_type: stored_type,
            original_name: claims.original_name.clone(),
            claims,
        })
    }

    /// Verify, then claim the temp name in `ledger` so that the ticket promotes at most once.
    pub async fn verify_and_claim(
        &self,
        field: &str,
        ticket: &str,
        ledger: &dyn TicketLedger,
    ) -> Result<TicketUpload, TicketRejection> {
        let pending = self.verify_for(field, ticket, None).await?;
        match ledger.claim(&pending.store, &pending.temp_name).await {
            Ok(true) => Ok(pending),
            Ok(false) => Err(TicketRejection::new(
                TicketProblem::Replayed,
                field,
                format!("this upload for `{field}` was already saved once"),
            )),
            Err(e) => {
                tracing::warn!(field, "recording a used ticket failed: {e}");
                Err(TicketRejection::new(
                    TicketProblem::BadUpload,
                    field,
                    format!("could not record the upload for `{field}`: {e}"),
                )
                .with_message("The upload could not be recorded. Try again in a moment."))
            }
        }
    }
}

impl VerifiedUpload for TicketUpload {
    fn into_pending_upload(self) -> PendingUpload {
        let ticket =
            TicketUse { nonce: self.claims.nonce, expires: self.claims.expires, declared_size: self.claims.size };
        PendingUpload::trusted(self.temp_name, self.generation, self.original_name)
            .bound_to(self.store, self.field)
            .with_ticket(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_submissions() {
        assert_eq!(Submission::parse(None, None), Submission::Keep);
        assert_eq!(Submission::parse(Some("  "), None), Submission::Keep);
        assert_eq!(Submission::parse(Some(""), Some("1")), Submission::Clear);
        assert_eq!(Submission::parse(Some("t.s"), Some("1")), Submission::Ticket("t.s".into()));
    }
}
