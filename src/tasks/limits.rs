//! What Cloud Tasks refuses on every attempt, checked at enqueue so that a task it would refuse is a
//! typed error ([`Error::InvalidTask`]) before the caller commits, not an outbox row that can never be
//! sent.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{Error, Result};

/// The largest task Cloud Tasks accepts (URL, headers and body of an HTTP task together): 1 MB.
pub(crate) const MAX_TASK_BYTES: usize = 1_000_000;

/// The shortest dispatch deadline Cloud Tasks accepts.
pub(crate) const MIN_DISPATCH_DEADLINE: Duration = Duration::from_secs(15);

/// The longest dispatch deadline Cloud Tasks accepts.
pub(crate) const MAX_DISPATCH_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// How far ahead a task may be scheduled: 30 days.
pub(crate) const MAX_SCHEDULE_AHEAD: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// The `Content-Type: application/json` header every task carries.
const HEADER_BYTES: usize = "Content-Type".len() + "application/json".len();

/// Check a task against Cloud Tasks' fixed limits.
pub(crate) fn check(
    task: &str,
    url: &str,
    body_len: usize,
    schedule_time: Option<DateTime<Utc>>,
    dispatch_deadline: Option<Duration>,
) -> Result<()> {
    let refuse = |message: String| Err(Error::InvalidTask { task: task.into(), message });
    let size = url.len() + body_len + HEADER_BYTES;
    if size > MAX_TASK_BYTES {
        return refuse(format!(
            "the task is {size} bytes (URL, headers and a {body_len}-byte payload) and Cloud Tasks accepts at \
             most {MAX_TASK_BYTES}: store the data (a row, an object) and pass its key in the payload"
        ));
    }
    if let Some(d) = dispatch_deadline
        && !(MIN_DISPATCH_DEADLINE..=MAX_DISPATCH_DEADLINE).contains(&d)
    {
        return refuse(format!(
            "the dispatch deadline {d:?} is outside what Cloud Tasks accepts (15 s to 30 min): set \
             TaskOptions::dispatch_deadline or GCP_TASKS_DISPATCH_DEADLINE within that range"
        ));
    }
    if let Some(at) = schedule_time
        && at > Utc::now() + MAX_SCHEDULE_AHEAD
    {
        return refuse(format!(
            "the schedule time {} is more than 30 days ahead, which Cloud Tasks refuses: schedule it at most \
             30 days ahead (keep later work in your own table and enqueue it when it comes within range)",
            at.to_rfc3339()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_cloud_tasks_limits() {
        let url = "https://w.example.com/tasks/t";
        let body_max = MAX_TASK_BYTES - url.len() - HEADER_BYTES;
        assert!(check("t", url, body_max, None, None).is_ok());
        let err = check("t", url, body_max + 1, None, None).unwrap_err();
        assert!(matches!(err, Error::InvalidTask { .. }) && err.to_string().contains("at most 1000000"), "{err}");
        for ok in [15, 60, 1800] {
            assert!(check("t", url, 1, None, Some(Duration::from_secs(ok))).is_ok(), "{ok}");
        }
        for bad in [0, 14, 1801] {
            assert!(check("t", url, 1, None, Some(Duration::from_secs(bad))).is_err(), "{bad}");
        }
        let soon = Utc::now() + chrono::TimeDelta::days(29);
        assert!(check("t", url, 1, Some(soon), None).is_ok());
        let late = Utc::now() + chrono::TimeDelta::days(31);
        assert!(check("t", url, 1, Some(late), None).unwrap_err().to_string().contains("30 days"));
    }
}
