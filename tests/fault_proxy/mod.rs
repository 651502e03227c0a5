//! A fault-injecting loopback HTTP proxy in front of the GCS emulator, for the tests that check what a
//! lost answer does to a save (`tests/save_under_faults.rs`).
//!
//! Every request is read whole, then, by a seeded random draw:
//!
//! * answered `503` or `429` without reaching the emulator;
//! * **closed**: the connection is reset before the request is forwarded (nothing happened);
//! * **dropped**: the request is forwarded and takes effect, then the connection is reset instead of
//!   sending the answer (the write happened; the client cannot know);
//! * otherwise forwarded and answered.
//!
//! It also answers `412` where GCS would and fake-gcs-server does not: `ifGenerationMatch` (0 =
//! create-only) on uploads, copies (and `ifSourceGenerationMatch`), deletes and patches, and a
//! `generation=` delete of a generation that is not live (404). The live generation is read from the
//! emulator first; the check and the forwarded write hold one lock, so they are atomic.
//!
//! Every request is logged (method, path, query, a hash of the body): the tests count repeats of
//! identical unguarded writes (a retried unguarded call) from the log.

#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Probability of each fault, per request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultRates {
    /// Answer 503 without forwarding.
    pub unavailable: f64,
    /// Answer 429 without forwarding.
    pub throttled: f64,
    /// Reset the connection without forwarding.
    pub closed: f64,
    /// Forward, then reset the connection instead of answering.
    pub dropped: f64,
}

impl FaultRates {
    /// Every fault at `p`.
    pub fn each(p: f64) -> Self {
        Self { unavailable: p, throttled: p, closed: p, dropped: p }
    }
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Forwarded and answered.
    Forwarded,
    /// Answered 412 (or 404) by the proxy's precondition check.
    Refused,
    /// 503.
    Unavailable,
    /// 429.
    Throttled,
    /// Reset before forwarding.
    Closed,
    /// Forwarded, then reset.
    Dropped,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path (percent-encoded, as sent).
    pub path: String,
    /// Query string.
    pub query: String,
    /// Hash of the body.
    pub body: u64,
    /// A write (not GET/HEAD).
    pub write: bool,
    /// Carries a guard: `ifGenerationMatch`, `ifMetagenerationMatch` or a pinned `generation`.
    pub guarded: bool,
    /// What the proxy did.
    pub outcome: Outcome,
    /// The `Authorization` header, as received.
    pub authorization: Option<String>,
}

impl Logged {
    /// A write without any guard.
    pub fn unguarded_write(&self) -> bool {
        self.write && !self.guarded
    }
}

struct State {
    upstream: String,
    http: reqwest::Client,
    rates: Mutex<FaultRates>,
    rng: Mutex<StdRng>,
    log: Mutex<Vec<Logged>>,
    writes: tokio::sync::Mutex<()>,
}

/// The running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy to `upstream` (the emulator's URL) injecting `rates`, drawing from `seed`.
    pub async fn start(upstream: &str, rates: FaultRates, seed: u64) -> FaultProxy {
        let upstream = if upstream.contains("://") { upstream.to_string() } else { format!("http://{upstream}") };
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
            rates: Mutex::new(rates),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            log: Mutex::new(Vec::new()),
            writes: tokio::sync::Mutex::new(()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(state, socket).await;
                });
            }
        });
        FaultProxy { url, state, task }
    }

    /// Change the fault rates (zero: a faithful proxy).
    pub fn set_rates(&self, rates: FaultRates) {
        *self.state.rates.lock().unwrap() = rates;
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests per outcome.
    pub fn outcomes(&self) -> BTreeMap<Outcome, usize> {
        let mut out = BTreeMap::new();
        for l in self.state.log.lock().unwrap().iter() {
            *out.entry(l.outcome).or_insert(0) += 1;
        }
        out
    }

    /// Unguarded writes sent more than once (identical method, path, query and body): retries of calls
    /// that must not be retried.
    pub fn repeated_unguarded_writes(&self) -> Vec<Logged> {
        let mut seen: HashMap<(String, String, String, u64), usize> = HashMap::new();
        let log = self.state.log.lock().unwrap();
        for l in log.iter().filter(|l| l.unguarded_write()) {
            *seen.entry((l.method.clone(), l.path.clone(), l.query.clone(), l.body)).or_insert(0) += 1;
        }
        log.iter()
            .filter(|l| l.unguarded_write())
            .filter(|l| seen[&(l.method.clone(), l.path.clone(), l.query.clone(), l.body)] > 1)
            .cloned()
            .collect()
    }

    /// Repeats of identical requests (the retries that did happen), per method.
    pub fn repeated_requests(&self) -> BTreeMap<String, usize> {
        let mut seen: HashMap<(String, String, String, u64), usize> = HashMap::new();
        for l in self.state.log.lock().unwrap().iter() {
            *seen.entry((l.method.clone(), l.path.clone(), l.query.clone(), l.body)).or_insert(0) += 1;
        }
        let mut out = BTreeMap::new();
        for ((method, ..), n) in seen {
            if n > 1 {
                *out.entry(method).or_insert(0) += n - 1;
            }
        }
        out
    }
}

/// One parsed request.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    fn param(&self, key: &str) -> Option<i64> {
        url::form_urlencoded::parse(self.query().as_bytes()).find(|(k, _)| k == key).and_then(|(_, v)| v.parse().ok())
    }
}

async fn read_request(socket: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        return Err(std::io::Error::other("chunked request bodies are not supported by the fault proxy"));
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some(Request { method, target, headers, body }))
}

/// Close with a TCP reset (`SO_LINGER` 0). Deprecated in tokio because a non-zero linger blocks the
/// thread on drop; a zero linger does not wait.
#[allow(deprecated)]
fn reset(socket: TcpStream) {
    let _ = socket.set_linger(Some(Duration::ZERO));
    drop(socket);
}

async fn respond(
    socket: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        if !matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection") {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    socket.write_all(out.as_bytes()).await?;
    socket.write_all(body).await?;
    socket.flush().await
}

fn error_body(code: u16, message: &str) -> Vec<u8> {
    serde_json::json!({"error": {"code": code, "message": message, "errors": [{"message": message}]}})
        .to_string()
        .into_bytes()
}

fn json_headers() -> Vec<(String, String)> {
    vec![("content-type".into(), "application/json".into())]
}

async fn serve(state: Arc<State>, mut socket: TcpStream) -> std::io::Result<()> {
    let Some(req) = read_request(&mut socket).await? else { return Ok(()) };
    let write = !matches!(req.method.as_str(), "GET" | "HEAD");
    let guarded = req.param("ifGenerationMatch").is_some()
        || req.param("ifMetagenerationMatch").is_some()
        || (req.method == "DELETE" && req.param("generation").is_some());
    let mut hasher = DefaultHasher::new();
    req.body.hash(&mut hasher);
    let mut logged = Logged {
        method: req.method.clone(),
        path: req.path().to_string(),
        query: req.query().to_string(),
        body: hasher.finish(),
        write,
        guarded,
        outcome: Outcome::Forwarded,
        authorization: req.headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.clone()),
    };
    let draw: f64 = state.rng.lock().unwrap().random();
    let rates = *state.rates.lock().unwrap();
    let mut edge = 0.0;
    let mut pick = |p: f64| {
        edge += p;
        draw < edge
    };
    let fault = if pick(rates.unavailable) {
        Some(Outcome::Unavailable)
    } else if pick(rates.throttled) {
        Some(Outcome::Throttled)
    } else if pick(rates.closed) {
        Some(Outcome::Closed)
    } else if pick(rates.dropped) {
        Some(Outcome::Dropped)
    } else {
        None
    };
    let result = match fault {
        Some(Outcome::Unavailable) => {
            respond(&mut socket, 503, &json_headers(), &error_body(503, "injected: backend unavailable")).await
        }
        Some(Outcome::Throttled) => {
            respond(&mut socket, 429, &json_headers(), &error_body(429, "injected: rate limit exceeded")).await
        }
        Some(Outcome::Closed) => {
            reset(socket);
            Ok(())
        }
        _ => {
            let lock = if write { Some(state.writes.lock().await) } else { None };
            let answer = match refusal(&state, &req).await {
                Some((status, message)) => {
                    logged.outcome = Outcome::Refused;
                    (status, json_headers(), error_body(status, &message))
                }
                None => forward(&state, &req).await,
            };
            drop(lock);
            if fault == Some(Outcome::Dropped) {
                logged.outcome = Outcome::Dropped;
                reset(socket);
                Ok(())
            } else {
                respond(&mut socket, answer.0, &answer.1, &answer.2).await
            }
        }
    };
    if let Some(f) = fault.filter(|f| *f != Outcome::Dropped) {
        logged.outcome = f;
    }
    state.log.lock().unwrap().push(logged);
    result
}

async fn forward(state: &State, req: &Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
    let mut builder = state.http.request(method, format!("{}{}", state.upstream, req.target));
    for (k, v) in &req.headers {
        if !matches!(k.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
            builder = builder.header(k, v);
        }
    }
    let response = match builder.body(req.body.clone()).send().await {
        Ok(r) => r,
        Err(e) => return (502, json_headers(), error_body(502, &format!("proxy: upstream failed: {e}"))),
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (status, headers, body)
}

/// `(bucket, object)` of `/storage/v1/b/{bucket}/o/{object}` (decoded).
fn object_of(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/storage/v1/b/")?;
    let (bucket, object) = rest.split_once("/o/")?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().to_string();
    Some((decode(bucket), decode(object)))
}

/// The live generation of `bucket/object` (0: none), read from the emulator.
async fn live_generation(state: &State, bucket: &str, object: &str) -> i64 {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let url = format!("{}/storage/v1/b/{}/o/{}", state.upstream, enc(bucket), enc(object));
    let Ok(response) = state.http.get(url).send().await else { return -1 };
    if response.status().as_u16() == 404 {
        return 0;
    }
    let value: serde_json::Value = response.json().await.unwrap_or_default();
    value["generation"].as_str().and_then(|g| g.parse().ok()).unwrap_or(-1)
}

/// The 412 (or 404) GCS would answer and the emulator does not, if any.
async fn refusal(state: &State, req: &Request) -> Option<(u16, String)> {
    let path = req.path();
    let (bucket, object) = if req.method == "POST" && path.starts_with("/upload/storage/v1/b/") {
        // A multipart upload names its object in the JSON part of the body.
        let bucket = path.strip_prefix("/upload/storage/v1/b/")?.split('/').next()?.to_string();
        let body = String::from_utf8_lossy(&req.body);
        let start = body.find('{')?;
        let end = body[start..].find("\r\n")? + start;
        let meta: serde_json::Value = serde_json::from_str(&body[start..end]).ok()?;
        (
            percent_encoding::percent_decode_str(&bucket).decode_utf8_lossy().to_string(),
            meta["name"].as_str()?.to_string(),
        )
    } else if req.method == "POST" && path.contains("/copyTo/") {
        let (src_path, dst_path) = path.split_once("/copyTo/")?;
        let (bucket, source) = object_of(src_path)?;
        if let Some(want) = req.param("ifSourceGenerationMatch")
            && live_generation(state, &bucket, &source).await != want
        {
            return Some((412, format!("proxy: ifSourceGenerationMatch={want} does not match `{source}`")));
        }
        object_of(&format!("/storage/v1/{dst_path}"))?
    } else if matches!(req.method.as_str(), "PATCH" | "DELETE") {
        object_of(path)?
    } else {
        return None;
    };
    if req.method == "DELETE"
        && let Some(generation) = req.param("generation")
        && live_generation(state, &bucket, &object).await != generation
    {
        return Some((404, format!("proxy: generation {generation} of `{object}` does not exist")));
    }
    let want = req.param("ifGenerationMatch")?;
    let live = live_generation(state, &bucket, &object).await;
    if live == 0 && matches!(req.method.as_str(), "PATCH" | "DELETE") {
        return None; // the emulator answers 404, as GCS does
    }
    (live != want).then(|| (412, format!("proxy: ifGenerationMatch={want} but `{object}` is at generation {live}")))
}
