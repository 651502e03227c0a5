//! Fitting a line under Cloud Logging's entry size limit.
//!
//! Cloud Logging drops an entry over 256 KB whole. A line over the layer's limit is rewritten: the longest
//! string values (the message, a big field, the stack trace, wherever they are) are cut to a common length,
//! the shortest that fits, each cut marked with [`MARKER`] and how many bytes it removed; keys, numbers and
//! short strings stay. When even that cannot fit (thousands of fields), the line keeps its severity, time,
//! source location and the cut message only.

use std::fmt::Write as _;

/// Appended to a cut string value, followed by the number of bytes removed and `]`.
pub(crate) const MARKER: &str = "…[truncated ";

/// The longest marker: `…[truncated 18446744073709551615 bytes]`.
const MARKER_MAX: usize = MARKER.len() + 20 + " bytes]".len();

/// The smallest limit honoured (a line needs room for its severity, time and a marker).
pub(crate) const MIN_LIMIT: usize = 1024;

/// Where a string value's content (between its quotes, escaped) starts and ends in the line.
type Span = (usize, usize);

/// Rewrite `line` (one JSON object, no newline) into at most `limit` bytes (at least [`MIN_LIMIT`]),
/// using `scratch` as the second buffer. Lines already within the limit are left untouched.
pub(crate) fn fit(line: &mut String, limit: usize, scratch: &mut String) {
    let limit = limit.max(MIN_LIMIT);
    if line.len() <= limit {
        return;
    }
    let values = string_values(line);
    let overflow = line.len() - limit;
    // The largest common length `cap` such that cutting every longer value to it saves enough.
    let saved = |cap: usize| -> usize {
        values
            .iter()
            .map(|&(s, e)| e - s)
            .filter(|&len| len > cap)
            .map(|len| (len - cap).saturating_sub(MARKER_MAX))
            .sum()
    };
    scratch.clear();
    if saved(0) >= overflow {
        let (mut low, mut high) = (0, values.iter().map(|&(s, e)| e - s).max().unwrap_or(0));
        while low < high {
            let mid = (low + high).div_ceil(2);
            if saved(mid) >= overflow { low = mid } else { high = mid - 1 }
        }
        let mut copied = 0;
        for &(start, end) in &values {
            if end - start > low {
                scratch.push_str(&line[copied..start]);
                cut(scratch, &line[start..end], low);
                copied = end;
            }
        }
        scratch.push_str(&line[copied..]);
    } else {
        minimal(line, &values, limit, scratch);
    }
    std::mem::swap(line, scratch);
}

/// `{"severity":..,"message":"<cut>","time":..,"logging.googleapis.com/sourceLocation":{..}}`: the
/// layer writes these four first, so they are the line up to the end of the fourth member.
fn minimal(line: &str, values: &[Span], limit: usize, out: &mut String) {
    // severity, message, time, then sourceLocation's strings; the message is the second string value.
    let Some(&(message_start, message_end)) = values.get(1) else {
        out.push_str(&line[..limit.min(line.len())]);
        return;
    };
    // From the `,` after the time's closing quote to the end of the source location.
    let tail_end = end_of_member(line, values.get(2).map_or(message_end, |v| v.1) + 1);
    let rest = message_start + (tail_end - message_end) + 1;
    let room = limit.saturating_sub(rest + MARKER_MAX);
    out.push_str(&line[..message_start]);
    cut(out, &line[message_start..message_end], room);
    out.push_str(&line[message_end..tail_end]);
    out.push('}');
}

/// Where the member starting at `from` (a `,` or the closing quote of a value) ends: the next `,` or `}`
/// at depth zero, outside strings.
fn end_of_member(line: &str, from: usize) -> usize {
    let bytes = line.as_bytes();
    let (mut depth, mut i, mut in_string) = (0usize, from, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'{' | b'[' if !in_string => depth += 1,
            b'}' | b']' if !in_string => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
            }
            b',' if !in_string && depth == 0 && i > from => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Every string value of the line (not the keys).
fn string_values(line: &str) -> Vec<Span> {
    let bytes = line.as_bytes();
    let mut values = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < bytes.len() && bytes[j] != b'"' {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        let end = j.min(bytes.len());
        if bytes.get(end + 1) != Some(&b':') {
            values.push((start, end));
        }
        i = end + 1;
    }
    values
}

/// Append the first at most `max` bytes of the escaped string content `s` (never splitting an escape or a
/// character), then the marker.
fn cut(out: &mut String, s: &str, max: usize) {
    let bytes = s.as_bytes();
    let mut end = 0;
    while end < bytes.len() {
        let unit = match bytes[end] {
            b'\\' if bytes.get(end + 1) == Some(&b'u') => 6,
            b'\\' => 2,
            b if b < 0x80 => 1,
            b if b >= 0xf0 => 4,
            b if b >= 0xe0 => 3,
            _ => 2,
        };
        if end + unit > max {
            break;
        }
        end += unit;
    }
    out.push_str(&s[..end]);
    let _ = write!(out, "{MARKER}{} bytes]", s.len() - end);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str, field: &str) -> String {
        let mut out = String::from("{\"severity\":\"INFO\",\"message\":");
        super::super::json::push_str(&mut out, message);
        out.push_str(",\"time\":\"2026-01-01T00:00:00.000000000Z\",\"logging.googleapis.com/sourceLocation\":{\"file\":\"a.rs\",\"line\":\"1\"},\"n\":1,\"f\":");
        super::super::json::push_str(&mut out, field);
        out.push('}');
        out
    }

    #[test]
    fn long_values_are_cut_to_fit_without_splitting_escapes_or_characters() {
        for filler in ["a", "é", "\"", "\n", "\u{1}", "😀"] {
            let mut l = line(&filler.repeat(5000), &"x".repeat(3000));
            let mut scratch = String::new();
            fit(&mut l, 4096, &mut scratch);
            assert!(l.len() <= 4096, "{}", l.len());
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            let message = v["message"].as_str().unwrap();
            assert!(message.contains(MARKER), "{message}");
            assert!(message.starts_with(filler));
            assert!(v["f"].as_str().unwrap().contains(MARKER));
            assert_eq!(v["n"], 1);
            assert_eq!(v["severity"], "INFO");
        }
    }

    #[test]
    fn short_values_stay_whole_and_small_lines_are_untouched() {
        let mut l = line("short", &"x".repeat(10_000));
        let before = l.clone();
        let mut scratch = String::new();
        fit(&mut l, 20_000, &mut scratch);
        assert_eq!(l, before);
        fit(&mut l, 2000, &mut scratch);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["message"], "short");
        assert!(v["f"].as_str().unwrap().ends_with(" bytes]"));
    }

    #[test]
    fn too_many_fields_leave_the_head_and_the_message() {
        let mut l = line(&"m".repeat(3000), "f");
        l.pop();
        for i in 0..2000 {
            l.push_str(&format!(",\"k{i}\":{i}"));
        }
        l.push('}');
        let mut scratch = String::new();
        fit(&mut l, 2048, &mut scratch);
        assert!(l.len() <= 2048, "{}", l.len());
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert!(v["message"].as_str().unwrap().contains(MARKER));
        assert_eq!(v["logging.googleapis.com/sourceLocation"]["line"], "1");
        assert!(v.get("k0").is_none());
    }
}
