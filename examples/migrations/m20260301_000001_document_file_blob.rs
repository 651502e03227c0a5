//! Example migration (step 1 of `docs/migrating.md`): add the blob column `document.file_blob` next to
//! the path column `document.file` that django-gcp's `FileField` left behind.
//!
//! It only adds a nullable column (`jsonb` on PostgreSQL, `json` on MySQL/MariaDB, `text` on SQLite),
//! which is a catalog-only change: no rewrite, no long lock. The data is filled online afterwards with
//!
//! ```text
//! sea-gcp migrate-column --database-url $DATABASE_URL --table document \
//!     --from-column file --to-column file_blob --store media --report-csv missing.csv
//! ```
//!
//! and the columns are swapped with `--swap` once the report is empty. `tests/migrate_column.rs`
//! compiles this file and runs it up and down.

use sea_gcp::migrate::schema;
use sea_orm_migration::prelude::*;

/// Adds `document.file_blob`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        schema::add_blob_column(manager, "document", "file_blob").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        schema::drop_column(manager, "document", "file_blob").await
    }
}
