//! Server-chosen temp names for direct uploads: `<ingress prefix><uuid v7>/<sanitised filename>`.
//!
//! The browser's file name is only a hint: [`sanitize_filename`] keeps its last path component,
//! drops `..`, NUL, control characters and bidirectional controls (overrides, isolates, marks), and trims it to a byte budget (on a character boundary,
//! keeping the extension when it can) so that the full key stays under GCS's 1,024-byte limit.
//! Unicode and emoji are kept. A name with nothing left becomes `file`.

use crate::storage::naming::MAX_NAME_BYTES;

/// What an empty or fully stripped file name becomes.
pub(crate) const FALLBACK_NAME: &str = "file";

/// Longest sanitised file name, in bytes: one path segment that every filesystem (the local store keeps
/// a sidecar per object) and every browser download dialog can hold.
pub const MAX_FILENAME_BYTES: usize = 200;

/// Longest extension (in bytes, dot included) kept when a name must be shortened.
const MAX_KEPT_EXTENSION: usize = 16;

/// Sanitise a browser-supplied file name into one path segment of at most `max_bytes` UTF-8 bytes.
/// `../../etc/passwd` becomes `passwd`, `C:\Users\me\Q3 report.pdf` becomes `Q3 report.pdf`, `..`
/// becomes `file` (see the tests below).
pub(crate) fn sanitize_filename(raw: &str, max_bytes: usize) -> String {
    let cleaned: String = raw.chars().filter(|c| !c.is_control() && !is_bidi_control(*c)).collect();
    let last = cleaned.rsplit(['/', '\\']).next().unwrap_or("");
    let trimmed = last.trim().trim_start_matches('.').trim();
    let name = if trimmed.is_empty() || trimmed.chars().all(|c| c == '.') { FALLBACK_NAME } else { trimmed };
    shorten(name, max_bytes.max(FALLBACK_NAME.len()))
}

/// Bidirectional formatting characters: embeddings and overrides (U+202A–U+202E), isolates
/// (U+2066–U+2069) and the marks U+200E, U+200F and U+061C. They can make `invoice\u{202E}fdp.exe`
/// display as `invoiceexe.pdf`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Cut `name` to at most `max_bytes`, on a char boundary, keeping a short extension.
fn shorten(name: &str, max_bytes: usize) -> String {
    if name.len() <= max_bytes {
        return name.to_string();
    }
    let ext = match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= MAX_KEPT_EXTENSION && name.len() - i < max_bytes => &name[i..],
        _ => "",
    };
    let budget = max_bytes - ext.len();
    let mut end = budget.min(name.len() - ext.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let stem = name[..end].trim_end();
    if stem.is_empty() { format!("{FALLBACK_NAME}{ext}") } else { format!("{stem}{ext}") }
}

/// The temp name for a new upload: `<ingress_prefix><uuid v7>/<sanitised filename>`, with the
/// filename trimmed to [`MAX_FILENAME_BYTES`] and so that `location_prefix` + the whole name fits in
/// 1,024 bytes.
pub fn temp_name(ingress_prefix: &str, location_prefix: &str, filename: &str) -> String {
    let id = uuid::Uuid::now_v7();
    let fixed = location_prefix.len() + ingress_prefix.len() + 36 + 1;
    let budget = MAX_NAME_BYTES.saturating_sub(fixed).min(MAX_FILENAME_BYTES);
    format!("{ingress_prefix}{id}/{}", sanitize_filename(filename, budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_paths_control_and_dots() {
        assert_eq!(sanitize_filename("dir/sub/x.txt", 100), "x.txt");
        assert_eq!(sanitize_filename("..\\..\\x.txt", 100), "x.txt");
        assert_eq!(sanitize_filename("../", 100), "file");
        assert_eq!(sanitize_filename("", 100), "file");
        assert_eq!(sanitize_filename("\u{0}\u{7}", 100), "file");
        assert_eq!(sanitize_filename(".hidden", 100), "hidden");
        assert_eq!(sanitize_filename("line\nbreak.txt", 100), "linebreak.txt");
    }

    #[test]
    fn strips_bidi_controls() {
        assert_eq!(sanitize_filename("invoice\u{202E}fdp.exe", 100), "invoicefdp.exe");
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
            '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            let s = sanitize_filename(&format!("a{c}b.txt"), 100);
            assert_eq!(s, "ab.txt", "U+{:04X} survived", c as u32);
        }
        assert_eq!(sanitize_filename("\u{202E}\u{2066}", 100), "file");
        assert_eq!(sanitize_filename("שלום.txt", 100), "שלום.txt");
    }

    #[test]
    fn shortens_on_char_boundaries_keeping_extension() {
        let long = format!("{}.pdf", "é".repeat(1000));
        let s = sanitize_filename(&long, 101);
        assert!(s.len() <= 101 && s.ends_with(".pdf"), "{s}");
        let emoji = "😀".repeat(600);
        let s = sanitize_filename(&emoji, 50);
        assert!(s.len() <= 50 && s.chars().all(|c| c == '😀'), "{s}");
    }

    #[test]
    fn temp_names_fit_and_are_distinct() {
        let long = "x".repeat(2000);
        let a = temp_name("ingress/", "media/", &long);
        let b = temp_name("ingress/", "media/", &long);
        assert_ne!(a, b);
        assert!(a.len() + "media/".len() <= MAX_NAME_BYTES, "{}", a.len());
        assert!(a.rsplit('/').next().unwrap().len() <= MAX_FILENAME_BYTES);
        let deep = temp_name(&"p/".repeat(450), "", "name.txt");
        assert!(deep.len() <= MAX_NAME_BYTES, "{}", deep.len());
        assert!(crate::storage::naming::normalize(&a).is_ok());
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn the_documented_examples_hold() {
        assert_eq!(sanitize_filename("../../etc/passwd", 200), "passwd");
        assert_eq!(sanitize_filename(r"C:\Users\me\Q3 report.pdf", 200), "Q3 report.pdf");
        assert_eq!(sanitize_filename("a\0b.txt", 200), "ab.txt");
        assert_eq!(sanitize_filename("..", 200), "file");
        assert_eq!(sanitize_filename("🐈 cat.png", 200), "🐈 cat.png");
    }
}
