//! `url` (public or V4-signed download URLs) and the signed PUT of `signed_upload`.
//!
//! A URL is public — `{custom_endpoint}/{key}` (as django-gcp: the custom endpoint serves the bucket at its
//! root), else `{the emulator, else https://storage.googleapis.com}/{bucket}/{key}` — when the store's URLs are public ([`StoreConfig::public_urls`]: ACL `publicRead` or
//! `querystring_auth` off), unless the caller forces signing or asks for `response-content-*` overrides,
//! which GCS honours only on signed URLs. Otherwise it is a V4 signed URL from [`crate::signing`], with
//! the signer built from `config.signing` once and kept; `custom_endpoint` becomes the signed URL's
//! host and an emulator endpoint its `emulator_host`. Against an emulator, `signing = auto` signs with a
//! throwaway HMAC key (emulators do not check signatures; see [`super::EMULATOR_HMAC_ACCESS_ID`]).
//!
//! [`StoreConfig::public_urls`]: crate::config::StoreConfig::public_urls

use std::collections::BTreeMap;
use std::time::Duration;

use super::GcsStore;
use super::client::{GOOGLE_ENDPOINT, encode_path};
use crate::Result;
use crate::signing::{Endpoint, V4Request, sign_url};
use crate::storage::{PresignedRequest, SignedUploadOptions, UrlOptions};
use http::Method;

pub(super) async fn url(store: &GcsStore, name: &str, opts: UrlOptions) -> Result<String> {
    let (_, key) = store.keyspace.key(name)?;
    let overrides = opts.response_content_disposition.is_some() || opts.response_content_type.is_some();
    if store.config.public_urls() && !opts.force_signed && !overrides && opts.method == Method::GET {
        let mut url = format!("{}/{}", public_base(store), encode_path(&key));
        if let Some(g) = opts.generation {
            url.push_str(&format!("?generation={g}"));
        }
        return Ok(url);
    }
    let mut query = BTreeMap::new();
    if let Some(v) = opts.response_content_disposition {
        query.insert("response-content-disposition".to_string(), v);
    }
    if let Some(v) = opts.response_content_type {
        query.insert("response-content-type".to_string(), v);
    }
    if let Some(g) = opts.generation {
        query.insert("generation".to_string(), g.to_string());
    }
    let expiration = opts.expires_in.unwrap_or(store.config.expiration);
    sign(store, key, opts.method, expiration, BTreeMap::new(), query).await
}

/// A signed PUT bound to the content type, a content-length range and (by default) create-only.
pub(super) async fn signed_put(store: &GcsStore, name: &str, opts: SignedUploadOptions) -> Result<PresignedRequest> {
    let (_, key) = store.keyspace.key(name)?;
    let mut headers = BTreeMap::from([
        ("content-type".to_string(), opts.content_type.clone()),
        ("x-goog-content-length-range".to_string(), format!("0,{}", opts.max_size)),
    ]);
    if opts.create_only {
        headers.insert("x-goog-if-generation-match".to_string(), "0".to_string());
    }
    let url = sign(store, key, Method::PUT, opts.expires_in, headers.clone(), BTreeMap::new()).await?;
    Ok(PresignedRequest { method: Method::PUT, url, headers })
}

async fn sign(
    store: &GcsStore,
    key: String,
    method: Method,
    expiration: Duration,
    headers: BTreeMap<String, String>,
    query_params: BTreeMap<String, String>,
) -> Result<String> {
    let signer = store.signer().await?;
    let request = V4Request {
        bucket: store.bucket().to_string(),
        object: Some(key),
        method,
        expiration,
        headers,
        query_params,
        endpoint: Endpoint {
            client_endpoint: store.config.custom_endpoint.clone(),
            emulator_host: store.conn.endpoint.emulator.clone(),
            ..Endpoint::default()
        },
        ..Default::default()
    };
    Ok(sign_url(signer.as_ref(), &request).await?.url)
}

/// The part of a public URL before the key. A `custom_endpoint` (a CDN or a bucket-bound hostname)
/// serves the bucket at its root, so, as in django-gcp, the bucket name is not repeated after it.
fn public_base(store: &GcsStore) -> String {
    match (&store.config.custom_endpoint, &store.conn.endpoint.emulator) {
        (Some(custom), _) => custom.trim_end_matches('/').to_string(),
        (None, Some(emulator)) => format!("{emulator}/{}", store.bucket()),
        (None, None) => format!("{GOOGLE_ENDPOINT}/{}", store.bucket()),
    }
}
