//! Reading a JWT's header and claims before its signature is checked: the only parsing an
//! unauthenticated caller reaches. The verifier reads the header here (algorithm, key id) to pick the
//! key; the claims are parsed by `jsonwebtoken` only after the signature verified, into the same
//! [`IdTokenClaims`], which the fuzz target also feeds directly.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::AuthError;
use super::claims::IdTokenClaims;

/// A token's header: what the verifier needs before it has a key.
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    /// The signature algorithm (only `RS256` is accepted).
    pub alg: String,
    /// The key id, looked up in the JWKS.
    #[serde(default)]
    pub kid: Option<String>,
}

/// The three dot-separated parts of a compact JWT.
fn parts(token: &str) -> Result<[&str; 3], AuthError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(c), Some(s), None) => Ok([h, c, s]),
        _ => Err(AuthError::Malformed("not a JWT (three dot-separated parts)".into())),
    }
}

/// The header of `token`, unverified.
pub(crate) fn header(token: &str) -> Result<Header, AuthError> {
    let [header, _, _] = parts(token)?;
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| AuthError::Malformed("header is not base64url".into()))?;
    serde_json::from_slice(&header).map_err(|e| AuthError::Malformed(format!("header JSON: {e}")))
}

/// The header and claims of `token`, unverified (the fuzz target's view of a token; the verifier
/// reads claims only from a verified token).
#[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
pub(crate) fn parse_unverified(token: &str) -> Result<(Header, IdTokenClaims), AuthError> {
    let head = header(token)?;
    let [_, claims, _] = parts(token)?;
    let claims = URL_SAFE_NO_PAD.decode(claims).map_err(|_| AuthError::Malformed("claims are not base64url".into()))?;
    let claims: IdTokenClaims =
        serde_json::from_slice(&claims).map_err(|e| AuthError::Malformed(format!("claims JSON: {e}")))?;
    let _ = (claims.aud.values(), claims.email_verified.as_ref().map(|v| v.is_true()));
    Ok((head, claims))
}
