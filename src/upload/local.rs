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
//!   public and the request is unsigned; `generation` is honoured, `response-content-disposition` and
//!   `response-content-type` only when signed (as on GCS), and a single `Range` gets `206` (a last byte
//!   past the end is clamped; a first byte at or past the end is `416`, RFC 9110 §14.1.2).
//!
//! Every signed URL may carry only the parameters its route knows, each once ([`signature`]).
//! Every answer carries `X-Content-Type-Options: nosniff`. Objects of an active type (HTML, SVG, XML,
//! JavaScript, or a content type that does not parse as `type/subtype`) are served as an attachment
//! under `Content-Security-Policy: sandbox` unless [`LocalRoutesOptions::active_content`] says
//! otherwise, so an uploaded page never runs as script on the application's origin.
//!
//! Refusals are JSON [`Refusal`]s with a stable code; a storage failure answers `500 storage_error`
//! with a generic message and the details go to the log.
//!
//! The routes own a timer ([`LocalRoutesOptions::cleanup_every`]) that expires abandoned temp objects
//! and partial files ([`super::cleanup`]); it stops when the router is dropped.
//!
//! `{base}` is the path of the store's `base_url` (`/storage/<key>` by default).
//!
//! [`signature`]: crate::storage::local::signature

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::cleanup::CleanupOptions;
use super::refusal::Refusal;
use crate::Error;
use crate::storage::local::LocalStore;
use crate::storage::local::signature::{DOWNLOAD_PARAMS, UPLOAD_PARAMS, UrlRefusal};
use crate::storage::{ByteRange, ByteStream, GetOptions, ObjectMeta, PutOptions, PutPayload, Store};

/// How the local routes serve objects of an active content type (HTML, SVG, XML, JavaScript...), which
/// a browser would otherwise run as script on the application's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ActiveContent {
    /// `Content-Disposition: attachment` (a `filename` is kept) and `Content-Security-Policy: sandbox`:
    /// the browser downloads the file; `<img src>` of an SVG still works. The default.
    #[default]
    Attachment,
    /// Inline, under `Content-Security-Policy: sandbox; default-src 'none'; img-src 'self' data:;
    /// style-src 'unsafe-inline'`: the page renders in an opaque origin with no script.
    Sandbox,
    /// As stored: only for applications whose uploads are trusted (an opt-in).
    Inline,
}

/// The CSP sent with active content served as an attachment.
pub(crate) const ATTACHMENT_CSP: &str = "sandbox";

/// The CSP sent with active content under [`ActiveContent::Sandbox`].
pub const SANDBOX_CSP: &str = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'";

/// Options of [`local_store_routes_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalRoutesOptions {
    /// How active content types are served (default [`ActiveContent::Attachment`]).
    pub active_content: ActiveContent,
    /// How often the routes expire abandoned temp objects and partial files (default every hour; `None`
    /// disables the timer). The first run happens one period after the routes are built.
    pub cleanup_every: Option<Duration>,
    /// What the timer expires (default: objects under `_tmp/` and temp files older than a day).
    pub cleanup: CleanupOptions,
}

impl Default for LocalRoutesOptions {
    fn default() -> Self {
        Self {
            active_content: ActiveContent::default(),
            cleanup_every: Some(Duration::from_secs(3600)),
            cleanup: CleanupOptions::default(),
        }
    }
}

impl LocalRoutesOptions {
    /// Serve active content types this way.
    pub fn with_active_content(mut self, active_content: ActiveContent) -> Self {
        self.active_content = active_content;
        self
    }

    /// Run the cleanup timer this often (`None`: never).
    pub fn with_cleanup_every(mut self, every: Option<Duration>) -> Self {
        self.cleanup_every = every;
        self
    }

    /// What the cleanup timer expires.
    pub fn with_cleanup(mut self, cleanup: CleanupOptions) -> Self {
        self.cleanup = cleanup;
        self
    }
}

type SessionLocks = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

struct LocalRoutes {
    store: Arc<LocalStore>,
    sessions_dir: PathBuf,
    session_locks: SessionLocks,
    active_content: ActiveContent,
    /// Dropped with the routes: tells the cleanup timer to stop.
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The routes serving `store`'s URLs, mounted at the path of its `base_url`, with
/// [`LocalRoutesOptions::default`].
pub fn local_store_routes<S: Clone + Send + Sync + 'static>(store: Arc<LocalStore>) -> Router<S> {
    local_store_routes_with(store, LocalRoutesOptions::default())
}

/// The routes serving `store`'s URLs, mounted at the path of its `base_url`.
///
/// The cleanup timer needs a Tokio runtime; built outside one, the routes work but have no timer (a
/// warning is logged: run `sea-gcp cleanup` instead).
pub fn local_store_routes_with<S: Clone + Send + Sync + 'static>(
    store: Arc<LocalStore>,
    options: LocalRoutesOptions,
) -> Router<S> {
    let base = base_path(store.base_url());
    let timer =
        options.cleanup_every.filter(|d| !d.is_zero()).and_then(|every| match tokio::runtime::Handle::try_current() {
            Ok(handle) => Some((handle, every)),
            Err(_) => {
                tracing::warn!(
                    store = store.key(),
                    "local store routes built outside a Tokio runtime: no cleanup timer"
                );
                None
            }
        });
    let (stop, stopped) = match timer {
        Some(_) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let state = Arc::new(LocalRoutes {
        sessions_dir: store.sessions_dir(),
        store,
        session_locks: Mutex::new(HashMap::new()),
        active_content: options.active_content,
        _stop: stop,
    });
    if let (Some((handle, every)), Some(stopped)) = (timer, stopped) {
        handle.spawn(cleanup_timer(Arc::downgrade(&state), every, options.cleanup, stopped));
    }
    Router::new().route(&format!("{base}/{{*key}}"), get(download).put(upload)).with_state(state)
}

async fn cleanup_timer(
    routes: Weak<LocalRoutes>,
    every: Duration,
    options: CleanupOptions,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = ticks.tick() => {}
        }
        let Some(routes) = routes.upgrade() else { return };
        match super::cleanup::cleanup_local_store(&routes.store, &options).await {
            Ok(report) if report.is_empty() => {}
            Ok(report) => tracing::info!(store = routes.store.key(), "expired abandoned uploads: {report}"),
            Err(e) => tracing::warn!(store = routes.store.key(), error = %e, "expiring abandoned uploads failed"),
        }
    }
}

/// The path part of a base URL (`http://h:1/storage/media` -> `/storage/media`).
fn base_path(base_url: &str) -> String {
    let path = match url::Url::parse(base_url) {
        Ok(u) => u.path().to_string(),
        Err(_) => base_url.to_string(),
    };
    format!("/{}", path.trim_matches('/'))
}

fn parse_query(raw: Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn refuse_url(e: UrlRefusal) -> Refusal {
    Refusal::new(StatusCode::FORBIDDEN, e.code(), e.to_string())
}

/// The client's view of a storage failure: a stable code and a message; the details go to the log.
fn storage_error(store: &LocalStore, name: &str, e: Error) -> Refusal {
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
        other => {
            tracing::error!(store = store.key(), object = name, error = %other, "local store request failed");
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_error",
                "the store could not complete the request; try again later",
            )
        }
    }
}

fn io_error(store: &LocalStore, name: &str, e: std::io::Error) -> Refusal {
    storage_error(store, name, e.into())
}

fn too_large(max: u64) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the upload exceeds the {max} bytes this URL allows (x-goog-content-length-range 0,{max})"),
    )
}

fn not_an_upload_url() -> Refusal {
    Refusal::new(StatusCode::FORBIDDEN, "not_an_upload_url", "this URL does not allow uploads")
}

/// The body as a stream that fails (and raises `over`) once more than `max` bytes arrive.
fn limited(body: Body, max: u64, over: Arc<AtomicBool>) -> ByteStream {
    let mut seen = 0u64;
    body.into_data_stream()
        .map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            seen = seen.saturating_add(chunk.len() as u64);
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

/// Every answer of the local routes, refusals included, is `nosniff`.
fn finish(result: Result<Response, Refusal>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn upload(
    State(st): State<Arc<LocalRoutes>>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    finish(put_inner(&st, &key, parse_query(query), &headers, body).await)
}

async fn put_inner(
    st: &LocalRoutes,
    key: &str,
    query: Vec<(String, String)>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let params =
        st.store.url_signer().verify("PUT", key, &query, UPLOAD_PARAMS, Utc::now().timestamp()).map_err(refuse_url)?;
    let max: u64 = params.get("max").and_then(|m| m.parse().ok()).ok_or_else(not_an_upload_url)?;
    let ct = params.get("ct").cloned().ok_or_else(not_an_upload_url)?;
    let create = params.get("create").is_some_and(|c| c == "1");
    let sent_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let content_length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let name = st.store.keyspace().relative(key).to_string();
    let session = hex::encode(Sha256::digest(query_value(&query, "sig").unwrap_or_default().as_bytes()));
    let upload = Upload { name: &name, max, ct, create };
    match params.get("upload").map(String::as_str) {
        Some("put") => {
            if sent_type != upload.ct {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "content_type_mismatch",
                    format!("this URL is signed for Content-Type {:?}, the request sent {sent_type:?}", upload.ct),
                ));
            }
            if content_length.is_some_and(|n| n > max) {
                return Err(too_large(max));
            }
            let over = Arc::new(AtomicBool::new(false));
            let payload = PutPayload::stream(limited(body, max, over.clone()), content_length);
            let mut opts = PutOptions::default().with_content_type(upload.ct.clone());
            opts.gzip = Some(false);
            if create {
                opts = opts.with_preconditions(crate::storage::Preconditions::create_only());
            }
            match st.store.put(&name, payload, opts).await {
                Ok(meta) => Ok(object_json(&meta)),
                Err(_) if over.load(Ordering::SeqCst) => Err(too_large(max)),
                Err(e) => Err(storage_error(&st.store, &name, e)),
            }
        }
        Some("resumable") => {
            let _lease = SessionLease::acquire(&st.session_locks, &session).await;
            resumable_chunk(st, &upload, &session, headers, body).await
        }
        _ => Err(not_an_upload_url()),
    }
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// What a signed upload URL allows.
struct Upload<'a> {
    name: &'a str,
    max: u64,
    ct: String,
    create: bool,
}

/// Holds a resumable session's lock; on drop (including a request abandoned mid-way) removes the
/// session's entry from the map when nobody else holds or waits for it, so the map only ever holds
/// sessions with a request in flight.
struct SessionLease<'a> {
    locks: &'a SessionLocks,
    session: String,
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<'a> SessionLease<'a> {
    async fn acquire(locks: &'a SessionLocks, session: &str) -> SessionLease<'a> {
        let lock = locks.lock().expect("session map").entry(session.to_string()).or_default().clone();
        let mut lease = SessionLease { locks, session: session.to_string(), lock: Some(lock.clone()), guard: None };
        lease.guard = Some(lock.lock_owned().await);
        lease
    }
}

impl Drop for SessionLease<'_> {
    fn drop(&mut self) {
        self.guard.take();
        self.lock.take();
        // A poisoned map only means another request panicked while holding it; never panic in drop.
        let mut map = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.get(&self.session).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(&self.session);
        }
    }
}

/// A parsed `Content-Range` of a resumable chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkRange {
    /// `bytes */total` (or `*/*`): a status query.
    Query { total: Option<u64> },
    /// `bytes a-b/total` (total `*` when unknown).
    Chunk { start: u64, end_inclusive: u64, total: Option<u64> },
    /// No `Content-Range`: the whole object in one request.
    Whole,
}

pub(crate) fn parse_content_range(value: &str) -> Option<ChunkRange> {
    let rest = value.trim_matches(OWS).strip_prefix("bytes")?.trim_matches(OWS);
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim_matches(OWS) {
        "*" => None,
        t => Some(digits(t)?),
    };
    if range.trim_matches(OWS) == "*" {
        return Some(ChunkRange::Query { total });
    }
    let (a, b) = range.trim_matches(OWS).split_once('-')?;
    let (start, end_inclusive) = (digits(a)?, digits(b)?);
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

async fn resumable_chunk(
    st: &LocalRoutes,
    upload: &Upload<'_>,
    session: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let (name, max) = (upload.name, upload.max);
    let part = st.sessions_dir.join(format!("{session}.part"));
    let received = tokio::fs::metadata(&part).await.map(|m| m.len()).unwrap_or(0);
    let range = match headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) => parse_content_range(v).ok_or_else(|| {
            Refusal::bad_request(
                "bad_content_range",
                format!("Content-Range {v:?} is not `bytes a-b/total` or `bytes */total`"),
            )
        })?,
        None => ChunkRange::Whole,
    };
    let finished_meta = || async {
        match st.store.head(name, GetOptions::default()).await {
            Ok(meta) if meta.metadata.get("sea-gcp-session").is_some_and(|s| s == session) => Some(meta),
            _ => None,
        }
    };
    let (start, limit, total) = match range {
        ChunkRange::Query { total } => {
            if total.is_some_and(|t| t > max) {
                return Err(too_large(max));
            }
            if received == 0
                && let Some(meta) = finished_meta().await
            {
                return Ok(object_json(&meta));
            }
            return Ok(incomplete(received));
        }
        ChunkRange::Whole => (0, max, None),
        ChunkRange::Chunk { start, end_inclusive, total } => {
            if total.is_some_and(|t| t > max) || end_inclusive >= max {
                return Err(too_large(max));
            }
            // end_inclusive < max, so the length cannot overflow.
            (start, end_inclusive - start + 1, total)
        }
    };
    if start > received {
        // A gap: tell the client what we have so it resumes from there (GCS's answer).
        return Ok(incomplete(received));
    }
    let io = |e: std::io::Error| io_error(&st.store, name, e);
    tokio::fs::create_dir_all(&st.sessions_dir).await.map_err(io)?;
    let mut file =
        tokio::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&part).await.map_err(io)?;
    file.set_len(start).await.map_err(io)?;
    file.seek(SeekFrom::Start(start)).await.map_err(io)?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::debug!(object = name, error = %e, "resumable chunk body failed");
            Refusal::bad_request("body_error", "the request body could not be read; send the chunk again")
        })?;
        written = written.saturating_add(chunk.len() as u64);
        let end = start.saturating_add(written);
        if written > limit || end > max {
            drop(file);
            let _ = tokio::fs::remove_file(&part).await;
            return Err(if end > max {
                too_large(max)
            } else {
                Refusal::bad_request("chunk_too_long", "the body is longer than its Content-Range")
            });
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    drop(file);
    let now = start + written;
    let total = if range == ChunkRange::Whole { Some(now) } else { total };
    if total != Some(now) {
        return Ok(incomplete(now));
    }
    let mut opts = PutOptions::default().with_content_type(upload.ct.clone());
    opts.gzip = Some(false);
    opts.params.metadata.insert("sea-gcp-session".into(), session.to_string());
    if upload.create {
        opts = opts.with_preconditions(crate::storage::Preconditions::create_only());
    }
    let result = st.store.put(name, PutPayload::File(part.clone()), opts).await;
    let _ = tokio::fs::remove_file(&part).await;
    match result {
        Ok(meta) => Ok(object_json(&meta)),
        Err(e) => Err(storage_error(&st.store, name, e)),
    }
}

async fn download(
    State(st): State<Arc<LocalRoutes>>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    finish(get_inner(&st, &key, parse_query(query), &headers).await)
}

/// RFC 9110's optional white space: spaces and tabs (`str::trim` would also take other white space).
const OWS: [char; 2] = [' ', '\t'];

/// A byte position: ASCII digits only (RFC 9110's `1*DIGIT`; `u64::from_str` would also take a `+`).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A `Range` header with one range, or `None` when absent or not understood (RFC 9110 §14.2: the
/// header is then ignored and the whole object served). A last-byte-pos past any size is kept as the
/// largest end and clamped to the object's size later.
pub(crate) fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim_matches(OWS).strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    match (a.trim_matches(OWS), b.trim_matches(OWS)) {
        ("", n) => Some(ByteRange::Suffix(digits(n)?)),
        (a, "") => Some(ByteRange::From(digits(a)?)),
        (a, b) => {
            let (start, end) = (digits(a)?, digits(b)?);
            (end >= start).then_some(ByteRange::Bounded { start, end: end.saturating_add(1) })
        }
    }
}

/// The media type's essence (`text/html` from `Text/HTML; charset=utf-8`), or `None` when it is not
/// a single RFC 9110 `type/subtype`.
fn essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let is_token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let (kind, sub) = essence.split_once('/')?;
    (is_token(kind) && is_token(sub) && !content_type.contains(',')).then_some(essence)
}

/// Whether a browser may run `content_type` as a document or script: HTML, XHTML, SVG and every XML
/// type, JavaScript and its aliases, XSLT, `multipart/x-mixed-replace`, or anything that does not
/// parse as one media type.
pub(crate) fn is_active_content_type(content_type: &str) -> bool {
    let Some(essence) = essence(content_type) else { return true };
    matches!(
        essence.as_str(),
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "application/xslt+xml"
            | "text/javascript"
            | "application/javascript"
            | "application/x-javascript"
            | "application/ecmascript"
            | "text/ecmascript"
            | "text/jscript"
            | "application/x-shockwave-flash"
            | "multipart/x-mixed-replace"
    ) || essence.ends_with("+xml")
}

/// `disposition` turned into an attachment, keeping its parameters (`filename=...`).
fn as_attachment(disposition: Option<&str>) -> String {
    let Some(d) = disposition.map(str::trim).filter(|d| !d.is_empty()) else { return "attachment".into() };
    match d.split_once(';') {
        Some((_, params)) => format!("attachment;{params}"),
        None if d.contains('=') => format!("attachment; {d}"),
        None => "attachment".into(),
    }
}

async fn get_inner(
    st: &LocalRoutes,
    key: &str,
    query: Vec<(String, String)>,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    let signed = query.iter().any(|(k, _)| k == "sig");
    let params = if st.store.config().public_urls() && !signed {
        // Unsigned requests on a public store: only `generation` counts. Response overrides are
        // honoured only when signed (as on GCS), so nobody can change how a public object is served.
        let generations: Vec<_> = query.into_iter().filter(|(k, _)| k == "generation").collect();
        crate::storage::local::signature::check_parameters(&generations, &["generation"]).map_err(refuse_url)?
    } else {
        st.store.url_signer().verify("GET", key, &query, DOWNLOAD_PARAMS, Utc::now().timestamp()).map_err(refuse_url)?
    };
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
                format!("range {range} starts at or past the end of the object's {size} bytes"),
            )
            .into_response();
            r.headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"));
            return Ok(r);
        }
        Err(e) => return Err(storage_error(&st.store, &name, e)),
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
    let content_type = params
        .get("response-content-type")
        .cloned()
        .or_else(|| meta.content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut disposition =
        params.get("response-content-disposition").cloned().or_else(|| meta.content_disposition.clone());
    if is_active_content_type(&content_type) {
        match st.active_content {
            ActiveContent::Attachment => {
                disposition = Some(as_attachment(disposition.as_deref()));
                set(header::CONTENT_SECURITY_POLICY, Some(ATTACHMENT_CSP.into()));
            }
            ActiveContent::Sandbox => set(header::CONTENT_SECURITY_POLICY, Some(SANDBOX_CSP.into())),
            ActiveContent::Inline => {}
        }
    }
    set(header::CONTENT_TYPE, Some(content_type));
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
        for signed in ["bytes=+5-", "bytes=-+5", "bytes=0-+9", "bytes=1 0-5", "bytes=0\u{b}-9"] {
            assert_eq!(parse_range(signed), None, "{signed}: digits only");
        }
        assert_eq!(parse_content_range("bytes +0-9/10"), None);
        assert_eq!(parse_content_range("bytes 0-9/+10"), None);
        assert_eq!(parse_range("bytes=0-1,3-4"), None);
        assert_eq!(parse_range("bytes=0-18446744073709551615"), Some(ByteRange::Bounded { start: 0, end: u64::MAX }));
        assert_eq!(parse_range("bytes=0-18446744073709551616"), None);
        assert_eq!(base_path("http://localhost:8000/storage/media/"), "/storage/media");
        assert_eq!(base_path("/storage/media"), "/storage/media");
    }

    #[test]
    fn active_types() {
        for t in ["text/html", "Text/HTML; charset=utf-8", "image/svg+xml", "application/rss+xml", "text/javascript"] {
            assert!(is_active_content_type(t), "{t}");
        }
        for t in ["image/png, text/html", "", "html", "text/ html"] {
            assert!(is_active_content_type(t), "{t:?} does not parse, so it is treated as active");
        }
        for t in ["image/png", "text/plain; charset=utf-8", "application/pdf", "application/octet-stream"] {
            assert!(!is_active_content_type(t), "{t}");
        }
        assert_eq!(as_attachment(None), "attachment");
        assert_eq!(as_attachment(Some("inline")), "attachment");
        assert_eq!(as_attachment(Some("inline; filename=\"a.html\"")), "attachment; filename=\"a.html\"");
        assert_eq!(as_attachment(Some("attachment; filename=a.svg")), "attachment; filename=a.svg");
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;
    use crate::StoreConfig;
    use crate::storage::SignedUploadOptions;

    async fn routes() -> (Arc<LocalRoutes>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::new("media", StoreConfig::local(dir.path())).await.unwrap());
        let routes = LocalRoutes {
            sessions_dir: store.sessions_dir(),
            store,
            session_locks: Mutex::new(HashMap::new()),
            active_content: ActiveContent::default(),
            _stop: None,
        };
        (Arc::new(routes), dir)
    }

    /// The key and query of a resumable upload URL for `name`.
    async fn session(st: &LocalRoutes, name: &str) -> (String, Vec<(String, String)>) {
        let opts = SignedUploadOptions {
            resumable: true,
            content_type: "text/plain".into(),
            max_size: 100,
            ..Default::default()
        };
        let url = st.store.signed_upload(name, opts).await.unwrap().url;
        let (path, query) = url.split_once('?').unwrap();
        (path.strip_prefix("/storage/media/").unwrap().to_string(), parse_query(Some(query.to_string())))
    }

    fn chunk_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes 0-9/100"));
        headers
    }

    #[tokio::test]
    async fn abandoned_sessions_leave_no_lock_behind() {
        let (st, _dir) = routes().await;
        for i in 0..50 {
            let (key, query) = session(&st, &format!("f{i}.txt")).await;
            let r = put_inner(&st, &key, query, &chunk_headers(), Body::from("0123456789")).await.unwrap();
            assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        }
        assert_eq!(st.session_locks.lock().unwrap().len(), 0, "50 abandoned sessions, no lock kept");

        // A request dropped in the middle of its body (the client went away) releases its lock too.
        let (key, query) = session(&st, "slow.txt").await;
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
        let task = tokio::spawn({
            let st = st.clone();
            async move { put_inner(&st, &key, query, &chunk_headers(), Body::from_stream(rx)).await.map(|_| ()) }
        });
        futures::SinkExt::send(&mut tx, Ok(bytes::Bytes::from_static(b"01234"))).await.unwrap();
        for _ in 0..200 {
            if st.session_locks.lock().unwrap().len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(st.session_locks.lock().unwrap().len(), 1, "the request in flight holds its session's lock");
        task.abort();
        let _ = task.await;
        assert_eq!(st.session_locks.lock().unwrap().len(), 0, "an aborted request releases its lock");
    }
}
