//! Schema helpers for `sea-orm-migration` migrations: the blob column type per database, adding one
//! next to a path column, and converting a path column in place.
//!
//! A blob column is `jsonb` on PostgreSQL, `json` on MySQL/MariaDB and `text` on SQLite, always
//! nullable (NULL is a blank file). Adding a nullable column without a default is a catalog-only change
//! on PostgreSQL, MySQL 8 and MariaDB (instant `ADD COLUMN`) and SQLite: no table rewrite, no long lock,
//! which is why the online path is *add, backfill, swap*.
//!
//! Converting in place ([`convert_to_blob_in_place`]) rewrites the table under an exclusive lock on
//! PostgreSQL and MySQL: use it for small tables or a maintenance window. It turns each path into an
//! uncached value (`{"v": 1, "name": ...}`, readable by [`BlobValue`](crate::field::BlobValue)); a
//! backfill with the same column as source and destination then fills the metadata cache.
//!
//! ```no_run
//! use sea_orm_migration::prelude::*;
//! use sea_gcp::migrate::schema;
//!
//! # struct Migration;
//! # impl MigrationName for Migration { fn name(&self) -> &str { "m_add_blob" } }
//! #[async_trait::async_trait]
//! impl MigrationTrait for Migration {
//!     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
//!         schema::add_blob_column(manager, "document", "file_blob").await
//!     }
//!     async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
//!         schema::drop_column(manager, "document", "file_blob").await
//!     }
//! }
//! ```

use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use sea_orm_migration::SchemaManager;
use sea_orm_migration::prelude::{Alias, ColumnDef, Table};

use super::sql::quote;

/// A nullable blob column definition for `backend`: `jsonb` (PostgreSQL), `json` (MySQL/MariaDB),
/// `text` (SQLite).
pub(crate) fn blob_column_def(backend: DbBackend, column: &str) -> ColumnDef {
    let mut def = ColumnDef::new(Alias::new(column));
    match backend {
        DbBackend::Postgres => def.json_binary(),
        DbBackend::MySql => def.json(),
        _ => def.text(),
    };
    def.null();
    def
}

/// `ALTER TABLE table ADD COLUMN column <blob type> NULL`.
pub async fn add_blob_column(manager: &SchemaManager<'_>, table: &str, column: &str) -> Result<(), DbErr> {
    let def = blob_column_def(manager.get_database_backend(), column);
    manager.alter_table(Table::alter().table(Alias::new(table)).add_column(def).to_owned()).await
}

/// `ALTER TABLE table DROP COLUMN column` (the `down` of [`add_blob_column`]).
pub async fn drop_column(manager: &SchemaManager<'_>, table: &str, column: &str) -> Result<(), DbErr> {
    manager.alter_table(Table::alter().table(Alias::new(table)).drop_column(Alias::new(column)).to_owned()).await
}

/// Convert a path column (text, or django-gcp's `{"path": ...}` JSON) into a blob column in place:
/// paths become uncached blob values, JSON values are kept (they are read as legacy values), empty
/// strings become NULL. The type changes to `jsonb` (PostgreSQL) or `json` (MySQL/MariaDB; other column
/// attributes such as defaults are not kept); SQLite keeps `text`. Follow with a backfill whose source
/// and destination are this column.
pub async fn convert_to_blob_in_place(manager: &SchemaManager<'_>, table: &str, column: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let b = manager.get_database_backend();
    let (t, c) = (quote(b, table), quote(b, column));
    let statements = match b {
        DbBackend::Postgres => vec![format!(
            "ALTER TABLE {t} ALTER COLUMN {c} TYPE jsonb USING CASE WHEN {c} IS NULL OR {c}::text = '' THEN NULL \
             WHEN left({c}::text, 1) = '{{' THEN {c}::text::jsonb ELSE jsonb_build_object('v', 1, 'name', {c}::text) END"
        )],
        DbBackend::MySql => vec![
            format!("ALTER TABLE {t} MODIFY {c} LONGTEXT NULL"),
            format!(
                "UPDATE {t} SET {c} = CASE WHEN {c} = '' THEN NULL WHEN LEFT({c}, 1) = '{{' THEN {c} \
                 ELSE JSON_OBJECT('v', 1, 'name', {c}) END WHERE {c} IS NOT NULL"
            ),
            format!("ALTER TABLE {t} MODIFY {c} JSON NULL"),
        ],
        _ => vec![format!(
            "UPDATE {t} SET {c} = CASE WHEN {c} = '' THEN NULL WHEN substr({c}, 1, 1) = '{{' THEN {c} \
             ELSE json_object('v', 1, 'name', {c}) END WHERE {c} IS NOT NULL"
        )],
    };
    for sql in statements {
        db.execute_unprepared(&sql).await?;
    }
    Ok(())
}

/// The `down` of [`convert_to_blob_in_place`]: back to a text column holding the object name (the
/// metadata cache is dropped; legacy `{"path": ...}` values become their path).
pub async fn convert_blob_to_path_in_place(
    manager: &SchemaManager<'_>,
    table: &str,
    column: &str,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let b = manager.get_database_backend();
    let (t, c) = (quote(b, table), quote(b, column));
    let statements = match b {
        DbBackend::Postgres => vec![format!(
            "ALTER TABLE {t} ALTER COLUMN {c} TYPE text USING coalesce({c}::jsonb->>'name', {c}::jsonb->>'path')"
        )],
        DbBackend::MySql => vec![
            format!("ALTER TABLE {t} MODIFY {c} LONGTEXT NULL"),
            format!(
                "UPDATE {t} SET {c} = COALESCE(JSON_UNQUOTE(JSON_EXTRACT({c}, '$.name')), \
                 JSON_UNQUOTE(JSON_EXTRACT({c}, '$.path'))) WHERE {c} IS NOT NULL"
            ),
        ],
        _ => vec![format!(
            "UPDATE {t} SET {c} = coalesce(json_extract({c}, '$.name'), json_extract({c}, '$.path')) \
             WHERE {c} IS NOT NULL"
        )],
    };
    for sql in statements {
        db.execute_unprepared(&sql).await?;
    }
    Ok(())
}
