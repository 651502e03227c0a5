//! [`Dispatcher`]: sends committed task-outbox rows to Cloud Tasks and marks them sent.
//!
//! One round ([`Dispatcher::run_once`]) is two steps, public so that a crash between them can be
//! reproduced: [`Dispatcher::send_due`] selects due rows and creates their tasks (concurrently, each
//! with its row's id), [`Dispatcher::mark`] records the outcome. A row sent but not marked (the process
//! died in between) is sent again in a later round; Cloud Tasks refuses the id
//! ([`Error::DuplicateTask`]), which counts as sent. This holds while Cloud Tasks remembers the id: for
//! as long as the task exists and up to about an hour after it ran or was deleted, so a dispatcher must
//! not stay down longer than that between a send and its mark.
//!
//! Many dispatchers may share one outbox (one per instance of a scaled-out service): a round *claims*
//! its rows ([`TaskOutbox::claim`]) for [`DispatcherOptions::claim_lease`], so each due row is sent by
//! one dispatcher; the rows of a dispatcher that died are claimed by another once the lease runs out.
//! [`Tasks::commit_and_send`] (or [`Tasks::wake_dispatcher`] after a commit) starts a round at once in
//! the process that enqueued, so a task is created right after its transaction commits; the poll is the
//! fallback for everything else.
//!
//! A send that Cloud Tasks refuses for good (400 `INVALID_ARGUMENT`: the task breaks a fixed limit, which
//! [`Tasks::enqueue_in`] checks, so only rows written otherwise get here), or the
//! [`DispatcherOptions::max_attempts`]-th failed send of a row, moves the row to
//! [`EntryState::Failed`](super::EntryState::Failed) and writes one Error Reporting entry for it. Other
//! failures (a missing queue, a denied permission, 429, 5xx) are retried with backoff until then.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use sea_orm::DatabaseConnection;

use super::client::RetryOptions;
use super::{OutboxEntry, TaskOutbox, Tasks};
use crate::{Error, Result};

/// Options of a [`Dispatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatcherOptions {
    /// Rows per round (default 2,000).
    pub batch_size: u64,
    /// Concurrent create calls (default 256).
    pub concurrency: usize,
    /// Wait between rounds when the last one was not full (default 500 ms).
    pub poll_interval: Duration,
    /// Backoff of a row whose send failed (default 1 s doubling to 5 min).
    pub failure_backoff: RetryOptions,
    /// Sent rows are deleted after this long (default 2 h: past Cloud Tasks' de-duplication window).
    pub retention: Duration,
    /// Failed sends of a row before it moves to `failed` (default 20: with the default backoff, about
    /// 1 h 15 min of retries).
    pub max_attempts: u32,
    /// How long a round holds the rows it claimed (default 2 min): longer than a round takes, or another
    /// dispatcher sends the rows too (Cloud Tasks then refuses the second create as a duplicate).
    pub claim_lease: Duration,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        Self {
            batch_size: 2000,
            concurrency: 256,
            poll_interval: Duration::from_millis(500),
            failure_backoff: RetryOptions::default()
                .with_initial_backoff(Duration::from_secs(1))
                .with_max_backoff(Duration::from_secs(300)),
            retention: Duration::from_secs(2 * 3600),
            max_attempts: 20,
            claim_lease: Duration::from_secs(120),
        }
    }
}

impl DispatcherOptions {
    /// Set [`DispatcherOptions::batch_size`].
    pub fn with_batch_size(mut self, n: u64) -> Self {
        self.batch_size = n.max(1);
        self
    }
    /// Set [`DispatcherOptions::concurrency`].
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
    /// Set [`DispatcherOptions::poll_interval`].
    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }
    /// Set [`DispatcherOptions::failure_backoff`].
    pub fn with_failure_backoff(mut self, r: RetryOptions) -> Self {
        self.failure_backoff = r;
        self
    }
    /// Set [`DispatcherOptions::max_attempts`] (at least 1).
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// Set [`DispatcherOptions::claim_lease`].
    pub fn with_claim_lease(mut self, d: Duration) -> Self {
        self.claim_lease = d;
        self
    }
    /// Set [`DispatcherOptions::retention`].
    pub fn with_retention(mut self, d: Duration) -> Self {
        self.retention = d;
        self
    }
}

/// The outcome of [`Dispatcher::send_due`], before it is recorded.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SentBatch {
    /// Rows Cloud Tasks accepted.
    pub created: Vec<String>,
    /// Rows Cloud Tasks refused as duplicates (sent before): counted as sent.
    pub duplicates: Vec<String>,
    /// Rows whose send failed, with the error and their attempt count so far.
    pub failed: Vec<(String, Error, i32)>,
}

impl SentBatch {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.created.len() + self.duplicates.len() + self.failed.len()
    }
    /// True for an empty round.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchReport {
    /// Tasks created.
    pub created: usize,
    /// Rows found already sent (duplicates), marked sent.
    pub duplicates: usize,
    /// Rows that failed and will be retried.
    pub failed: usize,
    /// Rows moved to `failed` (refused for good, or out of attempts): not retried.
    pub gave_up: usize,
}

/// Sends committed outbox rows to Cloud Tasks.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    tasks: Tasks,
    db: DatabaseConnection,
    outbox: TaskOutbox,
    options: DispatcherOptions,
}

impl Dispatcher {
    /// A dispatcher of `outbox` in `db`, sending with `tasks`.
    pub fn new(tasks: Tasks, db: DatabaseConnection, outbox: TaskOutbox) -> Self {
        Self { tasks, db, outbox, options: DispatcherOptions::default() }
    }

    /// Set the options.
    pub fn with_options(mut self, options: DispatcherOptions) -> Self {
        self.options = options;
        self
    }

    /// Step 1: claim due rows and create their tasks. Records nothing but the claim.
    pub async fn send_due(&self) -> Result<SentBatch> {
        let now = chrono::Utc::now().timestamp_millis();
        let lease = self.options.claim_lease.as_millis().min(i64::MAX as u128) as i64;
        let rows = self.outbox.claim(&self.db, now, lease, self.options.batch_size).await?;
        let results: Vec<(OutboxEntry, Result<()>)> = futures_util::stream::iter(rows)
            .map(|row| async move {
                let outcome = self.send_row(&row).await;
                (row, outcome)
            })
            .buffer_unordered(self.options.concurrency)
            .collect()
            .await;
        let mut batch = SentBatch::default();
        for (row, outcome) in results {
            match outcome {
                Ok(()) => batch.created.push(row.id),
                Err(Error::DuplicateTask { .. }) => batch.duplicates.push(row.id),
                Err(e) => batch.failed.push((row.id, e, row.attempts)),
            }
        }
        Ok(batch)
    }

    async fn send_row(&self, row: &OutboxEntry) -> Result<()> {
        let schedule_time = row.schedule_time.and_then(chrono::DateTime::from_timestamp_millis);
        let deadline = row.dispatch_deadline.map(|s| Duration::from_secs(s.max(0) as u64));
        let new = self.tasks.new_task(&row.task, Some(&row.id), row.body.clone().into_bytes(), schedule_time, deadline);
        let queue_path = self.tasks.settings().queue_path(&row.queue);
        self.tasks.client().create_task(&queue_path, &new).await.map(|_| ())
    }

    /// Step 2: mark created and duplicate rows sent; give failed rows their next attempt time.
    pub async fn mark(&self, batch: &SentBatch) -> Result<DispatchReport> {
        let mut sent: Vec<String> = batch.created.clone();
        sent.extend(batch.duplicates.iter().cloned());
        self.outbox.mark_sent(&self.db, &sent).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut gave_up = 0;
        for (id, error, attempts) in &batch.failed {
            let attempts = attempts.saturating_add(1);
            if refused_for_good(error) || attempts.max(0) as u32 >= self.options.max_attempts {
                if self.outbox.mark_failed(&self.db, id, &error.to_string()).await? {
                    report_failed(id, attempts, error);
                }
                gave_up += 1;
                continue;
            }
            let backoff = self.options.failure_backoff.backoff((attempts - 1).max(0) as u32);
            tracing::warn!(task_id = %id, attempts, error = %error, "task outbox send failed; will retry");
            self.outbox.record_failure(&self.db, id, &error.to_string(), now + backoff.as_millis() as i64).await?;
        }
        Ok(DispatchReport {
            created: batch.created.len(),
            duplicates: batch.duplicates.len(),
            failed: batch.failed.len() - gave_up,
            gave_up,
        })
    }

    /// One round: [`send_due`](Self::send_due) then [`mark`](Self::mark).
    pub async fn run_once(&self) -> Result<DispatchReport> {
        let batch = self.send_due().await?;
        self.mark(&batch).await
    }

    /// Rounds until `shutdown` resolves (a full round is followed at once by the next; otherwise the
    /// poll interval passes first, or [`Tasks::wake_dispatcher`] cuts it short). Sent rows past the retention are purged every minute. A round
    /// interrupted by shutdown is lost only in memory: its rows are sent again by the next dispatcher.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let mut last_purge = std::time::Instant::now() - Duration::from_secs(3600);
        loop {
            if last_purge.elapsed() >= Duration::from_secs(60) {
                let before = chrono::Utc::now().timestamp_millis() - self.options.retention.as_millis() as i64;
                if let Err(e) = self.outbox.purge_sent(&self.db, before).await {
                    tracing::warn!(error = %e, "task outbox purge failed");
                }
                last_purge = std::time::Instant::now();
            }
            let round = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                r = self.run_once() => r,
            };
            let full = match round {
                Ok(report) => {
                    (report.created + report.duplicates + report.failed + report.gave_up) as u64
                        >= self.options.batch_size
                }
                Err(e) => {
                    tracing::warn!(error = %e, "task outbox round failed");
                    false
                }
            };
            if !full {
                tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    _ = tokio::time::sleep(self.options.poll_interval) => {}
                    _ = self.tasks.inner.wake.notified() => {}
                }
            }
        }
    }
}

/// True for an answer that no retry changes: Cloud Tasks' 400 `INVALID_ARGUMENT`, or an error of kind
/// [`ErrorKind::Refused`](crate::ErrorKind::Refused). A missing queue (404) or a denied permission (403)
/// is retried: an operator can fix those while the row waits.
fn refused_for_good(error: &Error) -> bool {
    matches!(error.cause(), Error::Service { code, .. } if code == "INVALID_ARGUMENT")
        || error.kind() == crate::ErrorKind::Refused
}

/// The one Error Reporting entry of a row moving to `failed`: an ERROR event with the fields the
/// logging layer reports (`gcp.report`, see `logging::report`).
fn report_failed(id: &str, attempts: i32, error: &Error) {
    tracing::event!(
        target: "sea_gcp::error_reporting",
        tracing::Level::ERROR,
        {
            gcp.report = true,
            gcp.report.file = file!(),
            gcp.report.line = line!(),
            gcp.report.function = module_path!(),
            error = error as &(dyn std::error::Error + 'static),
            task_id = id,
            attempts,
        },
        "task outbox entry `{id}` failed after {attempts} attempt(s) and will not be sent again until it is \
         retried (sea-gcp tasks outbox retry): {error}"
    );
}
