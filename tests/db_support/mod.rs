//! The databases every database test runs against, shared by the test support modules (each includes
//! this file with `#[path]`): SQLite in a fresh WAL-mode file always, PostgreSQL and MariaDB when their
//! URLs answer, else SKIPPED loudly, or a failure under `SEA_GCP_REQUIRE_ALL=1`.
#![allow(dead_code)]

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

/// One database under test.
pub struct TestDb {
    /// `sqlite`, `postgres` or `mariadb`.
    pub name: &'static str,
    /// The pool.
    pub conn: DatabaseConnection,
    _dir: Option<tempfile::TempDir>,
}

/// Print SKIPPED loudly, or panic under `SEA_GCP_REQUIRE_ALL=1`.
pub fn skip_or_fail(what: &str, why: String) {
    if std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{what} is required (SEA_GCP_REQUIRE_ALL=1) but unavailable: {why}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what} — {why}");
}

async fn connect(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(16)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    Database::connect(opts).await
}

/// SQLite (a fresh WAL-mode file), plus PostgreSQL and MariaDB when their URLs answer.
pub async fn databases() -> Vec<TestDb> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.sqlite");
    let conn = connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
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
