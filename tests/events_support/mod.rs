//! Shared by the events test targets: databases, skips, a router on loopback.
#![allow(dead_code)]

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

/// Print SKIPPED loudly, or panic under SEA_GCP_REQUIRE_ALL=1.
pub fn skip_or_fail(what: &str, why: String) {
    if std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{what} is required (SEA_GCP_REQUIRE_ALL=1) but unavailable: {why}");
    }
    eprintln!("SKIPPED: {what} — {why}");
}

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

/// One database.
pub struct TestDb {
    /// `sqlite`, `postgres`, `mariadb`.
    pub name: &'static str,
    /// The pool.
    pub conn: DatabaseConnection,
    _dir: Option<tempfile::TempDir>,
}

async fn connect(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(8)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    Database::connect(opts).await
}

/// SQLite (fresh WAL file) always; PostgreSQL and MariaDB when reachable.
pub async fn databases() -> Vec<TestDb> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let conn = connect(&format!("sqlite://{}?mode=rwc", dir.path().join("events.sqlite").display())).await.unwrap();
    conn.execute_unprepared("PRAGMA journal_mode=WAL").await.unwrap();
    conn.execute_unprepared("PRAGMA busy_timeout=20000").await.unwrap();
    out.push(TestDb { name: "sqlite", conn, _dir: Some(dir) });
    let pg =
        std::env::var("SEA_GCP_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match connect(&pg).await {
        Ok(conn) => out.push(TestDb { name: "postgres", conn, _dir: None }),
        Err(e) => skip_or_fail("PostgreSQL", format!("{pg}: {e}")),
    }
    let my = std::env::var("SEA_GCP_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    match connect(&my).await {
        Ok(conn) => out.push(TestDb { name: "mariadb", conn, _dir: None }),
        Err(e) => skip_or_fail("MariaDB/MySQL", format!("{my}: {e}")),
    }
    out
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
