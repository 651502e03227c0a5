//! Conversions between `gcloud-storage`'s types and ours: objects to [`ObjectMeta`], object parameters to
//! upload metadata, and HTTP / client errors to [`crate::Error`].
//!
//! Status mapping: 404 → [`Error::NotFound`], 412 → [`Error::Precondition`], 304 →
//! [`Error::NotModified`], 416 → [`Error::InvalidRange`]; 408, 429 and 5xx, and failures without a
//! response (connection refused, reset, timeouts) → [`Error::Backend`] with `retryable: true`; every
//! other status → [`Error::Backend`] with `retryable: false`.

use chrono::{DateTime, Utc};
use gcloud_storage::http::object_access_controls::PredefinedObjectAcl;
use gcloud_storage::http::objects::Object;

use crate::Error;
use crate::storage::naming::Keyspace;
use crate::storage::{ObjectMeta, ObjectParameters};

/// Which store and object an error is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// Store key.
    pub store: &'a str,
    /// Object name relative to the location (or a bucket-level description).
    pub name: &'a str,
}

impl Ctx<'_> {
    /// The error for an HTTP `status` answered with `message`.
    pub(crate) fn status(&self, status: u16, message: String) -> Error {
        match status {
            404 => Error::NotFound { store: self.store.to_string(), name: self.name.to_string() },
            412 => Error::Precondition {
                store: self.store.to_string(),
                name: self.name.to_string(),
                message: if message.is_empty() { "HTTP 412 Precondition Failed".into() } else { message },
            },
            304 => Error::NotModified { name: self.name.to_string() },
            416 => Error::InvalidRange { name: self.name.to_string(), range: message, size: 0 },
            _ => Error::Backend {
                backend: "gcs",
                store: self.store.to_string(),
                status: Some(status),
                retryable: is_retryable_status(status),
                source: format!("`{}`: {}", self.name, if message.is_empty() { "no details" } else { &message }).into(),
            },
        }
    }

    /// An error with no HTTP response (connection, timeout, body, decoding).
    fn transport(&self, retryable: bool, source: crate::BoxError) -> Error {
        Error::Backend { backend: "gcs", store: self.store.to_string(), status: None, retryable, source }
    }

    /// Convert a `reqwest` error. A failure without a response keeps its whole cause chain in the
    /// message (`error sending request for url (...): client error (SendRequest): connection closed
    /// before message completed`), not only reqwest's outermost line.
    pub(crate) fn reqwest(&self, err: reqwest::Error) -> Error {
        if let Some(status) = err.status() {
            return self.status(status.as_u16(), err.to_string());
        }
        let retryable = err.is_connect() || err.is_timeout() || err.is_request() || err.is_body();
        self.transport(retryable, Box::new(Chained::new(Box::new(err))))
    }

    /// Convert a `reqwest-middleware` error.
    pub(crate) fn middleware(&self, err: reqwest_middleware::Error) -> Error {
        match err {
            reqwest_middleware::Error::Reqwest(e) => self.reqwest(e),
            reqwest_middleware::Error::Middleware(e) => self.transport(false, e.into()),
        }
    }

    /// Convert a `gcloud-storage` error.
    pub(crate) fn gcloud(&self, err: gcloud_storage::http::Error) -> Error {
        use gcloud_storage::http::Error as E;
        match err {
            E::Response(r) => self.status(r.code, r.message),
            E::HttpClient(e) => self.reqwest(e),
            E::HttpMiddleware(e) => self.transport(false, e.into()),
            E::TokenSource(e) => super::client::token_error(self.store, &*e),
            E::RawResponse(e, detail) => match e.status() {
                Some(s) => self.status(s.as_u16(), detail),
                None => self.reqwest(e),
            },
            other => self.transport(false, Box::new(other)),
        }
    }

    /// Turn a non-success response into an error (reading GCS's JSON error message when present).
    pub(crate) async fn check(&self, response: reqwest::Response) -> crate::Result<reqwest::Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(500).collect());
        Err(self.status(status.as_u16(), message))
    }
}

/// An error whose message is its whole cause chain, joined by `: ` (each cause once). Its `source()`
/// is the wrapped error's, so the chain stays walkable.
#[derive(Debug)]
pub(crate) struct Chained {
    text: String,
    inner: crate::BoxError,
}

impl Chained {
    pub(crate) fn new(inner: crate::BoxError) -> Self {
        let mut text = inner.to_string();
        let mut cause = inner.source();
        while let Some(c) = cause {
            let line = c.to_string();
            if !text.contains(&line) {
                text.push_str(": ");
                text.push_str(&line);
            }
            cause = c.source();
        }
        Self { text, inner }
    }
}

impl std::fmt::Display for Chained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Chained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// 408, 429 and 5xx may succeed when repeated.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

pub(crate) fn to_chrono(t: time::OffsetDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())
}

pub(crate) fn to_time(t: DateTime<Utc>) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.timestamp_nanos_opt()? as i128).ok()
}

/// GCS object resource → [`ObjectMeta`] with the name relative to the store's location.
pub(crate) fn to_meta(keyspace: &Keyspace, object: Object) -> ObjectMeta {
    let none_if_empty = |s: Option<String>| s.filter(|v| !v.is_empty());
    ObjectMeta {
        name: keyspace.relative(&object.name).to_string(),
        size: object.size.max(0) as u64,
        content_type: none_if_empty(object.content_type),
        content_encoding: none_if_empty(object.content_encoding),
        content_language: none_if_empty(object.content_language),
        cache_control: none_if_empty(object.cache_control),
        content_disposition: none_if_empty(object.content_disposition),
        crc32c: none_if_empty(object.crc32c),
        md5: none_if_empty(object.md5_hash),
        generation: object.generation,
        metageneration: object.metageneration.max(0),
        storage_class: none_if_empty(object.storage_class),
        custom_time: object.custom_time.and_then(to_chrono),
        metadata: object.metadata.unwrap_or_default().into_iter().collect(),
        created: object.time_created.and_then(to_chrono),
        updated: object.updated.and_then(to_chrono),
    }
}

/// A JSON object resource (from a request sent directly) → [`ObjectMeta`]. Lenient: numbers may be
/// strings or numbers, and fields the API may omit are optional. A missing or unreadable
/// `metageneration` is left unknown (`0`, see [`ObjectMeta::known_metageneration`]): fake-gcs-server
/// omits it from patch responses, and preconditions must not be built from a made-up value.
pub(crate) fn json_to_meta(keyspace: &Keyspace, v: &serde_json::Value) -> ObjectMeta {
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
    let int = |k: &str| match v.get(k) {
        Some(serde_json::Value::String(s)) => s.parse::<i64>().unwrap_or(0),
        Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    };
    // Year-1 timestamps are Go's zero time, which some emulators send for "unset".
    let when = |k: &str| {
        text(k)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| t.timestamp() > 0)
    };
    let metadata = v
        .get("metadata")
        .and_then(|m| m.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default();
    ObjectMeta {
        name: keyspace.relative(&text("name").unwrap_or_default()).to_string(),
        size: int("size").max(0) as u64,
        content_type: text("contentType"),
        content_encoding: text("contentEncoding"),
        content_language: text("contentLanguage"),
        cache_control: text("cacheControl"),
        content_disposition: text("contentDisposition"),
        crc32c: text("crc32c"),
        md5: text("md5Hash"),
        generation: int("generation"),
        metageneration: int("metageneration").max(0),
        storage_class: text("storageClass"),
        custom_time: when("customTime"),
        metadata,
        created: when("timeCreated"),
        updated: when("updated"),
    }
}

/// Read a JSON object resource from a response.
pub(crate) async fn read_meta(
    ctx: &Ctx<'_>,
    keyspace: &Keyspace,
    response: reqwest::Response,
) -> crate::Result<ObjectMeta> {
    let value: serde_json::Value = response.json().await.map_err(|e| ctx.reqwest(e))?;
    Ok(json_to_meta(keyspace, &value))
}

/// Object parameters → the object resource sent with an upload or a copy (ACL excluded: it is a query
/// parameter, see [`predefined_acl`]).
pub(crate) fn to_object(key: &str, params: &ObjectParameters) -> Object {
    Object {
        name: key.to_string(),
        content_type: params.content_type.clone(),
        content_encoding: params.content_encoding.clone(),
        content_language: params.content_language.clone(),
        cache_control: params.cache_control.clone(),
        content_disposition: params.content_disposition.clone(),
        metadata: (!params.metadata.is_empty())
            .then(|| params.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        storage_class: params.storage_class.clone(),
        custom_time: params.custom_time.and_then(to_time),
        ..Default::default()
    }
}

/// A predefined ACL name (validated by `StoreConfig::validate`) as `gcloud-storage`'s enum.
pub(crate) fn predefined_acl(acl: Option<&str>) -> Option<PredefinedObjectAcl> {
    Some(match acl? {
        "authenticatedRead" => PredefinedObjectAcl::AuthenticatedRead,
        "bucketOwnerFullControl" => PredefinedObjectAcl::BucketOwnerFullControl,
        "bucketOwnerRead" => PredefinedObjectAcl::BucketOwnerRead,
        "private" => PredefinedObjectAcl::Private,
        "projectPrivate" => PredefinedObjectAcl::ProjectPrivate,
        "publicRead" => PredefinedObjectAcl::PublicRead,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn statuses() {
        let ctx = Ctx { store: "media", name: "a.txt" };
        assert!(ctx.status(404, String::new()).is_not_found());
        assert!(ctx.status(412, "ifGenerationMatch".into()).is_precondition());
        assert!(matches!(ctx.status(304, String::new()), Error::NotModified { .. }));
        assert!(matches!(ctx.status(416, String::new()), Error::InvalidRange { .. }));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(ctx.status(s, String::new()).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 409] {
            assert!(!ctx.status(s, String::new()).is_retryable(), "{s}");
        }
    }

    #[test]
    fn chained_errors_keep_every_cause_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request for url (http://127.0.0.1:1/x)")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let chained = Chained::new(Box::new(Outer(inner)));
        assert_eq!(chained.to_string(), "error sending request for url (http://127.0.0.1:1/x): Connection refused");
        assert!(std::error::Error::source(&chained).is_some(), "the chain stays walkable");
    }

    #[test]
    fn objects_round_trip() {
        let keyspace = Keyspace::new("media", "uploads").unwrap();
        let now = DateTime::from_timestamp(1_764_201_600, 123_000_000).unwrap();
        let params = ObjectParameters {
            content_type: Some("text/plain".into()),
            cache_control: Some("no-cache".into()),
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
            custom_time: Some(now),
            ..Default::default()
        };
        let mut object = to_object("uploads/a.txt", &params);
        object.generation = 5;
        object.metageneration = 1;
        object.size = 3;
        let meta = to_meta(&keyspace, object);
        assert_eq!(meta.name, "a.txt");
        assert_eq!(meta.custom_time, Some(now));
        assert_eq!(meta.metadata["k"], "v");
        assert_eq!((meta.generation, meta.size), (5, 3));
        let json = serde_json::json!({
            "name": "uploads/b.txt", "size": "42", "generation": "17", "metageneration": 2,
            "contentType": "text/plain", "metadata": {"a": "1"}, "updated": "2026-11-27T05:00:00.5Z"
        });
        let meta = json_to_meta(&keyspace, &json);
        assert_eq!((meta.name.as_str(), meta.size, meta.generation, meta.metageneration), ("b.txt", 42, 17, 2));
        assert_eq!(meta.metadata["a"], "1");
        assert!(meta.updated.is_some() && meta.content_type.is_some() && meta.cache_control.is_none());
        assert_eq!(meta.known_metageneration(), Some(2));
        // Absent means unknown (fake-gcs-server's patch response): never a made-up value.
        let json = serde_json::json!({"name": "uploads/c.txt", "size": "1", "generation": "3"});
        let meta = json_to_meta(&keyspace, &json);
        assert_eq!((meta.generation, meta.known_metageneration()), (3, None));
        assert_eq!(predefined_acl(Some("publicRead")), Some(PredefinedObjectAcl::PublicRead));
        assert_eq!(predefined_acl(None), None);
    }
}
