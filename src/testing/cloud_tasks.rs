//! The local Cloud Tasks ([`FakeCloudTasks`]) with what a test observes and steers: the tasks a queue
//! holds, every dispatch, call counts, paused queues, latency and the tombstone window.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use crate::local::cloud_tasks::*;

/// A task the fake holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldTask {
    /// The task id.
    pub id: String,
    /// The target URL.
    pub url: String,
    /// The decoded body.
    pub body: Vec<u8>,
    /// When it is due.
    pub schedule_time: DateTime<Utc>,
    /// Dispatch attempts so far.
    pub dispatch_count: u32,
}

impl QueueConfig {
    /// Set [`QueueConfig::max_attempts`].
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Set the backoff bounds.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max;
        self
    }

    /// Set [`QueueConfig::max_concurrent_dispatches`].
    pub fn with_max_concurrent_dispatches(mut self, n: usize) -> Self {
        self.max_concurrent_dispatches = n.max(1);
        self
    }

    /// Set [`QueueConfig::paused`].
    pub fn with_paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }
}

impl FakeCloudTasks {
    /// Pause or resume a queue.
    pub fn set_paused(&self, queue_path: &str, paused: bool) {
        if let Some(q) = self.shared.queues.lock().unwrap().get_mut(queue_path) {
            q.config.paused = paused;
        }
        self.shared.resumed.notify_waiters();
    }

    /// Delay every API answer by `latency` (a simulated round trip).
    pub fn set_latency(&self, latency: Duration) {
        *self.shared.latency.lock().unwrap() = latency;
    }

    /// How long a task id stays refused after its task ran or was deleted (default 1 hour).
    pub fn set_tombstone_window(&self, window: Duration) {
        *self.shared.tombstone_window.lock().unwrap() = window;
    }

    /// The tasks a queue holds (not yet run successfully, not deleted, attempts left).
    pub fn tasks(&self, queue_path: &str) -> Vec<HeldTask> {
        let queues = self.shared.queues.lock().unwrap();
        let mut out: Vec<HeldTask> = queues
            .get(queue_path)
            .map(|q| {
                q.tasks
                    .values()
                    .map(|t| HeldTask {
                        id: t.id.clone(),
                        url: t.url.clone(),
                        body: t.body.clone(),
                        schedule_time: t.schedule_time,
                        dispatch_count: t.dispatch_count,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Every dispatch attempt so far, in order.
    pub fn dispatches(&self) -> Vec<DispatchRecord> {
        self.shared.dispatches.lock().unwrap().clone()
    }

    /// Tasks created so far.
    pub fn created_count(&self) -> u64 {
        self.shared.created.load(Ordering::SeqCst)
    }

    /// Creates refused with 409 ALREADY_EXISTS so far.
    pub fn refused_duplicates(&self) -> u64 {
        self.shared.refused_duplicates.load(Ordering::SeqCst)
    }

    /// API calls answered so far.
    pub fn api_calls(&self) -> u64 {
        self.shared.api_calls.load(Ordering::SeqCst)
    }

    /// Wait until at least `n` dispatch attempts were recorded, or `timeout` passed; returns the count.
    pub async fn wait_for_dispatches(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.shared.dispatches.lock().unwrap().len();
            if count >= n || Instant::now() >= deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
