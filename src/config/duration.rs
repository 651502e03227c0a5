//! Durations as `gcloud` writes them: `10s`, `10m`, `1h`, `7d`, or a bare number of seconds.

use std::time::Duration;

use crate::{Error, Result};

/// Parse `10s`, `10m`, `1h`, `7d` or a bare number of seconds (also `1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || {
        Error::InvalidArgument(format!(
            "duration {text:?} is not understood: use a number followed by s, m, h or d, such as 10m or 7d"
        ))
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Serde adapter: durations as seconds (number) or `parse_duration` text.
pub mod duration_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialise as whole seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos() == 0 {
            s.serialize_u64(d.as_secs())
        } else {
            s.serialize_str(&format!("{}ms", d.as_millis()))
        }
    }

    /// Deserialise from seconds or text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Float(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Float(f) if f >= 0.0 => Ok(Duration::from_secs_f64(f)),
            Raw::Float(f) => Err(serde::de::Error::custom(format!("negative duration {f}"))),
            Raw::Text(t) => {
                if let Some(ms) = t.strip_suffix("ms") {
                    return ms.trim().parse::<u64>().map(Duration::from_millis).map_err(serde::de::Error::custom);
                }
                super::parse_duration(&t).map_err(serde::de::Error::custom)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("42").unwrap(), Duration::from_secs(42));
        for bad in ["", "10x", "m", "10m5", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
