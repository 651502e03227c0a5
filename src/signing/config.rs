//! Choosing a signer from [`SigningConfig`].

use std::path::Path;
use std::sync::Arc;

#[cfg(feature = "gcs")]
use super::IamSigner;
#[cfg(feature = "gcs")]
use super::token::{self, MetadataServer};
use super::{HmacSigner, ServiceAccountKeySigner, Signer};
use crate::config::SigningConfig;
use crate::{Error, Result};

/// Build a signer from configuration.
///
/// - `Auto`: the service-account key named by `GOOGLE_APPLICATION_CREDENTIALS` if it is one; otherwise
///   IAM signBlob as the metadata server's service account, authenticated by Application Default
///   Credentials (the email is looked up on first use, so this does not fail off Google Cloud until a
///   signature is requested).
/// - `ServiceAccountKey { path }`: that key file (read and checked now).
/// - `IamSignBlob { service_account_email }`: IAM signBlob as that account (or the metadata server's).
/// - `Hmac { access_id, secret }`: that HMAC key.
pub async fn signer_from_config(config: &SigningConfig) -> Result<Arc<dyn Signer>> {
    match config {
        SigningConfig::Auto => {
            if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty()) {
                let path = Path::new(&path);
                if credential_type(path)?.as_deref() == Some("service_account") {
                    return Ok(Arc::new(ServiceAccountKeySigner::from_file(path)?));
                }
            }
            #[cfg(feature = "gcs")]
            {
                let signer = IamSigner::new(None, token::application_default()?)
                    .with_metadata_server(MetadataServer::from_env());
                Ok(Arc::new(signer))
            }
            #[cfg(not(feature = "gcs"))]
            Err(without_iam())
        }
        SigningConfig::ServiceAccountKey { path } => Ok(Arc::new(ServiceAccountKeySigner::from_file(path)?)),
        #[cfg(feature = "gcs")]
        SigningConfig::IamSignBlob { service_account_email } => {
            Ok(Arc::new(IamSigner::application_default(service_account_email.clone())?))
        }
        #[cfg(not(feature = "gcs"))]
        SigningConfig::IamSignBlob { .. } => Err(without_iam()),
        SigningConfig::Hmac { access_id, secret } => Ok(Arc::new(HmacSigner::new(access_id, secret.expose())?)),
    }
}

/// The `type` of a credentials JSON file.
fn credential_type(path: &Path) -> Result<Option<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(
            None,
            format!("GOOGLE_APPLICATION_CREDENTIALS names {}, which cannot be read: {e}", path.display()),
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::config(
            None,
            format!("GOOGLE_APPLICATION_CREDENTIALS names {}, which is not valid JSON: {e}", path.display()),
        )
    })?;
    Ok(value.get("type").and_then(|t| t.as_str()).map(str::to_string))
}

/// IAM signBlob needs an HTTP client and token sources, which come with the `gcs` feature.
#[cfg(not(feature = "gcs"))]
fn without_iam() -> Error {
    Error::config(
        None,
        "IAM signBlob signing is not in this build: enable the `gcs` feature of sea-gcp, or configure \
         `service_account_key` or `hmac` signing",
    )
}
