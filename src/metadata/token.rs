//! The default service account's OAuth access token, cached with one fetch for concurrent callers.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::MetadataClient;
use crate::{Error, Result};

const TOKEN_PATH: &str = "instance/service-accounts/default/token";

/// An access token from the metadata server and when it expires.
#[derive(Clone)]
pub struct MetadataToken {
    /// The bearer token.
    pub token: String,
    /// When it stops working.
    pub expires_at: Instant,
}

impl fmt::Debug for MetadataToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl MetadataClient {
    /// A valid access token for the default service account: the cached one, or a fresh one when it is
    /// missing or within [`MetadataOptions::token_refresh_margin`](super::MetadataOptions) of expiry.
    /// Concurrent callers wait for the same fetch.
    pub async fn access_token(&self) -> Result<String> {
        // The lock is held across the fetch: callers arriving meanwhile wait and then read the cache.
        let mut cached = self.inner.token.lock().await;
        if let Some(t) = cached.as_ref()
            && t.expires_at > Instant::now() + self.inner.options.token_refresh_margin
        {
            return Ok(t.token.clone());
        }
        let fresh = self.fetch_access_token().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Fetch a new access token, bypassing the cache (the server itself may return the same token).
    pub async fn fetch_access_token(&self) -> Result<MetadataToken> {
        let body = self.get(TOKEN_PATH).await?;
        let parsed: TokenResponse = serde_json::from_str(&body).map_err(|e| Error::Metadata {
            path: TOKEN_PATH.into(),
            status: None,
            message: format!("the token response is not understood: {e}"),
        })?;
        if parsed.access_token.is_empty() {
            return Err(Error::Metadata {
                path: TOKEN_PATH.into(),
                status: None,
                message: "the token response holds an empty access_token".into(),
            });
        }
        Ok(MetadataToken {
            token: parsed.access_token,
            expires_at: Instant::now() + Duration::from_secs(parsed.expires_in),
        })
    }

    /// Drop the cached access token (after a service rejected it).
    pub async fn invalidate_access_token(&self) {
        *self.inner.token.lock().await = None;
    }
}
