//! Why a token was refused.

use reqwest::StatusCode;

/// A refused (or unverifiable) ID token. [`AuthError::status`] is the HTTP status to answer with; the
/// `Display` text is for the log, never for the client (which gets only a generic message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header.
    #[error(
        "no Authorization header: the caller must send `Authorization: Bearer <Google ID token>` (configure the push subscription with --push-auth-service-account)"
    )]
    Missing,
    /// More than one `Authorization` header (the count): refused whatever they hold.
    #[error(
        "{0} Authorization headers: a request must carry exactly one (RFC 9110); check that no proxy adds a second"
    )]
    RepeatedHeader(usize),
    /// The header is not `Bearer <JWT>`, or the JWT does not parse.
    #[error("malformed bearer token: {0}")]
    Malformed(String),
    /// The JWT header names an algorithm other than RS256 (`none`, HS256, ...).
    #[error("token algorithm `{0}` refused: only RS256 (Google-signed) tokens are accepted")]
    UnsupportedAlgorithm(String),
    /// No key with the token's `kid` in the JWKS, even after a refresh.
    #[error("token key id {0:?} is not in the JWKS (after a refresh)")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` is in the past (beyond the allowed skew).
    #[error("token expired")]
    Expired,
    /// `iat` or `nbf` is in the future (beyond the allowed skew).
    #[error("token not yet valid (iat/nbf in the future)")]
    NotYetValid,
    /// `aud` is not this endpoint's URL.
    #[error(
        "token audience {found:?} is not this endpoint ({expected:?}); set the subscription's --push-auth-token-audience or the router's external base URL"
    )]
    WrongAudience {
        /// The token's audience.
        found: String,
        /// The audiences accepted here.
        expected: Vec<String>,
    },
    /// `iss` is not an accepted issuer.
    #[error("token issuer {0:?} is not accepted")]
    WrongIssuer(String),
    /// A required claim is absent or has the wrong type.
    #[error("token claim `{0}` missing or malformed")]
    BadClaim(String),
    /// `email_verified` is not `true`.
    #[error("token e-mail {0:?} is not verified")]
    EmailNotVerified(String),
    /// A valid token, from an identity the allow-list does not name.
    #[error("caller {0:?} is not in the invoker allow-list")]
    EmailNotAllowed(String),
    /// No allow-list is configured and authentication was not disabled explicitly: fail closed.
    #[error(
        "no invoker allow-list configured: list the push service account in SEA_GCP_INVOKER_EMAILS (read by \
         InvokerPolicy::with_env_fallback) or add it with InvokerPolicy::allow_email, or disable authentication \
         explicitly"
    )]
    NoAllowList,
    /// The JWKS could not be fetched (and no cached key set holds the token's key).
    #[error("JWKS unavailable: {0}")]
    JwksUnavailable(String),
}

impl AuthError {
    /// The HTTP status for this refusal: 401 for a missing or invalid token, 403 for a valid token from
    /// an identity not allowed (or when no allow-list exists), 503 when the keys could not be fetched
    /// (so the caller retries).
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::EmailNotAllowed(_) | AuthError::NoAllowList => StatusCode::FORBIDDEN,
            AuthError::JwksUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// A stable machine-readable code for logs and metrics (`missing_token`, `expired`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::RepeatedHeader(_) => "repeated_authorization",
            AuthError::Malformed(_) => "malformed_token",
            AuthError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongAudience { .. } => "wrong_audience",
            AuthError::WrongIssuer(_) => "wrong_issuer",
            AuthError::BadClaim(_) => "bad_claim",
            AuthError::EmailNotVerified(_) => "email_not_verified",
            AuthError::EmailNotAllowed(_) => "email_not_allowed",
            AuthError::NoAllowList => "no_allow_list",
            AuthError::JwksUnavailable(_) => "jwks_unavailable",
        }
    }
}
