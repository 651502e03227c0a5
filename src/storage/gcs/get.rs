//! `head` and `get`.
//!
//! `get` reads the object's metadata first (with the caller's generation and preconditions), then
//! downloads that exact generation (`generation=<g>`), so the bytes always match the metadata returned,
//! even if the object is overwritten in between. The download is streamed, never buffered whole.
//!
//! The download is sent directly rather than with `gcloud-storage`'s `download_streamed_object`
//! because it must carry `Accept-Encoding: gzip`: without it GCS decompresses gzip-encoded objects
//! ("decompressive transcoding"), ranges would apply to the decompressed bytes and `raw` reads would be
//! impossible. If a server decompresses anyway (no `Content-Encoding: gzip` on the response), the body is
//! passed through as it is.

use futures_util::{StreamExt, TryStreamExt};
use gcloud_storage::http::objects::get::GetObjectRequest;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, RANGE};

use super::GcsStore;
use super::client::encode_segment;
use super::convert;
use crate::storage::retry::Idempotency;
use crate::storage::{ByteRange, GetOptions, GetResult, ObjectMeta, Preconditions, policy};
use crate::{Error, Result};

pub(super) async fn head(store: &GcsStore, name: &str, opts: GetOptions) -> Result<ObjectMeta> {
    let (rel, key) = store.keyspace.key(name)?;
    head_key(store, &rel, &key, opts.generation, &opts.preconditions).await
}

/// `objects.get` of `key` (metadata only).
pub(super) async fn head_key(
    store: &GcsStore,
    rel: &str,
    key: &str,
    generation: Option<i64>,
    p: &Preconditions,
) -> Result<ObjectMeta> {
    let ctx = store.ctx(rel);
    let req = GetObjectRequest {
        bucket: store.bucket().to_string(),
        object: key.to_string(),
        generation,
        if_generation_match: p.if_generation_match,
        if_generation_not_match: p.if_generation_not_match,
        if_metageneration_match: p.if_metageneration_match,
        if_metageneration_not_match: p.if_metageneration_not_match,
        ..Default::default()
    };
    let object = store
        .retry
        .run("gcs.head", Idempotency::Always, || async {
            store.conn.client.get_object(&req).await.map_err(|e| ctx.gcloud(e))
        })
        .await?;
    Ok(convert::to_meta(&store.keyspace, object))
}

pub(super) async fn get(store: &GcsStore, name: &str, opts: GetOptions) -> Result<GetResult> {
    let (rel, key) = store.keyspace.key(name)?;
    let meta = head_key(store, &rel, &key, opts.generation, &opts.preconditions).await?;
    let range = match opts.range {
        None => 0..meta.size,
        Some(r) => r.resolve(meta.size).ok_or_else(|| Error::InvalidRange {
            name: rel.clone(),
            range: r.to_string(),
            size: meta.size,
        })?,
    };
    if range.is_empty() {
        return Ok(GetResult { meta, range, body: futures_util::stream::empty().boxed() });
    }
    let ctx = store.ctx(&rel);
    let url = format!("{}/b/{}/o/{}", store.conn.api_base(), encode_segment(store.bucket()), encode_segment(&key));
    let generation = meta.generation.to_string();
    let range_header = opts.range.map(|_| ByteRange::from(range.clone()).to_header());
    let response = store
        .retry
        .run("gcs.get", Idempotency::Always, || async {
            let mut request = store
                .conn
                .request(reqwest::Method::GET, &url)
                .await?
                .query(&[("alt", "media"), ("generation", generation.as_str())])
                .header(ACCEPT_ENCODING, "gzip");
            if let Some(value) = &range_header {
                request = request.header(RANGE, value);
            }
            let response = request.send().await.map_err(|e| ctx.middleware(e))?;
            ctx.check(response).await
        })
        .await?;
    let encoded = response
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let mut body = response.bytes_stream().map_err(std::io::Error::other).boxed();
    if encoded && policy::should_gunzip(meta.content_encoding.as_deref(), opts.raw, opts.range.is_some()) {
        body = policy::gunzip_stream(body);
    }
    Ok(GetResult { meta, range, body })
}
