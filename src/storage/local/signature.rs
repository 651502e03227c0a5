//! URLs of the local store, signed with the server's own HMAC so that the crate's routes can serve
//! downloads and direct uploads exactly like GCS signed URLs do.
//!
//! A download URL is `{base_url}/{key}?expires=<unix>&generation=<g>&sig=<hex>`; an upload URL is
//! `{base_url}/{key}?upload=1&expires=..&max=<bytes>&ct=<content type>&create=1&sig=..`. The signature
//! covers the method, the key and every parameter, so none can be changed by the client.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// Percent-encode an object key for a URL path (keeps `/`).
pub fn encode_path(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

/// Percent-encode a query value.
pub fn encode_query(value: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(value, SET).to_string()
}

/// Signs and verifies local-store URLs.
#[derive(Clone)]
pub struct UrlSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    /// A signer with this secret.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self { secret: secret.as_ref().to_vec() }
    }

    fn mac(&self, method: &str, key: &str, params: &BTreeMap<String, String>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(key.as_bytes());
        for (k, v) in params {
            mac.update(b"\n");
            mac.update(k.as_bytes());
            mac.update(b"=");
            mac.update(v.as_bytes());
        }
        mac
    }

    /// The query string (without `?`) for `method` on `key` with `params` (which must include `expires`).
    pub fn sign(&self, method: &str, key: &str, params: &BTreeMap<String, String>) -> String {
        let sig = hex::encode(self.mac(method, key, params).finalize().into_bytes());
        let mut query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode_query(v))).collect();
        query.push(format!("sig={sig}"));
        query.join("&")
    }

    /// Verify a request: the signature over every parameter but `sig`, and `expires` not in the past.
    /// Returns the signed parameters.
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        query: &BTreeMap<String, String>,
        now_unix: i64,
    ) -> Result<BTreeMap<String, String>> {
        let refuse = |why: &str| Error::signing(format!("local URL refused: {why}"));
        let mut params = query.clone();
        let sig = params.remove("sig").ok_or_else(|| refuse("no signature (sig) parameter"))?;
        let sig = hex::decode(sig).map_err(|_| refuse("the signature is not hex"))?;
        self.mac(method, key, &params).verify_slice(&sig).map_err(|_| refuse("the signature does not match"))?;
        let expires: i64 =
            params.get("expires").and_then(|e| e.parse().ok()).ok_or_else(|| refuse("no valid expires parameter"))?;
        if expires < now_unix {
            return Err(refuse("the URL has expired"));
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = UrlSigner::new("secret");
        let mut p = BTreeMap::new();
        p.insert("expires".to_string(), "2000".to_string());
        p.insert("ct".to_string(), "text/plain; charset=utf-8".to_string());
        let q = s.sign("GET", "a b/c.txt", &p);
        let parsed: BTreeMap<String, String> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        assert_eq!(s.verify("GET", "a b/c.txt", &parsed, 1000).unwrap(), p);
        assert!(s.verify("PUT", "a b/c.txt", &parsed, 1000).is_err());
        assert!(s.verify("GET", "a b/d.txt", &parsed, 1000).is_err());
        assert!(s.verify("GET", "a b/c.txt", &parsed, 3000).unwrap_err().to_string().contains("expired"));
        let mut tampered = parsed.clone();
        tampered.insert("ct".into(), "text/html".into());
        assert!(s.verify("GET", "a b/c.txt", &tampered, 1000).is_err());
        assert_eq!(encode_path("a b/ü#?.txt"), "a%20b/%C3%BC%23%3F.txt");
    }
}
