//! [`InvokerPolicy`]: who may call an endpoint, and for which audience.

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use super::{AuthError, OidcVerifier, VerifiedCaller};

/// Environment variable read by [`InvokerPolicy::with_env_fallback`]: comma-separated invoker e-mails.
pub(crate) const INVOKERS_ENV: &str = "SEA_GCP_INVOKER_EMAILS";

/// The audiences a token for `path_and_query` under `base_url` may carry: the full URL, and the URL
/// without its query string (Pub/Sub's default audience is the push endpoint as configured; a
/// `--push-auth-token-audience` without the query is common). A token for the same path with another
/// query is not among them.
pub fn audiences_for(base_url: &str, path_and_query: &str) -> Vec<String> {
    let base = base_url.trim_end_matches('/');
    let path_and_query =
        if path_and_query.starts_with('/') { path_and_query.to_owned() } else { format!("/{path_and_query}") };
    let full = format!("{base}{path_and_query}");
    match full.split_once('?') {
        Some((without, _)) => vec![full.clone(), without.to_owned()],
        None => vec![full],
    }
}

/// Who may call an endpoint: a verifier, the external base URL audiences are built from, and the e-mail
/// allow-list. Authentication is on unless [`InvokerPolicy::disabled`] is used, which logs a warning.
#[derive(Debug, Clone)]
pub struct InvokerPolicy {
    verifier: Option<OidcVerifier>,
    base_url: String,
    allowed: Vec<String>,
    fallback: Vec<String>,
    extra_audiences: Vec<String>,
}

impl InvokerPolicy {
    /// Verify tokens with `verifier`; audiences are `external_base_url` (e.g. `https://app.example.com`,
    /// the URL the push subscription was configured with) plus the request's path and query.
    pub fn new(verifier: OidcVerifier, external_base_url: impl Into<String>) -> Self {
        Self {
            verifier: Some(verifier),
            base_url: external_base_url.into(),
            allowed: Vec::new(),
            fallback: Vec::new(),
            extra_audiences: Vec::new(),
        }
    }

    /// No authentication at all (local development behind a private network only). Logs a warning now.
    pub fn disabled() -> Self {
        tracing::warn!("push endpoint authentication is DISABLED: anyone who can reach it can post events");
        Self {
            verifier: None,
            base_url: String::new(),
            allowed: Vec::new(),
            fallback: Vec::new(),
            extra_audiences: Vec::new(),
        }
    }

    /// Allow tokens for `email` (the push subscription's `--push-auth-service-account`).
    pub fn allow_email(mut self, email: impl Into<String>) -> Self {
        self.allowed.push(email.into());
        self
    }

    /// Allow each of `emails`.
    pub(crate) fn allow_emails<I, S>(mut self, emails: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed.extend(emails.into_iter().map(Into::into));
        self
    }

    /// The allow-list used when this policy names none (application settings).
    pub fn with_fallback_allow_list<I, S>(mut self, emails: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fallback = emails.into_iter().map(Into::into).collect();
        self
    }

    /// Fallback allow-list from `SEA_GCP_INVOKER_EMAILS` (comma-separated), when set.
    pub fn with_env_fallback(self) -> Self {
        match std::env::var(INVOKERS_ENV) {
            Ok(list) => {
                let emails: Vec<String> =
                    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
                self.with_fallback_allow_list(emails)
            }
            Err(_) => self,
        }
    }

    /// Also accept tokens minted for `audience` (a custom `--push-auth-token-audience`).
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.extra_audiences.push(audience.into());
        self
    }

    /// True when authentication is disabled.
    pub(crate) fn is_disabled(&self) -> bool {
        self.verifier.is_none()
    }

    /// The verifier (None when disabled).
    pub fn verifier(&self) -> Option<&OidcVerifier> {
        self.verifier.as_ref()
    }

    /// The external base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The effective allow-list: this policy's, else the fallback.
    pub(crate) fn allow_list(&self) -> &[String] {
        if self.allowed.is_empty() { &self.fallback } else { &self.allowed }
    }

    /// Check a request: `Ok(None)` when disabled, `Ok(Some(caller))` for a valid token from an allowed
    /// e-mail, else the refusal (401 invalid, 403 not allowed or no allow-list configured). A request
    /// with more than one `Authorization` header is refused first, also when authentication is disabled
    /// ([`AuthError::RepeatedHeader`]): a proxy in front may have checked another copy than this one.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        path_and_query: &str,
    ) -> Result<Option<VerifiedCaller>, AuthError> {
        let authorization = single_authorization(headers)?;
        let Some(verifier) = &self.verifier else { return Ok(None) };
        let token = bearer(authorization.ok_or(AuthError::Missing)?)?;
        let mut audiences = audiences_for(&self.base_url, path_and_query);
        audiences.extend(self.extra_audiences.iter().cloned());
        let caller = verifier.verify(token, &audiences).await?;
        let allowed = self.allow_list();
        if allowed.is_empty() {
            return Err(AuthError::NoAllowList);
        }
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&caller.email)) {
            return Err(AuthError::EmailNotAllowed(caller.email));
        }
        Ok(Some(caller))
    }
}

/// The request's one `Authorization` header (`None` without one), or [`AuthError::RepeatedHeader`] when
/// it has several: RFC 9110 allows a single value, and a proxy that checked the first copy and an
/// application that read another would disagree on who is calling. The one check of both push routers
/// (events and the tasks worker), through [`InvokerPolicy::authorize`].
pub(crate) fn single_authorization(headers: &HeaderMap) -> Result<Option<&HeaderValue>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let first = values.next();
    match values.next() {
        Some(_) => Err(AuthError::RepeatedHeader(2 + values.count())),
        None => Ok(first),
    }
}

/// The token of an `Authorization: Bearer <token>` value. The token must be token68 (RFC 9110): a value
/// with a comma or a space in it (two credentials folded into one header by a proxy) is refused.
fn bearer(value: &HeaderValue) -> Result<&str, AuthError> {
    let value = value.to_str().map_err(|_| AuthError::Malformed("Authorization header is not ASCII".into()))?;
    let (scheme, token) =
        value.split_once(' ').ok_or_else(|| AuthError::Malformed("expected `Bearer <token>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed(format!("scheme `{scheme}` is not Bearer")));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Malformed("empty bearer token".into()));
    }
    let body = token.trim_end_matches('=');
    if !body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)) {
        return Err(AuthError::Malformed("bearer token is not one token68 value".into()));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_with_and_without_query() {
        assert_eq!(
            audiences_for("https://app.example.com/", "/events/k/r?a=1"),
            vec![
                "https://app.example.com/events/k/r?a=1".to_string(),
                "https://app.example.com/events/k/r".to_string()
            ]
        );
        assert_eq!(
            audiences_for("https://app.example.com", "/events/k/r"),
            vec!["https://app.example.com/events/k/r".to_string()]
        );
    }
}
