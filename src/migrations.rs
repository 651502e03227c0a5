//! Every table sea-gcp needs, as one migration list.
//!
//! With your own sea-orm-migration migrator, put sea-gcp's migrations first:
//!
//! ```ignore
//! impl MigratorTrait for Migrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         let mut all = sea_gcp::migrations();
//!         all.push(Box::new(m20260301_create_documents::Migration));
//!         all
//!     }
//! }
//! ```
//!
//! Without one, [`create_tables`] creates (or upgrades) them at start-up. The tables keep their
//! `sea_gcp_*` names: the blob outbox `sea_gcp_outbox`, used upload tickets `sea_gcp_used_tickets`, the
//! task outbox `sea_gcp_task_outbox` (feature `tasks`) and handled events `sea_gcp_event_dedup` (feature
//! `events`). Every step creates only what is missing, so tables made by earlier releases, or by the
//! per-module migrators, are adopted as they are and upgraded in place.

use sea_orm::{DatabaseConnection, TransactionTrait};
use sea_orm_migration::{MigrationTrait, SchemaManager};

use crate::Result;

/// The migrations of the enabled features, oldest first (the order a migrator runs them in).
#[cfg_attr(not(any(feature = "tasks", feature = "events")), allow(unused_mut))]
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    let mut list: Vec<Box<dyn MigrationTrait>> = vec![
        Box::new(crate::promote::migration::CreateOutbox::default()),
        Box::new(crate::promote::migration::CreateUsedTickets::default()),
    ];
    #[cfg(feature = "tasks")]
    {
        list.push(Box::new(crate::tasks::migration::CreateTaskOutbox::default()));
        list.push(Box::new(crate::tasks::migration::UpgradeTaskOutbox::default()));
    }
    #[cfg(feature = "events")]
    list.push(Box::new(crate::events::CreateEventDedup::default()));
    list
}

/// Create or upgrade every table of [`migrations`] on `db`, recording nothing (each step creates only
/// what is missing, so running it at every start is safe). One transaction where the database has
/// transactional DDL (PostgreSQL, SQLite: one commit, not one per statement); MySQL commits each
/// statement itself.
pub async fn create_tables(db: &DatabaseConnection) -> Result<()> {
    let txn = db.begin().await?;
    {
        let manager = SchemaManager::new(&txn);
        for migration in migrations() {
            migration.up(&manager).await?;
        }
    }
    txn.commit().await?;
    Ok(())
}
