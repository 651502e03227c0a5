//! Strict media types (RFC 9110 §8.3.1) and accept-list matching: the one parser every content-type
//! check uses (the upload router, the ticket verifier and the save protocol's accept list).
//!
//! `media-type = type "/" subtype *( OWS ";" OWS parameter )`, `parameter = token "=" ( token /
//! quoted-string )`. Anything else is refused, in particular a list (`image/png; a=b, text/html`: a
//! browser may render the last type while a lax check reads only the first), whitespace around `/` or
//! `=`, control characters and empty parts. A parsed type keeps only its essence (lowercase
//! `type/subtype`) and a `charset`; other parameters are dropped, so the stored value is exactly what
//! was checked.
//!
//! `Text/Plain; Charset="UTF-8"; format=flowed` is stored as `text/plain; charset=utf-8`;
//! `image/png; a=b, text/html` is refused (see the tests below).

use std::fmt;

/// Longest media type accepted, in bytes.
pub(crate) const MAX_MEDIA_TYPE_LEN: usize = 255;

/// A parsed media type: essence plus an optional charset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MediaType {
    kind: String,
    subtype: String,
    charset: Option<String>,
}

/// Why a media type was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid media type ({reason}); send one `type/subtype`, optionally with `; charset=...`")]
pub(crate) struct MediaTypeError {
    /// The value as given (cut to [`MAX_MEDIA_TYPE_LEN`] bytes on a character boundary).
    pub input: String,
    /// What is wrong.
    pub reason: &'static str,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl MediaType {
    /// Parse `input` strictly (see the module docs).
    pub(crate) fn parse(input: &str) -> Result<Self, MediaTypeError> {
        let err = |reason: &'static str| {
            let mut end = input.len().min(MAX_MEDIA_TYPE_LEN);
            while !input.is_char_boundary(end) {
                end -= 1;
            }
            MediaTypeError { input: input[..end].to_string(), reason }
        };
        if input.len() > MAX_MEDIA_TYPE_LEN {
            return Err(err("longer than 255 bytes"));
        }
        if !input.is_ascii() || input.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(err("non-ASCII or control characters"));
        }
        let s = input.trim_matches(|c| c == ' ' || c == '\t');
        let (essence, mut rest) = match s.find(|c: char| c == ';' || is_ows(c as u8)) {
            Some(i) => s.split_at(i),
            None => (s, ""),
        };
        let (kind, subtype) = essence.split_once('/').ok_or_else(|| err("no `/` between type and subtype"))?;
        if !is_token(kind) || !is_token(subtype) {
            return Err(err("type and subtype must be RFC 9110 tokens"));
        }
        if kind == "*" || subtype == "*" {
            // `*/*` and `image/*` are patterns of accept lists, never the type of a file.
            return Err(err("a wildcard is not a content type"));
        }
        let mut charset = None;
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            if rest.is_empty() {
                break;
            }
            rest = rest.strip_prefix(';').ok_or_else(|| err("expected `;` before a parameter"))?;
            rest = rest.trim_start_matches([' ', '\t']);
            if rest.is_empty() || rest.starts_with(';') {
                // RFC 9110 allows empty parameters (`text/plain;`); nothing to record.
                continue;
            }
            let eq = rest.find('=').ok_or_else(|| err("a parameter without `=`"))?;
            let name = &rest[..eq];
            if !is_token(name) {
                return Err(err("parameter names must be tokens"));
            }
            rest = &rest[eq + 1..];
            let value = if let Some(quoted) = rest.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next() {
                        None => return Err(err("unterminated quoted string")),
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c)) => value.push(c),
                            None => return Err(err("unterminated quoted string")),
                        },
                        Some((_, c)) => value.push(c),
                    }
                };
                rest = &quoted[end + 1..];
                value
            } else {
                let end = rest.find(|c: char| !is_tchar(c as u8)).unwrap_or(rest.len());
                let value = &rest[..end];
                if value.is_empty() {
                    return Err(err("a parameter with an empty value"));
                }
                rest = &rest[end..];
                value.to_string()
            };
            if !rest.is_empty() && !rest.starts_with([';', ' ', '\t']) {
                return Err(err("unexpected characters after a parameter (a list of types is not accepted)"));
            }
            if name.eq_ignore_ascii_case("charset") {
                if charset.is_some() {
                    return Err(err("charset given twice"));
                }
                if !is_token(&value) {
                    return Err(err("charset must be a token"));
                }
                charset = Some(value.to_ascii_lowercase());
            }
        }
        let parsed = Self { kind: kind.to_ascii_lowercase(), subtype: subtype.to_ascii_lowercase(), charset };
        // The normalised form is what gets stored and parsed again: it must fit the limit too (it can be
        // longer than the input: `a/b;charset=x` prints as `a/b; charset=x`).
        if parsed.to_string().len() > MAX_MEDIA_TYPE_LEN {
            return Err(err("longer than 255 bytes once normalised"));
        }
        Ok(parsed)
    }

    /// `type/subtype`, lowercase.
    pub(crate) fn essence(&self) -> String {
        format!("{}/{}", self.kind, self.subtype)
    }

    /// Does this type match `pattern` (`type/subtype`, `type/*` or `*/*`, case-insensitive)? A pattern
    /// that is none of these matches nothing.
    pub(crate) fn matches(&self, pattern: &str) -> bool {
        let pattern = pattern.trim();
        let Some((ptype, psub)) = pattern.split_once('/') else { return false };
        if ptype == "*" {
            return psub == "*";
        }
        if !is_token(ptype) || !is_token(psub) || !ptype.eq_ignore_ascii_case(&self.kind) {
            return false;
        }
        psub == "*" || psub.eq_ignore_ascii_case(&self.subtype)
    }
}

impl fmt::Display for MediaType {
    /// The normalised form: `type/subtype` or `type/subtype; charset=x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.subtype)?;
        if let Some(c) = &self.charset {
            write!(f, "; charset={c}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for MediaType {
    type Err = MediaTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Does `content_type` pass the accept list `accept` (patterns as in [`MediaType::matches`]; empty:
/// anything well-formed)? A content type that does not parse strictly never passes.
pub(crate) fn accepts(accept: &[String], content_type: &str) -> bool {
    match MediaType::parse(content_type) {
        Ok(t) => accept.is_empty() || accept.iter().any(|p| t.matches(p)),
        Err(_) => false,
    }
}

/// Is `a` the same media type as `b` once both are normalised (essence and charset)? False when
/// either does not parse.
pub(crate) fn same(a: &str, b: &str) -> bool {
    matches!((MediaType::parse(a), MediaType::parse(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        MediaType::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}")).to_string()
    }

    #[test]
    fn normalises_to_essence_and_charset() {
        assert_eq!(ok("image/png"), "image/png");
        assert_eq!(ok("  IMAGE/PNG  "), "image/png");
        assert_eq!(ok("text/plain;charset=UTF-8"), "text/plain; charset=utf-8");
        assert_eq!(ok("text/plain ; charset=\"utf-8\" ; format=flowed"), "text/plain; charset=utf-8");
        assert_eq!(ok("image/png; a=b"), "image/png");
        assert_eq!(ok("image/png; a=\"b, text/html\""), "image/png");
        assert_eq!(ok("text/plain;"), "text/plain");
        assert_eq!(ok("application/vnd.api+json"), "application/vnd.api+json");
    }

    #[test]
    fn the_normalised_form_fits_the_limit() {
        // 255 bytes as given, 256 once `;charset=u` is printed as `; charset=u`.
        let long = format!("a/{};charset=u", "b".repeat(255 - "a/;charset=u".len()));
        assert_eq!(long.len(), 255);
        assert!(MediaType::parse(&long).is_err());
        let fits = format!("a/{};charset=u", "b".repeat(254 - "a/;charset=u".len()));
        let parsed = MediaType::parse(&fits).unwrap();
        assert_eq!(MediaType::parse(&parsed.to_string()).unwrap(), parsed);
    }

    #[test]
    fn a_wildcard_is_a_pattern_not_a_content_type() {
        for bad in ["*/*", "image/*", "*/png", "*/aaaaaaaaaaa*"] {
            assert!(MediaType::parse(bad).is_err(), "{bad}");
            assert!(!accepts(&[], bad), "{bad} is not accepted even by an empty accept list");
        }
        assert!(accepts(&["image/*".into()], "image/png"));
    }

    #[test]
    fn refuses_lists_and_whitespace_abuse() {
        for bad in [
            "image/png; a=b, text/html",
            "image/png, text/html",
            "image/png,text/html",
            "image/png; a=b,text/html",
            "image/png; a=\"b\", text/html",
            "image/png; a=\"b\"text/html",
            "image/png text/html",
            "image /png",
            "image/ png",
            "image/png; a = b",
            "image/png; a=",
            "image/png; =b",
            "image/png; a",
            "image/png; a=\"unterminated",
            "image/png;charset=utf-8;charset=latin1",
            "image/png\r\nx-evil: 1",
            "image/png\0",
            "imagé/png",
            "image",
            "image/",
            "/png",
            "",
            "text/html; charset=\"utf 8\"",
        ] {
            assert!(MediaType::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(MediaType::parse(&format!("text/{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn accept_lists() {
        let list = vec!["image/*".to_string(), "application/pdf".to_string()];
        assert!(accepts(&list, "image/png"));
        assert!(accepts(&list, "IMAGE/PNG; x=y"));
        assert!(accepts(&list, "application/pdf"));
        assert!(!accepts(&list, "text/html"));
        assert!(!accepts(&list, "image/png; a=b, text/html"));
        assert!(!accepts(&list, "image"));
        assert!(!accepts(&list, "image/"));
        assert!(accepts(&["*/*".to_string()], "text/plain"));
        assert!(!accepts(&["*/png".to_string()], "image/png"));
        assert!(accepts(&[], "text/html"));
        assert!(!accepts(&[], "text/html, image/png"));
        assert!(same("Text/Plain; Charset=UTF-8", "text/plain; charset=utf-8"));
        assert!(!same("text/plain", "text/plain; charset=utf-8"));
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn the_module_summary_holds() {
        let t = MediaType::parse("Text/Plain; Charset=\"UTF-8\"; format=flowed").unwrap();
        assert_eq!(t.to_string(), "text/plain; charset=utf-8");
        assert!(MediaType::parse("image/png; a=b, text/html").is_err());
        assert!(accepts(&["image/*".to_string()], "image/png"));
        assert!(!accepts(&["image/*".to_string()], "image/png, text/html"));
    }
}
