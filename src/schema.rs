//! Creating and dropping the library's own tables (the blob-field outbox, used tickets, the task outbox):
//! one way for all of them, on PostgreSQL, MySQL/MariaDB and SQLite.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, IndexCreateStatement, Table, TableCreateStatement};

use crate::Result;

/// Create `table` and `index` if they do not exist. MySQL has no `CREATE INDEX IF NOT EXISTS`: a second run
/// there reports a duplicate key name, which means the index is already in place.
pub(crate) async fn create_table_and_index<C: ConnectionTrait>(
    db: &C,
    table: &TableCreateStatement,
    index: &IndexCreateStatement,
) -> Result<()> {
    db.execute(table).await?;
    match db.execute(index).await {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("Duplicate key name") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Drop the table `name` if it exists.
pub(crate) async fn drop_table<C: ConnectionTrait>(db: &C, name: &str) -> Result<()> {
    db.execute(&Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
    Ok(())
}

/// A crate error as a migration's error: database errors as they are, anything else as text.
#[cfg(feature = "orm")]
pub(crate) fn into_db_err(error: crate::Error) -> sea_orm::DbErr {
    match error {
        crate::Error::Database(e) => e,
        other => sea_orm::DbErr::Custom(other.to_string()),
    }
}
