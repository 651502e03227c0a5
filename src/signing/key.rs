//! The service-account key signer: `GOOG4-RSA-SHA256` with the key from a JSON key file.
//!
//! RSA PKCS#1 v1.5 with SHA-256 comes from `aws-lc-rs` (assembly-optimised, the same code family as
//! OpenSSL's); `benches/signing.rs` measures it against `ring` and `openssl speed`, see BENCHMARKS.md.
//! Signing makes no network call.

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use serde::Deserialize;

use super::{Signer, SigningAlgorithm};
use crate::{Error, Result};

/// A service-account JSON key (`"type": "service_account"`), as downloaded from the console.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    /// The service account's email: the credential id of its signatures.
    pub client_email: String,
    /// The PEM private key (PKCS#8 `BEGIN PRIVATE KEY`, or PKCS#1 `BEGIN RSA PRIVATE KEY`).
    pub private_key: String,
    /// The key's id.
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// The project the account belongs to.
    #[serde(default)]
    pub project_id: Option<String>,
    /// OAuth token endpoint (for access tokens, not for signing).
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

const KEY_HINT: &str = "download a JSON key with `gcloud iam service-accounts keys create key.json \
                        --iam-account=EMAIL`, or sign with IAM signBlob instead";

impl ServiceAccountKey {
    /// Parse a JSON key. `origin` names where it came from in error messages.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            Error::config(None, format!("{origin} is not valid JSON ({e}): expected a service-account key; {KEY_HINT}"))
        })?;
        let Some(object) = value.as_object() else {
            return Err(Error::config(None, format!("{origin} is not a JSON object: {KEY_HINT}")));
        };
        if let Some(kind) = object.get("type").and_then(|t| t.as_str())
            && kind != "service_account"
        {
            return Err(Error::config(
                None,
                format!("{origin} is a `{kind}` credential, not a service-account key: {KEY_HINT}"),
            ));
        }
        for field in ["client_email", "private_key"] {
            if object.get(field).and_then(|v| v.as_str()).is_none_or(str::is_empty) {
                return Err(Error::config(
                    None,
                    format!("{origin}: not a service-account key: field {field} missing; {KEY_HINT}"),
                ));
            }
        }
        serde_json::from_value(value)
            .map_err(|e| Error::config(None, format!("{origin}: not a service-account key ({e}); {KEY_HINT}")))
    }

    /// Read and parse a JSON key file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(None, format!("cannot read service-account key file {}: {e}", path.display()))
        })?;
        Self::from_json(&text, &format!("key file {}", path.display()))
    }
}

/// Decode a PEM RSA private key into an `aws-lc-rs` key pair.
fn parse_pem(pem: &str, origin: &str) -> Result<KeyPair> {
    let bad = |what: &str| {
        Error::config(
            None,
            format!("{origin}: private_key {what}; the key file may be truncated or edited: {KEY_HINT}"),
        )
    };
    let (label, body) = ["PRIVATE KEY", "RSA PRIVATE KEY"]
        .iter()
        .find_map(|label| {
            let begin = format!("-----BEGIN {label}-----");
            let end = format!("-----END {label}-----");
            let start = pem.find(&begin)? + begin.len();
            let stop = start + pem[start..].find(&end)?;
            Some((*label, &pem[start..stop]))
        })
        .ok_or_else(|| bad("is not a PEM `BEGIN PRIVATE KEY` block"))?;
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(compact).map_err(|_| bad("is not valid base64"))?;
    let parsed = if label == "PRIVATE KEY" { KeyPair::from_pkcs8(&der) } else { KeyPair::from_der(&der) };
    parsed.map_err(|e| bad(&format!("is not an RSA key ({e})")))
}

/// Signs with a service-account key held in memory (`GOOG4-RSA-SHA256`).
pub struct ServiceAccountKeySigner {
    email: String,
    key: KeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for ServiceAccountKeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKeySigner").field("email", &self.email).finish_non_exhaustive()
    }
}

impl ServiceAccountKeySigner {
    /// A signer for a parsed key.
    pub fn new(key: &ServiceAccountKey) -> Result<Self> {
        Self::from_parts(&key.client_email, &key.private_key, &format!("key of {}", key.client_email))
    }

    fn from_parts(email: &str, pem: &str, origin: &str) -> Result<Self> {
        Ok(Self { email: email.to_string(), key: parse_pem(pem, origin)?, rng: SystemRandom::new() })
    }

    /// A signer from a JSON key file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let key = ServiceAccountKey::from_file(path)?;
        Self::from_parts(&key.client_email, &key.private_key, &format!("key file {}", path.display()))
    }

    /// A signer from JSON key text.
    pub fn from_json(text: &str) -> Result<Self> {
        let key = ServiceAccountKey::from_json(text, "service-account key")?;
        Self::from_parts(&key.client_email, &key.private_key, "service-account key")
    }

    /// The service account's email.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// RSA-SHA256 (PKCS#1 v1.5) signature of `data`, synchronously.
    pub fn sign_blocking(&self, data: &[u8]) -> Result<Vec<u8>> {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, data, &mut signature)
            .map_err(|e| Error::signing(format!("RSA signing with the key of {} failed: {e}", self.email)))?;
        Ok(signature)
    }
}

#[async_trait]
impl Signer for ServiceAccountKeySigner {
    fn algorithm(&self) -> SigningAlgorithm {
        SigningAlgorithm::Rsa
    }

    async fn credential_id(&self) -> Result<String> {
        Ok(self.email.clone())
    }

    async fn sign(&self, string_to_sign: &[u8]) -> Result<Vec<u8>> {
        self.sign_blocking(string_to_sign)
    }

    fn sign_local(&self, _scope: &str, payload: &[u8]) -> Option<Result<Vec<u8>>> {
        Some(self.sign_blocking(payload))
    }

    fn local_credential_id(&self) -> Option<&str> {
        Some(&self.email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_bad_keys() {
        let e = ServiceAccountKey::from_json("{", "k.json").unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = ServiceAccountKey::from_json(r#"{"type":"service_account","client_email":"a@b"}"#, "k.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a service-account key: field private_key missing"), "{e}");
        let e = ServiceAccountKey::from_json(r#"{"type":"authorized_user"}"#, "k.json").unwrap_err().to_string();
        assert!(e.contains("`authorized_user` credential"), "{e}");
        let e = ServiceAccountKeySigner::from_json(r#"{"client_email":"a@b","private_key":"nope"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("BEGIN PRIVATE KEY"), "{e}");
    }
}
