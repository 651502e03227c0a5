//! OIDC ID tokens for calling other Cloud Run services (`Authorization: Bearer <id token>`).

use base64::Engine as _;

use super::MetadataClient;
use crate::{Error, Result};

/// A cached ID token is handed out while it has at least this many seconds left.
const MIN_REMAINING_SECS: i64 = 300;
/// At most this many audiences are remembered; beyond, the cache starts again.
const MAX_AUDIENCES: usize = 64;

impl MetadataClient {
    /// A Google-signed ID token (a JWT) for `audience` (the receiving service's URL), with the `email`
    /// claim included (`format=full`). Cached per audience and handed out again while it has at least
    /// 5 minutes left before its `exp` (Google's are valid for an hour), so calling this per outgoing
    /// request costs one metadata request per audience and hour.
    pub async fn identity_token(&self, audience: &str) -> Result<String> {
        if audience.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "an ID token needs an audience: the URL of the service that will receive it".into(),
            ));
        }
        let now = chrono::Utc::now().timestamp();
        if let Some((token, exp)) = self.identities().get(audience)
            && exp - now >= MIN_REMAINING_SECS
        {
            return Ok(token.clone());
        }
        let path = format!(
            "instance/service-accounts/default/identity?audience={}&format=full",
            crate::encoding::component_iter(audience)
        );
        let token = self.get(&path).await?;
        if token.split('.').count() != 3 {
            return Err(Error::Metadata {
                path: "instance/service-accounts/default/identity".into(),
                status: None,
                message: "the answer is not a JWT (three dot-separated parts)".into(),
            });
        }
        if let Some(exp) = expiry(&token) {
            let mut cache = self.identities();
            if cache.len() >= MAX_AUDIENCES && !cache.contains_key(audience) {
                cache.clear();
            }
            cache.insert(audience.to_string(), (token.clone(), exp));
        }
        Ok(token)
    }

    fn identities(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, i64)>> {
        self.inner.identities.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `exp` claim of a JWT (not verified: the token comes from the metadata server, and is only
/// cached by it). None when it cannot be read, and then the token is not cached.
fn expiry(jwt: &str) -> Option<i64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?.get("exp")?.as_i64()
}
