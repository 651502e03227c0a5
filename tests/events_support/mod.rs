//! Shared by the events test targets: databases, skips, a router on loopback.
#![allow(dead_code)]

#[path = "../db_support/mod.rs"]
mod db_support;
#[allow(unused_imports)]
pub use db_support::{TestDb, databases, skip_or_fail};

/// `PUBSUB_EMULATOR_HOST`, or a skip.
pub fn pubsub_emulator() -> Option<String> {
    match std::env::var("PUBSUB_EMULATOR_HOST") {
        Ok(host) if !host.is_empty() => Some(host),
        _ => {
            skip_or_fail("Pub/Sub emulator", "PUBSUB_EMULATOR_HOST is not set (run through scripts/test.sh)".into());
            None
        }
    }
}

/// A unique suffix for table, topic and subscription names.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Serve `router` on a loopback port bound before the router is built (so the policy can name it).
pub async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// Spawn `router` on `listener`.
pub fn spawn(listener: tokio::net::TcpListener, router: axum::Router) {
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
}
