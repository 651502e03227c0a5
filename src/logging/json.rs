//! Writing JSON into a reused `String` without allocating.
//!
//! Field values reach a tracing layer as `&str`, numbers, or `fmt::Debug` / `fmt::Display` values; a
//! serializer would need each formatted value as a `String` first (one allocation per field). Escaping
//! while formatting, through [`Escaped`], writes straight into the line buffer instead.

use std::fmt::{self, Write as _};

/// A `fmt::Write` that JSON-escapes everything written through it into the inner string.
pub(crate) struct Escaped<'a>(pub &'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// Append `s` JSON-escaped (without the surrounding quotes).
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Append `"s"`.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// Append `"key":` (the key escaped).
pub(crate) fn push_key(out: &mut String, key: &str) {
    push_str(out, key);
    out.push(':');
}

/// Append a `Display` value as a JSON string.
pub(crate) fn push_display(out: &mut String, value: &dyn fmt::Display) {
    out.push('"');
    let _ = write!(Escaped(out), "{value}");
    out.push('"');
}

/// Append a `Debug` value as a JSON string.
pub(crate) fn push_debug(out: &mut String, value: &dyn fmt::Debug) {
    out.push('"');
    let _ = write!(Escaped(out), "{value:?}");
    out.push('"');
}

/// Append a float as a JSON number (`null` for NaN and infinities, which JSON cannot hold).
pub(crate) fn push_f64(out: &mut String, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str("null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_serde_json() {
        for s in ["plain", "quote \" and \\ backslash", "line\nbreak\ttab\r", "\u{1}\u{1f} ctl", "é ✓ 😀", ""] {
            let mut out = String::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
        let mut out = String::new();
        push_debug(&mut out, &"a\"b");
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), "\"a\\\"b\"");
        let mut out = String::new();
        push_f64(&mut out, f64::NAN);
        push_f64(&mut out, 1.5);
        assert_eq!(out, "null1.5");
    }
}
