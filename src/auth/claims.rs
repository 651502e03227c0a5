//! The claims of a Google ID token, and the identity a verified one yields.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The caller identity from a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCaller {
    /// The service account (or user) e-mail (`email`), verified by Google.
    pub email: String,
    /// The stable subject id (`sub`).
    pub subject: String,
    /// The audience the token was minted for (`aud`).
    pub audience: String,
    /// The issuer (`iss`).
    pub issuer: String,
    /// When the token was issued (`iat`).
    pub issued_at: DateTime<Utc>,
    /// When the token expires (`exp`).
    pub expires_at: DateTime<Utc>,
}

/// The claims read from the token (after the signature verified).
#[derive(Debug, Deserialize)]
pub(crate) struct IdTokenClaims {
    pub iss: String,
    pub aud: Audience,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<EmailVerified>,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub nbf: Option<i64>,
}

/// `aud`: a string, or (per RFC 7519) an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(crate) fn values(&self) -> Vec<&str> {
        match self {
            Audience::One(s) => vec![s.as_str()],
            Audience::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// `email_verified`: Google sends a boolean; some issuers send the string `"true"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum EmailVerified {
    Bool(bool),
    Text(String),
}

impl EmailVerified {
    pub(crate) fn is_true(&self) -> bool {
        match self {
            EmailVerified::Bool(b) => *b,
            EmailVerified::Text(s) => s == "true",
        }
    }
}
