//! `put`: one multipart request for small payloads, a chunked resumable session for the rest.
//!
//! A resumable upload holds one chunk (`blob_chunk_size`, 16 MiB by default) plus at most one incoming
//! piece of the source in memory: a 1 GiB file goes up with a client footprint of about one chunk.
//! A chunk that fails with a transient error is resumed from the offset the session reports, whatever
//! the object's preconditions: the session makes chunks idempotent (see [`crate::storage::retry`]).

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use gcloud_storage::http::objects::Object;
use gcloud_storage::http::objects::upload::{UploadObjectRequest, UploadType};
use gcloud_storage::http::resumable_upload_client::{ChunkSize, ResumableUploadClient, UploadStatus};

use reqwest::header::CONTENT_TYPE;

use super::GcsStore;
use super::client::encode_segment;
use super::convert::{self, Ctx};
use crate::config::CHUNK_GRANULARITY;
use crate::storage::retry::Idempotency;
use crate::storage::{ByteStream, ObjectMeta, PutOptions, PutPayload, policy};
use crate::{Error, Result};

/// Chunk size of resumable uploads when `blob_chunk_size` is unset.
pub(super) const DEFAULT_CHUNK_SIZE: u64 = 16 * 1024 * 1024;

/// Streams of known size up to this many bytes are buffered and sent in one request (unless
/// `blob_chunk_size` is set).
pub(super) const SINGLE_REQUEST_LIMIT: u64 = 8 * 1024 * 1024;

/// Metadata key of the per-request upload id a guarded one-request upload carries: a retry that gets
/// 412 (its first attempt took effect but the answer was lost) finds its own object by it.
pub(crate) const TAG_UPLOAD: &str = "sea-gcp-upload";

/// Files are read in pieces of this size.
const READ_SIZE: usize = 256 * 1024;

/// What an upload writes: the key, its object resource and the query parameters.
struct Target<'a> {
    ctx: Ctx<'a>,
    object: Object,
    request: UploadObjectRequest,
    acl: Option<String>,
    idempotency: Idempotency,
}

pub(super) async fn put(store: &GcsStore, name: &str, payload: PutPayload, opts: PutOptions) -> Result<ObjectMeta> {
    let (rel, key) = store.keyspace.key(name)?;
    let write = policy::prepare_write(&store.config, &rel, &opts);
    let p = &opts.preconditions;
    let target = Target {
        ctx: store.ctx(&rel),
        object: convert::to_object(&key, &write.params),
        request: UploadObjectRequest {
            bucket: store.bucket().to_string(),
            if_generation_match: p.if_generation_match,
            if_generation_not_match: p.if_generation_not_match,
            if_metageneration_match: p.if_metageneration_match,
            if_metageneration_not_match: p.if_metageneration_not_match,
            predefined_acl: convert::predefined_acl(write.params.acl.as_deref()),
            ..Default::default()
        },
        acl: write.params.acl.clone(),
        idempotency: Idempotency::for_write(p),
    };
    let chunk_size = store.config.blob_chunk_size;
    match payload {
        PutPayload::Bytes(data) => {
            let data = if write.gzip { gzip_bytes(data).await? } else { data };
            match chunk_size {
                Some(chunk) if data.len() as u64 > chunk => {
                    let size = data.len() as u64;
                    let stream = futures_util::stream::once(async move { Ok(data) }).boxed();
                    resumable(store, &target, stream, Some(size), chunk).await
                }
                _ => multipart(store, &target, data).await,
            }
        }
        payload => {
            let size = match &payload {
                _ if write.gzip => None,
                PutPayload::Stream { size, .. } => *size,
                PutPayload::File(path) => Some(tokio::fs::metadata(path).await?.len()),
                PutPayload::Bytes(b) => Some(b.len() as u64),
            };
            let mut stream = payload.into_stream(READ_SIZE).await?;
            if write.gzip {
                stream = policy::gzip_stream(stream);
            }
            match (chunk_size, size) {
                (None, Some(size)) if size <= SINGLE_REQUEST_LIMIT => {
                    let data = PutPayload::stream(stream, Some(size)).into_bytes().await?;
                    multipart(store, &target, data).await
                }
                _ => resumable(store, &target, stream, size, chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE)).await,
            }
        }
    }
}

async fn gzip_bytes(data: Bytes) -> Result<Bytes> {
    let stream = policy::gzip_stream(futures_util::stream::once(async move { Ok(data) }).boxed());
    PutPayload::stream(stream, None).into_bytes().await
}

/// One `uploadType=multipart` request: a `multipart/related` body of the JSON object resource and the
/// bytes, as Google's client libraries send it. (`gcloud-storage` sends `multipart/form-data` without a
/// media content type, which fake-gcs-server stores without the metadata's content type.) The body is
/// built in memory: this path only carries payloads up to [`SINGLE_REQUEST_LIMIT`] or already in memory.
///
/// A guarded upload (`ifGenerationMatch`) is retried after transient failures; when a retry gets 412
/// and the live object carries this request's upload id ([`TAG_UPLOAD`]) and the bytes' CRC32C and
/// MD5, the first attempt did the write and its answer was lost: that object is the result.
async fn multipart(store: &GcsStore, target: &Target<'_>, data: Bytes) -> Result<ObjectMeta> {
    let boundary = format!("sea_gcp_{}", uuid::Uuid::new_v4().simple());
    let guarded = target.request.if_generation_match.is_some();
    let upload_id = guarded.then(|| uuid::Uuid::new_v4().simple().to_string());
    let mut object = target.object.clone();
    if let Some(id) = &upload_id {
        object.metadata.get_or_insert_with(Default::default).insert(TAG_UPLOAD.to_string(), id.clone());
    }
    let hashes = upload_id.as_ref().map(|_| content_hashes(&data));
    let metadata = serde_json::to_vec(&object)
        .map_err(|e| Error::InvalidArgument(format!("object metadata cannot be encoded: {e}")))?;
    let media_type = target.object.content_type.as_deref().unwrap_or("application/octet-stream");
    let mut body = BytesMut::with_capacity(data.len() + metadata.len() + 256);
    body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n").as_bytes());
    body.extend_from_slice(&metadata);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: {media_type}\r\n\r\n").as_bytes());
    body.extend_from_slice(&data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let body = body.freeze();
    drop(data);
    let url = format!("{}/b/{}/o", store.conn.upload_base(), encode_segment(store.bucket()));
    let mut query: Vec<(&str, String)> = vec![("uploadType", "multipart".into())];
    let r = &target.request;
    for (k, v) in [
        ("ifGenerationMatch", r.if_generation_match),
        ("ifGenerationNotMatch", r.if_generation_not_match),
        ("ifMetagenerationMatch", r.if_metageneration_match),
        ("ifMetagenerationNotMatch", r.if_metageneration_not_match),
    ] {
        if let Some(v) = v {
            query.push((k, v.to_string()));
        }
    }
    if let Some(acl) = &target.acl {
        query.push(("predefinedAcl", acl.clone()));
    }
    let ctx = target.ctx;
    let attempts = std::sync::atomic::AtomicU32::new(0);
    store
        .retry
        .run("gcs.put", target.idempotency, || async {
            let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let sent = store
                .conn
                .request(reqwest::Method::POST, &url)
                .await?
                .query(&query)
                .header(CONTENT_TYPE, format!("multipart/related; boundary={boundary}"))
                .body(body.clone())
                .send()
                .await
                .map_err(|e| ctx.middleware(e));
            let result = match sent {
                Ok(response) => match ctx.check(response).await {
                    Ok(response) => convert::read_meta(&ctx, &store.keyspace, response).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match (result, &upload_id, &hashes) {
                (Err(e @ Error::Precondition { .. }), Some(id), Some(hashes)) if attempt > 0 => {
                    own_upload(store, target, id, hashes).await?.ok_or(e)
                }
                (result, ..) => result,
            }
        })
        .await
}

/// Base64 CRC32C (big-endian, GCS's format) and MD5 of `data`.
fn content_hashes(data: &[u8]) -> (String, String) {
    use base64::Engine;
    use md5::Digest;
    let b64 = base64::engine::general_purpose::STANDARD;
    (b64.encode(crc32c::crc32c(data).to_be_bytes()), b64.encode(md5::Md5::digest(data)))
}

/// The live object when it is the one this request wrote: it carries `upload_id` and the same CRC32C
/// and MD5. `None` when another writer's object is there (a real conflict).
async fn own_upload(
    store: &GcsStore,
    target: &Target<'_>,
    upload_id: &str,
    (crc32c, md5): &(String, String),
) -> Result<Option<ObjectMeta>> {
    let ctx = target.ctx;
    let key = &target.object.name;
    match super::get::head_key(store, ctx.name, key, None, &Default::default()).await {
        Ok(meta)
            if meta.metadata.get(TAG_UPLOAD).map(String::as_str) == Some(upload_id)
                && meta.crc32c.as_deref() == Some(crc32c.as_str())
                && meta.md5.as_deref().is_none_or(|m| m == md5) =>
        {
            tracing::info!(object = ctx.name, "a retried upload found its own first attempt: done");
            Ok(Some(meta))
        }
        Ok(_) | Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A resumable session fed chunk by chunk from `stream`.
async fn resumable(
    store: &GcsStore,
    target: &Target<'_>,
    stream: ByteStream,
    total: Option<u64>,
    chunk_size: u64,
) -> Result<ObjectMeta> {
    let upload_type = UploadType::Multipart(Box::new(target.object.clone()));
    // Opening a session writes nothing: always safe to repeat.
    let session = store
        .retry
        .run("gcs.put.session", Idempotency::Always, || async {
            store
                .conn
                .client
                .prepare_resumable_upload(&target.request, &upload_type)
                .await
                .map_err(|e| target.ctx.gcloud(e))
        })
        .await?;
    let mut chunks = Chunker::new(stream, chunk_size.max(CHUNK_GRANULARITY) as usize);
    let mut offset = 0u64;
    loop {
        let (data, last) = chunks.next_chunk().await?;
        let end = offset + data.len() as u64;
        let total = if last { Some(end) } else { total };
        match send_chunk(store, target.ctx, &session, data, offset, total, last).await? {
            Some(object) => return Ok(convert::to_meta(&store.keyspace, object)),
            None if last => {
                return Err(Error::Backend {
                    backend: "gcs",
                    store: store.key.clone(),
                    status: None,
                    retryable: false,
                    source: format!("`{}`: the resumable session did not finish after its last chunk", target.ctx.name)
                        .into(),
                });
            }
            None => offset = end,
        }
    }
}

/// Send `data` (starting at `offset`), resuming after transient failures from the offset the session
/// reports. Returns the object once the upload is complete.
async fn send_chunk(
    store: &GcsStore,
    ctx: Ctx<'_>,
    session: &ResumableUploadClient,
    mut data: Bytes,
    mut offset: u64,
    total: Option<u64>,
    last: bool,
) -> Result<Option<Object>> {
    let end = offset + data.len() as u64;
    let mut attempt = 0u32;
    loop {
        let range = if data.is_empty() {
            ChunkSize::new(offset, offset, total)
        } else {
            ChunkSize::new(offset, end - 1, total)
        };
        let error = match session.upload_multiple_chunk(data.clone(), &range).await.map_err(|e| ctx.gcloud(e)) {
            Ok(UploadStatus::Ok(object)) => return Ok(Some(object)),
            Ok(UploadStatus::ResumeIncomplete(r)) if !last && r.last_byte + 1 >= end => return Ok(None),
            Ok(status) => Error::Backend {
                backend: "gcs",
                store: ctx.store.to_string(),
                status: Some(308),
                retryable: true,
                source: format!("`{}`: the session kept only part of a chunk ({status:?})", ctx.name).into(),
            },
            Err(e) => e,
        };
        if !store.retry.should_retry(Idempotency::Always, &error, attempt) {
            return Err(error);
        }
        let delay = store.retry.delay(attempt);
        tracing::warn!(
            operation = "gcs.put.chunk",
            attempt = attempt + 1,
            delay_ms = delay.as_millis() as u64,
            error = %error,
            "transient error in a resumable upload; resuming"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
        let persisted = match session.status(total).await {
            Ok(UploadStatus::Ok(object)) => return Ok(Some(object)),
            Ok(UploadStatus::ResumeIncomplete(r)) => r.last_byte + 1,
            Ok(UploadStatus::NotStarted) => 0,
            Err(_) => offset,
        };
        if persisted < offset {
            return Err(Error::Backend {
                backend: "gcs",
                store: ctx.store.to_string(),
                status: None,
                retryable: false,
                source: format!(
                    "`{}`: the resumable session holds {persisted} bytes but {offset} were acknowledged; upload again",
                    ctx.name
                )
                .into(),
            });
        }
        if persisted >= end && !last {
            return Ok(None);
        }
        let skip = (persisted.min(end) - offset) as usize;
        data = data.slice(skip..);
        offset += skip as u64;
    }
}

/// Cuts a stream into chunks of exactly `size` bytes (the last one shorter), holding one chunk and
/// one look-ahead piece of the source.
pub(crate) struct Chunker {
    stream: ByteStream,
    size: usize,
    carry: Option<Bytes>,
    done: bool,
}

impl Chunker {
    /// Chunks of `size` bytes from `stream`.
    pub(crate) fn new(stream: ByteStream, size: usize) -> Self {
        Self { stream, size, carry: None, done: false }
    }

    async fn next_piece(&mut self) -> Result<Option<Bytes>> {
        if let Some(piece) = self.carry.take() {
            return Ok(Some(piece));
        }
        if self.done {
            return Ok(None);
        }
        loop {
            match self.stream.next().await {
                Some(Ok(piece)) if piece.is_empty() => continue,
                Some(Ok(piece)) => return Ok(Some(piece)),
                Some(Err(e)) => return Err(Error::Io(e)),
                None => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }

    /// The next chunk and whether it is the last one (an empty last chunk finalizes an upload whose
    /// size was a multiple of the chunk size).
    pub(crate) async fn next_chunk(&mut self) -> Result<(Bytes, bool)> {
        let mut buf: Option<BytesMut> = None;
        let mut single: Option<Bytes> = None;
        let mut len = 0usize;
        while len < self.size {
            let Some(mut piece) = self.next_piece().await? else { break };
            let need = self.size - len;
            if piece.len() > need {
                self.carry = Some(piece.split_off(need));
            }
            len += piece.len();
            // A piece that is a whole chunk by itself goes out without a copy.
            match (&mut buf, &single) {
                (None, None) => single = Some(piece),
                (None, Some(first)) => {
                    let mut b = BytesMut::with_capacity(self.size);
                    b.extend_from_slice(first);
                    b.extend_from_slice(&piece);
                    single = None;
                    buf = Some(b);
                }
                (Some(b), _) => b.extend_from_slice(&piece),
            }
        }
        let chunk = match (buf, single) {
            (Some(b), _) => b.freeze(),
            (None, Some(s)) => s,
            (None, None) => Bytes::new(),
        };
        // Look ahead: is there anything after this chunk?
        let last = if chunk.len() < self.size {
            true
        } else {
            match self.next_piece().await? {
                Some(piece) => {
                    self.carry = Some(piece);
                    false
                }
                None => true,
            }
        };
        Ok((chunk, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn cut(pieces: Vec<usize>, size: usize) -> Vec<(usize, bool)> {
        let total: usize = pieces.iter().sum();
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        let mut at = 0;
        let items: Vec<std::io::Result<Bytes>> = pieces
            .iter()
            .map(|n| {
                let b = Bytes::copy_from_slice(&data[at..at + n]);
                at += n;
                Ok(b)
            })
            .collect();
        let mut chunker = Chunker::new(futures_util::stream::iter(items).boxed(), size);
        let mut out = Vec::new();
        let mut joined = Vec::new();
        loop {
            let (chunk, last) = chunker.next_chunk().await.unwrap();
            joined.extend_from_slice(&chunk);
            out.push((chunk.len(), last));
            if last {
                break;
            }
        }
        assert_eq!(joined, data);
        out
    }

    #[tokio::test]
    async fn chunks() {
        assert_eq!(cut(vec![3, 3, 3], 4).await, vec![(4, false), (4, false), (1, true)]);
        assert_eq!(cut(vec![8], 4).await, vec![(4, false), (4, true)]);
        assert_eq!(cut(vec![4, 4], 4).await, vec![(4, false), (4, true)]);
        assert_eq!(cut(vec![2, 0, 2], 4).await, vec![(4, true)]);
        assert_eq!(cut(vec![], 4).await, vec![(0, true)]);
        assert_eq!(cut(vec![10, 1], 4).await, vec![(4, false), (4, false), (3, true)]);
    }
}
