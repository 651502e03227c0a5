//! The sea-orm-migration that creates the outbox table (`sea_gcp_outbox`).
//!
//! Add it to your application's migrator:
//!
//! ```ignore
//! impl MigratorTrait for Migrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         vec![Box::new(sea_gcp::promote::migration::CreateOutbox::default()), /* yours */]
//!     }
//! }
//! ```
//!
//! and, for direct uploads (tickets promote at most once), [`CreateUsedTickets`] after it:
//! `Box::new(sea_gcp::promote::migration::CreateUsedTickets::default())`.
//!
//! Or run [`OutboxMigrator`] (both) on its own (`OutboxMigrator::up(&db, None)`).

use sea_orm_migration::prelude::*;

use super::outbox::Outbox;
use super::used_tickets::UsedTicketTable;

/// Creates the outbox table and its `updated_at` index (`down` drops the table).
#[derive(Debug, Clone, Default)]
pub(crate) struct CreateOutbox {
    outbox: Outbox,
}

impl CreateOutbox {}

impl MigrationName for CreateOutbox {
    fn name(&self) -> &str {
        "m20260101_000001_create_sea_gcp_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Tolerates an index that exists on MySQL too (no `CREATE INDEX IF NOT EXISTS` there).
        self.outbox.create(manager.get_connection()).await.map_err(crate::schema::into_db_err)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new(self.outbox.table())).if_exists().to_owned()).await
    }
}

/// Creates the used-ticket table of an outbox ([`UsedTicketTable`]) and its `expires_at` index (`down`
/// drops the table).
#[derive(Debug, Clone, Default)]
pub(crate) struct CreateUsedTickets {
    table: UsedTicketTable,
}

impl CreateUsedTickets {}

impl MigrationName for CreateUsedTickets {
    fn name(&self) -> &str {
        "m20260201_000001_create_sea_gcp_used_tickets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateUsedTickets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.table.create(manager.get_connection()).await.map_err(crate::schema::into_db_err)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new(self.table.table())).if_exists().to_owned()).await
    }
}

/// A migrator creating the outbox and used-tickets tables, for applications that do not use sea-orm-migration
/// themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxMigrator;

#[async_trait::async_trait]
impl MigratorTrait for OutboxMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateOutbox::default()), Box::new(CreateUsedTickets::default())]
    }

    fn migration_table_name() -> sea_orm::DynIden {
        "sea_gcp_seaql_migrations".into_iden()
    }
}
