//! Routes that serve a [`LocalStore`]'s signed URLs, so development uses the same direct-upload flow
//! as GCS with no cloud:
//!
//! * `PUT {base}/{*key}`: a signed upload (`upload=put`): the signature is verified, `Content-Type`
//!   must equal the signed one, the body is streamed to the store and refused with 413 as soon as it
//!   exceeds the signed `max`, and `create=1` makes it create-only (412 when the object exists).
//!   With `upload=resumable` the same URL is a resumable session in GCS's protocol: `Content-Range:
//!   bytes a-b/total` chunks are appended to a partial file in the store's `tmp/sessions/` (keyed by the
//!   URL's signature), answered with `308` and `Range: bytes=0-n`; `Content-Range: bytes */total`
//!   queries the state; the last chunk commits the object.
//! * `GET {base}/{*key}` (and `HEAD`): a download. The signature is checked unless the store's URLs are
//!   public; `response-content-disposition`, `response-content-type` and `generation` are honoured, and
//!   single `Range` requests get `206`.
//!
//! `{base}` is the path of the store's `base_url` (`/storage/<key>` by default).

use std::collections::{BTreeMap, HashMap};
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::refusal::Refusal;
use crate::Error;
use crate::storage::local::LocalStore;
use crate::storage::{ByteRange, ByteStream, GetOptions, ObjectMeta, PutOptions, PutPayload, Store};

struct LocalRoutes {
    store: Arc<LocalStore>,
    sessions_dir: PathBuf,
    session_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The routes serving `store`'s URLs, mounted at the path of its `base_url`.
pub fn local_store_routes<S: Clone + Send + Sync + 'static>(store: Arc<LocalStore>) -> Router<S> {
    let base = base_path(store.base_url());
    let root = store.config().root.clone().unwrap_or_default();
    let state = Arc::new(LocalRoutes {
        store,
        sessions_dir: root.join("tmp").join("sessions"),
        session_locks: Mutex::new(HashMap::new()),
    });
    Router::new().route(&format!("{base}/{{*key}}"), get(download).put(upload)).with_state(state)
}

/// The path part of a base URL (`http://h:1/storage/media` -> `/storage/media`).
fn base_path(base_url: &str) -> String {
    let path = match url::Url::parse(base_url) {
        Ok(u) => u.path().to_string(),
        Err(_) => base_url.to_string(),
    };
    format!("/{}", path.trim_matches('/'))
}

fn parse_query(raw: Option<String>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn refuse_signature(e: Error) -> Refusal {
    let message = e.to_string();
    let code = if message.contains("expired") { "url_expired" } else { "bad_signature" };
    Refusal::new(StatusCode::FORBIDDEN, code, message)
}

fn storage_error(e: Error) -> Refusal {
    match e {
        Error::NotFound { name, .. } => Refusal::new(StatusCode::NOT_FOUND, "not_found", format!("no object `{name}`")),
        Error::Precondition { name, .. } => Refusal::new(
            StatusCode::PRECONDITION_FAILED,
            "already_exists",
            format!("`{name}` already exists; this upload URL may only create it"),
        ),
        Error::InvalidName { name, reason } => {
            Refusal::bad_request("invalid_name", format!("invalid object name {name:?}: {reason}"))
        }
        other => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", other.to_string()),
    }
}

fn too_large(max: u64) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the upload exceeds the {max} bytes this URL allows (x-goog-content-length-range 0,{max})"),
    )
}

/// The body as a stream that fails (and raises `over`) once more than `max` bytes arrive.
fn limited(body: Body, max: u64, over: Arc<AtomicBool>) -> ByteStream {
    let mut seen = 0u64;
    body.into_data_stream()
        .map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            seen += chunk.len() as u64;
            if seen > max {
                over.store(true, Ordering::SeqCst);
                return Err(std::io::Error::other(format!("body exceeds {max} bytes")));
            }
            Ok(chunk)
        })
        .boxed()
}

fn object_json(meta: &ObjectMeta) -> Response {
    let body = serde_json::json!({
        "name": meta.name,
        "generation": meta.generation.to_string(),
        "size": meta.size.to_string(),
        "contentType": meta.content_type,
        "md5Hash": meta.md5,
        "crc32c": meta.crc32c,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn upload(
    State(st): State<Arc<LocalRoutes>>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match put_inner(&st, &key, parse_query(query), &headers, body).await {
        Ok(r) => r,
        Err(refusal) => refusal.into_response(),
    }
}

async fn put_inner(
    st: &LocalRoutes,
    key: &str,
    query: BTreeMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let params = st.store.url_signer().verify("PUT", key, &query, Utc::now().timestamp()).map_err(refuse_signature)?;
    let mode = params.get("upload").map(String::as_str).unwrap_or("");
    let max: u64 = params
        .get("max")
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| Refusal::new(StatusCode::FORBIDDEN, "not_an_upload_url", "this URL does not allow uploads"))?;
    let ct = params.get("ct").cloned().unwrap_or_else(|| "application/octet-stream".into());
    let create = params.get("create").is_some_and(|c| c == "1");
    let sent_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let content_length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let name = st.store.keyspace().relative(key).to_string();
    match mode {
        "put" => {
            if sent_type != ct {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "content_type_mismatch",
                    format!("this URL is signed for Content-Type {ct:?}, the request sent {sent_type:?}"),
                ));
            }
            if content_length.is_some_and(|n| n > max) {
                return Err(too_large(max));
            }
            let over = Arc::new(AtomicBool::new(false));
            let payload = PutPayload::stream(limited(body, max, over.clone()), content_length);
            let mut opts = PutOptions::default().with_content_type(ct);
            opts.gzip = Some(false);
            if create {
                opts = opts.with_preconditions(crate::storage::Preconditions::create_only());
            }
            match st.store.put(&name, payload, opts).await {
                Ok(meta) => Ok(object_json(&meta)),
                Err(_) if over.load(Ordering::SeqCst) => Err(too_large(max)),
                Err(e) => Err(storage_error(e)),
            }
        }
        "resumable" => resumable_chunk(st, &name, &query, max, ct, create, headers, body).await,
        _ => Err(Refusal::new(StatusCode::FORBIDDEN, "not_an_upload_url", "this URL does not allow uploads")),
    }
}

/// A parsed `Content-Range` of a resumable chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkRange {
    /// `bytes */total` (or `*/*`): a status query.
    Query { total: Option<u64> },
    /// `bytes a-b/total` (total `*` when unknown).
    Chunk { start: u64, end_inclusive: u64, total: Option<u64> },
}

fn parse_content_range(value: &str) -> Option<ChunkRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if range.trim() == "*" {
        return Some(ChunkRange::Query { total });
    }
    let (a, b) = range.trim().split_once('-')?;
    let (start, end_inclusive): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    if end_inclusive < start || total.is_some_and(|t| end_inclusive >= t) {
        return None;
    }
    Some(ChunkRange::Chunk { start, end_inclusive, total })
}

fn incomplete(received: u64) -> Response {
    let mut r = StatusCode::PERMANENT_REDIRECT.into_response();
    if received > 0 {
        let range = HeaderValue::from_str(&format!("bytes=0-{}", received - 1)).expect("ascii");
        r.headers_mut().insert(header::RANGE, range);
    }
    r
}

#[allow(clippy::too_many_arguments)]
async fn resumable_chunk(
    st: &LocalRoutes,
    name: &str,
    query: &BTreeMap<String, String>,
    max: u64,
    ct: String,
    create: bool,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let session = hex::encode(Sha256::digest(query.get("sig").map(String::as_bytes).unwrap_or_default()));
    let lock = st.session_locks.lock().expect("session map").entry(session.clone()).or_default().clone();
    let _guard = lock.lock().await;
    let part = st.sessions_dir.join(format!("{session}.part"));
    let received = tokio::fs::metadata(&part).await.map(|m| m.len()).unwrap_or(0);
    let range = match headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) => parse_content_range(v).ok_or_else(|| {
            Refusal::bad_request(
                "bad_content_range",
                format!("Content-Range {v:?} is not `bytes a-b/total` or `bytes */total`"),
            )
        })?,
        // No Content-Range: the whole file in one request.
        None => ChunkRange::Chunk { start: 0, end_inclusive: u64::MAX, total: None },
    };
    let finished_meta = || async {
        match st.store.head(name, GetOptions::default()).await {
            Ok(meta) if meta.metadata.get("sea-gcp-session").is_some_and(|s| *s == session) => Some(meta),
            _ => None,
        }
    };
    match range {
        ChunkRange::Query { total } => {
            if total.is_some_and(|t| t > max) {
                return Err(too_large(max));
            }
            if received == 0
                && let Some(meta) = finished_meta().await
            {
                return Ok(object_json(&meta));
            }
            Ok(incomplete(received))
        }
        ChunkRange::Chunk { start, end_inclusive, total } => {
            let whole = end_inclusive == u64::MAX;
            if total.is_some_and(|t| t > max) || (!whole && end_inclusive >= max) {
                return Err(too_large(max));
            }
            if start > received {
                // A gap: tell the client what we have so it resumes from there (GCS's answer).
                return Ok(incomplete(received));
            }
            let limit = if whole { max } else { end_inclusive - start + 1 };
            tokio::fs::create_dir_all(&st.sessions_dir).await.map_err(|e| storage_error(e.into()))?;
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&part)
                .await
                .map_err(|e| storage_error(e.into()))?;
            file.set_len(start).await.map_err(|e| storage_error(e.into()))?;
            file.seek(SeekFrom::Start(start)).await.map_err(|e| storage_error(e.into()))?;
            let mut stream = body.into_data_stream();
            let mut written = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Refusal::bad_request("body_error", e.to_string()))?;
                written += chunk.len() as u64;
                if written > limit || start + written > max {
                    drop(file);
                    let _ = tokio::fs::remove_file(&part).await;
                    return Err(if start + written > max {
                        too_large(max)
                    } else {
                        Refusal::bad_request("chunk_too_long", "the body is longer than its Content-Range")
                    });
                }
                file.write_all(&chunk).await.map_err(|e| storage_error(e.into()))?;
            }
            file.flush().await.map_err(|e| storage_error(e.into()))?;
            drop(file);
            let now = start + written;
            let total = if whole { Some(now) } else { total };
            if total != Some(now) {
                return Ok(incomplete(now));
            }
            let mut opts = PutOptions::default().with_content_type(ct);
            opts.gzip = Some(false);
            opts.params.metadata.insert("sea-gcp-session".into(), session.clone());
            if create {
                opts = opts.with_preconditions(crate::storage::Preconditions::create_only());
            }
            let result = st.store.put(name, PutPayload::File(part.clone()), opts).await;
            let _ = tokio::fs::remove_file(&part).await;
            st.session_locks.lock().expect("session map").remove(&session);
            match result {
                Ok(meta) => Ok(object_json(&meta)),
                Err(e) => Err(storage_error(e)),
            }
        }
    }
}

async fn download(
    State(st): State<Arc<LocalRoutes>>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match get_inner(&st, &key, parse_query(query), &headers).await {
        Ok(r) => r,
        Err(refusal) => refusal.into_response(),
    }
}

fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    match (a.trim(), b.trim()) {
        ("", n) => Some(ByteRange::Suffix(n.parse().ok()?)),
        (a, "") => Some(ByteRange::From(a.parse().ok()?)),
        (a, b) => {
            let (start, end): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            (end >= start).then_some(ByteRange::Bounded { start, end: end + 1 })
        }
    }
}

async fn get_inner(
    st: &LocalRoutes,
    key: &str,
    query: BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    let params = if st.store.config().public_urls() && !query.contains_key("sig") {
        query
    } else {
        st.store.url_signer().verify("GET", key, &query, Utc::now().timestamp()).map_err(refuse_signature)?
    };
    if params.contains_key("upload") {
        return Err(Refusal::new(StatusCode::FORBIDDEN, "not_a_download_url", "an upload URL cannot download"));
    }
    let name = st.store.keyspace().relative(key).to_string();
    let mut opts = GetOptions::default();
    if let Some(g) = params.get("generation") {
        opts.generation =
            Some(g.parse().map_err(|_| Refusal::bad_request("bad_generation", "generation is not a number"))?);
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    opts.range = range_header.and_then(parse_range);
    let result = match st.store.get(&name, opts).await {
        Ok(r) => r,
        Err(Error::InvalidRange { size, range, .. }) => {
            let mut r = Refusal::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("range {range} is outside the object's {size} bytes"),
            )
            .into_response();
            r.headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"));
            return Ok(r);
        }
        Err(e) => return Err(storage_error(e)),
    };
    let meta = &result.meta;
    let partial = range_header.is_some() && result.range != (0..meta.size);
    let mut response = Response::new(Body::from_stream(result.body));
    *response.status_mut() = if partial { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let h = response.headers_mut();
    let mut set = |name: header::HeaderName, value: Option<String>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    };
    let content_type = params.get("response-content-type").cloned().or_else(|| meta.content_type.clone());
    set(header::CONTENT_TYPE, Some(content_type.unwrap_or_else(|| "application/octet-stream".into())));
    let disposition = params.get("response-content-disposition").cloned().or_else(|| meta.content_disposition.clone());
    set(header::CONTENT_DISPOSITION, disposition);
    set(header::CACHE_CONTROL, meta.cache_control.clone());
    set(header::ACCEPT_RANGES, Some("bytes".into()));
    set(header::ETAG, meta.md5.as_ref().map(|m| format!("\"{m}\"")));
    set(header::HeaderName::from_static("x-goog-generation"), Some(meta.generation.to_string()));
    if partial {
        set(
            header::CONTENT_RANGE,
            Some(format!("bytes {}-{}/{}", result.range.start, result.range.end - 1, meta.size)),
        );
    }
    let decoded = meta.content_encoding.as_deref() == Some("gzip") && !partial;
    if decoded {
        set(header::HeaderName::from_static("x-goog-stored-content-encoding"), Some("gzip".into()));
    } else {
        set(header::CONTENT_LENGTH, Some((result.range.end - result.range.start).to_string()));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes */100"), Some(ChunkRange::Query { total: Some(100) }));
        assert_eq!(parse_content_range("bytes */*"), Some(ChunkRange::Query { total: None }));
        assert_eq!(
            parse_content_range("bytes 0-9/100"),
            Some(ChunkRange::Chunk { start: 0, end_inclusive: 9, total: Some(100) })
        );
        assert_eq!(
            parse_content_range("bytes 10-19/*"),
            Some(ChunkRange::Chunk { start: 10, end_inclusive: 19, total: None })
        );
        assert_eq!(parse_content_range("bytes 9-0/100"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn ranges_and_base_paths() {
        assert_eq!(parse_range("bytes=0-9"), Some(ByteRange::Bounded { start: 0, end: 10 }));
        assert_eq!(parse_range("bytes=5-"), Some(ByteRange::From(5)));
        assert_eq!(parse_range("bytes=-5"), Some(ByteRange::Suffix(5)));
        assert_eq!(parse_range("bytes=0-1,3-4"), None);
        assert_eq!(base_path("http://localhost:8000/storage/media/"), "/storage/media");
        assert_eq!(base_path("/storage/media"), "/storage/media");
    }
}
