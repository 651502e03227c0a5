//! CloudEvents over HTTP (Eventarc): binary mode (`ce-*` headers, the body is the data) and structured
//! mode (`Content-Type: application/cloudevents+json`, the body is the whole event).

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Why a request is not a CloudEvent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloudEventError {
    /// A required attribute is missing.
    #[error("CloudEvent has no `{0}` (binary mode: the `ce-{0}` header)")]
    Missing(&'static str),
    /// An attribute has the wrong format.
    #[error("CloudEvent attribute `{field}` is invalid: {reason}")]
    Invalid {
        /// The attribute.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A structured-mode body is not a JSON object.
    #[error("structured CloudEvent body is not a JSON object: {0}")]
    NotJson(String),
}

/// A CloudEvent (spec 1.0).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    /// `id`: unique per `source`.
    pub id: String,
    /// `source`, e.g. `//storage.googleapis.com/projects/_/buckets/my-bucket`.
    pub source: String,
    /// `specversion` (`1.0`).
    pub spec_version: String,
    /// `type`, e.g. `google.cloud.storage.object.v1.finalized`.
    pub event_type: String,
    /// `subject`, e.g. `objects/reports/q3.pdf`.
    pub subject: Option<String>,
    /// `time`.
    pub time: Option<DateTime<Utc>>,
    /// `datacontenttype`.
    pub data_content_type: Option<String>,
    /// `dataschema`.
    pub data_schema: Option<String>,
    /// The data as JSON, when its content type is JSON (or absent and it parses).
    pub data: Option<Value>,
    /// The data's bytes (binary mode's body; structured mode's `data_base64`, or the JSON text of `data`).
    pub data_bytes: Option<Vec<u8>>,
    /// Extension attributes (`ce-*` headers or top-level fields not in the spec).
    pub extensions: BTreeMap<String, String>,
}

const SPEC: &[&str] =
    &["id", "source", "specversion", "type", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64"];

fn is_json_type(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|t| {
        let t = t.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        t == "application/json" || t.ends_with("+json") || t == "text/json"
    })
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, CloudEventError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| CloudEventError::Invalid { field: "time", reason: format!("{text:?} is not RFC 3339: {e}") })
}

impl CloudEvent {
    /// True for a binary-mode (`ce-id`) or structured-mode (`application/cloudevents+json`) request.
    pub(crate) fn is_cloud_event(headers: &HeaderMap) -> bool {
        headers.contains_key("ce-id")
            || content_type(headers).is_some_and(|t| t.starts_with("application/cloudevents+json"))
    }

    /// Decode a request in either mode.
    pub(crate) fn from_http(headers: &HeaderMap, body: &[u8]) -> Result<Self, CloudEventError> {
        if content_type(headers).is_some_and(|t| t.starts_with("application/cloudevents+json")) {
            Self::from_structured(body)
        } else {
            Self::from_binary(headers, body)
        }
    }

    /// Decode binary mode: attributes in `ce-*` headers, `Content-Type` is `datacontenttype`.
    pub(crate) fn from_binary(headers: &HeaderMap, body: &[u8]) -> Result<Self, CloudEventError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let required = |name: &'static str| {
            header(&format!("ce-{name}")).filter(|v| !v.is_empty()).ok_or(CloudEventError::Missing(name))
        };
        let data_content_type = header("content-type");
        let (data, data_bytes) = if body.is_empty() {
            (None, None)
        } else if is_json_type(data_content_type.as_deref()) {
            (serde_json::from_slice(body).ok(), Some(body.to_vec()))
        } else {
            (None, Some(body.to_vec()))
        };
        let mut extensions = BTreeMap::new();
        for (name, value) in headers {
            if let Some(attr) = name.as_str().strip_prefix("ce-")
                && !SPEC.contains(&attr)
                && let Ok(value) = value.to_str()
            {
                extensions.insert(attr.to_owned(), value.to_owned());
            }
        }
        Ok(Self {
            id: required("id")?,
            source: required("source")?,
            spec_version: required("specversion")?,
            event_type: required("type")?,
            subject: header("ce-subject"),
            time: header("ce-time").map(|t| parse_time(&t)).transpose()?,
            data_content_type,
            data_schema: header("ce-dataschema"),
            data,
            data_bytes,
            extensions,
        })
    }

    /// Decode structured mode: the body is the event as JSON (`data` or `data_base64`).
    pub(crate) fn from_structured(body: &[u8]) -> Result<Self, CloudEventError> {
        let Value::Object(map) =
            serde_json::from_slice::<Value>(body).map_err(|e| CloudEventError::NotJson(e.to_string()))?
        else {
            return Err(CloudEventError::NotJson("not an object".into()));
        };
        let text = |name: &'static str| -> Result<Option<String>, CloudEventError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => {
                    Err(CloudEventError::Invalid { field: name, reason: format!("expected a string, got {other}") })
                }
            }
        };
        let required = |name: &'static str| text(name)?.filter(|v| !v.is_empty()).ok_or(CloudEventError::Missing(name));
        let data_content_type = text("datacontenttype")?;
        let (data, data_bytes) = match (map.get("data"), text("data_base64")?) {
            (_, Some(b64)) => {
                let bytes = STANDARD
                    .decode(b64)
                    .map_err(|e| CloudEventError::Invalid { field: "data_base64", reason: e.to_string() })?;
                let data =
                    if is_json_type(data_content_type.as_deref()) { serde_json::from_slice(&bytes).ok() } else { None };
                (data, Some(bytes))
            }
            (None | Some(Value::Null), None) => (None, None),
            (Some(value), None) => (Some(value.clone()), Some(serde_json::to_vec(value).unwrap_or_default())),
        };
        let mut extensions = BTreeMap::new();
        for (k, v) in &map {
            if !SPEC.contains(&k.as_str()) {
                extensions.insert(k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
            }
        }
        Ok(Self {
            id: required("id")?,
            source: required("source")?,
            spec_version: required("specversion")?,
            event_type: required("type")?,
            subject: text("subject")?,
            time: text("time")?.map(|t| parse_time(&t)).transpose()?,
            data_content_type,
            data_schema: text("dataschema")?,
            data,
            data_bytes,
            extensions,
        })
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_ascii_lowercase())
}
