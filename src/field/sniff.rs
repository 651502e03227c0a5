//! The type of an upload read from its first bytes, and whether those bytes contradict what the browser
//! declared or what the field accepts.
//!
//! Signatures of binary formats come from the `infer` crate (images, documents, archives, audio, video,
//! fonts). Markup is recognised here: `infer` identifies binary signatures only, and the dangerous case is
//! HTML or SVG (script a browser would run) declared as something harmless, or appended to an image (a
//! polyglot). Text that is neither (CSV, JSON, plain text) has no signature and keeps its declared type.

/// How many leading bytes are read to identify a type: enough for every `infer` signature and for
/// markup near the top of a file.
pub(crate) const SNIFF_BYTES: u64 = 4096;

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sniffed {
    /// The type of a recognised binary signature.
    pub(crate) mime: Option<&'static str>,
    /// HTML or SVG markup (the markup's type), also when a binary signature comes first (a polyglot).
    pub(crate) markup: Option<&'static str>,
}

/// Markup a browser would render or run, anywhere in the first bytes (ASCII, case-insensitive).
const SCRIPTING_MARKERS: [&[u8]; 6] = [b"<script", b"<html", b"<iframe", b"<body", b"javascript:", b"onload="];

/// Identify `bytes` (the start of a file).
pub(crate) fn sniff(bytes: &[u8]) -> Sniffed {
    let mime = infer::get(bytes).map(|t| t.mime_type());
    let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
    let contains = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    let start = lower.strip_prefix(b"\xef\xbb\xbf".as_slice()).unwrap_or(&lower);
    let start = &start[start.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(start.len())..];
    let markup = if contains(b"<svg") && (start.starts_with(b"<") || mime.is_some()) {
        Some("image/svg+xml")
    } else if SCRIPTING_MARKERS.iter().any(|m| contains(m))
        || start.starts_with(b"<!doctype html")
        || start.starts_with(b"<head")
    {
        Some("text/html")
    } else {
        None
    };
    Sniffed { mime, markup }
}

/// Types that may hold markup as declared: a browser told the truth about them.
fn declares_markup(declared: &str) -> bool {
    matches!(
        declared,
        "text/html" | "image/svg+xml" | "application/xhtml+xml" | "text/xml" | "application/xml" | "text/plain"
    )
}

/// Types that say nothing about the content (parameters ignored).
pub(crate) fn is_generic(declared: &str) -> bool {
    let essence = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    matches!(essence.as_str(), "" | "application/octet-stream" | "binary/octet-stream" | "application/unknown")
}

/// Declared names of the same type as the identified one.
fn same_type(declared: &str, identified: &str) -> bool {
    fn canonical(t: &str) -> &str {
        match t {
            "image/jpg" | "image/pjpeg" => "image/jpeg",
            "image/x-png" => "image/png",
            "audio/mp3" | "audio/x-mpeg" => "audio/mpeg",
            "application/x-pdf" => "application/pdf",
            "application/x-zip-compressed" => "application/zip",
            "image/x-icon" => "image/vnd.microsoft.icon",
            other => other,
        }
    }
    // XML is recognised by its prolog: any XML-based type may carry one.
    let xml = |t: &str| t == "text/xml" || t == "application/xml" || t.ends_with("+xml");
    canonical(declared) == canonical(identified) || (xml(declared) && xml(identified))
}

/// Check the declared type against the bytes. `Ok(Some(t))`: store `t`, what the bytes are; `Ok(None)`:
/// keep the declared type; `Err(why)`: refuse the upload.
pub(crate) fn check(
    declared: &str,
    sniffed: &Sniffed,
    accepts: impl Fn(&str) -> bool,
) -> std::result::Result<Option<String>, String> {
    let declared = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if let Some(kind) = sniffed.markup
        && !declares_markup(&declared)
    {
        let what = if kind == "image/svg+xml" { "SVG" } else { "HTML" };
        return Err(format!(
            "the file holds {what} markup but was sent as `{declared}`; markup cannot be uploaded as another type"
        ));
    }
    let Some(identified) = sniffed.mime else {
        if is_generic(&declared) && !accepts(&declared) {
            return Err(format!("the file's type cannot be told from its bytes and `{declared}` is not accepted"));
        }
        return Ok(None);
    };
    if !is_generic(&declared) && !same_type(&declared, identified) {
        return Err(format!("the file is `{identified}` but was sent as `{declared}`; send it with its own type"));
    }
    if !accepts(identified) {
        return Err(format!("the file is `{identified}`, which this field does not accept"));
    }
    Ok((!same_type(&declared, identified)).then(|| identified.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";

    fn any(_: &str) -> bool {
        true
    }

    #[test]
    fn binary_signatures_are_read_and_checked() {
        assert_eq!(sniff(PNG), Sniffed { mime: Some("image/png"), markup: None });
        assert_eq!(check("image/png", &sniff(PNG), any), Ok(None));
        assert_eq!(check("image/PNG; foo=bar", &sniff(PNG), any), Ok(None));
        // A generic declaration takes the identified type.
        assert_eq!(check("application/octet-stream", &sniff(PNG), any), Ok(Some("image/png".into())));
        // A contradicting declaration is refused.
        assert!(check("image/jpeg", &sniff(PNG), any).unwrap_err().contains("`image/png`"));
        assert!(check("application/pdf", &sniff(GIF), any).is_err());
        assert_eq!(check("application/pdf", &sniff(PDF), any), Ok(None));
        // The accept list is checked against the bytes, not the declaration.
        let images = |t: &str| t.starts_with("image/");
        assert!(check("application/octet-stream", &sniff(PDF), images).unwrap_err().contains("does not accept"));
    }

    #[test]
    fn markup_declared_as_something_else_is_refused() {
        let html = b"  <!DOCTYPE html><html><body>hi</body></html>";
        let svg = b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
        let mut polyglot = GIF.to_vec();
        polyglot.extend_from_slice(b"<script>alert(document.cookie)</script>");
        for (bytes, declared) in [(&html[..], "image/png"), (&svg[..], "image/png"), (&polyglot[..], "image/gif")] {
            let err = check(declared, &sniff(bytes), any).unwrap_err();
            assert!(err.contains("markup"), "{declared}: {err}");
        }
        assert_eq!(sniff(&svg[..]).markup, Some("image/svg+xml"));
        // Declared as what it is, markup passes (the field's accept list decides).
        assert_eq!(check("text/html", &sniff(html), any), Ok(None));
        assert_eq!(check("image/svg+xml", &sniff(&svg[..]), any), Ok(None));
        // Text without a signature keeps its declared type.
        assert_eq!(check("text/csv", &sniff(b"id,name\n1,ada\n"), any), Ok(None));
        assert_eq!(check("application/json", &sniff(br#"{"a": "<b>"}"#), any), Ok(None));
    }
}
