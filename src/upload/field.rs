//! The registry of fields that accept direct uploads, and each field's limits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::storage::{Store, media_type};
use crate::{Error, Result};

/// Default ingress prefix: temp uploads live under it until promoted (give it a lifecycle rule).
pub const DEFAULT_INGRESS_PREFIX: &str = "_tmp/";

/// Default size above which the browser gets a resumable session instead of one signed PUT (16 MiB).
pub(crate) const DEFAULT_RESUMABLE_THRESHOLD: u64 = 16 * 1024 * 1024;

/// Default chunk size of resumable uploads (8 MiB, a multiple of GCS's 256 KiB granularity).
pub(crate) const DEFAULT_CHUNK_SIZE: u64 = 8 * 1024 * 1024;

/// One field (`entity.column`) that accepts direct uploads.
#[derive(Debug, Clone)]
pub struct UploadField {
    /// `entity.column`.
    pub id: String,
    /// The store uploads go to (temp objects and, after promotion, the destination).
    pub store: Arc<dyn Store>,
    /// Largest accepted file, in bytes.
    pub max_size: u64,
    /// Accepted content types; `image/*` and `*/*` wildcards allowed. Empty: anything.
    pub accept: Vec<String>,
    /// Prefix of temp names, relative to the store's location; ends with `/`.
    pub ingress_prefix: String,
    /// Files larger than this get a resumable session.
    pub resumable_threshold: u64,
    /// Chunk size the widget uses for resumable sessions (multiple of 256 KiB).
    pub chunk_size: u64,
    /// How long a ticket (and its upload URL) stays valid.
    pub ticket_ttl: Duration,
    /// Whether the field may be cleared (a nullable column).
    pub blank: bool,
}

impl UploadField {
    /// A field `entity.column` uploading to `store`, with a 10 MiB limit and any content type.
    pub fn new(id: impl Into<String>, store: Arc<dyn Store>) -> Self {
        Self {
            id: id.into(),
            store,
            max_size: 10 * 1024 * 1024,
            accept: Vec::new(),
            ingress_prefix: DEFAULT_INGRESS_PREFIX.into(),
            resumable_threshold: DEFAULT_RESUMABLE_THRESHOLD,
            chunk_size: DEFAULT_CHUNK_SIZE,
            ticket_ttl: Duration::from_secs(3600),
            blank: false,
        }
    }

    /// The upload field of a blob field `spec` (same id `table.column`, limits, accepted types, ingress
    /// prefix and blankness), uploading to `store` (the store `spec` names). Without a size limit on the
    /// spec, GCS's 5 TiB object limit applies.
    pub fn from_spec<E: sea_orm::EntityTrait>(spec: &crate::field::BlobFieldSpec<E>, store: Arc<dyn Store>) -> Self {
        let mut field = Self::new(spec.field_name(), store)
            .max_size(spec.size_limit().unwrap_or(5 * 1024 * 1024 * 1024 * 1024))
            .accept(spec.accepted().iter().cloned())
            .blank(spec.is_blankable());
        field.ingress_prefix = spec.ingress().to_string();
        field
    }

    /// Set the size limit.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// Accept these content types (`image/*` wildcards allowed).
    pub fn accept<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.accept = types.into_iter().map(|t| t.into().trim().to_ascii_lowercase()).collect();
        self
    }

    /// Set the ingress prefix (a trailing `/` is added when missing).
    pub fn ingress_prefix(mut self, prefix: impl Into<String>) -> Self {
        let p = prefix.into();
        self.ingress_prefix = format!("{}/", p.trim_matches('/'));
        self
    }

    /// Set the resumable threshold.
    pub fn resumable_threshold(mut self, bytes: u64) -> Self {
        self.resumable_threshold = bytes;
        self
    }

    /// Set the resumable chunk size (rounded down to a multiple of 256 KiB, at least 256 KiB).
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        let g = crate::config::CHUNK_GRANULARITY;
        self.chunk_size = (bytes / g).max(1) * g;
        self
    }

    /// Set the ticket lifetime.
    pub(crate) fn ticket_ttl(mut self, ttl: Duration) -> Self {
        self.ticket_ttl = ttl;
        self
    }

    /// Allow clearing the field.
    pub fn blank(mut self, blank: bool) -> Self {
        self.blank = blank;
        self
    }

    /// Does this field accept `content_type`? It must parse strictly as one media type
    /// (`MediaType`); its parameters do not count.
    pub fn accepts(&self, content_type: &str) -> bool {
        media_type::accepts(&self.accept, content_type)
    }

    /// The `accept` attribute value for an `<input type=file>`.
    pub(crate) fn accept_attribute(&self) -> String {
        self.accept.join(",")
    }
}

/// Does `content_type` match `pattern` (`type/subtype`, `type/*` or `*/*`)? Case-insensitive;
/// `content_type` must parse strictly as one media type ([`media_type`]); its parameters are ignored.
#[cfg(test)]
pub(crate) fn content_type_matches(pattern: &str, content_type: &str) -> bool {
    media_type::MediaType::parse(content_type).is_ok_and(|t| t.matches(pattern))
}

/// The fields that accept direct uploads, by id.
#[derive(Debug, Clone, Default)]
pub struct UploadFields {
    fields: BTreeMap<String, Arc<UploadField>>,
}

impl UploadFields {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `field`. Fails when the id is not `entity.column` or is registered twice.
    pub fn register(mut self, field: UploadField) -> Result<Self> {
        let valid = field.id.split_once('.').is_some_and(|(e, c)| {
            let ok = |s: &str| !s.is_empty() && s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            ok(e) && ok(c)
        });
        if !valid {
            return Err(Error::config(
                None,
                format!("upload field id {:?} must be `entity.column` (ASCII letters, digits, `_`)", field.id),
            ));
        }
        crate::storage::naming::normalize(&field.ingress_prefix).map_err(|e| {
            Error::config(Some(field.store.key().to_string()), format!("ingress prefix of `{}`: {e}", field.id))
        })?;
        if self.fields.contains_key(&field.id) {
            return Err(Error::config(None, format!("upload field `{}` is registered twice", field.id)));
        }
        self.fields.insert(field.id.clone(), Arc::new(field));
        Ok(self)
    }

    /// The field `id`, if registered.
    pub fn get(&self, id: &str) -> Option<&Arc<UploadField>> {
        self.fields.get(id)
    }

    /// Every registered field.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<UploadField>> {
        self.fields.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(content_type_matches("image/*", "image/png"));
        assert!(content_type_matches("IMAGE/PNG", "image/png; x=y"));
        assert!(content_type_matches("*/*", "text/plain"));
        assert!(!content_type_matches("image/*", "text/plain"));
        assert!(!content_type_matches("image/*", "image"));
        assert!(!content_type_matches("image/*", "image/"));
        assert!(!content_type_matches("image/*", "image/png; a=b, text/html"));
    }

    #[test]
    fn registry_checks_ids() {
        let store: Arc<dyn Store> =
            Arc::new(crate::storage::memory::MemoryStore::new("m", crate::StoreConfig::memory()).unwrap());
        let f = |id: &str| UploadField::new(id, store.clone());
        assert!(UploadFields::new().register(f("doc.file")).is_ok());
        assert!(UploadFields::new().register(f("ingress/../x")).is_err());
        assert!(UploadFields::new().register(f("doc")).is_err());
        assert!(UploadFields::new().register(f("doc.file")).unwrap().register(f("doc.file")).is_err());
        assert!(UploadFields::new().register(f("doc.file").ingress_prefix("../x")).is_err());
    }
}
