//! Upload tickets: what the server hands a browser with its upload URL, and what the form posts back.
//!
//! A ticket is `base64url(JSON claims) "." base64url(HMAC-SHA256(secret, "sea-gcp-ticket.v1." payload))`.
//! The claims bind the store, the field (`entity.column`), the server-chosen temp name, the size limit,
//! the content type, an expiry and a random nonce, so a client can neither name an object it was not
//! issued nor reuse a ticket for another field, and optionally a subject (user or session id), so a
//! leaked ticket cannot be posted by another account. Verification compares the signature in constant time
//! (`hmac`'s `verify_slice`) before reading any claim.
//!
//! A ticket promotes at most once for its whole lifetime: the save protocol records its nonce in the
//! used-ticket table ([`UsedTicketTable`](crate::promote::UsedTicketTable)) in the row's transaction
//! and refuses a second promotion with 409 `ticket_replayed`. [`TicketLedger`] is that check as a
//! trait for code outside the save protocol; [`UsedTickets`] is the in-memory ledger used by tests and
//! single-process tools.

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::Result;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation for ticket MACs (a local-store URL signature can never pass as a ticket).
const DOMAIN: &[u8] = b"sea-gcp-ticket.v1.";

/// Version of the claims layout.
pub const TICKET_VERSION: u8 = 1;

/// Longest ticket accepted for decoding (a temp name is at most 1,024 bytes; the rest is small).
pub(crate) const MAX_TICKET_LEN: usize = 4096;

/// What a ticket binds. Every field is covered by the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    /// Layout version ([`TICKET_VERSION`]).
    pub v: u8,
    /// Store key (`media`, ...).
    pub store: String,
    /// Field id, `entity.column`.
    pub field: String,
    /// Temp object name (relative to the store's location), chosen by the server.
    pub name: String,
    /// The file name the user picked (display only; never used as a path).
    pub original_name: String,
    /// Largest accepted size in bytes.
    pub max_size: u64,
    /// The size the browser declared.
    pub size: u64,
    /// Content type the upload is bound to.
    pub content_type: String,
    /// Expiry, Unix seconds. The ticket must be posted back (and promoted) before it.
    pub expires: i64,
    /// Random nonce (uuid v4), so two tickets are never equal; recorded when the ticket is promoted,
    /// so that it promotes at most once.
    pub nonce: String,
    /// The subject (user or session id) the authorisation hook bound the ticket to: only a request
    /// of the same subject may post it. Absent: unbound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

/// Why a ticket (or a form value claiming to be one) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketProblem {
    /// Not a ticket at all (a raw path, garbage, wrong layout).
    Malformed,
    /// The signature does not match: forged or tampered.
    BadSignature,
    /// The ticket's expiry has passed.
    Expired,
    /// Issued for another field or store.
    WrongField,
    /// Bound to another subject (user or session) than the one posting it.
    WrongSubject,
    /// The ticket was already promoted once.
    Replayed,
    /// The upload the ticket names is missing or breaks the ticket's limits.
    BadUpload,
}

impl TicketProblem {
    /// Stable machine-readable code (the `error` of a JSON refusal).
    pub fn code(&self) -> &'static str {
        match self {
            TicketProblem::Malformed => "malformed_ticket",
            TicketProblem::BadSignature => "bad_ticket_signature",
            TicketProblem::Expired => "ticket_expired",
            TicketProblem::WrongField => "ticket_wrong_field",
            TicketProblem::WrongSubject => "ticket_wrong_subject",
            TicketProblem::Replayed => "ticket_replayed",
            TicketProblem::BadUpload => "upload_invalid",
        }
    }

    /// The plain message a user reads for this problem (no field ids, no code).
    pub(crate) fn user_message(&self) -> &'static str {
        match self {
            TicketProblem::Malformed | TicketProblem::BadSignature => {
                "The uploaded file could not be recognised. Upload the file again."
            }
            TicketProblem::Expired => "The upload expired before the form was saved. Upload the file again.",
            TicketProblem::WrongField => "This file was uploaded for another field. Upload it again here.",
            TicketProblem::WrongSubject => "This file was uploaded in another session. Upload the file again.",
            TicketProblem::Replayed => "This file was already saved.",
            TicketProblem::BadUpload => "The uploaded file could not be used. Upload the file again.",
        }
    }

    /// The HTTP status a refusal of this kind maps to.
    pub fn status(&self) -> u16 {
        match self {
            TicketProblem::Malformed | TicketProblem::WrongField | TicketProblem::BadUpload => 400,
            TicketProblem::BadSignature | TicketProblem::WrongSubject => 403,
            TicketProblem::Expired => 410,
            TicketProblem::Replayed => 409,
        }
    }
}

/// A refused ticket: the problem, a plain message for the person at the form and the developer
/// detail (what exactly failed; for the log, never shown to users).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct TicketRejection {
    /// What kind of problem.
    pub problem: TicketProblem,
    /// The field the ticket was posted for.
    pub field: String,
    /// What the user reads: plain words, no field ids or code (`TicketProblem::user_message` unless
    /// a more precise one was given with `TicketRejection::with_message`).
    pub message: String,
    /// What a developer reads in the log: which check failed, with the field id.
    pub detail: String,
}

impl TicketRejection {
    /// A rejection for `field`; `detail` is the developer's explanation (logged), the user's message is
    /// the problem's plain one.
    pub fn new(problem: TicketProblem, field: &str, detail: impl Into<String>) -> Self {
        Self { problem, field: field.to_string(), message: problem.user_message().to_string(), detail: detail.into() }
    }

    /// Replace the user's message by a more precise plain one.
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

impl From<TicketRejection> for crate::Error {
    fn from(r: TicketRejection) -> Self {
        crate::Error::Validation { field: r.field, message: format!("{} ({})", r.detail, r.problem.code()) }
    }
}

/// Issues and verifies tickets with one server secret.
#[derive(Clone)]
pub struct TicketSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketSigner(..)")
    }
}

impl TicketSigner {
    /// A signer with `secret` (keep it stable across restarts and replicas: tickets outlive requests).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self { secret: secret.as_ref().to_vec() }
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(payload.as_bytes());
        mac
    }

    /// The compact string form of `claims`.
    pub fn issue(&self, claims: &TicketClaims) -> String {
        self.seal(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise")))
    }

    /// `payload.signature` for an encoded payload (the fuzz targets seal arbitrary payloads with it, so
    /// that the claims parser behind the signature check is reached).
    pub(crate) fn seal(&self, payload: &str) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(payload).finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// Check the signature and expiry of `ticket` (at `now_unix`) and return its claims. Does not check
    /// the field binding: use [`TicketSigner::verify`] for that.
    pub fn decode(&self, ticket: &str, field: &str, now_unix: i64) -> Result<TicketClaims, TicketRejection> {
        let malformed = |why: &str| {
            TicketRejection::new(
                TicketProblem::Malformed,
                field,
                format!("the value posted for `{field}` is not an upload ticket ({why}); upload the file again"),
            )
        };
        if ticket.len() > MAX_TICKET_LEN {
            return Err(malformed("too long"));
        }
        let (payload, sig) = ticket.trim().split_once('.').ok_or_else(|| malformed("no signature part"))?;
        if payload.is_empty() || sig.contains('.') {
            return Err(malformed("wrong layout"));
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| malformed("the signature is not base64url"))?;
        self.mac(payload).verify_slice(&sig).map_err(|_| {
            TicketRejection::new(
                TicketProblem::BadSignature,
                field,
                format!("the upload ticket for `{field}` was not issued by this server or was altered; upload the file again"),
            )
        })?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| malformed("the payload is not base64url"))?;
        let claims: TicketClaims = serde_json::from_slice(&json).map_err(|_| malformed("unreadable claims"))?;
        if claims.v != TICKET_VERSION {
            return Err(malformed("unknown ticket version"));
        }
        if claims.expires < now_unix {
            return Err(TicketRejection::new(
                TicketProblem::Expired,
                field,
                format!("the upload ticket for `{field}` has expired; upload the file again"),
            ));
        }
        Ok(claims)
    }

    /// Verify `ticket` for `field` in `store` at `now_unix`: signature, expiry and binding.
    pub fn verify(
        &self,
        ticket: &str,
        store: &str,
        field: &str,
        now_unix: i64,
    ) -> Result<TicketClaims, TicketRejection> {
        let claims = self.decode(ticket, field, now_unix)?;
        if claims.field != field || claims.store != store {
            return Err(TicketRejection::new(
                TicketProblem::WrongField,
                field,
                format!(
                    "the upload ticket was issued for `{}` in store `{}`, not for `{field}` in store `{store}`",
                    claims.field, claims.store
                ),
            ));
        }
        Ok(claims)
    }
}

/// Records promoted temp names so that a ticket promotes at most once. The promotion side implements it
/// (the outbox's unique temp-name constraint); [`UsedTickets`] is the in-memory version.
#[async_trait]
pub trait TicketLedger: Send + Sync {
    /// Claim `temp_name` in `store` for promotion. `Ok(true)` the first time; `Ok(false)` when it was
    /// claimed before (a replay).
    async fn claim(&self, store: &str, temp_name: &str) -> Result<bool>;
}

/// In-memory [`TicketLedger`] (tests, single-process tools; forgets on restart).
#[derive(Debug, Default)]
pub struct UsedTickets {
    used: Mutex<HashSet<(String, String)>>,
}

impl UsedTickets {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many temp names were claimed.
    pub fn len(&self) -> usize {
        self.used.lock().expect("ledger lock").len()
    }

    /// True when nothing was claimed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl TicketLedger for UsedTickets {
    async fn claim(&self, store: &str, temp_name: &str) -> Result<bool> {
        Ok(self.used.lock().expect("ledger lock").insert((store.to_string(), temp_name.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TicketClaims {
        TicketClaims {
            v: TICKET_VERSION,
            store: "media".into(),
            field: "document.file".into(),
            name: "ingress/x/a.pdf".into(),
            original_name: "a.pdf".into(),
            max_size: 10,
            size: 5,
            content_type: "application/pdf".into(),
            expires: 1000,
            nonce: "n".into(),
            sub: None,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = TicketSigner::new("k");
        let t = s.issue(&claims());
        assert_eq!(s.verify(&t, "media", "document.file", 999).unwrap(), claims());
        let p = |r: Result<TicketClaims, TicketRejection>| r.unwrap_err().problem;
        assert_eq!(p(s.verify(&t, "media", "document.file", 1001)), TicketProblem::Expired);
        assert_eq!(p(s.verify(&t, "media", "document.cover", 999)), TicketProblem::WrongField);
        assert_eq!(p(s.verify(&t, "other", "document.file", 999)), TicketProblem::WrongField);
        assert_eq!(
            p(TicketSigner::new("other").verify(&t, "media", "document.file", 999)),
            TicketProblem::BadSignature
        );
        assert_eq!(p(s.verify("ingress/x/a.pdf", "media", "document.file", 999)), TicketProblem::Malformed);
        let mut forged = claims();
        forged.max_size = 1 << 40;
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let sig = t.split_once('.').unwrap().1;
        assert_eq!(p(s.verify(&format!("{body}.{sig}"), "media", "document.file", 999)), TicketProblem::BadSignature);
    }

    #[tokio::test]
    async fn ledger_claims_once() {
        let l = UsedTickets::new();
        assert!(l.claim("media", "a").await.unwrap());
        assert!(!l.claim("media", "a").await.unwrap());
        assert!(l.claim("static", "a").await.unwrap());
        assert_eq!(l.len(), 2);
    }
}
