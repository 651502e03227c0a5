//! The local Cloud Scheduler ([`FakeScheduler`]) with what a test observes: the jobs it holds, every
//! mutating call and every dispatch.

use std::time::Duration;

pub use crate::local::scheduler::*;

impl FakeScheduler {
    /// Every `:run` dispatch so far.
    pub fn dispatches(&self) -> Vec<SchedulerDispatch> {
        self.shared.dispatches.lock().unwrap().clone()
    }

    /// Every mutating call so far (`POST name`, `PATCH name mask`, `DELETE name`).
    pub fn mutations(&self) -> Vec<String> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Wait for `n` dispatches (or `timeout`).
    pub async fn wait_for_dispatches(&self, n: usize, timeout: Duration) -> usize {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let count = self.shared.dispatches.lock().unwrap().len();
            if count >= n || std::time::Instant::now() >= deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
