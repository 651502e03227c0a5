//! [`OidcVerifier`]: one ID token in, a [`VerifiedCaller`] or an [`AuthError`] out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use sha2::{Digest, Sha256};

use super::claims::IdTokenClaims;
use super::{AuthError, JwksCache, VerifiedCaller};

/// The issuers of Google ID tokens.
pub(crate) const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Longest token accepted (Google's are about 1 KB).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Options of an [`OidcVerifier`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifierOptions {
    /// Accepted `iss` values (default `https://accounts.google.com` and `accounts.google.com`).
    pub issuers: Vec<String>,
    /// Allowed clock skew for `exp`, `iat` and `nbf` (default 60 s).
    pub leeway: Duration,
    /// Require `email_verified = true` and an `email` claim (default true).
    pub require_verified_email: bool,
    /// How many verified tokens to remember (by SHA-256 of the whole token) so that a sender reusing a
    /// token skips the RSA verification until the token expires (default 10,000; 0 turns it off). The
    /// time, audience and allow-list checks still run on every request.
    pub verified_cache_capacity: usize,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        Self {
            issuers: GOOGLE_ISSUERS.iter().map(|s| s.to_string()).collect(),
            leeway: Duration::from_secs(60),
            require_verified_email: true,
            verified_cache_capacity: 10_000,
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
    /// Set [`VerifierOptions::verified_cache_capacity`] (0: verify every signature).
    pub fn with_verified_cache_capacity(mut self, capacity: usize) -> Self {
        self.verified_cache_capacity = capacity;
        self
    }
}

/// What a verified token established, for its lifetime.
#[derive(Clone)]
struct Verified {
    caller: VerifiedCaller,
    audiences: Vec<String>,
    nbf: Option<i64>,
}

/// Verifies Google-signed (RS256) ID tokens against a [`JwksCache`]. Cheap to clone; share one per process
/// so that every endpoint uses the same key cache.
#[derive(Clone)]
pub struct OidcVerifier {
    jwks: Arc<JwksCache>,
    options: Arc<VerifierOptions>,
    verified: Arc<Mutex<HashMap<[u8; 32], Verified>>>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier").field("jwks", &self.jwks).field("options", &self.options).finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// A verifier of Google ID tokens (Google's JWKS and issuers).
    pub fn google() -> Self {
        Self::new(JwksCache::google(), VerifierOptions::default())
    }

    /// A verifier using `jwks` (a test's fake server, with [`JwksCache::new`]) and `options`.
    pub fn new(jwks: JwksCache, options: VerifierOptions) -> Self {
        Self { jwks: Arc::new(jwks), options: Arc::new(options), verified: Arc::default() }
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
        if self.options.verified_cache_capacity == 0 {
            return Ok(self.verify_fully(token, audiences).await?.caller);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(&digest).cloned();
        let verified = match remembered {
            Some(v) => v,
            None => {
                let v = self.verify_fully(token, audiences).await?;
                self.remember(digest, v.clone());
                v
            }
        };
        // Per request, also for a remembered token: time, then audience.
        let now = Utc::now().timestamp();
        let leeway = self.options.leeway.as_secs() as i64;
        if verified.caller.expires_at.timestamp() + leeway < now {
            return Err(AuthError::Expired);
        }
        if verified.caller.issued_at.timestamp() > now + leeway || verified.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(AuthError::NotYetValid);
        }
        let Some(audience) = verified.audiences.iter().find(|a| audiences.iter().any(|e| e == *a)) else {
            return Err(AuthError::WrongAudience { found: verified.audiences.join(" "), expected: audiences.to_vec() });
        };
        let mut caller = verified.caller;
        caller.audience = audience.clone();
        Ok(caller)
    }

    fn remember(&self, digest: [u8; 32], verified: Verified) {
        let mut map = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.options.verified_cache_capacity {
            let now = Utc::now().timestamp();
            map.retain(|_, v| v.caller.expires_at.timestamp() > now);
            if map.len() >= self.options.verified_cache_capacity {
                map.clear();
            }
        }
        map.insert(digest, verified);
    }

    /// Signature and claims (everything but the per-request checks, which [`Self::verify`] repeats).
    async fn verify_fully(&self, token: &str, audiences: &[String]) -> Result<Verified, AuthError> {
        let header = super::unverified::header(token)?;
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
        if !self.options.issuers.contains(&claims.iss) {
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
        let caller = VerifiedCaller {
            email,
            subject: claims.sub.unwrap_or_default(),
            audience: audience.to_string(),
            issuer: claims.iss,
            issued_at: timestamp(iat),
            expires_at: timestamp(claims.exp),
        };
        Ok(Verified { caller, audiences: token_audiences.iter().map(|a| a.to_string()).collect(), nbf: claims.nbf })
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
