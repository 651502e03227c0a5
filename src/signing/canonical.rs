//! The V4 canonical request and string to sign, and the encodings they use.
//!
//! Rules (all exercised by Google's conformance vectors):
//! - the resource path percent-encodes every byte except `A-Z a-z 0-9 - . _ ~` and `/`;
//! - query keys and values encode every byte except `A-Z a-z 0-9 - . _ ~` (space is `%20`, never `+`), and
//!   the canonical query string is sorted by encoded key, then encoded value;
//! - header names are lowercased and sorted; values are trimmed and runs of spaces or tabs collapse to
//!   one space; the same name given twice (in any case) joins its values with `,`;
//! - the payload line is the canonical value of the request's `X-Goog-Content-SHA256` header when it has
//!   one (the client must then send a body with that SHA-256), else `UNSIGNED-PAYLOAD`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// The region part of every GCS credential scope.
pub(crate) const REGION: &str = "auto";
/// The service part of every GCS credential scope.
pub(crate) const SERVICE: &str = "storage";
/// The terminator of every V4 credential scope.
pub(crate) const REQUEST_TYPE: &str = "goog4_request";
/// The payload hash placeholder GCS signed URLs use.
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The header whose value, when signed, replaces [`UNSIGNED_PAYLOAD`] in the canonical request.
pub(crate) const CONTENT_SHA256_HEADER: &str = "x-goog-content-sha256";

/// Percent-encode a query key or value (`%20` for space; only unreserved bytes kept).
#[cfg(test)]
pub(crate) fn encode_query_component(text: &str) -> String {
    crate::encoding::component(text)
}

/// Percent-encode an object path (everything but unreserved bytes and `/`).
pub(crate) fn encode_path(text: &str) -> String {
    crate::encoding::path(text)
}

/// [`encode_path`] as string pieces, to append without an intermediate `String`.
pub(crate) fn encode_path_iter(text: &str) -> percent_encoding::PercentEncode<'_> {
    crate::encoding::path_iter(text)
}

/// [`encode_query_component`] as string pieces, to append without an intermediate `String`.
pub(crate) fn encode_query_iter(text: &str) -> percent_encoding::PercentEncode<'_> {
    crate::encoding::component_iter(text)
}

/// Append the canonical form of a header value (see [`canonical_header_value`]) without allocating.
pub(crate) fn push_header_value(out: &mut String, value: &str) {
    for (i, word) in value.split([' ', '\t']).filter(|w| !w.is_empty()).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// Trim a header value and collapse each run of spaces and tabs inside it to one space.
pub(crate) fn canonical_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, word) in value.split([' ', '\t']).filter(|w| !w.is_empty()).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `20190201T090000Z` and `20190201`: the V4 request timestamp and the date of its credential scope.
pub(crate) fn format_timestamp(at: &DateTime<Utc>) -> (String, String) {
    let mut datetime = String::with_capacity(16);
    let _ = write!(
        datetime,
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let date = datetime[..8].to_string();
    (datetime, date)
}

/// `<date>/auto/storage/goog4_request`.
pub(crate) fn credential_scope(date: &str) -> String {
    format!("{date}/{REGION}/{SERVICE}/{REQUEST_TYPE}")
}

/// The signed headers: lowercased names, canonical values, `host` included.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CanonicalHeaders {
    /// `name:value\n` lines, sorted by name.
    pub block: String,
    /// `name;name;...`, the `X-Goog-SignedHeaders` value.
    pub signed_headers: String,
    /// The canonical value of `x-goog-content-sha256`, if signed: the canonical request's payload line.
    pub payload_hash: Option<String>,
}

/// Lowercased, trimmed names with canonical values, sorted by name; values of names that differ only in
/// case joined with `,` (in the map's order). `host` is not added.
pub(crate) fn canonical_header_lines(headers: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut lines: Vec<(String, String)> = Vec::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        lines.push((name.trim().to_ascii_lowercase(), canonical_header_value(value)));
    }
    // Stable sort keeps the map's order among names that differ only in case, then merge those.
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1.push(',');
            earlier.1.push_str(&later.1);
            true
        } else {
            false
        }
    });
    lines
}

/// Canonicalise `headers` plus `host` (a caller-given `host` header wins over the computed one).
#[cfg(test)]
pub(crate) fn canonical_headers(headers: &BTreeMap<String, String>, host: &str) -> CanonicalHeaders {
    let mut lines = canonical_header_lines(headers);
    if let Err(at) = lines.binary_search_by(|(name, _)| name.as_str().cmp("host")) {
        lines.insert(at, ("host".to_string(), host.to_string()));
    }
    let mut block = String::with_capacity(lines.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    let mut signed_headers = String::with_capacity(lines.iter().map(|(n, _)| n.len() + 1).sum());
    for (i, (name, value)) in lines.iter().enumerate() {
        block.push_str(name);
        block.push(':');
        block.push_str(value);
        block.push('\n');
        if i > 0 {
            signed_headers.push(';');
        }
        signed_headers.push_str(name);
    }
    let payload_hash = lines
        .iter()
        .find(|(name, value)| name == CONTENT_SHA256_HEADER && !value.is_empty())
        .map(|(_, value)| value.clone());
    CanonicalHeaders { block, signed_headers, payload_hash }
}

/// `METHOD\npath\nquery\nheaders\n\nsigned-headers\npayload`, the payload being the signed
/// `x-goog-content-sha256` value or `UNSIGNED-PAYLOAD`.
#[cfg(test)]
pub(crate) fn canonical_request(method: &str, path: &str, query: &str, headers: &CanonicalHeaders) -> String {
    let mut out = String::with_capacity(
        method.len() + path.len() + query.len() + headers.block.len() + headers.signed_headers.len() + 24,
    );
    out.push_str(method);
    out.push('\n');
    out.push_str(path);
    out.push('\n');
    out.push_str(query);
    out.push('\n');
    out.push_str(&headers.block);
    out.push('\n');
    out.push_str(&headers.signed_headers);
    out.push('\n');
    out.push_str(headers.payload_hash.as_deref().unwrap_or(UNSIGNED_PAYLOAD));
    out
}

/// The credential scope (third line) of a V4 string to sign, if `string_to_sign` is one.
pub(crate) fn scope_of_string_to_sign(string_to_sign: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(string_to_sign).ok()?;
    let mut lines = text.split('\n');
    let algorithm = lines.next()?;
    if !algorithm.starts_with("GOOG4-") {
        return None;
    }
    lines.next()?;
    let scope = lines.next()?;
    lines.next()?;
    Some(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(encode_query_component("aA0é/=%-_.~ "), "aA0%C3%A9%2F%3D%25-_.~%20");
        assert_eq!(encode_path("a/b&c d"), "a/b%26c%20d");
        assert_eq!(canonical_header_value("\tabc\t\t\t\tdef\t"), "abc def");
        assert_eq!(canonical_header_value("    xyz"), "xyz");
    }

    #[test]
    fn headers_merge_case_insensitively() {
        let mut h = BTreeMap::new();
        h.insert("Foo".to_string(), "a".to_string());
        h.insert("foo".to_string(), " b ".to_string());
        let c = canonical_headers(&h, "example.com");
        assert_eq!(c.block, "foo:a,b\nhost:example.com\n");
        assert_eq!(c.signed_headers, "foo;host");
        assert_eq!(c.payload_hash, None);
        h.insert("X-Goog-Content-SHA256".to_string(), " abc ".to_string());
        let c = canonical_headers(&h, "example.com");
        assert_eq!(c.payload_hash.as_deref(), Some("abc"));
        assert!(canonical_request("PUT", "/b/o", "", &c).ends_with("\nfoo;host;x-goog-content-sha256\nabc"));
    }

    #[test]
    fn header_values_are_written_canonically() {
        for v in ["abc", " abc", "a  b", "a\tb", "a b ", "", "  x  y\t\tz "] {
            let mut out = String::new();
            push_header_value(&mut out, v);
            assert_eq!(out, canonical_header_value(v));
        }
    }

    #[test]
    fn scope_is_found() {
        let s = b"GOOG4-HMAC-SHA256\n20190201T090000Z\n20190201/auto/storage/goog4_request\nabc";
        assert_eq!(scope_of_string_to_sign(s), Some("20190201/auto/storage/goog4_request"));
        assert_eq!(scope_of_string_to_sign(b"eyJjb25kaXRpb25zIjpb"), None);
    }
}
