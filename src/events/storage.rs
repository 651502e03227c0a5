//! Cloud Storage notifications, typed: GCS Pub/Sub notifications (`eventType` attributes, the object
//! resource as JSON data) and Eventarc `google.cloud.storage.object.v1.*` CloudEvents.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cloudevents::{CloudEvent, CloudEventError};
use crate::pubsub::{MessageError, PubSubMessage};

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageEventKind {
    /// A new object (or a new generation of it) was created: `OBJECT_FINALIZE`, `...v1.finalized`.
    Finalize,
    /// The object's metadata changed: `OBJECT_METADATA_UPDATE`, `...v1.metadataUpdated`.
    MetadataUpdate,
    /// The object was deleted (or overwritten: see `overwritten_by_generation`): `OBJECT_DELETE`,
    /// `...v1.deleted`.
    Delete,
    /// The live version became noncurrent on a versioned bucket: `OBJECT_ARCHIVE`, `...v1.archived`.
    Archive,
}

impl StorageEventKind {
    /// From a Pub/Sub notification's `eventType`.
    pub(crate) fn from_notification(event_type: &str) -> Option<Self> {
        Some(match event_type {
            "OBJECT_FINALIZE" => Self::Finalize,
            "OBJECT_METADATA_UPDATE" => Self::MetadataUpdate,
            "OBJECT_DELETE" => Self::Delete,
            "OBJECT_ARCHIVE" => Self::Archive,
            _ => return None,
        })
    }

    /// From an Eventarc CloudEvent `type`.
    pub(crate) fn from_cloud_event_type(event_type: &str) -> Option<Self> {
        Some(match event_type.strip_prefix("google.cloud.storage.object.v1.")? {
            "finalized" => Self::Finalize,
            "metadataUpdated" => Self::MetadataUpdate,
            "deleted" => Self::Delete,
            "archived" => Self::Archive,
            _ => return None,
        })
    }
}

/// Why an event is not a storage notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageEventError {
    /// The Pub/Sub message does not decode.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The CloudEvent does not decode.
    #[error(transparent)]
    CloudEvent(#[from] CloudEventError),
    /// Not a storage event type.
    #[error("not a Cloud Storage object event: {0:?}")]
    NotStorage(String),
    /// A field is missing or malformed.
    #[error("storage notification field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A Cloud Storage object event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageEvent {
    /// What happened.
    pub kind: StorageEventKind,
    /// The bucket.
    pub bucket: String,
    /// The object name (in the bucket, including any store location prefix).
    pub name: String,
    /// The object generation the event is about.
    pub generation: i64,
    /// The metageneration, when the payload carries the object resource.
    pub metageneration: Option<i64>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// Content type.
    pub content_type: Option<String>,
    /// MD5 (base64).
    pub md5: Option<String>,
    /// CRC32C (base64).
    pub crc32c: Option<String>,
    /// Last update time of the object.
    pub updated: Option<DateTime<Utc>>,
    /// Custom metadata.
    pub metadata: BTreeMap<String, String>,
    /// When the event happened (`eventTime` / CloudEvent `time`).
    pub event_time: Option<DateTime<Utc>>,
    /// For a finalize that replaced an object: the generation it replaced.
    pub overwrote_generation: Option<i64>,
    /// For a delete or archive caused by an overwrite: the new generation.
    pub overwritten_by_generation: Option<i64>,
}

fn int(field: &'static str, v: Option<&Value>) -> Result<Option<i64>, StorageEventError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| StorageEventError::Invalid { field, reason: format!("{s:?} is not an integer") }),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| StorageEventError::Invalid { field, reason: format!("{n} is not an integer") }),
        Some(other) => Err(StorageEventError::Invalid { field, reason: format!("unexpected {other}") }),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

fn time(field: &'static str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, StorageEventError> {
    v.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StorageEventError::Invalid { field, reason: format!("{t:?}: {e}") })
    })
    .transpose()
}

struct Resource {
    bucket: Option<String>,
    name: Option<String>,
    generation: Option<i64>,
    metageneration: Option<i64>,
    size: Option<u64>,
    content_type: Option<String>,
    md5: Option<String>,
    crc32c: Option<String>,
    updated: Option<DateTime<Utc>>,
    metadata: BTreeMap<String, String>,
}

fn resource(data: Option<&Value>) -> Result<Resource, StorageEventError> {
    let empty = Value::Null;
    let d = data.unwrap_or(&empty);
    let size = int("size", d.get("size"))?.map(|s| s.max(0) as u64);
    let metadata = d
        .get("metadata")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect()
        })
        .unwrap_or_default();
    Ok(Resource {
        bucket: text(d.get("bucket")),
        name: text(d.get("name")),
        generation: int("generation", d.get("generation"))?,
        metageneration: int("metageneration", d.get("metageneration"))?,
        size,
        content_type: text(d.get("contentType")),
        md5: text(d.get("md5Hash")),
        crc32c: text(d.get("crc32c")),
        updated: time("updated", d.get("updated").and_then(Value::as_str))?,
        metadata,
    })
}

impl StorageEvent {
    /// From a GCS Pub/Sub notification (payload format `JSON_API_V1` or `NONE`).
    pub fn from_pubsub(message: &PubSubMessage) -> Result<Self, StorageEventError> {
        let attr = |k: &str| message.attributes.get(k).cloned();
        let event_type =
            attr("eventType").ok_or_else(|| StorageEventError::NotStorage("no eventType attribute".into()))?;
        let kind = StorageEventKind::from_notification(&event_type).ok_or(StorageEventError::NotStorage(event_type))?;
        let data: Option<Value> = match attr("payloadFormat").as_deref() {
            Some("NONE") => None,
            _ => message.json().map_err(StorageEventError::Message)?,
        };
        let mut r = resource(data.as_ref())?;
        let bucket = attr("bucketId")
            .or(r.bucket.take())
            .ok_or(StorageEventError::Invalid { field: "bucketId", reason: "missing".into() })?;
        let name = attr("objectId")
            .or(r.name.take())
            .ok_or(StorageEventError::Invalid { field: "objectId", reason: "missing".into() })?;
        let generation = int("objectGeneration", attr("objectGeneration").map(Value::String).as_ref())?
            .or(r.generation)
            .ok_or(StorageEventError::Invalid { field: "objectGeneration", reason: "missing".into() })?;
        let mut event = Self::from_resource(kind, bucket, name, generation, r);
        event.event_time = time("eventTime", attr("eventTime").as_deref())?;
        event.overwrote_generation =
            int("overwroteGeneration", attr("overwroteGeneration").map(Value::String).as_ref())?;
        event.overwritten_by_generation =
            int("overwrittenByGeneration", attr("overwrittenByGeneration").map(Value::String).as_ref())?;
        Ok(event)
    }

    /// From an Eventarc `google.cloud.storage.object.v1.*` CloudEvent.
    pub(crate) fn from_cloud_event(event: &CloudEvent) -> Result<Self, StorageEventError> {
        let kind = StorageEventKind::from_cloud_event_type(&event.event_type)
            .ok_or_else(|| StorageEventError::NotStorage(event.event_type.clone()))?;
        let mut r = resource(event.data.as_ref())?;
        let bucket =
            r.bucket.take().or_else(|| event.source.rsplit_once("/buckets/").map(|(_, b)| b.to_owned())).ok_or(
                StorageEventError::Invalid { field: "bucket", reason: "neither in data nor in source".into() },
            )?;
        let name = r
            .name
            .take()
            .or_else(|| event.subject.as_deref().and_then(|s| s.strip_prefix("objects/")).map(str::to_owned))
            .ok_or(StorageEventError::Invalid { field: "name", reason: "neither in data nor in subject".into() })?;
        let generation =
            r.generation.ok_or(StorageEventError::Invalid { field: "generation", reason: "missing".into() })?;
        let mut storage = Self::from_resource(kind, bucket, name, generation, r);
        storage.event_time = event.time;
        Ok(storage)
    }

    /// The event for `bucket`/`name`#`generation` with the object's metadata from `r`, and no event time
    /// or overwrite generations (the callers add what their format carries).
    fn from_resource(kind: StorageEventKind, bucket: String, name: String, generation: i64, r: Resource) -> Self {
        Self {
            kind,
            bucket,
            name,
            generation,
            metageneration: r.metageneration,
            size: r.size,
            content_type: r.content_type,
            md5: r.md5,
            crc32c: r.crc32c,
            updated: r.updated,
            metadata: r.metadata,
            event_time: None,
            overwrote_generation: None,
            overwritten_by_generation: None,
        }
    }
}
