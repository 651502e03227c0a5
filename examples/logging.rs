//! An axum app with Cloud Logging structured logs, trace correlation, request logs, Error Reporting and
//! the Cloud Run metadata server.
//!
//! `cargo run --example logging --features logging,metadata`, then
//! `curl -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' localhost:8080/`,
//! `/whoami`, `/fail` or `/panic`: every line on stdout is one Cloud Logging entry.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sea_gcp::logging::{
    CloudLoggingLayer, LoggingOptions, PanicHookOptions, RequestLogLayer, RequestLogOptions, TraceContextLayer,
    TraceOptions, TrustedProxies, install_panic_hook,
};
use sea_gcp::metadata::{MetadataClient, is_cloud_run};
use tower_http::catch_panic::CatchPanicLayer;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Debug, thiserror::Error)]
#[error("could not load the basket")]
struct BasketError(#[source] std::io::Error);

#[tracing::instrument]
async fn hello() -> &'static str {
    tracing::info!(labels.feature = "greeting", visitors = 1, "said hello");
    "hello\n"
}

async fn whoami(State(metadata): State<MetadataClient>) -> Result<String, (StatusCode, String)> {
    let unavailable = |e: sea_gcp::Error| {
        tracing::warn!(error = %e, "metadata unavailable");
        (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
    };
    let project = metadata.project_id().await.map_err(unavailable)?;
    let region = metadata.region().await.map_err(unavailable)?;
    let account = metadata.service_account_email().await.map_err(unavailable)?;
    Ok(format!("{project} {region} {account}\n"))
}

async fn fail() -> StatusCode {
    let e = BasketError(std::io::Error::other("connection reset"));
    // One Error Reporting entry with this location and the request; logging it again is a plain line.
    sea_gcp::report_error!(&e);
    tracing::error!(error = &e as &dyn std::error::Error, "request failed");
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn panics() -> &'static str {
    panic!("the basket is gone")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with(CloudLoggingLayer::new(LoggingOptions::default()))
        .init();
    install_panic_hook(PanicHookOptions::default());

    let metadata = MetadataClient::from_env();
    let on_cloud_run = is_cloud_run();
    tracing::info!(severity = "NOTICE", on_cloud_run, "starting");
    // Cloud Run's front end appends the client's address to X-Forwarded-For: trust that one hop there.
    let proxies = if on_cloud_run { TrustedProxies::Hops(1) } else { TrustedProxies::None };
    let trace = TraceOptions::default().with_trusted_proxies(proxies);
    let app = Router::new()
        .route("/", get(hello))
        .route("/whoami", get(whoami))
        .route("/fail", get(fail))
        .route("/panic", get(panics))
        .with_state(metadata)
        .layer(CatchPanicLayer::new())
        // Cloud Run logs every request itself: keep ours off there to see each request once.
        .layer(RequestLogLayer::new(RequestLogOptions::default().with_enabled(!on_cloud_run)))
        .layer(TraceContextLayer::new(trace));

    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    tracing::info!(port, "listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
}
