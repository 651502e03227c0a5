//! The axum routes of direct uploads: `POST {base}` issues tickets, `GET {base}/widget.js` and
//! `GET {base}/widget.css` serve the widget.
//!
//! `POST {base}` first asks the application's [`Authorize`] hook who is asking
//! ([`Authorize::authenticate`]), so a refused caller learns nothing about the fields. It then takes
//! `{"field": "entity.column", "filename": "..", "size": n, "content_type": ".."}` with
//! `Content-Type: application/json` (anything else is refused with 415, so a cross-site form cannot
//! send it without a CORS preflight). It looks the field up, checks the size and content type
//! against the field's limits, asks the application's [`Authorize`] hook (required: set one with
//! [`UploadRouter::authorize`], or say [`UploadRouter::allow_all`]), which may bind the ticket to a
//! subject (a user or session id), chooses the temp name (`<ingress prefix><uuid v7>/<safe name>`), asks
//! the store for a signed upload (a PUT bound to the content type, `x-goog-content-length-range:
//! 0,<declared size>` and `x-goog-if-generation-match: 0`; above the field's threshold, a resumable
//! session started with the browser's `Origin`) and answers:
//!
//! ```json
//! {"ticket": "…", "method": "PUT", "url": "…", "headers": {"content-type": "…"}, "resumable": false,
//!  "chunk_size": 8388608, "max_size": 10485760, "content_type": "image/png", "expires": 1764201600}
//! ```
//!
//! Requests that name an object (`path`, `name`, `key`) are refused: the server chooses every name.
//! Every refusal is a JSON [`Refusal`] with a stable code and a plain message for the user; the
//! developer detail and storage errors are logged, never echoed.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::field::UploadFields;
use super::filename;
use super::plain::size_text;
use super::refusal::{AllowAll, Authorize, Refusal};
use super::ticket::{TICKET_VERSION, TicketClaims, TicketSigner};
use super::verify::UploadVerifier;
use crate::storage::SignedUploadOptions;
use crate::storage::media_type::MediaType;
use crate::storage::naming::normalize_location;
use http::Method;

/// The widget's script.
pub(crate) const WIDGET_JS: &str = include_str!("assets/widget.js");
/// The widget's stylesheet.
pub(crate) const WIDGET_CSS: &str = include_str!("assets/widget.css");

/// What a user reads when the request itself is wrong (a broken or outdated page, a hand-made request).
const NOT_UNDERSTOOD: &str = "The upload could not be started. Reload the page and try again.";

/// What a user reads when uploads are misconfigured on the server (details in the log).
const UNAVAILABLE: &str = "Uploads are not available right now. Try again later.";

/// Default mount point of the ticket route.
pub(crate) const DEFAULT_BASE: &str = "/uploads";

/// Body of `POST {base}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TicketRequest {
    /// Field id (`entity.column`).
    pub field: String,
    /// The file name the user picked (sanitised; never used as a path).
    pub filename: String,
    /// Size in bytes.
    pub size: u64,
    /// Content type (empty: guessed from the file name).
    #[serde(default)]
    pub content_type: String,
}

/// Answer of `POST {base}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TicketResponse {
    /// The ticket the form posts back.
    pub ticket: String,
    /// HTTP method of the upload (`PUT`).
    #[serde(with = "crate::storage::method_serde")]
    pub method: Method,
    /// Where to send the bytes (a signed URL or a resumable session URI).
    pub url: String,
    /// Headers the upload must carry exactly.
    pub headers: std::collections::BTreeMap<String, String>,
    /// True for a resumable session (send `Content-Range` chunks; query with `bytes */size`).
    pub resumable: bool,
    /// Chunk size for resumable sessions.
    pub chunk_size: u64,
    /// The field's size limit.
    pub max_size: u64,
    /// The content type the upload is bound to.
    pub content_type: String,
    /// Expiry of ticket and URL, Unix seconds.
    pub expires: i64,
}

/// Builds the upload routes; see the module docs.
#[derive(Clone)]
pub struct UploadRouter {
    fields: Arc<UploadFields>,
    signer: TicketSigner,
    authorize: Option<Arc<dyn Authorize>>,
    base: String,
}

impl std::fmt::Debug for UploadRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadRouter")
            .field("fields", &self.fields)
            .field("base", &self.base)
            .field("authorize", &self.authorize.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

impl UploadRouter {
    /// Routes for `fields`, tickets signed by `signer`. Choose who may upload before serving:
    /// [`UploadRouter::authorize`] with a hook, or [`UploadRouter::allow_all`]; until then
    /// [`UploadRouter::router`] panics and [`UploadRouter::issue`] refuses every request.
    pub fn new(fields: UploadFields, signer: TicketSigner) -> Self {
        Self { fields: Arc::new(fields), signer, authorize: None, base: DEFAULT_BASE.into() }
    }

    /// Use `hook` to decide who may upload to which field (and to bind tickets to a subject).
    pub fn authorize(mut self, hook: impl Authorize) -> Self {
        self.authorize = Some(Arc::new(hook));
        self
    }

    /// Let anyone upload to every registered field, with unbound tickets (development, public forms).
    /// Logs a warning: a ticket is then a bearer token any client can obtain.
    pub fn allow_all(mut self) -> Self {
        tracing::warn!(
            base = %self.base,
            "upload router: allow_all() lets anyone obtain upload tickets; set an Authorize hook for real users"
        );
        self.authorize = Some(Arc::new(AllowAll));
        self
    }

    /// Mount under `base` instead of `/uploads`.
    pub fn base(mut self, base: impl Into<String>) -> Self {
        self.base = format!("/{}", base.into().trim_matches('/'));
        self
    }

    /// The registered fields.
    pub fn fields(&self) -> &Arc<UploadFields> {
        &self.fields
    }

    /// The verifier for tickets posted back by forms.
    pub fn verifier(&self) -> UploadVerifier {
        UploadVerifier::new(self.signer.clone(), self.fields.clone())
    }

    /// True once who may upload was chosen ([`UploadRouter::authorize`] or [`UploadRouter::allow_all`]).
    pub(crate) fn is_open(&self) -> bool {
        self.authorize.is_some()
    }

    /// The routes: `POST {base}`, `GET {base}/widget.js`, `GET {base}/widget.css`.
    ///
    /// # Panics
    ///
    /// When no authorisation was chosen ([`UploadRouter::authorize`] or [`UploadRouter::allow_all`]).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        assert!(
            self.authorize.is_some(),
            "UploadRouter for {}: choose who may upload with .authorize(hook) or .allow_all() before .router()",
            self.base
        );
        Router::new()
            .route(&self.base, post(issue_ticket))
            .route(
                &format!("{}/widget.js", self.base),
                get(|| async { asset(WIDGET_JS, "text/javascript; charset=utf-8") }),
            )
            .route(&format!("{}/widget.css", self.base), get(|| async { asset(WIDGET_CSS, "text/css; charset=utf-8") }))
            .with_state(Arc::new(self.clone()))
    }

    /// Issue a ticket for `request` (the handler of `POST {base}`, callable directly).
    ///
    /// Order: the hook's [`Authorize::authenticate`] first (so a caller it refuses learns nothing,
    /// not even which field names exist), then the body (JSON only), the field, its limits, and the
    /// hook's per-field [`Authorize::authorize`].
    pub async fn issue(&self, parts: &Parts, body: &[u8]) -> Result<TicketResponse, Refusal> {
        let Some(authorize) = &self.authorize else {
            tracing::error!(base = %self.base, "upload router has no Authorize hook: every ticket request is refused");
            return Err(Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "uploads_not_configured", UNAVAILABLE));
        };
        authorize.authenticate(parts).await?;
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| MediaType::parse(v).ok())
            .is_some_and(|t| t.essence() == "application/json");
        if !is_json {
            return Err(Refusal::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "json_required", NOT_UNDERSTOOD)
                .with_detail("send the ticket request with `Content-Type: application/json`"));
        }
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            Refusal::bad_request("invalid_json", NOT_UNDERSTOOD)
                .with_detail(format_args!("the body must be JSON {{field, filename, size, content_type}}: {e}"))
        })?;
        if let Some(obj) = value.as_object()
            && let Some(k) = ["path", "name", "key", "temp_name", "object"].iter().find(|k| obj.contains_key(**k))
        {
            return Err(Refusal::bad_request("raw_path_refused", NOT_UNDERSTOOD).with_detail(format_args!(
                "`{k}` is not accepted: the server chooses object names; send `filename` only"
            )));
        }
        let req: TicketRequest = serde_json::from_value(value).map_err(|e| {
            Refusal::bad_request("invalid_request", NOT_UNDERSTOOD)
                .with_detail(format_args!("expected {{field, filename, size, content_type}}: {e}"))
        })?;
        let field = self.fields.get(&req.field).ok_or_else(|| {
            Refusal::new(StatusCode::NOT_FOUND, "unknown_field", NOT_UNDERSTOOD).with_detail(format_args!(
                "`{}` is not an upload field; use one of the registered `entity.column` ids",
                req.field
            ))
        })?;
        if req.size > field.max_size {
            let message = format!(
                "The file is {}; the largest file accepted here is {}.",
                size_text(req.size),
                size_text(field.max_size)
            );
            return Err(Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message).with_detail(format_args!(
                "the file is {} bytes; `{}` accepts at most {} bytes",
                req.size, field.id, field.max_size
            )));
        }
        let content_type = effective_content_type(&req.content_type, &req.filename)?;
        if !field.accepts(&content_type) {
            let message = format!("Files of this type are not accepted here. Accepted: {}.", field.accept.join(", "));
            return Err(Refusal::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type_refused", message).with_detail(
                format_args!("`{}` does not accept {content_type}; accepted: {}", field.id, field.accept.join(", ")),
            ));
        }
        let subject = authorize.authorize(parts, field).await?.subject;

        let store = &field.store;
        let location = normalize_location(store.key(), &store.config().location).map_err(|e| {
            tracing::error!(field = %field.id, store = store.key(), "store location is invalid: {e}");
            Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "store_misconfigured", UNAVAILABLE)
        })?;
        let name = filename::temp_name(&field.ingress_prefix, &location, &req.filename);
        let original_name = filename::sanitize_filename(&req.filename, 255);
        let resumable = req.size > field.resumable_threshold;
        let origin = parts.headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_string);
        let opts = SignedUploadOptions {
            content_type: content_type.clone(),
            // Bound to the declared size: the bytes sent may not exceed what the ticket was issued for.
            max_size: req.size,
            create_only: true,
            expires_in: field.ticket_ttl,
            resumable,
            origin,
            size: Some(req.size),
            ..SignedUploadOptions::default()
        };
        let presigned = store.signed_upload(&name, opts).await.map_err(|e| {
            tracing::warn!(field = %field.id, store = store.key(), "signed upload failed: {e}");
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                "storage_unavailable",
                "The storage could not start the upload. Try again in a moment.",
            )
        })?;
        let expires = Utc::now().timestamp() + field.ticket_ttl.as_secs() as i64;
        let claims = TicketClaims {
            v: TICKET_VERSION,
            store: store.key().to_string(),
            field: field.id.clone(),
            name,
            original_name,
            max_size: field.max_size,
            size: req.size,
            content_type: content_type.clone(),
            expires,
            nonce: uuid::Uuid::new_v4().to_string(),
            sub: subject,
        };
        Ok(TicketResponse {
            ticket: self.signer.issue(&claims),
            method: presigned.method,
            url: presigned.url,
            headers: presigned.headers,
            resumable,
            chunk_size: field.chunk_size,
            max_size: field.max_size,
            content_type,
            expires,
        })
    }
}

/// The declared content type (or one guessed from the file name), parsed strictly and normalised to
/// its essence plus a charset ([`MediaType`]); refused when malformed.
fn effective_content_type(declared: &str, filename: &str) -> Result<String, Refusal> {
    let declared = declared.trim();
    let ct = if declared.is_empty() {
        mime_guess::from_path(filename).first_or_octet_stream().essence_str().to_string()
    } else {
        declared.to_string()
    };
    MediaType::parse(&ct).map(|t| t.to_string()).map_err(|e| {
        Refusal::bad_request("invalid_content_type", "The file's type could not be recognised. Choose another file.")
            .with_detail(format_args!("content type {ct:?}: {e}"))
    })
}

async fn issue_ticket(State(router): State<Arc<UploadRouter>>, parts: Parts, body: Bytes) -> Response {
    match router.issue(&parts, &body).await {
        Ok(answer) => {
            let mut response = axum::Json(answer).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}
