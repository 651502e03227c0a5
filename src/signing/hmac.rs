//! The HMAC signer: `GOOG4-HMAC-SHA256` with a GCS HMAC key (access id + secret). No network call.
//!
//! The signing key is derived from the secret and the credential scope
//! (`HMAC(HMAC(HMAC(HMAC("GOOG4" + secret, date), "auto"), "storage"), "goog4_request")`). The derived
//! key changes once a day, so the keyed MAC state is cached per scope (date, region, service; the
//! credential is the signer's own), the last few scopes kept: a signature then costs one HMAC of the
//! string to sign, on a copy of the cached state.

use std::fmt;
use std::sync::RwLock;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::canonical::scope_of_string_to_sign;
use super::{Signer, SigningAlgorithm};
use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// Scopes whose derived key is kept: around midnight UTC two dates are in use, and a caller may sign for
/// a few explicit timestamps.
const CACHED_SCOPES: usize = 4;

/// Signs with an HMAC key (`GOOG4-HMAC-SHA256`).
pub struct HmacSigner {
    access_id: String,
    secret: String,
    /// The most recently used scopes' keyed MACs (newest first), ready to clone.
    derived: RwLock<Vec<(String, HmacSha256)>>,
}

impl fmt::Debug for HmacSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSigner").field("access_id", &self.access_id).finish_non_exhaustive()
    }
}

fn mac(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m
}

impl HmacSigner {
    /// A signer for the HMAC key `access_id` / `secret`.
    pub fn new(access_id: impl Into<String>, secret: impl Into<String>) -> Result<Self> {
        let access_id = access_id.into();
        let secret = secret.into();
        if access_id.trim().is_empty() || secret.trim().is_empty() {
            return Err(Error::config(
                None,
                "HMAC signing needs both an access id and a secret: create a key with \
                 `gcloud storage hmac create SERVICE_ACCOUNT_EMAIL`",
            ));
        }
        Ok(Self { access_id, secret, derived: RwLock::new(Vec::new()) })
    }

    /// The HMAC access id.
    pub fn access_id(&self) -> &str {
        &self.access_id
    }

    fn keyed_for(&self, scope: &str) -> Result<HmacSha256> {
        if let Some((_, m)) =
            self.derived.read().unwrap_or_else(|e| e.into_inner()).iter().find(|(cached, _)| cached == scope)
        {
            return Ok(m.clone());
        }
        let mut parts = scope.split('/');
        let (Some(date), Some(region), Some(service), Some(request), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::signing(format!(
                "HMAC signing needs a credential scope like 20240101/auto/storage/goog4_request, got `{scope}`"
            )));
        };
        let mut key = format!("GOOG4{}", self.secret).into_bytes();
        for part in [date, region, service, request] {
            key = mac(&key, part.as_bytes()).finalize().into_bytes().to_vec();
        }
        let keyed = HmacSha256::new_from_slice(&key).expect("HMAC accepts any key length");
        let mut derived = self.derived.write().unwrap_or_else(|e| e.into_inner());
        if !derived.iter().any(|(cached, _)| cached == scope) {
            derived.insert(0, (scope.to_string(), keyed.clone()));
            derived.truncate(CACHED_SCOPES);
        }
        Ok(keyed)
    }

    /// The signature of `payload` under `scope`, synchronously.
    pub fn sign_blocking(&self, scope: &str, payload: &[u8]) -> Result<Vec<u8>> {
        let mut m = self.keyed_for(scope)?;
        m.update(payload);
        Ok(m.finalize().into_bytes().to_vec())
    }
}

#[async_trait]
impl Signer for HmacSigner {
    fn algorithm(&self) -> SigningAlgorithm {
        SigningAlgorithm::Hmac
    }

    async fn credential_id(&self) -> Result<String> {
        Ok(self.access_id.clone())
    }

    /// Signs a V4 string to sign (the scope is read from its third line). For a POST policy, whose payload
    /// has no scope, use [`Signer::sign_scoped`].
    async fn sign(&self, string_to_sign: &[u8]) -> Result<Vec<u8>> {
        let scope = scope_of_string_to_sign(string_to_sign).ok_or_else(|| {
            Error::signing(
                "HMAC signing needs the credential scope: this payload is not a V4 string to sign; call sign_scoped",
            )
        })?;
        self.sign_blocking(scope, string_to_sign)
    }

    async fn sign_scoped(&self, scope: &str, payload: &[u8]) -> Result<Vec<u8>> {
        self.sign_blocking(scope, payload)
    }

    fn sign_local(&self, scope: &str, payload: &[u8]) -> Option<Result<Vec<u8>>> {
        Some(self.sign_blocking(scope, payload))
    }

    fn local_credential_id(&self) -> Option<&str> {
        Some(&self.access_id)
    }

    /// The scope's keyed MAC, derived (or read from the cache) once: each signature is then one HMAC
    /// of the payload on a copy of it, with no lock.
    fn scoped_local<'a>(&'a self, scope: &str) -> Option<Result<super::ScopedSigner<'a>>> {
        let keyed = match self.keyed_for(scope) {
            Ok(keyed) => keyed,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(Box::new(move |payload: &[u8], out: &mut Vec<u8>| {
            let mut m = keyed.clone();
            m.update(payload);
            out.clear();
            out.extend_from_slice(&m.finalize().into_bytes());
            Ok(())
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_per_scope_and_caches() {
        let s = HmacSigner::new("GOOG1EXAMPLE", "secret").unwrap();
        let a = s.sign_blocking("20240101/auto/storage/goog4_request", b"x").unwrap();
        let b = s.sign_blocking("20240101/auto/storage/goog4_request", b"x").unwrap();
        let c = s.sign_blocking("20240102/auto/storage/goog4_request", b"x").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Independent derivation, step by step.
        let mut k = b"GOOG4secret".to_vec();
        for p in ["20240101", "auto", "storage", "goog4_request"] {
            k = mac(&k, p.as_bytes()).finalize().into_bytes().to_vec();
        }
        assert_eq!(a, mac(&k, b"x").finalize().into_bytes().to_vec());
        assert!(s.sign_blocking("bad", b"x").is_err());
        // Alternating dates keep both keys; a fifth scope pushes out the oldest.
        for day in 1..=5 {
            s.sign_blocking(&format!("2024010{day}/auto/storage/goog4_request"), b"x").unwrap();
        }
        let cached: Vec<String> = s.derived.read().unwrap().iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(cached.len(), CACHED_SCOPES);
        assert_eq!(cached[0], "20240105/auto/storage/goog4_request");
        assert_eq!(s.sign_blocking("20240103/auto/storage/goog4_request", b"x").unwrap(), {
            let mut k = b"GOOG4secret".to_vec();
            for p in ["20240103", "auto", "storage", "goog4_request"] {
                k = mac(&k, p.as_bytes()).finalize().into_bytes().to_vec();
            }
            mac(&k, b"x").finalize().into_bytes().to_vec()
        });
        assert!(HmacSigner::new("", "s").is_err());
    }
}
