//! The sea-orm-migration that creates the task outbox (`sea_gcp_task_outbox`).
//!
//! Add it to your application's migrator:
//!
//! ```ignore
//! impl MigratorTrait for Migrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         vec![
//!             Box::new(sea_gcp::tasks::migration::CreateTaskOutbox::default()),
//!             Box::new(sea_gcp::tasks::migration::UpgradeTaskOutbox::default()),
//!             /* yours */
//!         ]
//!     }
//! }
//! ```
//!
//! or run [`TaskOutboxMigrator`] on its own (`TaskOutboxMigrator::up(&db, None)`).

use sea_orm_migration::prelude::*;

use super::TaskOutbox;

/// Creates the task outbox and its index (`down` drops the table).
#[derive(Debug, Clone, Default)]
pub(crate) struct CreateTaskOutbox {
    outbox: TaskOutbox,
}

impl CreateTaskOutbox {}

impl MigrationName for CreateTaskOutbox {
    fn name(&self) -> &str {
        "m20260201_000001_create_sea_gcp_task_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTaskOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Tolerates an index that exists on MySQL too (no `CREATE INDEX IF NOT EXISTS` there).
        self.outbox.create(manager.get_connection()).await.map_err(crate::schema::into_db_err)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new(self.outbox.table())).if_exists().to_owned()).await
    }
}

/// Adds the `failed_at` and `claimed_until` columns to an outbox created by an earlier version
/// ([`TaskOutbox::upgrade`]; existing rows read as not failed, not claimed). Does nothing on a table
/// that has them. `down` leaves them (dropping a column loses the failed rows' dates).
#[derive(Debug, Clone, Default)]
pub(crate) struct UpgradeTaskOutbox {
    outbox: TaskOutbox,
}

impl UpgradeTaskOutbox {}

impl MigrationName for UpgradeTaskOutbox {
    fn name(&self) -> &str {
        "m20261201_000001_sea_gcp_task_outbox_failed_and_claim"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for UpgradeTaskOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.outbox.upgrade(manager.get_connection()).await.map_err(crate::schema::into_db_err)
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

/// A migrator creating (and upgrading) only the task outbox table, for applications that do not use sea-orm-migration.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskOutboxMigrator;

#[async_trait::async_trait]
impl MigratorTrait for TaskOutboxMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateTaskOutbox::default()), Box::new(UpgradeTaskOutbox::default())]
    }

    fn migration_table_name() -> sea_orm::DynIden {
        "sea_gcp_tasks_seaql_migrations".into_iden()
    }
}
