//! The task outbox (`sea_gcp_task_outbox`): tasks enqueued inside the caller's transaction.
//!
//! A row is inserted in the caller's transaction ([`Tasks::enqueue_in`]), so it exists if and only if
//! that transaction commits. The [`Dispatcher`](super::Dispatcher) sends committed rows to Cloud Tasks
//! and marks them `sent`. Each row carries the Cloud Tasks task id it is created with: sending a row
//! twice (after a crash between the send and the mark) is refused by Cloud Tasks as a duplicate, which
//! the dispatcher counts as sent, so the task runs once.
//!
//! A row Cloud Tasks refuses for good (400 `INVALID_ARGUMENT`), or that failed
//! [`DispatcherOptions::max_attempts`](super::DispatcherOptions::max_attempts) times, moves to
//! [`EntryState::Failed`] with its last error; it stays there until [`TaskOutbox::retry`] puts it back
//! or [`TaskOutbox::discard`] deletes it (`sea-gcp tasks outbox list|retry|discard`).
//!
//! Tables created before the `failed` state and the claim lease are upgraded by [`TaskOutbox::upgrade`]
//! (run by [`TaskOutbox::create`] and by the migration): it adds `failed_at` (NULL) and `claimed_until`
//! (0, not claimed), which are right for every existing row.

use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, IndexCreateStatement, Order, Query, Table, TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DbErr, SqlErr, Value};

use super::enqueue::{Enqueued, Prepared, When};
use super::{Task, Tasks};
use crate::{Error, Result};

/// The default task outbox table.
pub const DEFAULT_TASK_OUTBOX: &str = "sea_gcp_task_outbox";

/// A row's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Committed, not (known to be) sent yet.
    Pending,
    /// Cloud Tasks holds (or held) the task.
    Sent,
    /// Given up: Cloud Tasks refused it for good, or it failed the dispatcher's maximum number of
    /// attempts. `last_error` says why. Not sent again until [`TaskOutbox::retry`].
    Failed,
}

impl EntryState {
    fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Sent => "sent",
            EntryState::Failed => "failed",
        }
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// The Cloud Tasks task id (primary key; the idempotency key).
    pub id: String,
    /// The registered task's name.
    pub task: String,
    /// The queue id.
    pub queue: String,
    /// The payload's JSON.
    pub body: String,
    /// Earliest run time, Unix ms.
    pub schedule_time: Option<i64>,
    /// Dispatch deadline, seconds.
    pub dispatch_deadline: Option<i64>,
    /// State.
    pub state: EntryState,
    /// Failed send attempts.
    pub attempts: i32,
    /// The last send error.
    pub last_error: Option<String>,
    /// When it was written, Unix ms.
    pub created_at: i64,
    /// Not before this time (Unix ms) is the next send attempt.
    pub next_attempt_at: i64,
    /// When it was marked sent, Unix ms.
    pub sent_at: Option<i64>,
    /// When it moved to [`EntryState::Failed`], Unix ms.
    pub failed_at: Option<i64>,
    /// A dispatcher holds it until this time (Unix ms; 0 or past: nobody does).
    pub claimed_until: i64,
}

const COLUMNS: [&str; 14] = [
    "id",
    "task",
    "queue",
    "body",
    "schedule_time",
    "dispatch_deadline",
    "state",
    "attempts",
    "last_error",
    "created_at",
    "next_attempt_at",
    "sent_at",
    "failed_at",
    "claimed_until",
];

/// Columns added after the first version of the table, with how [`TaskOutbox::upgrade`] adds them.
const ADDED_COLUMNS: [&str; 2] = ["failed_at", "claimed_until"];

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Access to a task outbox table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutbox {
    table: String,
}

impl Default for TaskOutbox {
    fn default() -> Self {
        Self::new(DEFAULT_TASK_OUTBOX)
    }
}

impl TaskOutbox {
    /// The outbox in `table`.
    pub fn new(table: impl Into<String>) -> Self {
        Self { table: table.into() }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn t(&self) -> Alias {
        Alias::new(&self.table)
    }

    /// `CREATE TABLE IF NOT EXISTS`.
    pub(crate) fn create_table_statement(&self) -> TableCreateStatement {
        Table::create()
            .table(self.t())
            .if_not_exists()
            .col(ColumnDef::new(col("id")).string_len(500).not_null().primary_key())
            .col(ColumnDef::new(col("task")).string_len(100).not_null())
            .col(ColumnDef::new(col("queue")).string_len(100).not_null())
            .col(ColumnDef::new(col("body")).text().not_null())
            .col(ColumnDef::new(col("schedule_time")).big_integer().null())
            .col(ColumnDef::new(col("dispatch_deadline")).big_integer().null())
            .col(ColumnDef::new(col("state")).string_len(16).not_null())
            .col(ColumnDef::new(col("attempts")).integer().not_null().default(0))
            .col(ColumnDef::new(col("last_error")).text().null())
            .col(ColumnDef::new(col("created_at")).big_integer().not_null())
            .col(ColumnDef::new(col("next_attempt_at")).big_integer().not_null())
            .col(ColumnDef::new(col("sent_at")).big_integer().null())
            .col(Self::added_column("failed_at"))
            .col(Self::added_column("claimed_until"))
            .to_owned()
    }

    fn added_column(name: &str) -> ColumnDef {
        match name {
            "failed_at" => ColumnDef::new(col("failed_at")).big_integer().null().to_owned(),
            _ => ColumnDef::new(col("claimed_until")).big_integer().not_null().default(0).to_owned(),
        }
    }

    /// Add the columns a table created by an earlier version lacks (`failed_at`, `claimed_until`), with
    /// defaults right for its rows: not failed, not claimed. Does nothing on an up-to-date table.
    pub async fn upgrade<C: ConnectionTrait>(&self, db: &C) -> Result<()> {
        for name in ADDED_COLUMNS {
            if !self.has_column(db, name).await? {
                let alter = Table::alter().table(self.t()).add_column(Self::added_column(name)).to_owned();
                db.execute(&alter).await?;
            }
        }
        Ok(())
    }

    async fn has_column<C: ConnectionTrait>(&self, db: &C, name: &str) -> Result<bool> {
        let backend = db.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = $1 AND column_name = $2"
            }
            sea_orm::DbBackend::MySql => {
                "SELECT 1 FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? \
                 AND column_name = ?"
            }
            _ => "SELECT 1 FROM pragma_table_info(?) WHERE name = ?",
        };
        let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [self.table.clone().into(), name.into()]);
        Ok(db.query_one_raw(stmt).await?.is_some())
    }

    /// The index the dispatcher scans by (`state`, `next_attempt_at`).
    pub(crate) fn create_index_statement(&self) -> IndexCreateStatement {
        Index::create()
            .if_not_exists()
            .name(format!("idx_{}_due", self.table))
            .table(self.t())
            .col(col("state"))
            .col(col("next_attempt_at"))
            .to_owned()
    }

    /// Create the table and index if missing, and [`upgrade`](Self::upgrade) an existing table (what the
    /// migrations run).
    pub async fn create<C: ConnectionTrait>(&self, db: &C) -> Result<()> {
        crate::schema::create_table_and_index(db, &self.create_table_statement(), &self.create_index_statement())
            .await?;
        self.upgrade(db).await
    }

    /// Drop the table if it exists.
    pub async fn drop<C: ConnectionTrait>(&self, db: &C) -> Result<()> {
        crate::schema::drop_table(db, &self.table).await
    }

    pub(crate) async fn insert<C: ConnectionTrait>(&self, db: &C, p: &Prepared, id: &str) -> Result<()> {
        let stmt = self.insert_statement(p, id);
        match db.execute(&stmt).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(Error::DuplicateTask { task: p.task.into(), id: id.into(), retried: false })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The insert of a pending entry for `p` with id `id`.
    pub(crate) fn insert_statement(&self, p: &Prepared, id: &str) -> sea_orm::sea_query::InsertStatement {
        let now = chrono::Utc::now().timestamp_millis();
        let values: Vec<Value> = vec![
            id.into(),
            p.task.into(),
            p.queue.clone().into(),
            String::from_utf8_lossy(&p.body).into_owned().into(),
            p.schedule_time.map(|t| t.timestamp_millis()).into(),
            p.dispatch_deadline.map(|d| d.as_secs() as i64).into(),
            EntryState::Pending.as_str().into(),
            0i32.into(),
            Option::<String>::None.into(),
            now.into(),
            now.into(),
            Option::<i64>::None.into(),
            Option::<i64>::None.into(),
            0i64.into(),
        ];
        Query::insert()
            .into_table(self.t())
            .columns(COLUMNS.iter().map(|c| col(c)))
            .values_panic(values.into_iter().map(Expr::val))
            .to_owned()
    }

    /// Up to `limit` pending rows due by `now_ms`, the longest-waiting first.
    pub async fn due<C: ConnectionTrait>(&self, db: &C, now_ms: i64, limit: u64) -> Result<Vec<OutboxEntry>> {
        let stmt = Query::select()
            .columns(COLUMNS.iter().map(|c| col(c)))
            .from(self.t())
            .and_where(Expr::col(col("state")).eq(EntryState::Pending.as_str()))
            .and_where(Expr::col(col("next_attempt_at")).lte(now_ms))
            .order_by(col("next_attempt_at"), Order::Asc)
            .limit(limit)
            .to_owned();
        db.query_all(&stmt).await?.iter().map(read_entry).collect()
    }

    /// Claim up to `limit` pending rows due by `now_ms` that no dispatcher holds, for `lease_ms`: each
    /// due row goes to one caller. PostgreSQL and MySQL/MariaDB pick the rows with
    /// `FOR UPDATE SKIP LOCKED`, so concurrent claimers take disjoint rows without waiting on each
    /// other; SQLite (one writer at a time) claims with one conditional `UPDATE`. A claim is a lease
    /// (`claimed_until`): the rows of a claimer that died are claimed again once it runs out.
    pub async fn claim(
        &self,
        db: &sea_orm::DatabaseConnection,
        now_ms: i64,
        lease_ms: i64,
        limit: u64,
    ) -> Result<Vec<OutboxEntry>> {
        use sea_orm::{DbBackend, Statement, TransactionTrait};
        let backend = db.get_database_backend();
        let table = match backend {
            DbBackend::MySql => format!("`{}`", self.table.replace('`', "``")),
            _ => format!("\"{}\"", self.table.replace('"', "\"\"")),
        };
        let columns = COLUMNS.join(", ");
        let until = now_ms.saturating_add(std::cmp::max(lease_ms, 0));
        let limit = std::cmp::min(limit, i64::MAX as u64) as i64;
        let due = "state = 'pending' AND next_attempt_at <= {now} AND claimed_until <= {now}";
        match backend {
            DbBackend::Postgres => {
                let sql = format!(
                    "UPDATE {table} SET claimed_until = $1 WHERE id IN (SELECT id FROM {table} WHERE {} ORDER BY \
                     next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {columns}",
                    due.replace("{now}", "$2")
                );
                let stmt = Statement::from_sql_and_values(backend, sql, [until.into(), now_ms.into(), limit.into()]);
                db.query_all_raw(stmt).await?.iter().map(read_entry).collect()
            }
            DbBackend::MySql => {
                let txn = db.begin().await?;
                let sql = format!(
                    "SELECT {columns} FROM {table} WHERE {} ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED",
                    due.replace("{now}", "?")
                );
                let stmt = Statement::from_sql_and_values(backend, sql, [now_ms.into(), now_ms.into(), limit.into()]);
                let mut rows: Vec<OutboxEntry> =
                    txn.query_all_raw(stmt).await?.iter().map(read_entry).collect::<Result<_>>()?;
                for chunk in rows.chunks(1000) {
                    let update = Query::update()
                        .table(self.t())
                        .value(col("claimed_until"), until)
                        .and_where(Expr::col(col("id")).is_in(chunk.iter().map(|r| r.id.clone())))
                        .to_owned();
                    txn.execute(&update).await?;
                }
                txn.commit().await?;
                rows.iter_mut().for_each(|r| r.claimed_until = until);
                Ok(rows)
            }
            _ => {
                let sql = format!(
                    "UPDATE {table} SET claimed_until = ? WHERE id IN (SELECT id FROM {table} WHERE {} ORDER BY \
                     next_attempt_at LIMIT ?) AND {} RETURNING {columns}",
                    due.replace("{now}", "?"),
                    due.replace("{now}", "?")
                );
                let values = [until.into(), now_ms.into(), now_ms.into(), limit.into(), now_ms.into(), now_ms.into()];
                let stmt = Statement::from_sql_and_values(backend, sql, values);
                db.query_all_raw(stmt).await?.iter().map(read_entry).collect()
            }
        }
    }

    /// One row by id.
    pub async fn get<C: ConnectionTrait>(&self, db: &C, id: &str) -> Result<Option<OutboxEntry>> {
        let stmt = Query::select()
            .columns(COLUMNS.iter().map(|c| col(c)))
            .from(self.t())
            .and_where(Expr::col(col("id")).eq(id))
            .to_owned();
        db.query_one(&stmt).await?.as_ref().map(read_entry).transpose()
    }

    /// Mark `ids` sent.
    pub(crate) async fn mark_sent<C: ConnectionTrait>(&self, db: &C, ids: &[String]) -> Result<u64> {
        let mut total = 0;
        for chunk in ids.chunks(1000) {
            let stmt = Query::update()
                .table(self.t())
                .value(col("state"), EntryState::Sent.as_str())
                .value(col("sent_at"), chrono::Utc::now().timestamp_millis())
                .and_where(Expr::col(col("id")).is_in(chunk.iter().cloned()))
                .and_where(Expr::col(col("state")).eq(EntryState::Pending.as_str()))
                .to_owned();
            total += db.execute(&stmt).await?.rows_affected();
        }
        Ok(total)
    }

    /// Record a failed attempt: error text and the next attempt time.
    pub(crate) async fn record_failure<C: ConnectionTrait>(
        &self,
        db: &C,
        id: &str,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<()> {
        let stmt = Query::update()
            .table(self.t())
            .value(col("attempts"), Expr::col(col("attempts")).add(1))
            .value(col("last_error"), error.chars().take(2000).collect::<String>())
            .value(col("next_attempt_at"), next_attempt_at)
            .value(col("claimed_until"), 0i64)
            .and_where(Expr::col(col("id")).eq(id))
            .to_owned();
        db.execute(&stmt).await?;
        Ok(())
    }

    /// Move a pending row to [`EntryState::Failed`] with `error` (its attempt counted). True when this
    /// call moved it (false when it was not pending any more: another dispatcher got there first).
    pub(crate) async fn mark_failed<C: ConnectionTrait>(&self, db: &C, id: &str, error: &str) -> Result<bool> {
        let stmt = Query::update()
            .table(self.t())
            .value(col("state"), EntryState::Failed.as_str())
            .value(col("attempts"), Expr::col(col("attempts")).add(1))
            .value(col("last_error"), error.chars().take(2000).collect::<String>())
            .value(col("failed_at"), chrono::Utc::now().timestamp_millis())
            .value(col("claimed_until"), 0i64)
            .and_where(Expr::col(col("id")).eq(id))
            .and_where(Expr::col(col("state")).eq(EntryState::Pending.as_str()))
            .to_owned();
        Ok(db.execute(&stmt).await?.rows_affected() == 1)
    }

    /// Up to `limit` rows in `state`, the oldest first.
    pub async fn list<C: ConnectionTrait>(&self, db: &C, state: EntryState, limit: u64) -> Result<Vec<OutboxEntry>> {
        let stmt = Query::select()
            .columns(COLUMNS.iter().map(|c| col(c)))
            .from(self.t())
            .and_where(Expr::col(col("state")).eq(state.as_str()))
            .order_by(col("created_at"), Order::Asc)
            .order_by(col("id"), Order::Asc)
            .limit(limit)
            .to_owned();
        db.query_all(&stmt).await?.iter().map(read_entry).collect()
    }

    /// Put failed rows `ids` back to pending, due now, with their attempt count reset (their last error
    /// is kept until the next attempt). Rows that are not failed are left alone. Returns the rows moved.
    pub async fn retry<C: ConnectionTrait>(&self, db: &C, ids: &[String]) -> Result<u64> {
        let mut total = 0;
        for chunk in ids.chunks(1000) {
            let stmt = Query::update()
                .table(self.t())
                .value(col("state"), EntryState::Pending.as_str())
                .value(col("attempts"), 0i32)
                .value(col("next_attempt_at"), chrono::Utc::now().timestamp_millis())
                .value(col("failed_at"), Option::<i64>::None)
                .value(col("claimed_until"), 0i64)
                .and_where(Expr::col(col("id")).is_in(chunk.iter().cloned()))
                .and_where(Expr::col(col("state")).eq(EntryState::Failed.as_str()))
                .to_owned();
            total += db.execute(&stmt).await?.rows_affected();
        }
        Ok(total)
    }

    /// Delete failed rows `ids` (their tasks never run). Rows that are not failed are left alone.
    /// Returns the rows deleted.
    pub async fn discard<C: ConnectionTrait>(&self, db: &C, ids: &[String]) -> Result<u64> {
        let mut total = 0;
        for chunk in ids.chunks(1000) {
            let stmt = Query::delete()
                .from_table(self.t())
                .and_where(Expr::col(col("id")).is_in(chunk.iter().cloned()))
                .and_where(Expr::col(col("state")).eq(EntryState::Failed.as_str()))
                .to_owned();
            total += db.execute(&stmt).await?.rows_affected();
        }
        Ok(total)
    }

    /// Rows in `state`.
    pub async fn count<C: ConnectionTrait>(&self, db: &C, state: EntryState) -> Result<u64> {
        let stmt = Query::select()
            .expr(Expr::col(col("id")).count())
            .from(self.t())
            .and_where(Expr::col(col("state")).eq(state.as_str()))
            .to_owned();
        Ok(db.query_one(&stmt).await?.map(|r| r.try_get_by_index::<i64>(0)).transpose()?.unwrap_or(0) as u64)
    }

    /// Delete rows sent before `before_ms` (after Cloud Tasks' de-duplication window they serve nothing).
    pub(crate) async fn purge_sent<C: ConnectionTrait>(&self, db: &C, before_ms: i64) -> Result<u64> {
        let stmt = Query::delete()
            .from_table(self.t())
            .and_where(Expr::col(col("state")).eq(EntryState::Sent.as_str()))
            .and_where(Expr::col(col("sent_at")).lt(before_ms))
            .to_owned();
        Ok(db.execute(&stmt).await?.rows_affected())
    }

    /// Rows by state: (pending, sent).
    pub async fn census<C: ConnectionTrait>(&self, db: &C) -> Result<(u64, u64)> {
        Ok((self.count(db, EntryState::Pending).await?, self.count(db, EntryState::Sent).await?))
    }
}

fn read_entry(row: &sea_orm::QueryResult) -> Result<OutboxEntry> {
    let state: String = row.try_get("", "state")?;
    let state = match state.as_str() {
        "pending" => EntryState::Pending,
        "sent" => EntryState::Sent,
        "failed" => EntryState::Failed,
        other => return Err(Error::Database(DbErr::Custom(format!("unknown task outbox state `{other}`")))),
    };
    Ok(OutboxEntry {
        id: row.try_get("", "id")?,
        task: row.try_get("", "task")?,
        queue: row.try_get("", "queue")?,
        body: row.try_get("", "body")?,
        schedule_time: row.try_get("", "schedule_time")?,
        dispatch_deadline: row.try_get("", "dispatch_deadline")?,
        state,
        attempts: row.try_get("", "attempts")?,
        last_error: row.try_get("", "last_error")?,
        created_at: row.try_get("", "created_at")?,
        next_attempt_at: row.try_get("", "next_attempt_at")?,
        sent_at: row.try_get("", "sent_at")?,
        failed_at: row.try_get("", "failed_at")?,
        claimed_until: row.try_get("", "claimed_until")?,
    })
}

impl Tasks {
    /// Enqueue `T(payload)` in the caller's transaction `txn`: the task is written to `outbox` and sent
    /// by the [`Dispatcher`](super::Dispatcher) only if `txn` commits. A deduplicated task whose id is
    /// already in the outbox fails with [`Error::DuplicateTask`] (the caller may roll back or carry on).
    /// Eager and disabled modes act at once, as [`Tasks::enqueue`] does.
    pub async fn enqueue_in<T: Task, C: ConnectionTrait>(
        &self,
        txn: &C,
        outbox: &TaskOutbox,
        payload: &T::Payload,
    ) -> Result<Enqueued> {
        self.enqueue_later_in::<T, C>(txn, outbox, payload, When::Now).await
    }

    /// [`enqueue_in`](Self::enqueue_in) with a delay or a time.
    pub async fn enqueue_later_in<T: Task, C: ConnectionTrait>(
        &self,
        txn: &C,
        outbox: &TaskOutbox,
        payload: &T::Payload,
        when: impl Into<When>,
    ) -> Result<Enqueued> {
        if self.inner.settings.disable_execute {
            return self.short_circuit::<T>(payload).await.map(|d| d.unwrap_or(Enqueued::Disabled));
        }
        // Cloud Tasks' limits hold in every mode (see `enqueue_later`).
        let prepared = self.prepare::<T>(payload, when.into(), true)?;
        if let Some(done) = self.short_circuit::<T>(payload).await? {
            return Ok(done);
        }
        let id = prepared.id.clone().expect("outbox entries always get an id");
        outbox.insert(txn, &prepared, &id).await?;
        Ok(Enqueued::Outboxed { id })
    }
}
