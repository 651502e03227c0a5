//! The local Scheduler's clock: when each job fires next, and the loop that fires them.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::scheduler::FakeScheduler;

/// The first time strictly after `after` at which unix-cron `cron` fires in IANA zone `time_zone`
/// (Cloud Scheduler's rules: a restricted day of month and day of week fire on either). None for an
/// expression or zone that does not parse, or a schedule that never fires.
pub(crate) fn next_fire(cron: &str, time_zone: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let zone: chrono_tz::Tz = time_zone.parse().ok()?;
    let pattern = croner::Cron::new(cron).parse().ok()?;
    pattern.find_next_occurrence(&after.with_timezone(&zone), false).ok().map(|t| t.with_timezone(&Utc))
}

/// Run the jobs of `scheduler` at their times until `shutdown`.
pub(crate) async fn run(scheduler: &FakeScheduler, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut next: HashMap<String, DateTime<Utc>> = HashMap::new();
    loop {
        let now = Utc::now();
        let jobs = scheduler.jobs();
        next.retain(|name, _| jobs.contains_key(name));
        for (name, job) in &jobs {
            let cron = job["schedule"].as_str().unwrap_or_default();
            let zone = job["timeZone"].as_str().unwrap_or("UTC");
            let fire_at = *next.entry(name.clone()).or_insert_with(|| next_fire(cron, zone, now).unwrap_or(now));
            if fire_at <= now {
                tracing::info!(job = %name, "local scheduler: running job");
                scheduler.fire(name);
                if let Some(after) = next_fire(cron, zone, now) {
                    next.insert(name.clone(), after);
                }
            }
        }
        let soonest = next.values().min().copied();
        let wait = soonest
            .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(30))
            .min(Duration::from_secs(30));
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn next_fire_follows_unix_cron_in_the_job_zone() {
        let t = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        // Every minute: the next whole minute.
        assert_eq!(next_fire("* * * * *", "UTC", t), Some(t + chrono::Duration::minutes(1)));
        // 03:00 in London on the day the clocks go forward (29 March 2026): 03:00 BST is 02:00 UTC.
        assert_eq!(
            next_fire("0 3 * * *", "Europe/London", t),
            Some(Utc.with_ymd_and_hms(2026, 3, 29, 2, 0, 0).unwrap())
        );
        // Day of month OR day of week when both are restricted: the 1st, or any Monday.
        assert_eq!(next_fire("0 0 1 * MON", "UTC", t), Some(Utc.with_ymd_and_hms(2026, 3, 30, 0, 0, 0).unwrap()));
        assert_eq!(next_fire("not cron", "UTC", t), None);
        assert_eq!(next_fire("* * * * *", "Mars/Olympus", t), None);
    }
}
