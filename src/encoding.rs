//! Percent-encoding for URLs, in one place: RFC 3986 unreserved bytes (`A-Z a-z 0-9 - . _ ~`) are kept,
//! everything else is escaped; [`path`] also keeps `/`. This is what GCS V4 signing, the JSON API, the
//! local store's URLs and the event endpoints all need.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, PercentEncode, utf8_percent_encode};

/// Bytes left as they are in a URL component: the RFC 3986 unreserved set.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Bytes left as they are in an object path: unreserved plus `/`.
const PATH: &AsciiSet = &COMPONENT.remove(b'/');

/// Encode one URL component (a query key or value, or a path segment: `/` becomes `%2F`).
pub(crate) fn component(text: &str) -> String {
    component_iter(text).to_string()
}

/// [`component`] as string pieces, to append without an intermediate `String`.
pub(crate) fn component_iter(text: &str) -> PercentEncode<'_> {
    utf8_percent_encode(text, COMPONENT)
}

/// Encode an object path, keeping `/` (like Python's `quote(safe="/~")`).
pub(crate) fn path(text: &str) -> String {
    path_iter(text).to_string()
}

/// [`path`] as string pieces, to append without an intermediate `String`.
pub(crate) fn path_iter(text: &str) -> PercentEncode<'_> {
    utf8_percent_encode(text, PATH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_escape_slashes_and_paths_keep_them() {
        assert_eq!(component("a/b c~.txt"), "a%2Fb%20c~.txt");
        assert_eq!(component("ünï"), "%C3%BCn%C3%AF");
        assert_eq!(path("a b/ü#?.txt"), "a%20b/%C3%BC%23%3F.txt");
        assert_eq!(path("a/b&c d"), "a/b%26c%20d");
    }
}
