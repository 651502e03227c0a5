//! [`BlobForm`]: the axum extractor that turns a posted form into typed fields plus verified blob
//! changes.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::EntityTrait;
use serde::de::DeserializeOwned;

use super::Blobs;
use crate::field::BlobChanges;
use crate::upload::{CLEAR_SUFFIX, Refusal, Submission};

/// Largest form body the extractor reads (the form carries tickets, never file bytes).
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// A finished upload of a posted form that verified: re-show it (its ticket and file name) when the
/// save is refused for another reason, so that the user does not upload again
/// ([`FileInput::kept`](super::FileInput::kept)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptUpload {
    /// The ticket, as posted.
    pub ticket: String,
    /// The file name the user picked.
    pub original_name: String,
}

/// A posted form (`application/x-www-form-urlencoded`) of entity `E`: the typed fields `T` (serde,
/// unknown keys ignored) and the blob changes its upload inputs ask for.
///
/// For each blob field of `E` registered with [`Blobs`], the input named after the column holds a
/// ticket (verified now: signature, expiry, field, the temp object, and the subject that the
/// registry's [`Authorize`](crate::upload::Authorize) hook returns for this request) or nothing (keep);
/// `<column>__clear=1` blanks a blankable field. A refused ticket is a [`BlobFormRejection`] (use
/// `Result<BlobForm<E, T>, BlobFormRejection>` to re-show the form).
///
/// The registry is found in the app state through `Blobs: FromRef<S>`.
pub struct BlobForm<E: EntityTrait, T> {
    /// The form's typed fields.
    pub fields: T,
    /// The verified blob changes (attach, blank), for [`Blobs::insert`] / [`Blobs::update`].
    pub changes: BlobChanges<E>,
    /// The verified uploads, by column name.
    pub kept: BTreeMap<String, KeptUpload>,
    form: Vec<(String, String)>,
}

impl<E: EntityTrait, T: std::fmt::Debug> std::fmt::Debug for BlobForm<E, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobForm").field("fields", &self.fields).field("changes", &self.changes).finish_non_exhaustive()
    }
}

impl<E: EntityTrait, T> BlobForm<E, T> {
    /// Refuse this form for a reason of the application's own (status, stable code, message), keeping
    /// its values and verified uploads so that it can be shown again.
    pub fn reject(&self, status: StatusCode, code: &str, message: impl Into<String>) -> BlobFormRejection {
        BlobFormRejection {
            refusal: Refusal::new(status, code, message),
            form: self.form.clone(),
            kept: self.kept.clone(),
        }
    }

    /// Refuse this form because its save failed: [`Refusal::from_save_error`] (details logged, never
    /// shown), keeping its values and verified uploads.
    pub fn refused(&self, error: &crate::Error) -> BlobFormRejection {
        BlobFormRejection { refusal: Refusal::from_save_error(error), form: self.form.clone(), kept: self.kept.clone() }
    }

    /// The first posted value named `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The verified upload posted for `column`, if any.
    pub fn kept(&self, column: E::Column) -> Option<&KeptUpload> {
        use sea_orm::IdenStatic;
        self.kept.get(column.as_str())
    }
}

/// Why a posted form was refused: the [`Refusal`] (status, stable code, message for the user) and
/// the posted values, so that the form can be shown again.
#[derive(Debug, Clone)]
pub struct BlobFormRejection {
    /// Status, code and message.
    pub refusal: Refusal,
    /// The posted values (name, value), as sent.
    pub form: Vec<(String, String)>,
    /// Uploads that did verify, by column name.
    pub kept: BTreeMap<String, KeptUpload>,
}

impl BlobFormRejection {
    fn new(refusal: Refusal) -> Self {
        Self { refusal, form: Vec::new(), kept: BTreeMap::new() }
    }

    /// The first posted value named `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for BlobFormRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.refusal.fmt(f)
    }
}

impl std::error::Error for BlobFormRejection {}

impl IntoResponse for BlobFormRejection {
    fn into_response(self) -> Response {
        self.refusal.into_response()
    }
}

impl<S, E, T> FromRequest<S> for BlobForm<E, T>
where
    S: Send + Sync,
    Blobs: FromRef<S>,
    E: EntityTrait,
    E::Model: sea_orm::IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + sea_orm::ActiveModelBehavior + Send,
    T: DeserializeOwned + Send,
{
    type Rejection = BlobFormRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let blobs = Blobs::from_ref(state);
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
            BlobFormRejection::new(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "form_too_large",
                "The form is too large to send. Shorten the text and try again.",
            ))
        })?;
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
        let typed = axum::Form::<T>::from_request(Request::from_parts(parts.clone(), Body::from(bytes)), &())
            .await
            .map_err(|e| {
                let refusal = Refusal::new(
                    e.status(),
                    "invalid_form",
                    "The form could not be read. Reload the page and try again.",
                )
                .with_detail(e.body_text());
                BlobFormRejection { refusal, form: form.clone(), kept: BTreeMap::new() }
            });
        let reject = |refusal: Refusal, kept: &BTreeMap<String, KeptUpload>| BlobFormRejection {
            refusal,
            form: form.clone(),
            kept: kept.clone(),
        };
        let config = |e: crate::Error| reject(Refusal::from_save_error(&e), &BTreeMap::new());
        let saver = blobs.saver::<E>().map_err(config)?;
        let uploads = blobs.uploads().map_err(config)?;
        let used = crate::promote::UsedTicketTable::for_outbox(&blobs.inner.outbox);
        let verifier = uploads.verifier().with_used_tickets(blobs.inner.db.clone(), used);
        let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());

        let mut changes = BlobChanges::new();
        let mut kept = BTreeMap::new();
        let mut first_refusal = None;
        for spec in saver.fields() {
            let input = spec.column_name();
            let id = spec.field_name();
            match Submission::parse(value(input), value(&format!("{input}{CLEAR_SUFFIX}"))) {
                Submission::Keep => {}
                Submission::Clear if spec.is_blankable() => changes = changes.blank(spec.column()),
                Submission::Clear => {
                    first_refusal.get_or_insert(
                        Refusal::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "invalid_value",
                            "This file cannot be removed. Choose another file instead.",
                        )
                        .with_detail(format_args!("`{id}` is not blankable: `{input}{CLEAR_SUFFIX}` was posted")),
                    );
                }
                Submission::Ticket(ticket) => {
                    let subject = match (&blobs.inner.authorize, blobs.upload_field(&id)) {
                        (Some(hook), Some(field)) => match async {
                            hook.authenticate(&parts).await?;
                            hook.authorize(&parts, field).await
                        }
                        .await
                        {
                            Ok(grant) => grant.subject,
                            Err(refusal) => return Err(reject(refusal, &kept)),
                        },
                        _ => None,
                    };
                    match verifier.verify_for(&id, &ticket, subject.as_deref()).await {
                        Ok(upload) => {
                            kept.insert(
                                input.to_string(),
                                KeptUpload { ticket: ticket.clone(), original_name: upload.original_name.clone() },
                            );
                            changes = changes.attach(spec.column(), upload);
                        }
                        Err(rejection) => {
                            first_refusal.get_or_insert(Refusal::from(rejection));
                        }
                    }
                }
            }
        }
        if let Some(refusal) = first_refusal {
            return Err(reject(refusal, &kept));
        }
        let fields = match typed {
            Ok(axum::Form(fields)) => fields,
            Err(mut rejection) => {
                rejection.kept = kept;
                return Err(rejection);
            }
        };
        Ok(BlobForm { fields, changes, kept, form })
    }
}
