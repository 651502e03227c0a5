//! The tower layer that writes one request log entry (`httpRequest`) per request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::trace::{HttpRequestInfo, TrustedProxies};

/// Options of [`RequestLogLayer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestLogOptions {
    /// Write request entries at all (default true). Cloud Run writes its own request log: see the module docs
    /// for how to avoid seeing each request twice.
    pub enabled: bool,
    /// Used only when no [`TraceContextLayer`](super::TraceContextLayer) ran before (it computes the client
    /// address once with its own setting).
    pub trusted_proxies: TrustedProxies,
}

impl Default for RequestLogOptions {
    fn default() -> Self {
        Self { enabled: true, trusted_proxies: TrustedProxies::None }
    }
}

impl RequestLogOptions {
    /// Write request entries or not (e.g. `!sea_gcp::metadata::is_cloud_run()` to rely on Cloud Run's).
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Believe these proxies' `X-Forwarded-For` (without a [`TraceContextLayer`](super::TraceContextLayer)).
    pub fn with_trusted_proxies(mut self, trusted: TrustedProxies) -> Self {
        self.trusted_proxies = trusted;
        self
    }
}

/// A tower layer writing one entry per request with `httpRequest` (method, URL, status, sizes, latency,
/// user agent, remote IP, referer, protocol), severity by status class: 5xx `ERROR`, 4xx `WARNING`, else
/// `INFO`. The entry is written when the response head is ready; latency is measured to that point.
/// `requestSize` and `responseSize` count the head (start line and headers, as HTTP/1.1 writes them) and
/// the body: the request's `Content-Length`, the response's exact body size or `Content-Length`, nothing
/// for a HEAD request or a 1xx, 204 or 304 response. Each is absent when its body's length is unknown
/// (a chunked request, a streamed response).
#[derive(Debug, Clone, Default)]
pub struct RequestLogLayer {
    options: RequestLogOptions,
}

impl RequestLogLayer {
    /// A layer with these options.
    pub fn new(options: RequestLogOptions) -> Self {
        Self { options }
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLogService { inner, options: self.options.clone() }
    }
}

/// The service [`RequestLogLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct RequestLogService<S> {
    inner: S,
    options: RequestLogOptions,
}

impl<S, B, RB> Service<Request<B>> for RequestLogService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    RB: Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RequestLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let info = self.options.enabled.then(|| {
            request
                .extensions()
                .get::<HttpRequestInfo>()
                .cloned()
                .unwrap_or_else(|| HttpRequestInfo::from_request(&request, &self.options.trusted_proxies))
        });
        RequestLogFuture { inner: self.inner.call(request), info, started: Instant::now() }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RequestLogService`].
    #[derive(Debug)]
    pub struct RequestLogFuture<F> {
        #[pin]
        inner: F,
        info: Option<HttpRequestInfo>,
        started: Instant,
    }
}

/// `"0.123s"`: Cloud Logging's duration form (seconds, up to nanoseconds, trailing zeros dropped).
pub(crate) fn format_latency(latency: Duration) -> String {
    let mut s = format!("{}.{:09}", latency.as_secs(), latency.subsec_nanos());
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s.push('s');
    s
}

fn log<RB: Body>(info: &HttpRequestInfo, response: &Response<RB>, latency: Duration) {
    let status = response.status().as_u16();
    let response_size = super::http_size::response_size(&info.method, response);
    let latency = format_latency(latency);
    let path = info.url.find("://").and_then(|i| info.url[i + 3..].find('/').map(|j| &info.url[i + 3 + j..]));
    let path = path.unwrap_or(&info.url);
    macro_rules! entry {
        ($level:expr) => {
            tracing::event!(
                target: "sea_gcp::request",
                $level,
                {
                gcp.http.method = info.method.as_str(),
                gcp.http.url = info.url.as_str(),
                gcp.http.status = status,
                gcp.http.request_size = info.request_size,
                gcp.http.response_size = response_size,
                gcp.http.latency = latency.as_str(),
                gcp.http.user_agent = info.user_agent.as_deref(),
                gcp.http.remote_ip = info.remote_ip.map(tracing::field::display),
                gcp.http.referer = info.referer.as_deref(),
                gcp.http.protocol = info.protocol.as_str(),
                },
                "{} {} {}",
                info.method,
                path,
                status
            )
        };
    }
    match status {
        500.. => entry!(tracing::Level::ERROR),
        400..=499 => entry!(tracing::Level::WARN),
        _ => entry!(tracing::Level::INFO),
    }
}

impl<F, RB, E> Future for RequestLogFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    RB: Body,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(info)) = (&result, this.info.take()) {
            log(&info, response, this.started.elapsed());
        }
        Poll::Ready(result)
    }
}
