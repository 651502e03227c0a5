//! Checks of Cloud Scheduler's schedule fields: unix-cron expressions, IANA time zones, attempt deadlines.

use std::time::Duration;

/// Check a unix-cron expression as Cloud Scheduler reads it: five fields (minute 0-59, hour 0-23,
/// day of month 1-31, month 1-12 or JAN-DEC, day of week 0-7 or SUN-SAT), each a comma-separated list of
/// `*`, `N` or `N-M`, optionally with `/STEP`.
pub(crate) fn check_cron(expression: &str) -> Result<(), String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "schedule {expression:?} has {} fields; unix-cron has five: minute hour day-of-month month day-of-week",
            fields.len()
        ));
    }
    const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 0),
        ("month", 1, 12, &MONTHS, 1),
        ("day of week", 0, 7, &DAYS, 0),
    ];
    for (field, (what, min, max, names, name_base)) in fields.iter().zip(specs) {
        let value = |text: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
                return Ok(i as u32 + name_base);
            }
            let n: u32 = text.parse().map_err(|_| format!("{what} {text:?} in {expression:?} is not a number"))?;
            if n < min || n > max {
                return Err(format!("{what} {n} in {expression:?} is outside {min}-{max}"));
            }
            Ok(n)
        };
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            if let Some(step) = step {
                match step.parse::<u32>() {
                    Ok(s) if s >= 1 => {}
                    _ => {
                        return Err(format!("step {step:?} of the {what} in {expression:?} must be a positive number"));
                    }
                }
            }
            if range == "*" {
                continue;
            }
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(a)?, value(b)?);
                    if a > b {
                        return Err(format!("{what} range {range:?} in {expression:?} runs backwards"));
                    }
                }
                None => {
                    value(range)?;
                }
            }
        }
    }
    Ok(())
}

/// Check an IANA time zone name (`Europe/Paris`, `UTC`).
pub(crate) fn check_time_zone(tz: &str) -> Result<(), String> {
    tz.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| {
        format!("time zone {tz:?} is not an IANA time zone name (e.g. Europe/Paris, America/New_York, UTC)")
    })
}

/// Check Cloud Scheduler's attempt deadline for HTTP targets: 15 s to 30 min.
pub(crate) fn check_attempt_deadline(deadline: Duration) -> Result<(), String> {
    if deadline < Duration::from_secs(15) || deadline > Duration::from_secs(1800) {
        return Err(format!("attempt deadline {deadline:?} must be between 15 s and 30 min"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions() {
        for ok in
            ["* * * * *", "0 3 * * *", "*/15 9-17 * * MON-FRI", "0 0 1,15 jan,jul 0", "5 4 * * 7", "0-30/5 * 31 12 *"]
        {
            assert!(check_cron(ok).is_ok(), "{ok}: {:?}", check_cron(ok));
        }
        for bad in [
            "",
            "* * * *",
            "0 0 * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "a * * * *",
            "30-10 * * * *",
            "@daily",
        ] {
            assert!(check_cron(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn zones_and_deadlines() {
        assert!(check_time_zone("Europe/Paris").is_ok() && check_time_zone("UTC").is_ok());
        assert!(check_time_zone("Mars/Olympus").is_err());
        assert!(check_attempt_deadline(Duration::from_secs(15)).is_ok());
        assert!(check_attempt_deadline(Duration::from_secs(1800)).is_ok());
        assert!(check_attempt_deadline(Duration::from_secs(14)).is_err());
        assert!(check_attempt_deadline(Duration::from_secs(1801)).is_err());
    }
}
