//! Object name normalisation and safety.
//!
//! Every name given to a store passes through [`normalize`] before any request is sent. It turns
//! backslashes into `/`, drops `.` and empty segments, and refuses (with [`Error::InvalidName`]) names
//! that are empty, absolute, contain a `..` segment, contain NUL or other control characters, or whose
//! full key (location prefix included) exceeds GCS's 1,024-byte limit.

use crate::{Error, Result};

/// GCS's limit on an object name, in UTF-8 bytes.
pub(crate) const MAX_NAME_BYTES: usize = 1024;

fn invalid(name: &str, reason: impl Into<String>) -> Error {
    let shown: String = name.chars().take(120).collect();
    let shown = if shown.len() < name.len() { format!("{shown}…") } else { shown };
    Error::InvalidName { name: shown, reason: reason.into() }
}

/// Normalise and validate an object name relative to a store's location.
///
/// ```
/// use sea_gcp::naming::normalize;
/// assert_eq!(normalize(r"photos\2026/./cat.jpg").unwrap(), "photos/2026/cat.jpg");
/// assert!(normalize("../etc/passwd").is_err());
/// ```
pub fn normalize(name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(invalid(name, "the name is empty"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(invalid(
            name,
            format!("it contains the control character U+{:04X}; remove control characters and NUL", c as u32),
        ));
    }
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') {
        return Err(invalid(name, "absolute paths are not allowed; give a name relative to the store's location"));
    }
    let trailing_slash = unified.ends_with('/');
    let mut parts = Vec::new();
    for segment in unified.split('/') {
        match segment {
            "" | "." => continue,
            ".." => {
                return Err(invalid(name, "`..` segments are not allowed (they could escape the store's location)"));
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Err(invalid(name, "the name has no segments besides `.` and `/`"));
    }
    let mut out = parts.join("/");
    if trailing_slash {
        out.push('/');
    }
    if out.len() > MAX_NAME_BYTES {
        return Err(invalid(
            name,
            format!("it is {} bytes long in UTF-8; GCS allows at most {MAX_NAME_BYTES}", out.len()),
        ));
    }
    Ok(out)
}

/// Normalise a prefix for listing: like [`normalize`] but an empty prefix is allowed.
pub(crate) fn normalize_prefix(prefix: &str) -> Result<String> {
    if prefix.is_empty() { Ok(String::new()) } else { normalize(prefix) }
}

/// Validate and normalise a store `location` (django-gcp's `location`): a key prefix without a leading
/// `/`. Returns the prefix with exactly one trailing `/`, or an empty string.
pub(crate) fn normalize_location(store: &str, location: &str) -> Result<String> {
    if location.is_empty() {
        return Ok(String::new());
    }
    if location.starts_with('/') {
        return Err(Error::config(
            Some(store.to_string()),
            format!(
                "location {location:?} starts with `/`; GCS object names never do. Set location = {:?}",
                location.trim_start_matches('/')
            ),
        ));
    }
    let normalized =
        normalize(location).map_err(|e| Error::config(Some(store.to_string()), format!("location: {e}")))?;
    Ok(format!("{}/", normalized.trim_end_matches('/')))
}

/// Maps names relative to a store's location to full object keys and back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyspace {
    prefix: String,
}

impl Keyspace {
    /// A keyspace under `location` for store `store`.
    pub fn new(store: &str, location: &str) -> Result<Self> {
        Ok(Self { prefix: normalize_location(store, location)? })
    }

    /// The key prefix (empty, or ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Normalise `name` and return `(relative name, full key)`.
    pub fn key(&self, name: &str) -> Result<(String, String)> {
        let rel = normalize(name)?;
        let key = format!("{}{}", self.prefix, rel);
        if key.len() > MAX_NAME_BYTES {
            return Err(invalid(
                name,
                format!(
                    "with the location prefix {:?} the key is {} bytes; GCS allows at most {MAX_NAME_BYTES}",
                    self.prefix,
                    key.len()
                ),
            ));
        }
        Ok((rel, key))
    }

    /// The full key for a (possibly empty) listing prefix.
    pub(crate) fn prefix_key(&self, prefix: &str) -> Result<String> {
        Ok(format!("{}{}", self.prefix, normalize_prefix(prefix)?))
    }

    /// Strip the location from a full key. Keys outside the location are returned unchanged.
    pub fn relative<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(self.prefix.as_str()).unwrap_or(key)
    }
}

/// django's `get_available_name`: `name` with `_<7 random alphanumerics>` inserted before the
/// extension. Used by [`Store::save`](super::Store::save) when a create-only write finds the name taken.
pub(crate) fn alternative_name(name: &str) -> String {
    let suffix = crate::random::alphanumeric(7);
    let (dir, file) = match name.rfind('/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    };
    // Keep compound extensions like `.tar.gz` together, as Django does.
    let (stem, ext) = match file.find('.') {
        Some(0) | None => (file, ""),
        Some(i) => (&file[..i], &file[i..]),
    };
    format!("{dir}{stem}_{suffix}{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(normalize("a/b/c.txt").unwrap(), "a/b/c.txt");
        assert_eq!(normalize(r"a\b\c.txt").unwrap(), "a/b/c.txt");
        assert_eq!(normalize("a/./b//c").unwrap(), "a/b/c");
        assert_eq!(normalize("dir/").unwrap(), "dir/");
        assert_eq!(normalize("ünï cødé ✓ #?&.txt").unwrap(), "ünï cødé ✓ #?&.txt");
    }

    #[test]
    fn rejects() {
        for (name, needle) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("a/../../b", "`..`"),
            ("..", "`..`"),
            (r"a\..\b", "`..`"),
            ("a\0b", "U+0000"),
            ("a\nb", "U+000A"),
            ("./.", "no segments"),
        ] {
            let err = normalize(name).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{name:?}: {err}");
            assert!(err.to_string().contains(needle), "{name:?}: {err}");
        }
        let long = "x".repeat(1025);
        assert!(normalize(&long).unwrap_err().to_string().contains("1025 bytes"));
        assert!(normalize(&"é".repeat(512)).is_ok());
        assert!(normalize(&"é".repeat(513)).is_err());
    }

    #[test]
    fn location() {
        let err = Keyspace::new("media", "/uploads").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("store `media`") && text.contains(r#"location = "uploads""#), "{text}");
        let ks = Keyspace::new("media", "uploads/").unwrap();
        assert_eq!(ks.key("a.txt").unwrap(), ("a.txt".to_string(), "uploads/a.txt".to_string()));
        assert_eq!(ks.relative("uploads/a.txt"), "a.txt");
        let err = ks.key(&"y".repeat(1020)).unwrap_err();
        assert!(err.to_string().contains("location prefix"));
    }

    #[test]
    fn alternatives() {
        let alt = alternative_name("dir/photo.tar.gz");
        assert!(alt.starts_with("dir/photo_") && alt.ends_with(".tar.gz") && alt.len() == "dir/photo.tar.gz".len() + 8);
        let alt = alternative_name(".env");
        assert!(alt.starts_with(".env_"));
    }
}
