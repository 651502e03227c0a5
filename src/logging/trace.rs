//! Trace context from `traceparent` (W3C) or `X-Cloud-Trace-Context`, and the tower layer that puts it
//! (with the HTTP request) on a span around each request.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, Request};
use tokio::sync::OnceCell;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;

use crate::metadata::{MetadataClient, is_cloud_run};

/// A request's trace, from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits (`X-Cloud-Trace-Context` carries it in decimal), when the header has one.
    pub span_id: Option<String>,
    /// Whether the caller sampled the trace.
    pub sampled: bool,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// W3C Trace Context allows lowercase hex digits only.
fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl TraceContext {
    /// Parse a W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase hex
    /// only (the spec says to ignore a header with uppercase digits). All-zero ids and version `ff` are
    /// invalid; later versions are read by their first four parts, as the spec asks.
    pub fn from_traceparent(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if !is_lower_hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        if !is_lower_hex(trace, 32) || !is_lower_hex(span, 16) || !is_lower_hex(flags, 2) {
            return None;
        }
        if trace.bytes().all(|b| b == b'0') || span.bytes().all(|b| b == b'0') {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self { trace_id: trace.to_string(), span_id: Some(span.to_string()), sampled: flags & 1 == 1 })
    }

    /// Parse `X-Cloud-Trace-Context`: `TRACE_ID[/SPAN_ID][;o=OPTIONS]`, the span id in decimal digits only
    /// (converted to 16 hex digits; a sign, a space or anything else leaves the span id out), `o=1` meaning
    /// sampled.
    pub fn from_cloud_trace_context(value: &str) -> Option<Self> {
        let (ids, options) = match value.trim().split_once(';') {
            Some((ids, options)) => (ids, Some(options)),
            None => (value.trim(), None),
        };
        let (trace, span) = match ids.split_once('/') {
            Some((trace, span)) => (trace, Some(span)),
            None => (ids, None),
        };
        if !is_hex(trace, 32) || trace.bytes().all(|b| b == b'0') {
            return None;
        }
        let span_id = match span.filter(|s| !s.is_empty()) {
            None => None,
            Some(decimal) if !decimal.bytes().all(|b| b.is_ascii_digit()) => None,
            Some(decimal) => match decimal.parse::<u64>() {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(format!("{n:016x}")),
            },
        };
        let sampled = options.is_some_and(|o| o.split(';').any(|kv| kv.trim() == "o=1"));
        Some(Self { trace_id: trace.to_ascii_lowercase(), span_id, sampled })
    }

    /// From headers: `traceparent` first, else `X-Cloud-Trace-Context`; `None` when neither is valid.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        get("traceparent")
            .and_then(Self::from_traceparent)
            .or_else(|| get("x-cloud-trace-context").and_then(Self::from_cloud_trace_context))
    }

    /// `projects/<project>/traces/<trace id>`, the form `logging.googleapis.com/trace` takes.
    pub(crate) fn resource_name(&self, project_id: &str) -> String {
        format!("projects/{project_id}/traces/{}", self.trace_id)
    }
}

/// Which `X-Forwarded-For` entries to believe when finding the client's address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustedProxies {
    /// Trust no proxy: the client is the connection's peer address (`X-Forwarded-For` is ignored).
    #[default]
    None,
    /// This many proxies append to `X-Forwarded-For` in front of the app: the client is the entry this far
    /// from the right. Cloud Run alone: `Hops(1)`; an external HTTPS load balancer in front: `Hops(2)`.
    Hops(usize),
    /// Proxies at these networks: entries from the right inside them are skipped, the first outside is the
    /// client (a peer outside them makes the header untrusted).
    Networks(Vec<ipnet::IpNet>),
}

impl TrustedProxies {
    /// The client's address from the peer address and the headers.
    pub(crate) fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let forwarded = || {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .collect::<Vec<_>>()
        };
        match self {
            TrustedProxies::None => peer,
            TrustedProxies::Hops(0) => peer,
            TrustedProxies::Hops(n) => {
                let list = forwarded();
                if list.is_empty() { peer } else { Some(list[list.len().saturating_sub(*n)]) }
            }
            TrustedProxies::Networks(nets) => {
                let trusted = |ip: &IpAddr| nets.iter().any(|n| n.contains(ip));
                match peer {
                    Some(p) if !trusted(&p) => Some(p),
                    _ => forwarded().into_iter().rev().find(|ip| !trusted(ip)).or(peer),
                }
            }
        }
    }
}

/// What a request log and an error report say about the HTTP request, computed once per request by
/// [`TraceContextLayer`] and left in the request's extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRequestInfo {
    /// `GET`, ...
    pub method: String,
    /// Scheme, host, path and query.
    pub url: String,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Referer`.
    pub referer: Option<String>,
    /// The client's address (see [`TrustedProxies`]).
    pub remote_ip: Option<IpAddr>,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub protocol: String,
    /// The request's size in bytes: its head (request line and headers, as HTTP/1.1 writes them) and its
    /// body's `Content-Length`; `None` when the body's length is unknown (chunked, or HTTP/2 without
    /// `Content-Length`).
    pub request_size: Option<u64>,
}

impl HttpRequestInfo {
    /// Read it from a request.
    pub(crate) fn from_request<B>(request: &Request<B>, trusted: &TrustedProxies) -> Self {
        let headers = request.headers();
        let header = |name| headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok()).map(str::to_string);
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .or_else(|| request.extensions().get::<SocketAddr>().map(SocketAddr::ip));
        let scheme = match trusted {
            TrustedProxies::None => None,
            _ => header("x-forwarded-proto"),
        }
        .or_else(|| request.uri().scheme_str().map(str::to_string))
        .unwrap_or_else(|| "http".to_string());
        let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let url = match request.uri().authority().map(|a| a.as_str().to_string()).or_else(|| header("host")) {
            Some(host) => format!("{scheme}://{host}{path}"),
            None => path.to_string(),
        };
        Self {
            method: request.method().as_str().to_string(),
            url,
            user_agent: header("user-agent"),
            referer: header("referer"),
            remote_ip: trusted.client_ip(peer, headers),
            protocol: format!("{:?}", request.version()),
            request_size: super::http_size::request_size(request),
        }
    }
}

/// Options of [`TraceContextLayer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TraceOptions {
    /// The project traces belong to. `None`: `GOOGLE_CLOUD_PROJECT`, else (on Cloud Run) the metadata server,
    /// looked up on the first request with a trace and kept once found. A failed lookup is retried after
    /// [`project_id_retry`](Self::project_id_retry), doubling per failure up to 5 minutes; meanwhile traces
    /// are written as bare ids.
    pub project_id: Option<String>,
    /// How long after a failed project-id lookup the next request tries again (default 1 s).
    pub project_id_retry: Duration,
    /// The metadata client for the project id (default: [`MetadataClient::from_env`], used only on Cloud Run).
    pub metadata: Option<MetadataClient>,
    /// Which `X-Forwarded-For` entries to believe for `remoteIp`.
    pub trusted_proxies: TrustedProxies,
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            project_id: None,
            project_id_retry: Duration::from_secs(1),
            metadata: None,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// The longest wait between two project-id lookups.
const PROJECT_ID_RETRY_MAX: Duration = Duration::from_secs(300);

impl TraceOptions {
    /// Wait this long after a failed project-id lookup before the next (doubled per failure, at most 5
    /// minutes).
    pub fn with_project_id_retry(mut self, delay: Duration) -> Self {
        self.project_id_retry = delay;
        self
    }

    /// Traces belong to this project.
    pub fn with_project_id(mut self, project_id: impl Into<String>) -> Self {
        self.project_id = Some(project_id.into());
        self
    }

    /// Ask this metadata client for the project id (also off Cloud Run, e.g. a fake in tests).
    pub fn with_metadata(mut self, metadata: MetadataClient) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Believe these proxies' `X-Forwarded-For`.
    pub fn with_trusted_proxies(mut self, trusted: TrustedProxies) -> Self {
        self.trusted_proxies = trusted;
        self
    }
}

struct Shared {
    options: TraceOptions,
    /// Where the project id comes from, decided on the first request: `Ok` a value (configured, from the
    /// environment), `Err` the metadata server to ask, `Ok(None)` nowhere (off Cloud Run, nothing set).
    source: OnceCell<Result<Option<String>, MetadataClient>>,
    /// The id found by the metadata server; a failure is never kept here.
    found: OnceCell<String>,
    /// When the next lookup may run after a failure, and the wait after the next failure. Held across a
    /// lookup, so concurrent requests share one attempt.
    retry: tokio::sync::Mutex<(Option<Instant>, Duration)>,
}

impl Shared {
    async fn project_id(&self) -> Option<&str> {
        let source = self
            .source
            .get_or_init(|| async {
                if let Some(p) = &self.options.project_id {
                    return Ok(Some(p.clone()));
                }
                if let Some(p) = ["GOOGLE_CLOUD_PROJECT", "GCP_PROJECT"]
                    .into_iter()
                    .find_map(|v| std::env::var(v).ok().filter(|p| !p.trim().is_empty()))
                {
                    return Ok(Some(p));
                }
                match &self.options.metadata {
                    Some(m) => Err(m.clone()),
                    None if is_cloud_run() => Err(MetadataClient::from_env()),
                    None => Ok(None),
                }
            })
            .await;
        let metadata = match source {
            Ok(value) => return value.as_deref(),
            Err(metadata) => metadata,
        };
        if let Some(p) = self.found.get() {
            return Some(p);
        }
        let mut retry = self.retry.lock().await;
        if let Some(p) = self.found.get() {
            return Some(p);
        }
        if retry.0.is_some_and(|next| Instant::now() < next) {
            return None;
        }
        match metadata.project_id().await {
            Ok(p) => Some(self.found.get_or_init(|| async { p }).await.as_str()),
            Err(e) => {
                let wait = retry.1;
                tracing::warn!(
                    error = %e,
                    retry_in = ?wait,
                    "no project id for trace correlation (traces are bare ids until a lookup succeeds); set \
                     TraceOptions::project_id or GOOGLE_CLOUD_PROJECT to skip the lookup"
                );
                *retry = (Some(Instant::now() + wait), (wait * 2).min(PROJECT_ID_RETRY_MAX));
                None
            }
        }
    }
}

/// A tower layer that runs each request inside a `request` span carrying its trace (from `traceparent` or
/// `X-Cloud-Trace-Context`) and HTTP request, so that every line [`CloudLoggingLayer`](super::CloudLoggingLayer)
/// writes inside the request has `logging.googleapis.com/trace`, `spanId` and `trace_sampled`, and error
/// reports get the request context. It also leaves an [`HttpRequestInfo`] in the request's extensions.
///
/// The span is at INFO level with target `sea_gcp::logging`: a filter that drops it drops the trace too
/// (keep `sea_gcp::logging=info` in an `EnvFilter`).
#[derive(Clone)]
pub struct TraceContextLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TraceContextLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceContextLayer").field("options", &self.shared.options).finish()
    }
}

impl Default for TraceContextLayer {
    fn default() -> Self {
        Self::new(TraceOptions::default())
    }
}

impl TraceContextLayer {
    /// A layer with these options.
    pub fn new(options: TraceOptions) -> Self {
        let retry = tokio::sync::Mutex::new((None, options.project_id_retry));
        Self { shared: Arc::new(Shared { options, source: OnceCell::new(), found: OnceCell::new(), retry }) }
    }
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService { inner, shared: Arc::clone(&self.shared) }
    }
}

/// The service [`TraceContextLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct TraceContextService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for TraceContextService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceContextService").finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for TraceContextService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The service that was polled ready handles this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let trace = TraceContext::from_headers(request.headers());
            let info = HttpRequestInfo::from_request(&request, &shared.options.trusted_proxies);
            let project = match &trace {
                Some(_) => shared.project_id().await,
                None => None,
            };
            let resource = trace.as_ref().map(|t| match project {
                Some(p) => t.resource_name(p),
                None => t.trace_id.clone(),
            });
            let span = tracing::info_span!(
                target: "sea_gcp::logging",
                "request",
                gcp.trace = resource.as_deref(),
                gcp.span_id = trace.as_ref().and_then(|t| t.span_id.as_deref()),
                gcp.trace_sampled = trace.as_ref().map(|t| t.sampled),
                gcp.http.method = info.method.as_str(),
                gcp.http.url = info.url.as_str(),
                gcp.http.user_agent = info.user_agent.as_deref(),
                gcp.http.referer = info.referer.as_deref(),
                gcp.http.remote_ip = info.remote_ip.map(tracing::field::display),
            );
            request.extensions_mut().insert(info);
            if let Some(trace) = trace {
                request.extensions_mut().insert(trace);
            }
            inner.call(request).instrument(span).await
        })
    }
}
