//! The IAM signBlob signer: `GOOG4-RSA-SHA256` signatures made by Google with a service account's
//! Google-managed key, so no key file is needed (Cloud Run, GKE, GCE).
//!
//! One call per signature: `POST {endpoint}/v1/projects/-/serviceAccounts/{email}:signBlob` with
//! `{"payload": base64}` and `Authorization: Bearer <token>`, answered by `{"keyId", "signedBlob"}`. The
//! caller's identity needs `iam.serviceAccounts.signBlob` on the account (roles/iam.serviceAccountTokenCreator).
//! The account's email is configured or, on Google Cloud, read once from the metadata server.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::token::{self, CachedTokenSource, MetadataServer, TokenSource};
use super::{Signer, SigningAlgorithm};
use crate::{Error, Result};

/// The IAM Credentials API.
pub(crate) const DEFAULT_IAM_ENDPOINT: &str = "https://iamcredentials.googleapis.com";

/// Signs through IAM Credentials `signBlob`.
pub struct IamSigner {
    email: tokio::sync::OnceCell<String>,
    metadata: MetadataServer,
    tokens: Arc<CachedTokenSource>,
    endpoint: String,
    client: reqwest::Client,
}

impl fmt::Debug for IamSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IamSigner")
            .field("email", &self.email.get())
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignBlobResponse {
    signed_blob: String,
}

impl IamSigner {
    /// Sign as `email` (None: the metadata server's default account) with tokens from `tokens`.
    pub fn new(email: Option<String>, tokens: Arc<dyn TokenSource>) -> Self {
        let cell = tokio::sync::OnceCell::new();
        if let Some(email) = email.filter(|e| !e.trim().is_empty()) {
            let _ = cell.set(email.trim().to_string());
        }
        Self {
            email: cell,
            metadata: MetadataServer::from_env(),
            tokens: Arc::new(CachedTokenSource::new(tokens)),
            endpoint: DEFAULT_IAM_ENDPOINT.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Sign as `email` with Application Default Credentials ([`token::application_default`]).
    pub fn application_default(email: Option<String>) -> Result<Self> {
        Ok(Self::new(email, token::application_default()?))
    }

    /// Use another IAM Credentials endpoint (a test fake, a private endpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into().trim_end_matches('/').to_string();
        self
    }

    /// Ask this metadata server for the account email (default: [`MetadataServer::from_env`]).
    pub fn with_metadata_server(mut self, metadata: MetadataServer) -> Self {
        self.metadata = metadata;
        self
    }

    /// The token cache (for its fetch count).
    pub fn tokens(&self) -> &CachedTokenSource {
        &self.tokens
    }

    async fn email(&self) -> Result<&str> {
        self.email
            .get_or_try_init(|| async {
                self.metadata
                    .service_account_email()
                    .await
                    .map_err(|e| token::metadata_signing_error("the service account email", e))
            })
            .await
            .map(String::as_str)
    }

    async fn sign_blob(&self, email: &str, payload: &[u8]) -> Result<Vec<u8>> {
        let url = format!("{}/v1/projects/-/serviceAccounts/{email}:signBlob", self.endpoint);
        let body = serde_json::json!({ "payload": base64::engine::general_purpose::STANDARD.encode(payload) });
        for attempt in 0..2 {
            let token = self.tokens.token().await?;
            let response =
                self.client.post(&url).bearer_auth(&token).json(&body).send().await.map_err(|e| Error::Signing {
                    message: format!("IAM signBlob call to {} failed: {e}", self.endpoint),
                    source: Some(Box::new(e)),
                })?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.tokens.invalidate().await;
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            if !status.is_success() {
                let hint = if status == reqwest::StatusCode::FORBIDDEN {
                    format!(
                        "; grant roles/iam.serviceAccountTokenCreator on {email} to the identity running this \
                         code and enable the IAM Credentials API"
                    )
                } else {
                    String::new()
                };
                return Err(Error::signing(format!(
                    "IAM signBlob as {email} answered HTTP {status}: {}{hint}",
                    text.chars().take(300).collect::<String>()
                )));
            }
            let parsed: SignBlobResponse = serde_json::from_str(&text)
                .map_err(|e| Error::signing(format!("IAM signBlob response is not understood: {e}")))?;
            return base64::engine::general_purpose::STANDARD
                .decode(parsed.signed_blob)
                .map_err(|e| Error::signing(format!("IAM signBlob returned a signedBlob that is not base64: {e}")));
        }
        Err(Error::signing(format!(
            "IAM signBlob as {email} rejected two fresh access tokens (HTTP 401): check the credentials"
        )))
    }
}

#[async_trait]
impl Signer for IamSigner {
    fn algorithm(&self) -> SigningAlgorithm {
        SigningAlgorithm::Rsa
    }

    async fn credential_id(&self) -> Result<String> {
        self.email().await.map(str::to_string)
    }

    async fn sign(&self, string_to_sign: &[u8]) -> Result<Vec<u8>> {
        let email = self.email().await?;
        self.sign_blob(email, string_to_sign).await
    }
}
