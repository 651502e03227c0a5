//! [`ObjectParameters`]: the object attributes a store applies to every write.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Object parameters (django-gcp's `object_parameters`): applied to every write, merged with per-call
/// values. Field names match django-gcp / `google.cloud.storage.Blob` attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectParameters {
    /// Predefined ACL (`publicRead`, `private`, `projectPrivate`, ...). Overrides `default_acl`.
    pub acl: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`. Set by the store to `gzip` when it compresses.
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Content-Type`. Guessed from the name with `mime_guess` when unset.
    pub content_type: Option<String>,
    /// User metadata. Merged key by key: a per-call key wins over the store's.
    pub metadata: BTreeMap<String, String>,
    /// Storage class (`STANDARD`, `NEARLINE`, `COLDLINE`, `ARCHIVE`).
    pub storage_class: Option<String>,
    /// Custom time (RFC 3339).
    pub custom_time: Option<DateTime<Utc>>,
}

impl ObjectParameters {
    /// `self` with every value set in `over` taking precedence; metadata merged key by key
    /// (django-gcp replaces the whole metadata map and so loses the store-level keys; we do not).
    pub(crate) fn merged_with(&self, over: &ObjectParameters) -> ObjectParameters {
        let mut metadata = self.metadata.clone();
        metadata.extend(over.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        ObjectParameters {
            acl: over.acl.clone().or_else(|| self.acl.clone()),
            cache_control: over.cache_control.clone().or_else(|| self.cache_control.clone()),
            content_disposition: over.content_disposition.clone().or_else(|| self.content_disposition.clone()),
            content_encoding: over.content_encoding.clone().or_else(|| self.content_encoding.clone()),
            content_language: over.content_language.clone().or_else(|| self.content_language.clone()),
            content_type: over.content_type.clone().or_else(|| self.content_type.clone()),
            metadata,
            storage_class: over.storage_class.clone().or_else(|| self.storage_class.clone()),
            custom_time: over.custom_time.or(self.custom_time),
        }
    }
}
