//! The resumable flavour of `signed_upload`: a session started server-side for a browser.
//!
//! `POST {endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&name=<key>` with the object's
//! metadata (the store's object parameters, the content type and custom metadata asked for; never gzip:
//! the browser sends the bytes as they are), `ifGenerationMatch=0` when create-only,
//! `X-Upload-Content-Type`, `X-Upload-Content-Length` when the size is known, and the browser's `Origin`
//! so that GCS answers the browser's CORS requests to the session URI. The browser then `PUT`s the bytes
//! (in one request or in `Content-Range` chunks) to the returned session URI, which needs no further
//! credentials. A session cannot enforce a size range: a known size is checked against `max_size` here
//! and bound by `X-Upload-Content-Length`; an unknown size is checked when the upload is promoted.

use std::collections::BTreeMap;

use reqwest::header::{CONTENT_TYPE, LOCATION, ORIGIN};

use super::GcsStore;
use super::client::encode_segment;
use super::convert;
use crate::storage::retry::Idempotency;
use crate::storage::{PresignedRequest, PutOptions, SignedUploadOptions, policy};
use crate::{Error, Result};
use http::Method;

pub(super) async fn start(store: &GcsStore, name: &str, opts: SignedUploadOptions) -> Result<PresignedRequest> {
    let (rel, key) = store.keyspace.key(name)?;
    if let Some(size) = opts.size.filter(|s| *s > opts.max_size) {
        return Err(Error::InvalidArgument(format!(
            "upload of `{rel}` is {size} bytes, more than the {} bytes allowed",
            opts.max_size
        )));
    }
    let mut put = PutOptions::default();
    put.params.content_type = Some(opts.content_type.clone());
    put.params.metadata = opts.metadata.clone();
    put.gzip = Some(false);
    let write = policy::prepare_write(&store.config, &rel, &put);
    let object = convert::to_object(&key, &write.params);
    let mut query = vec![("uploadType", "resumable".to_string()), ("name", key.clone())];
    if opts.create_only {
        query.push(("ifGenerationMatch", "0".into()));
    }
    if let Some(acl) = &write.params.acl {
        query.push(("predefinedAcl", acl.clone()));
    }
    let url = format!("{}/b/{}/o", store.conn.upload_base(), encode_segment(store.bucket()));
    let ctx = store.ctx(&rel);
    let session = store
        .retry
        .run("gcs.signed_upload.session", Idempotency::Always, || async {
            let mut request = store
                .conn
                .request(reqwest::Method::POST, &url)
                .await?
                .query(&query)
                .header(CONTENT_TYPE, "application/json; charset=UTF-8")
                .header("x-upload-content-type", opts.content_type.as_str())
                .json(&object);
            if let Some(size) = opts.size {
                request = request.header("x-upload-content-length", size.to_string());
            }
            if let Some(origin) = &opts.origin {
                request = request.header(ORIGIN, origin.as_str());
            }
            let response = request.send().await.map_err(|e| ctx.middleware(e))?;
            let response = ctx.check(response).await?;
            response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string).ok_or_else(|| {
                Error::Backend {
                    backend: "gcs",
                    store: store.key.clone(),
                    status: Some(response.status().as_u16()),
                    retryable: false,
                    source: format!("`{rel}`: the resumable session answer has no Location header").into(),
                }
            })
        })
        .await?;
    Ok(PresignedRequest { method: Method::PUT, url: session, headers: BTreeMap::new() })
}
