//! [`OidcVerifier`]: one ID token in, a [`VerifiedCaller`] or an [`AuthError`] out.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::claims::IdTokenClaims;
use super::{AuthError, JwksCache, VerifiedCaller};

/// The issuers of Google ID tokens.
pub const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Longest token accepted (Google's are about 1 KB).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Options of an [`OidcVerifier`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifierOptions {
    /// Accepted `iss` values (default [`GOOGLE_ISSUERS`]).
    pub issuers: Vec<String>,
    /// Allowed clock skew for `exp`, `iat` and `nbf` (default 60 s).
    pub leeway: Duration,
    /// Require `email_verified = true` and an `email` claim (default true).
    pub require_verified_email: bool,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        Self {
            issuers: GOOGLE_ISSUERS.iter().map(|s| s.to_string()).collect(),
            leeway: Duration::from_secs(60),
            require_verified_email: true,
        }
    }
}

impl VerifierOptions {
    /// Set the accepted issuers.
    pub fn with_issuers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.issuers = issuers.into_iter().map(Into::into).collect();
        self
    }
    /// Set the allowed clock skew.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
}

/// Verifies Google-signed (RS256) ID tokens against a [`JwksCache`]. Cheap to clone; share one per process
/// so that every endpoint uses the same key cache.
#[derive(Debug, Clone)]
pub struct OidcVerifier {
    jwks: Arc<JwksCache>,
    options: Arc<VerifierOptions>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl OidcVerifier {
    /// A verifier of Google ID tokens (Google's JWKS and issuers).
    pub fn google() -> Self {
        Self::new(JwksCache::google(), VerifierOptions::default())
    }

    /// A verifier using `jwks` (a test's fake server, with [`JwksCache::new`]) and `options`.
    pub fn new(jwks: JwksCache, options: VerifierOptions) -> Self {
        Self { jwks: Arc::new(jwks), options: Arc::new(options) }
    }

    /// The key cache (for its fetch count).
    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// The options.
    pub fn options(&self) -> &VerifierOptions {
        &self.options
    }

    /// Verify `token` (the JWT, without `Bearer `) for one of `audiences`. Checks, in order: size and
    /// shape, `alg == RS256`, the key (`kid`), the signature, `exp`, `iat`/`nbf`, `iss`, `aud`,
    /// `email_verified`. Allow-lists are the caller's business ([`super::InvokerPolicy`]).
    pub async fn verify(&self, token: &str, audiences: &[String]) -> Result<VerifiedCaller, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed(format!("token longer than {MAX_TOKEN_LEN} bytes")));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(AuthError::Malformed("not a JWT (three dot-separated parts)".into()));
        };
        let header =
            URL_SAFE_NO_PAD.decode(header).map_err(|_| AuthError::Malformed("header is not base64url".into()))?;
        let header: RawHeader =
            serde_json::from_slice(&header).map_err(|e| AuthError::Malformed(format!("header JSON: {e}")))?;
        if header.alg != "RS256" {
            return Err(AuthError::UnsupportedAlgorithm(header.alg));
        }
        let kid = header.kid.ok_or_else(|| AuthError::Malformed("header has no `kid`".into()))?;
        let key = self.jwks.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = self.options.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // `aud` and `iss` are checked below, to report which one failed and what was expected.
        validation.validate_aud = false;
        validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
        let data = jsonwebtoken::decode::<IdTokenClaims>(token, &key, &validation).map_err(map_error)?;
        let claims = data.claims;

        let now = Utc::now().timestamp();
        let leeway = self.options.leeway.as_secs() as i64;
        let iat = claims.iat.ok_or_else(|| AuthError::BadClaim("iat".into()))?;
        if iat > now + leeway || claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(AuthError::NotYetValid);
        }
        if !self.options.issuers.iter().any(|i| *i == claims.iss) {
            return Err(AuthError::WrongIssuer(claims.iss));
        }
        let token_audiences = claims.aud.values();
        let Some(audience) = token_audiences.iter().find(|a| audiences.iter().any(|e| e == *a)) else {
            return Err(AuthError::WrongAudience { found: token_audiences.join(" "), expected: audiences.to_vec() });
        };
        let email = claims.email.unwrap_or_default();
        if self.options.require_verified_email {
            if email.is_empty() {
                return Err(AuthError::BadClaim("email".into()));
            }
            if !claims.email_verified.as_ref().is_some_and(|v| v.is_true()) {
                return Err(AuthError::EmailNotVerified(email));
            }
        }
        Ok(VerifiedCaller {
            email,
            subject: claims.sub.unwrap_or_default(),
            audience: audience.to_string(),
            issuer: claims.iss,
            issued_at: timestamp(iat),
            expires_at: timestamp(claims.exp),
        })
    }
}

fn timestamp(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fn map_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAlgorithm => AuthError::UnsupportedAlgorithm("(mismatch)".into()),
        ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => AuthError::BadClaim(c.clone()),
        ErrorKind::Json(err) => AuthError::BadClaim(format!("claims JSON: {err}")),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            AuthError::Malformed("token does not decode".into())
        }
        other => AuthError::Malformed(format!("{other:?}")),
    }
}
