//! [`BlobValue`]: what a blob column holds, and its versioned JSON shape.
//!
//! ```json
//! {"v": 1, "name": "reports/2026/q3.pdf", "generation": "1764201600123456", "metageneration": "1",
//!  "size": 482113, "content_type": "application/pdf", "crc32c": "n8VbAQ==", "md5": "…",
//!  "original_name": "Q3 report.pdf", "metadata": {"reviewed": "yes"}, "updated": "2026-11-27T05:00:00Z"}
//! ```
//!
//! Images analysed at promotion (feature `images`) also carry `"width"` and `"height"`, as displayed, and
//! the variants made of them once made: `"variants": {"thumb": {"name": "q3.png.variants/thumb-g17.jpg",
//! "generation": "…", "size": 18231, "content_type": "image/jpeg", "width": 400, "height": 300}}`.
//!
//! Everything but `v` and `name` is a cache of the object's metadata at `generation`, so reading the size,
//! the content type or a URL from a loaded row costs no storage call. Generations are strings (as in the
//! GCS JSON API) because they exceed JavaScript's safe integers. django-gcp's legacy `{"path": "..."}` is
//! read as a value with no cache (until [`BlobValue::refresh`]). Metadata keys starting with `sea-gcp-`
//! (the save protocol's provenance tags) are kept on the object but not in the cache.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json, json};

use crate::storage::{GetOptions, ObjectMeta, Store, UrlOptions};
use crate::{Error, Result};

/// The JSON shape version this crate writes.
pub(crate) const CURRENT_VERSION: u64 = 1;

/// Prefix of the object metadata keys the save protocol sets (and the cache leaves out).
pub(crate) const PROTOCOL_METADATA_PREFIX: &str = "sea-gcp-";

/// The value of a blob column: an object name plus a cache of its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobValue {
    /// Object name, relative to the store's `location`.
    pub name: String,
    /// Cached generation. `None` for legacy values and for an in-place overwrite not yet refreshed.
    pub generation: Option<i64>,
    /// Cached metageneration.
    pub metageneration: Option<i64>,
    /// Cached size in bytes.
    pub size: Option<u64>,
    /// Cached content type.
    pub content_type: Option<String>,
    /// Cached CRC32C (base64, GCS's format).
    pub crc32c: Option<String>,
    /// Cached MD5 (base64); `None` for composite objects.
    pub md5: Option<String>,
    /// The file name the user uploaded.
    pub original_name: Option<String>,
    /// Cached custom metadata (without the `sea-gcp-` protocol tags).
    pub metadata: BTreeMap<String, String>,
    /// Cached last-update time of the object.
    pub updated: Option<DateTime<Utc>>,
    /// True when this value was read from django-gcp's legacy `{"path": ...}` shape.
    pub legacy: bool,
    /// Width in pixels as displayed (EXIF orientation applied), for images analysed at promotion.
    pub width: Option<u32>,
    /// Height in pixels as displayed (EXIF orientation applied), for images analysed at promotion.
    pub height: Option<u32>,
    /// The variants made of this generation, by variant name (feature `images`): a variant URL costs no
    /// storage call.
    pub variants: BTreeMap<String, VariantValue>,
}

/// A variant of a blob value's object (a thumbnail), as recorded in the row once made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantValue {
    /// The variant's object name, in the original's store.
    pub name: String,
    /// The variant object's generation.
    pub generation: Option<i64>,
    /// Its size in bytes.
    pub size: Option<u64>,
    /// Its content type (`image/jpeg`, ...).
    pub content_type: Option<String>,
    /// Its width in pixels.
    pub width: Option<u32>,
    /// Its height in pixels.
    pub height: Option<u32>,
}

impl VariantValue {
    fn to_json(&self) -> Json {
        let mut map = Map::new();
        map.insert("name".into(), json!(self.name));
        if let Some(g) = self.generation {
            map.insert("generation".into(), json!(g.to_string()));
        }
        if let Some(s) = self.size {
            map.insert("size".into(), json!(s));
        }
        if let Some(c) = &self.content_type {
            map.insert("content_type".into(), json!(c));
        }
        if let Some(w) = self.width {
            map.insert("width".into(), json!(w));
        }
        if let Some(h) = self.height {
            map.insert("height".into(), json!(h));
        }
        Json::Object(map)
    }

    fn from_json(key: &str, value: &Json) -> std::result::Result<Self, String> {
        let Json::Object(map) = value else {
            return Err(format!("`variants.{key}` must be an object, found {}", kind_of(value)));
        };
        let name = match map.get("name") {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(format!("`variants.{key}.name` must be a non-empty string")),
        };
        let dimension = |k: &str| match map.get(k) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("`variants.{key}.{k}` must be a 32-bit integer, found {n}")),
            Some(other) => Err(format!("`variants.{key}.{k}` must be a number, found {}", kind_of(other))),
        };
        Ok(Self {
            name,
            generation: opt_int(map, "generation").map_err(|e| format!("variants.{key}: {e}"))?,
            size: match map.get("size") {
                None | Some(Json::Null) => None,
                Some(Json::Number(n)) => {
                    Some(n.as_u64().ok_or_else(|| format!("`variants.{key}.size` must be a non-negative integer"))?)
                }
                Some(other) => return Err(format!("`variants.{key}.size` must be a number, found {}", kind_of(other))),
            },
            content_type: opt_str(map, "content_type").map_err(|e| format!("variants.{key}: {e}"))?,
            width: dimension("width")?,
            height: dimension("height")?,
        })
    }
}

/// What [`BlobValue::refresh`] found different from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Drift {
    /// Names of the cached fields that changed (`generation`, `size`, `content_type`, ...).
    pub changed: Vec<&'static str>,
    /// The generation cached before the refresh.
    pub previous_generation: Option<i64>,
}

impl Drift {
    /// True when the cache matched the object.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }
}

impl BlobValue {
    /// The name to save the file under: the uploaded file's name, else the object name's last segment.
    pub(crate) fn download_name(&self) -> &str {
        self.original_name.as_deref().unwrap_or_else(|| self.name.rsplit('/').next().unwrap_or(&self.name))
    }

    /// A value naming `name` with nothing cached (as a legacy value would be read).
    pub fn uncached(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            generation: None,
            metageneration: None,
            size: None,
            content_type: None,
            crc32c: None,
            md5: None,
            original_name: None,
            metadata: BTreeMap::new(),
            updated: None,
            legacy: false,
            width: None,
            height: None,
            variants: BTreeMap::new(),
        }
    }

    /// A value whose cache is `meta` (a copy, head or patch response).
    pub fn from_meta(meta: &ObjectMeta, original_name: Option<String>) -> Self {
        let mut value = Self::uncached(meta.name.clone());
        value.original_name = original_name;
        value.fill_from(meta);
        value
    }

    /// Set the dimensions read from the bytes (`None`: not an analysed image).
    pub(crate) fn set_dimensions(&mut self, dimensions: Option<(u32, u32)>) {
        (self.width, self.height) = dimensions.unzip();
    }

    /// Keep what was learned from `previous`'s bytes (image dimensions) when both describe the same
    /// generation: a metadata change does not change the pixels.
    #[cfg_attr(not(feature = "events"), allow(dead_code))]
    pub(crate) fn keep_analysis_of(&mut self, previous: &BlobValue) {
        if self.generation.is_some() && self.generation == previous.generation {
            self.set_dimensions(previous.dimensions());
            self.variants = previous.variants.clone();
        }
    }

    /// Replace the cache with `meta` (the name is kept).
    fn fill_from(&mut self, meta: &ObjectMeta) {
        // Dimensions describe one generation's bytes: another generation's are unknown until analysed.
        if self.generation.is_some_and(|g| g != meta.generation) {
            self.width = None;
            self.height = None;
            self.variants.clear();
        }
        self.generation = Some(meta.generation);
        self.metageneration = meta.known_metageneration();
        self.size = Some(meta.size);
        self.content_type = meta.content_type.clone();
        self.crc32c = meta.crc32c.clone();
        self.md5 = meta.md5.clone();
        self.metadata = user_metadata(&meta.metadata);
        self.updated = meta.updated;
        self.legacy = false;
    }

    /// Width and height in pixels as displayed, for an image analysed at promotion (feature `images`),
    /// with no storage call: `<img width="{w}" height="{h}">` reserves the image's space before it loads.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.width.zip(self.height)
    }

    /// The variant `name` when it has been made (feature `images`), with no storage call.
    pub fn variant(&self, name: &str) -> Option<&VariantValue> {
        self.variants.get(name)
    }

    /// True when the metadata cache is filled (a generation is known).
    pub fn is_cached(&self) -> bool {
        self.generation.is_some()
    }

    /// A download URL for the live object (public or signed, per the store). No storage call is made on
    /// GCS (signing is local) or the memory store.
    pub async fn url(&self, store: &dyn Store, opts: UrlOptions) -> Result<String> {
        store.url(&self.name, opts).await
    }

    /// A download URL pinned to the cached generation: it keeps serving these exact bytes even after the
    /// object is overwritten (on a versioned bucket). Fails with [`Error::InvalidArgument`] when no
    /// generation is cached; call [`BlobValue::refresh`] first.
    pub async fn pinned_url(&self, store: &dyn Store, mut opts: UrlOptions) -> Result<String> {
        let generation = self.generation.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "blob `{}` has no cached generation to pin the URL to; call refresh() first",
                self.name
            ))
        })?;
        opts.generation = Some(generation);
        store.url(&self.name, opts).await
    }

    /// Re-read the live object's metadata (one `head`) into the cache and report what changed.
    pub async fn refresh(&mut self, store: &dyn Store) -> Result<Drift> {
        let meta = store.head(&self.name, GetOptions::default()).await?;
        let before = self.clone();
        self.fill_from(&meta);
        let mut changed = Vec::new();
        macro_rules! cmp {
            ($($f:ident),*) => { $( if before.$f != self.$f { changed.push(stringify!($f)); } )* };
        }
        cmp!(generation, metageneration, size, content_type, crc32c, md5, metadata, updated, width, height);
        Ok(Drift { changed, previous_generation: before.generation })
    }

    /// Every stored generation of the object, oldest first (one entry on an unversioned bucket).
    pub async fn generations(&self, store: &dyn Store) -> Result<Vec<ObjectMeta>> {
        store.list_generations(&self.name).await
    }

    /// The versioned JSON shape (version 1). Legacy values are written in the current
    /// shape, with whatever is cached.
    pub fn to_json(&self) -> Json {
        let mut map = Map::new();
        map.insert("v".into(), json!(CURRENT_VERSION));
        map.insert("name".into(), json!(self.name));
        if let Some(g) = self.generation {
            map.insert("generation".into(), json!(g.to_string()));
        }
        if let Some(m) = self.metageneration {
            map.insert("metageneration".into(), json!(m.to_string()));
        }
        if let Some(s) = self.size {
            map.insert("size".into(), json!(s));
        }
        let strings = [
            ("content_type", &self.content_type),
            ("crc32c", &self.crc32c),
            ("md5", &self.md5),
            ("original_name", &self.original_name),
        ];
        for (key, value) in strings {
            if let Some(v) = value {
                map.insert(key.into(), json!(v));
            }
        }
        map.insert("metadata".into(), json!(self.metadata));
        // Each as read: a value with one of them (edited by hand) keeps it when written back.
        if let Some(w) = self.width {
            map.insert("width".into(), json!(w));
        }
        if let Some(h) = self.height {
            map.insert("height".into(), json!(h));
        }
        if let Some(u) = self.updated {
            map.insert("updated".into(), json!(u.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
        }
        if !self.variants.is_empty() {
            let variants = self.variants.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<Map<_, _>>();
            map.insert("variants".into(), Json::Object(variants));
        }
        Json::Object(map)
    }

    /// Parse a column value: the versioned shape or django-gcp's legacy `{"path": ...}`. The error says
    /// what is wrong (not an object, wrong field type, unknown version, ...).
    pub fn from_json(value: &Json) -> std::result::Result<Self, String> {
        let Json::Object(map) = value else {
            return Err(format!("expected a JSON object, found {}", kind_of(value)));
        };
        match map.get("v") {
            None => {
                if let Some(path) = map.get("path") {
                    let Json::String(path) = path else {
                        return Err(format!("legacy `path` must be a string, found {}", kind_of(path)));
                    };
                    if path.is_empty() {
                        return Err("legacy `path` is empty".into());
                    }
                    let mut v = Self::uncached(path.clone());
                    v.legacy = true;
                    return Ok(v);
                }
                Err("neither a versioned blob value (no `v` key) nor a legacy django-gcp value (no `path` key)".into())
            }
            Some(Json::Number(n)) if n.as_u64() == Some(CURRENT_VERSION) => Self::from_v1(map),
            Some(other) => Err(format!(
                "unknown blob value version {other} (this version of sea-gcp reads version {CURRENT_VERSION}); \
                 upgrade sea-gcp or fix the row"
            )),
        }
    }

    /// Parse a column value stored as text (SQLite).
    pub fn from_text(text: &str) -> std::result::Result<Self, String> {
        let json: Json = serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {}", snippet(text)))?;
        Self::from_json(&json)
    }

    fn from_v1(map: &Map<String, Json>) -> std::result::Result<Self, String> {
        const KNOWN: [&str; 14] = [
            "v",
            "name",
            "generation",
            "metageneration",
            "size",
            "content_type",
            "crc32c",
            "md5",
            "original_name",
            "metadata",
            "updated",
            "width",
            "height",
            "variants",
        ];
        if let Some(unknown) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!("unknown key `{unknown}` in a version 1 blob value"));
        }
        let name = match map.get("name") {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(Json::String(_)) => return Err("`name` is empty".into()),
            Some(other) => return Err(format!("`name` must be a string, found {}", kind_of(other))),
            None => return Err("missing `name`".into()),
        };
        let mut v = Self::uncached(name);
        v.generation = opt_int(map, "generation")?;
        v.metageneration = opt_int(map, "metageneration")?;
        v.size = match map.get("size") {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) => {
                Some(n.as_u64().ok_or_else(|| format!("`size` must be a non-negative integer, found {n}"))?)
            }
            Some(other) => return Err(format!("`size` must be a number, found {}", kind_of(other))),
        };
        v.content_type = opt_str(map, "content_type")?;
        v.crc32c = opt_str(map, "crc32c")?;
        v.md5 = opt_str(map, "md5")?;
        v.original_name = opt_str(map, "original_name")?;
        v.metadata = match map.get("metadata") {
            None | Some(Json::Null) => BTreeMap::new(),
            Some(Json::Object(m)) => m
                .iter()
                .map(|(k, val)| match val {
                    Json::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(format!("`metadata.{k}` must be a string, found {}", kind_of(other))),
                })
                .collect::<std::result::Result<_, _>>()?,
            Some(other) => return Err(format!("`metadata` must be an object, found {}", kind_of(other))),
        };
        for (key, slot) in [("width", &mut v.width), ("height", &mut v.height)] {
            *slot = match map.get(key) {
                None | Some(Json::Null) => None,
                Some(Json::Number(n)) => Some(
                    n.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("`{key}` must be a positive 32-bit integer, found {n}"))?,
                ),
                Some(other) => return Err(format!("`{key}` must be a number, found {}", kind_of(other))),
            };
        }
        v.variants = match map.get("variants") {
            None | Some(Json::Null) => BTreeMap::new(),
            Some(Json::Object(m)) => m
                .iter()
                .map(|(k, val)| VariantValue::from_json(k, val).map(|v| (k.clone(), v)))
                .collect::<std::result::Result<_, _>>()?,
            Some(other) => return Err(format!("`variants` must be an object, found {}", kind_of(other))),
        };
        v.updated = match opt_str(map, "updated")? {
            None => None,
            Some(s) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map_err(|e| format!("`updated` is not an RFC 3339 time ({e}): {s}"))?
                    .with_timezone(&Utc),
            ),
        };
        Ok(v)
    }
}

impl serde::Serialize for BlobValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for BlobValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        BlobValue::from_json(&json).map_err(serde::de::Error::custom)
    }
}

/// Custom metadata without the protocol's `sea-gcp-` tags.
pub(crate) fn user_metadata(all: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.iter().filter(|(k, _)| !k.starts_with(PROTOCOL_METADATA_PREFIX)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn opt_int(map: &Map<String, Json>, key: &str) -> std::result::Result<Option<i64>, String> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => {
            s.parse::<i64>().map(Some).map_err(|_| format!("`{key}` must be a decimal integer string, found {s:?}"))
        }
        Some(Json::Number(n)) => n.as_i64().map(Some).ok_or_else(|| format!("`{key}` must be an integer, found {n}")),
        Some(other) => Err(format!("`{key}` must be a string of digits, found {}", kind_of(other))),
    }
}

fn opt_str(map: &Map<String, Json>, key: &str) -> std::result::Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{key}` must be a string, found {}", kind_of(other))),
    }
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The start of a bad value, for error messages.
pub(crate) fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_name_is_the_uploaded_name_else_the_last_segment() {
        let mut v = BlobValue::uncached("reports/2026/q3.pdf");
        assert_eq!(v.download_name(), "q3.pdf");
        v.original_name = Some("Q3 report.pdf".into());
        assert_eq!(v.download_name(), "Q3 report.pdf");
    }

    fn full() -> BlobValue {
        let mut v = BlobValue::uncached("reports/q3.pdf");
        v.generation = Some(1764201600123456);
        v.metageneration = Some(1);
        v.size = Some(482113);
        v.content_type = Some("application/pdf".into());
        v.crc32c = Some("n8VbAQ==".into());
        v.md5 = Some("XrY7u+Ae7tCTyyK7j1rNww==".into());
        v.original_name = Some("Q3 report.pdf".into());
        v.metadata.insert("reviewed".into(), "yes".into());
        v.updated = Some("2026-11-27T05:00:00Z".parse().unwrap());
        v
    }

    #[test]
    fn round_trips_the_documented_shape() {
        let v = full();
        let j = v.to_json();
        assert_eq!(j["v"], 1);
        assert_eq!(j["generation"], "1764201600123456");
        assert_eq!(j["metageneration"], "1");
        assert_eq!(j["size"], 482113);
        assert_eq!(j["updated"], "2026-11-27T05:00:00Z");
        assert_eq!(BlobValue::from_json(&j).unwrap(), v);
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<BlobValue>(&text).unwrap(), v);
    }

    #[test]
    fn reads_legacy_path() {
        let v = BlobValue::from_text(r#"{"path": "a/b.txt"}"#).unwrap();
        assert_eq!(v.name, "a/b.txt");
        assert!(v.legacy);
        assert!(!v.is_cached());
        assert_eq!(v.size, None);
    }

    #[test]
    fn refuses_garbage_with_reasons() {
        let cases = [
            ("not json", "not JSON"),
            ("[1,2]", "expected a JSON object"),
            (r#"{"v": 2, "name": "x"}"#, "unknown blob value version 2"),
            (r#"{"v": 1}"#, "missing `name`"),
            (r#"{"v": 1, "name": 5}"#, "`name` must be a string"),
            (r#"{"v": 1, "name": "x", "size": "big"}"#, "`size` must be a number"),
            (r#"{"v": 1, "name": "x", "generation": "12a"}"#, "`generation` must be a decimal"),
            (r#"{"v": 1, "name": "x", "colour": "red"}"#, "unknown key `colour`"),
            (r#"{"name": "x"}"#, "neither a versioned"),
            (r#"{"path": 3}"#, "legacy `path` must be a string"),
        ];
        for (text, want) in cases {
            let err = BlobValue::from_text(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn protocol_tags_stay_out_of_the_cache() {
        let mut meta = ObjectMeta { name: "a".into(), generation: 7, metageneration: 1, ..Default::default() };
        meta.metadata.insert("sea-gcp-intent".into(), "x".into());
        meta.metadata.insert("k".into(), "v".into());
        let v = BlobValue::from_meta(&meta, None);
        assert_eq!(v.metadata.len(), 1);
        assert_eq!(v.metadata["k"], "v");
    }
}
