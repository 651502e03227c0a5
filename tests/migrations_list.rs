//! One migration list: `sea_gcp::migrations()` in the application's migrator, or `create_tables`, from
//! an empty database and from the tables earlier releases created, on SQLite, PostgreSQL and MariaDB.

#[path = "db_support/mod.rs"]
mod db_support;

use sea_gcp::promote::{Outbox, UsedTicketTable};
use sea_gcp::tasks::{EntryState, TaskOutbox};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use sea_orm_migration::prelude::*;

const TABLES: [&str; 5] =
    ["sea_gcp_outbox", "sea_gcp_used_tickets", "sea_gcp_task_outbox", "sea_gcp_event_dedup", "app_widgets"];
const MIGRATIONS_TABLE: &str = "app_seaql_migrations";

/// The application's own migration, after sea-gcp's.
struct CreateWidgets;

impl MigrationName for CreateWidgets {
    fn name(&self) -> &str {
        "m20270101_000001_create_app_widgets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWidgets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("app_widgets"))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("id")).integer().not_null().primary_key())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("app_widgets")).to_owned()).await
    }
}

/// An application's migrator: sea-gcp's list, then its own.
struct AppMigrator;

#[async_trait::async_trait]
impl MigratorTrait for AppMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = sea_gcp::migrations();
        all.push(Box::new(CreateWidgets));
        all
    }

    fn migration_table_name() -> sea_orm::DynIden {
        Alias::new(MIGRATIONS_TABLE).into_iden()
    }
}

async fn drop_all(db: &DatabaseConnection) {
    for table in TABLES.iter().chain([&MIGRATIONS_TABLE, &"sea_gcp_seaql_migrations"]) {
        db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}")).await.unwrap();
    }
}

/// Every table exists with every column today's code reads.
async fn assert_current(db: &DatabaseConnection, backend: &str) {
    for (table, columns) in [
        ("sea_gcp_outbox", "id, state, updated_at"),
        ("sea_gcp_used_tickets", "ticket_key, expires_at"),
        ("sea_gcp_task_outbox", "id, state, failed_at, claimed_until"),
        ("sea_gcp_event_dedup", "id, kind, received_at"),
    ] {
        db.execute_unprepared(&format!("SELECT {columns} FROM {table} WHERE 1 = 0"))
            .await
            .unwrap_or_else(|e| panic!("{backend}: {table} lacks one of {columns}: {e}"));
    }
}

/// The task outbox as the first release created it: no `failed_at`, no `claimed_until`.
fn first_task_outbox() -> &'static str {
    "CREATE TABLE sea_gcp_task_outbox (id VARCHAR(500) NOT NULL PRIMARY KEY, task VARCHAR(100) NOT NULL, \
     queue VARCHAR(100) NOT NULL, body TEXT NOT NULL, schedule_time BIGINT NULL, dispatch_deadline BIGINT NULL, \
     state VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NULL, created_at BIGINT NOT \
     NULL, next_attempt_at BIGINT NOT NULL, sent_at BIGINT NULL)"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_builds_every_table_from_empty_and_adopts_earlier_ones() {
    for test_db in db_support::databases().await {
        let (db, backend) = (&test_db.conn, test_db.name);

        // From empty, through the application's migrator; running it again changes nothing.
        drop_all(db).await;
        AppMigrator::up(db, None).await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert_current(db, backend).await;
        db.execute_unprepared("SELECT id FROM app_widgets").await.unwrap();
        assert!(AppMigrator::get_pending_migrations(db).await.unwrap().is_empty(), "{backend}");
        AppMigrator::up(db, None).await.unwrap();

        // From empty, with create_tables (no migration table), twice.
        drop_all(db).await;
        sea_gcp::create_tables(db).await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        sea_gcp::create_tables(db).await.unwrap();
        assert_current(db, backend).await;

        // From the tables an earlier release made, one of them holding a pending task, and the
        // per-module migrator's record of having made them: the application's migrator adopts them,
        // upgrades the task outbox in place, and the task is still there to send.
        drop_all(db).await;
        Outbox::default().create(db).await.unwrap();
        UsedTicketTable::default().create(db).await.unwrap();
        sea_gcp::promote::OutboxMigrator::up(db, None).await.unwrap();
        db.execute_unprepared(first_task_outbox()).await.unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        db.execute_unprepared(&format!(
            "INSERT INTO sea_gcp_task_outbox (id, task, queue, body, state, attempts, created_at, \
             next_attempt_at) VALUES ('kept', 'record', 'q', '{{}}', 'pending', 0, {now}, {now})"
        ))
        .await
        .unwrap();
        AppMigrator::up(db, None).await.unwrap_or_else(|e| panic!("{backend}: adopting: {e}"));
        assert_current(db, backend).await;
        let outbox = TaskOutbox::default();
        let kept = outbox.get(db, "kept").await.unwrap().expect("the old row survives");
        assert_eq!(kept.state, EntryState::Pending, "{backend}");
        assert_eq!(outbox.count(db, EntryState::Pending).await.unwrap(), 1, "{backend}");

        drop_all(db).await;
    }
}
