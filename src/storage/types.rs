//! Value types shared by every [`Store`](super::Store) backend: object metadata, options and results.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::Method;
use serde::{Deserialize, Serialize};

pub use crate::config::ObjectParameters;

/// Metadata of one object generation, as GCS reports it (`objects.get`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ObjectMeta {
    /// Object name relative to the store's `location`.
    pub name: String,
    /// Size in bytes (of the stored, possibly gzip-encoded, bytes).
    pub size: u64,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding` (`gzip` when the store compressed it).
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// CRC32C of the stored bytes, base64 of the big-endian value (GCS's format).
    pub crc32c: Option<String>,
    /// MD5 of the stored bytes, base64. `None` for composite objects.
    pub md5: Option<String>,
    /// Generation: changes on every content write. Never 0 for a live object.
    pub generation: i64,
    /// Metageneration: starts at 1, increments on every metadata patch of this generation. `0` means
    /// unknown (a response that did not report it, as some emulators do): use
    /// `ObjectMeta::known_metageneration` rather than sending `0` as a precondition.
    pub metageneration: i64,
    /// Storage class (`STANDARD`, `NEARLINE`, ...), when known.
    pub storage_class: Option<String>,
    /// Custom time (`customTime`), when set.
    pub custom_time: Option<DateTime<Utc>>,
    /// User metadata (`x-goog-meta-*`).
    pub metadata: BTreeMap<String, String>,
    /// Creation time of this generation.
    pub created: Option<DateTime<Utc>>,
    /// Last metadata or content update.
    pub updated: Option<DateTime<Utc>>,
}

impl ObjectMeta {
    /// The metageneration when the backend reported one (GCS metagenerations start at 1), `None` when
    /// it is unknown. Preconditions built from a response must use this: an unknown metageneration is
    /// no guard, and a made-up one would fail or, worse, pass by accident.
    pub(crate) fn known_metageneration(&self) -> Option<i64> {
        (self.metageneration > 0).then_some(self.metageneration)
    }
}

/// GCS request preconditions. The memory and local stores enforce them exactly as GCS does:
/// a mismatch is [`Error::Precondition`](crate::Error::Precondition) (HTTP 412), and
/// `if_generation_match = Some(0)` means "only if no live object exists" (create-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Preconditions {
    /// Succeed only if the live generation equals this (0: only if there is no live object).
    pub if_generation_match: Option<i64>,
    /// Succeed only if the live generation differs from this (0: only if a live object exists).
    pub if_generation_not_match: Option<i64>,
    /// Succeed only if the live metageneration equals this.
    pub if_metageneration_match: Option<i64>,
    /// Succeed only if the live metageneration differs from this.
    pub if_metageneration_not_match: Option<i64>,
}

impl Preconditions {
    /// Create-only: `if_generation_match = 0`.
    pub fn create_only() -> Self {
        Self { if_generation_match: Some(0), ..Self::default() }
    }

    /// Only if the live generation is `generation`.
    pub fn generation(generation: i64) -> Self {
        Self { if_generation_match: Some(generation), ..Self::default() }
    }

    /// True when no condition is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Check against the live object's `(generation, metageneration)`, or `None` when there is none.
    /// Returns a description of the first failed condition. This is GCS's exact rule set.
    pub fn check(&self, live: Option<(i64, i64)>) -> Result<(), String> {
        let generation = live.map(|l| l.0).unwrap_or(0);
        if let Some(want) = self.if_generation_match
            && want != generation
        {
            return Err(if want == 0 {
                format!("ifGenerationMatch=0 (create-only) but the object exists at generation {generation}")
            } else {
                format!("ifGenerationMatch={want} but the live generation is {generation}")
            });
        }
        if let Some(not) = self.if_generation_not_match
            && not == generation
        {
            return Err(format!("ifGenerationNotMatch={not} but the live generation is {generation}"));
        }
        if self.if_metageneration_match.is_some() || self.if_metageneration_not_match.is_some() {
            let Some((_, meta)) = live else {
                return Err("a metageneration precondition was given but the object does not exist".into());
            };
            if let Some(want) = self.if_metageneration_match
                && want != meta
            {
                return Err(format!("ifMetagenerationMatch={want} but the live metageneration is {meta}"));
            }
            if let Some(not) = self.if_metageneration_not_match
                && not == meta
            {
                return Err(format!("ifMetagenerationNotMatch={not} but the live metageneration is {meta}"));
            }
        }
        Ok(())
    }
}

/// Options for [`Store::put`](super::Store::put).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PutOptions {
    /// Per-call object parameters, merged over the store's `object_parameters`.
    pub params: ObjectParameters,
    /// Preconditions on the destination (create-only: `if_generation_match = Some(0)`).
    pub preconditions: Preconditions,
    /// Override the store's `gzip` setting for this write.
    pub gzip: Option<bool>,
}

impl PutOptions {
    /// Create-only write: fails with a precondition error when the object exists.
    pub fn create_only() -> Self {
        Self { preconditions: Preconditions::create_only(), ..Self::default() }
    }

    /// Set the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.params.content_type = Some(content_type.into());
        self
    }

    /// Set the preconditions.
    pub(crate) fn with_preconditions(mut self, preconditions: Preconditions) -> Self {
        self.preconditions = preconditions;
        self
    }

    /// Set the per-call object parameters.
    pub fn with_params(mut self, params: ObjectParameters) -> Self {
        self.params = params;
        self
    }
}

/// A byte range to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..end` (end exclusive).
    Bounded {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// From `start` to the end of the object.
    From(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolve against an object of `size` bytes into `start..end`, or `None` if unsatisfiable
    /// (GCS's 416 rules: a start at or beyond the end is unsatisfiable, an end past it is clamped).
    pub(crate) fn resolve(&self, size: u64) -> Option<std::ops::Range<u64>> {
        match *self {
            ByteRange::Bounded { start, end } if start < end && start < size => Some(start..end.min(size)),
            ByteRange::From(start) if start < size => Some(start..size),
            ByteRange::Suffix(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
            _ => None,
        }
    }

    /// The HTTP `Range` header value.
    pub(crate) fn to_header(self) -> String {
        match self {
            ByteRange::Bounded { start, end } => {
                format!("bytes={}-{}", start, end.saturating_sub(1))
            }
            ByteRange::From(start) => format!("bytes={start}-"),
            ByteRange::Suffix(n) => format!("bytes=-{n}"),
        }
    }
}

impl std::fmt::Display for ByteRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_header())
    }
}

impl From<std::ops::Range<u64>> for ByteRange {
    fn from(r: std::ops::Range<u64>) -> Self {
        ByteRange::Bounded { start: r.start, end: r.end }
    }
}

/// Options for [`Store::get`](super::Store::get) and [`Store::head`](super::Store::head).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct GetOptions {
    /// Read only this range (of the stored bytes; ranges are not combined with gzip decoding).
    pub range: Option<ByteRange>,
    /// Read this generation instead of the live one (versioned buckets, or the live generation pinned).
    pub generation: Option<i64>,
    /// Preconditions on the live object.
    pub preconditions: Preconditions,
    /// Return the stored bytes as they are, without undoing the store's gzip.
    pub raw: bool,
}

impl GetOptions {
    /// Read a range.
    pub fn with_range(mut self, range: impl Into<ByteRange>) -> Self {
        self.range = Some(range.into());
        self
    }

    /// Pin a generation.
    pub fn with_generation(mut self, generation: i64) -> Self {
        self.generation = Some(generation);
        self
    }
}

/// Options for [`Store::delete`](super::Store::delete).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DeleteOptions {
    /// Delete this (possibly noncurrent) generation instead of the live one.
    pub generation: Option<i64>,
    /// Preconditions on the live object (e.g. only delete the generation we wrote).
    pub preconditions: Preconditions,
}

impl DeleteOptions {
    /// Delete only if the live generation is `generation`.
    pub fn if_generation(generation: i64) -> Self {
        Self { preconditions: Preconditions::generation(generation), ..Self::default() }
    }
}

/// Options for [`Store::copy`](super::Store::copy).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CopyOptions {
    /// Copy this generation of the source.
    pub source_generation: Option<i64>,
    /// Copy only if the source's live generation is this (`ifSourceGenerationMatch`).
    pub if_source_generation_match: Option<i64>,
    /// Copy only if the source's live metageneration is this (`ifSourceMetagenerationMatch`).
    pub if_source_metageneration_match: Option<i64>,
    /// Preconditions on the destination (`if_generation_match = Some(0)`: must not exist).
    pub destination: Preconditions,
    /// Destination metadata. `None` keeps the source's metadata; `Some` replaces content type,
    /// cache control, etc. with these values where set, and merges custom metadata over the source's.
    pub params: Option<ObjectParameters>,
}

/// Options for [`Store::list`](super::Store::list).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListOptions {
    /// Only names starting with this (relative to the store's location).
    pub prefix: Option<String>,
    /// Group names by this delimiter (usually `/`) into [`ListPage::prefixes`].
    pub delimiter: Option<String>,
    /// Continue after a previous page.
    pub page_token: Option<String>,
    /// Page size (GCS caps it at 1,000; the default is 1,000).
    pub max_results: Option<u32>,
    /// Include noncurrent generations (versioned buckets).
    pub versions: bool,
    /// Only names at or after this one (GCS's `startOffset`; relative to the store's location).
    pub start_offset: Option<String>,
    /// Only names before this one (GCS's `endOffset`, exclusive; relative to the store's location).
    pub end_offset: Option<String>,
}

impl ListOptions {
    /// List under `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self { prefix: Some(prefix.into()), ..Self::default() }
    }

    /// Group by `/`.
    pub fn with_delimiter(mut self) -> Self {
        self.delimiter = Some("/".into());
        self
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListPage {
    /// Objects on this page, in name order (then generation order when listing versions).
    pub objects: Vec<ObjectMeta>,
    /// "Directories" (common prefixes ending in the delimiter), relative to the store's location.
    pub prefixes: Vec<String>,
    /// Token for the next page, if there is one.
    pub next_page_token: Option<String>,
}

/// A metadata patch (`objects.patch`). Only fields set to `Some` change. In `metadata`, a key mapped to
/// `None` is removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataPatch {
    /// New `Content-Type`.
    pub content_type: Option<String>,
    /// New `Cache-Control`.
    pub cache_control: Option<String>,
    /// New `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// New `Content-Language`.
    pub content_language: Option<String>,
    /// New `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// New custom time.
    pub custom_time: Option<DateTime<Utc>>,
    /// Metadata keys to set (`Some`) or remove (`None`).
    pub metadata: BTreeMap<String, Option<String>>,
    /// Preconditions (typically `if_metageneration_match`).
    pub preconditions: Preconditions,
    /// The caller declares that applying this patch twice is harmless: it sets constant values of keys
    /// only it writes (the save protocol's claim). A transient failure is then retried under
    /// `if_generation_match` too, not only under `if_metageneration_match` (Google's rule for patches,
    /// which protects other writers' keys). See `crate::storage::retry`.
    pub repeatable: bool,
}

impl MetadataPatch {
    /// Apply to `meta` (the caller bumps metageneration and `updated`).
    pub(crate) fn apply_to(&self, meta: &mut ObjectMeta) {
        fn set(slot: &mut Option<String>, v: &Option<String>) {
            if let Some(v) = v {
                *slot = if v.is_empty() { None } else { Some(v.clone()) };
            }
        }
        set(&mut meta.content_type, &self.content_type);
        set(&mut meta.cache_control, &self.cache_control);
        set(&mut meta.content_disposition, &self.content_disposition);
        set(&mut meta.content_language, &self.content_language);
        set(&mut meta.content_encoding, &self.content_encoding);
        if let Some(t) = self.custom_time {
            meta.custom_time = Some(t);
        }
        for (k, v) in &self.metadata {
            match v {
                Some(v) => meta.metadata.insert(k.clone(), v.clone()),
                None => meta.metadata.remove(k),
            };
        }
    }
}

/// `attachment; filename="<ascii>"; filename*=UTF-8''<percent-encoded>` (RFC 6266 and RFC 8187).
pub(crate) fn attachment_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' { c } else { '_' })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", crate::encoding::component_iter(filename))
}

/// Serde for [`http::Method`] as its upper-case name (`"PUT"`), as in the upload router's JSON.
pub(crate) mod method_serde {
    use http::Method;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(method: &Method, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(method.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
        let text = String::deserialize(d)?;
        Method::from_bytes(text.to_ascii_uppercase().as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Options for [`Store::url`](super::Store::url).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UrlOptions {
    /// Lifetime of a signed URL; defaults to the store's `expiration` (1 day). At most 7 days.
    pub expires_in: Option<Duration>,
    /// Method the URL is for (GET by default).
    pub method: Method,
    /// `response-content-disposition` to force (e.g. `attachment; filename="a.pdf"`).
    pub response_content_disposition: Option<String>,
    /// `response-content-type` to force.
    pub response_content_type: Option<String>,
    /// Pin the URL to this generation.
    pub generation: Option<i64>,
    /// Sign even when the store would give a public URL.
    pub force_signed: bool,
}

/// A request the caller must send exactly as described: OpenDAL's "presigned request".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignedRequest {
    /// HTTP method.
    #[serde(with = "method_serde")]
    pub method: Method,
    /// Full URL.
    pub url: String,
    /// Headers the request must carry (they are part of the signature).
    pub headers: BTreeMap<String, String>,
}

/// Options for [`Store::signed_upload`](super::Store::signed_upload).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignedUploadOptions {
    /// The content type the upload must carry.
    pub content_type: String,
    /// Largest accepted body (`x-goog-content-length-range: 0,<max>`).
    pub max_size: u64,
    /// Refuse to overwrite (`x-goog-if-generation-match: 0`). On by default.
    pub create_only: bool,
    /// Lifetime of the URL; defaults to 1 hour.
    pub expires_in: Duration,
    /// Start a resumable session (server-side) instead of a single signed PUT.
    pub resumable: bool,
    /// The browser's `Origin`, required for a resumable session used from a browser (CORS).
    pub origin: Option<String>,
    /// Size of the upload, when known (resumable sessions).
    pub size: Option<u64>,
    /// Custom metadata the object gets (resumable sessions only; a signed PUT binds none).
    pub metadata: BTreeMap<String, String>,
}

impl Default for SignedUploadOptions {
    fn default() -> Self {
        Self {
            content_type: "application/octet-stream".into(),
            max_size: 5 * 1024 * 1024 * 1024 * 1024,
            create_only: true,
            expires_in: Duration::from_secs(3600),
            resumable: false,
            origin: None,
            size: None,
            metadata: BTreeMap::new(),
        }
    }
}

impl UrlOptions {
    /// Default options: GET, the store's `expiration`, no forced response headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lifetime of the signed URL (at most 7 days).
    pub fn with_expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }

    /// The method the URL is for.
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Force `response-content-disposition` (e.g. `attachment; filename="a.pdf"`).
    pub(crate) fn with_response_content_disposition(mut self, disposition: impl Into<String>) -> Self {
        self.response_content_disposition = Some(disposition.into());
        self
    }

    /// Make the URL download as a file named `filename`: `attachment` with an ASCII `filename` (quotes,
    /// backslashes and control characters replaced by `_`) and the exact name as RFC 8187 `filename*`.
    pub fn with_attachment(self, filename: &str) -> Self {
        self.with_response_content_disposition(attachment_disposition(filename))
    }

    /// Force `response-content-type`.
    pub fn with_response_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.response_content_type = Some(content_type.into());
        self
    }

    /// Pin the URL to `generation`.
    pub fn with_generation(mut self, generation: i64) -> Self {
        self.generation = Some(generation);
        self
    }

    /// Sign even when the store would give a public URL.
    pub(crate) fn with_force_signed(mut self, force: bool) -> Self {
        self.force_signed = force;
        self
    }
}

impl SignedUploadOptions {
    /// Default options: `application/octet-stream`, create-only, 1 hour, a single PUT.
    pub fn new() -> Self {
        Self::default()
    }

    /// The content type the upload must carry.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Largest accepted body, in bytes.
    pub fn with_max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// Refuse to overwrite an existing object (on by default).
    pub fn with_create_only(mut self, create_only: bool) -> Self {
        self.create_only = create_only;
        self
    }

    /// Lifetime of the URL.
    pub fn with_expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = lifetime;
        self
    }

    /// Start a resumable session instead of a single signed PUT.
    pub fn with_resumable(mut self, resumable: bool) -> Self {
        self.resumable = resumable;
        self
    }

    /// The browser's `Origin` (resumable sessions used from a browser).
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// The upload's size, when known.
    pub fn with_size(mut self, bytes: u64) -> Self {
        self.size = Some(bytes);
        self
    }

    /// Add custom metadata (resumable sessions only).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_keep_the_exact_name_in_filename_star_and_a_safe_ascii_one() {
        let d = UrlOptions::new().with_attachment("Q3 \"report\"\\ü.pdf").response_content_disposition.unwrap();
        assert_eq!(d, "attachment; filename=\"Q3 _report___.pdf\"; filename*=UTF-8''Q3%20%22report%22%5C%C3%BC.pdf");
        let d = attachment_disposition("a\r\nSet-Cookie: x=1");
        assert!(!d.contains('\r') && !d.contains('\n'), "{d}");
    }
}
