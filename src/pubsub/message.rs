//! Push messages: decoding (wrapped and unwrapped) and making envelopes.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Why a push body is not a Pub/Sub message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The body is not JSON (for a wrapped push).
    #[error("push body is not JSON: {0}")]
    NotJson(String),
    /// The envelope has no `message` object.
    #[error(
        "push envelope has no `message` object (is the subscription configured with noWrapper? then its metadata comes in headers)"
    )]
    NoMessage,
    /// A field is missing.
    #[error("push message has no `{0}`")]
    Missing(&'static str),
    /// A field has the wrong type or format.
    #[error("push message field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `data` decoded, but not as the type asked for.
    #[error("message data does not decode as requested: {0}")]
    Data(String),
}

/// A Pub/Sub message as pushed to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubMessage {
    /// The payload (`message.data`, base64-decoded), `None` when the message carried none. Pub/Sub makes
    /// no difference between empty and absent data, so neither does this: an attribute-only message is
    /// `None` whether it came wrapped (with `"data": ""`, as the emulator sends it, or without `data`) or
    /// unwrapped (`noWrapper`, an empty body). `Some` always holds at least one byte when decoded.
    pub data: Option<Vec<u8>>,
    /// The attributes.
    pub attributes: BTreeMap<String, String>,
    /// The server-assigned id (unique per topic).
    pub message_id: String,
    /// When Pub/Sub received the message.
    pub publish_time: DateTime<Utc>,
    /// The ordering key, when the publisher set one.
    pub ordering_key: Option<String>,
    /// The subscription that pushed it (`projects/P/subscriptions/S`).
    pub subscription: Option<String>,
    /// The delivery attempt (set only when the subscription has a dead-letter policy).
    pub delivery_attempt: Option<u32>,
}

#[derive(Deserialize)]
struct Envelope {
    message: Option<Value>,
    #[serde(default)]
    subscription: Option<String>,
    #[serde(default, alias = "delivery_attempt", rename = "deliveryAttempt")]
    delivery_attempt: Option<u32>,
}

fn string_field(
    message: &Map<String, Value>,
    names: &[&str],
    field: &'static str,
) -> Result<Option<String>, MessageError> {
    for name in names {
        match message.get(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(other) => {
                return Err(MessageError::Invalid { field, reason: format!("expected a string, got {other}") });
            }
        }
    }
    Ok(None)
}

fn parse_time(field: &'static str, text: &str) -> Result<DateTime<Utc>, MessageError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| MessageError::Invalid { field, reason: format!("{text:?} is not RFC 3339: {e}") })
}

/// Standard and infrastructure headers that are never message attributes of an unwrapped push.
const NOT_ATTRIBUTES: &[&str] = &[
    "accept",
    "accept-encoding",
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "from",
    "host",
    "user-agent",
    "forwarded",
    "via",
    "traceparent",
    "tracestate",
    "transfer-encoding",
    "expect",
];

impl PubSubMessage {
    /// A message with `data` (for publishing helpers and tests); id `"1"`, published now. Empty `data`
    /// gives `data: None`, as decoding such a message does.
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        Self {
            data: (!data.is_empty()).then_some(data),
            attributes: BTreeMap::new(),
            message_id: "1".into(),
            publish_time: Utc::now(),
            ordering_key: None,
            subscription: None,
            delivery_attempt: None,
        }
    }

    /// Set an attribute.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }
    /// Set the message id.
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = id.into();
        self
    }
    /// Set the publish time.
    pub fn with_publish_time(mut self, time: DateTime<Utc>) -> Self {
        self.publish_time = time;
        self
    }
    /// Set the ordering key.
    pub fn with_ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }
    /// Set the subscription.
    pub fn with_subscription(mut self, subscription: impl Into<String>) -> Self {
        self.subscription = Some(subscription.into());
        self
    }

    /// Decode a push: unwrapped when the `x-goog-pubsub-message-id` header is present (a `noWrapper`
    /// subscription with `writeMetadata`), else a wrapped JSON envelope.
    pub(crate) fn from_push(headers: &HeaderMap, body: &[u8]) -> Result<Self, MessageError> {
        if headers.contains_key("x-goog-pubsub-message-id") {
            Self::from_unwrapped(headers, body)
        } else {
            Self::from_push_envelope(body)
        }
    }

    /// Decode a wrapped push envelope: `{"message": {"data", "attributes", "messageId", "publishTime",
    /// "orderingKey"}, "subscription", "deliveryAttempt"}` (snake_case aliases accepted).
    pub fn from_push_envelope(body: &[u8]) -> Result<Self, MessageError> {
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| MessageError::NotJson(e.to_string()))?;
        let Some(Value::Object(message)) = envelope.message else { return Err(MessageError::NoMessage) };
        let data = match string_field(&message, &["data"], "data")? {
            None => None,
            Some(text) => Some(
                STANDARD
                    .decode(text.trim())
                    .map_err(|e| MessageError::Invalid { field: "data", reason: format!("not base64: {e}") })?,
            ),
        };
        // `"data": ""` (the emulator's attribute-only message) means no data, as an empty unwrapped body.
        let data = data.filter(|d| !d.is_empty());
        let mut attributes = BTreeMap::new();
        match message.get("attributes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    let Value::String(v) = v else {
                        return Err(MessageError::Invalid {
                            field: "attributes",
                            reason: format!("`{k}` is not a string"),
                        });
                    };
                    attributes.insert(k.clone(), v.clone());
                }
            }
            Some(_) => return Err(MessageError::Invalid { field: "attributes", reason: "not an object".into() }),
        }
        let message_id = string_field(&message, &["messageId", "message_id"], "messageId")?
            .ok_or(MessageError::Missing("messageId"))?;
        let publish_time = string_field(&message, &["publishTime", "publish_time"], "publishTime")?
            .ok_or(MessageError::Missing("publishTime"))?;
        let publish_time = parse_time("publishTime", &publish_time)?;
        let ordering_key =
            string_field(&message, &["orderingKey", "ordering_key"], "orderingKey")?.filter(|k| !k.is_empty());
        Ok(Self {
            data,
            attributes,
            message_id,
            publish_time,
            ordering_key,
            subscription: envelope.subscription,
            delivery_attempt: envelope.delivery_attempt,
        })
    }

    /// Decode an unwrapped push: the body is the data; the metadata comes in `x-goog-pubsub-*` headers
    /// (`message-id`, `publish-time`, `subscription-name`, `delivery-attempt`, `ordering-key`) and the
    /// attributes in the other headers (HTTP lowercases their names).
    pub(crate) fn from_unwrapped(headers: &HeaderMap, body: &[u8]) -> Result<Self, MessageError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let message_id = header("x-goog-pubsub-message-id")
            .ok_or(MessageError::Missing("x-goog-pubsub-message-id header (enable writeMetadata)"))?;
        let publish_time =
            header("x-goog-pubsub-publish-time").ok_or(MessageError::Missing("x-goog-pubsub-publish-time header"))?;
        let publish_time = parse_time("x-goog-pubsub-publish-time", &publish_time)?;
        let delivery_attempt = match header("x-goog-pubsub-delivery-attempt") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| MessageError::Invalid {
                field: "x-goog-pubsub-delivery-attempt",
                reason: format!("{v:?} is not a number"),
            })?),
        };
        let ordering_key =
            header("x-goog-pubsub-ordering-key").or_else(|| header("x-goog-ordering-key")).filter(|k| !k.is_empty());
        let mut attributes = BTreeMap::new();
        for (name, value) in headers {
            let name = name.as_str();
            if name.starts_with("x-goog-")
                || name.starts_with("x-forwarded-")
                || name.starts_with("x-cloud-")
                || NOT_ATTRIBUTES.contains(&name)
            {
                continue;
            }
            if let Ok(value) = value.to_str() {
                attributes.insert(name.to_owned(), value.to_owned());
            }
        }
        Ok(Self {
            data: if body.is_empty() { None } else { Some(body.to_vec()) },
            attributes,
            message_id,
            publish_time,
            ordering_key,
            subscription: header("x-goog-pubsub-subscription-name"),
            delivery_attempt,
        })
    }

    /// The data as UTF-8 text (`None` without data).
    pub fn text(&self) -> Result<Option<&str>, MessageError> {
        self.data
            .as_deref()
            .map(|d| std::str::from_utf8(d).map_err(|e| MessageError::Data(format!("not UTF-8: {e}"))))
            .transpose()
    }

    /// The data decoded as JSON into `T` (`None` without data).
    pub fn json<T: DeserializeOwned>(&self) -> Result<Option<T>, MessageError> {
        self.data
            .as_deref()
            .map(|d| serde_json::from_slice(d).map_err(|e| MessageError::Data(e.to_string())))
            .transpose()
    }
}

/// The wrapped push envelope Pub/Sub would send for `message` (for tests and local tools). `publishTime`
/// has nine fractional digits always (RFC 3339 with nanoseconds, also when they are zero).
pub fn make_pubsub_message(message: &PubSubMessage) -> Value {
    let mut inner = Map::new();
    if let Some(data) = message.data.as_ref().filter(|d| !d.is_empty()) {
        inner.insert("data".into(), json!(STANDARD.encode(data)));
    }
    if !message.attributes.is_empty() {
        inner.insert("attributes".into(), json!(message.attributes));
    }
    let time = message.publish_time.to_rfc3339_opts(SecondsFormat::Nanos, true);
    inner.insert("messageId".into(), json!(message.message_id));
    inner.insert("message_id".into(), json!(message.message_id));
    inner.insert("publishTime".into(), json!(time));
    inner.insert("publish_time".into(), json!(time));
    if let Some(key) = &message.ordering_key {
        inner.insert("orderingKey".into(), json!(key));
    }
    let mut envelope = Map::new();
    envelope.insert("message".into(), Value::Object(inner));
    envelope.insert(
        "subscription".into(),
        json!(
            message
                .subscription
                .clone()
                .unwrap_or_else(|| "projects/test-project/subscriptions/test-subscription".into())
        ),
    );
    if let Some(attempt) = message.delivery_attempt {
        envelope.insert("deliveryAttempt".into(), json!(attempt));
    }
    Value::Object(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn round_trip_with_zero_fraction() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let m = PubSubMessage::new(b"{\"a\":1}".to_vec())
            .with_attribute("k", "v")
            .with_publish_time(t)
            .with_ordering_key("o");
        let envelope = make_pubsub_message(&m);
        assert_eq!(envelope["message"]["publishTime"], "2026-12-01T10:00:00.000000000Z");
        let back = PubSubMessage::from_push_envelope(&serde_json::to_vec(&envelope).unwrap()).unwrap();
        assert_eq!(back.subscription.as_deref(), Some("projects/test-project/subscriptions/test-subscription"));
        assert_eq!(PubSubMessage { subscription: None, ..back }, m);
    }

    #[test]
    fn no_data_is_valid_and_malformed_envelopes_are_typed() {
        let m = PubSubMessage::from_push_envelope(
            br#"{"message":{"messageId":"7","publishTime":"2026-01-01T00:00:00Z"},"subscription":"s"}"#,
        )
        .unwrap();
        assert_eq!(m.data, None);
        assert_eq!(m.json::<Value>().unwrap(), None);
        let cases: &[(&[u8], &str)] = &[
            (b"nope", "not JSON"),
            (br#"{"subscription":"s"}"#, "no `message`"),
            (br#"{"message":{"publishTime":"2026-01-01T00:00:00Z"}}"#, "no `messageId`"),
            (br#"{"message":{"messageId":"1"}}"#, "no `publishTime`"),
            (br#"{"message":{"messageId":"1","publishTime":"yesterday"}}"#, "not RFC 3339"),
            (br#"{"message":{"messageId":"1","publishTime":"2026-01-01T00:00:00Z","data":"%%%"}}"#, "not base64"),
            (
                br#"{"message":{"messageId":"1","publishTime":"2026-01-01T00:00:00Z","attributes":{"a":1}}}"#,
                "`a` is not a string",
            ),
        ];
        for (body, expected) in cases {
            let err = PubSubMessage::from_push_envelope(body).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn an_attribute_only_message_has_no_data_wrapped_or_unwrapped() {
        let wrapped = |data: &str| {
            let body = format!(
                r#"{{"message":{{{data}"attributes":{{"k":"v"}},"messageId":"7","publishTime":"2026-01-01T00:00:00Z"}}}}"#
            );
            PubSubMessage::from_push(&HeaderMap::new(), body.as_bytes()).unwrap()
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-goog-pubsub-message-id", "7".parse().unwrap());
        headers.insert("x-goog-pubsub-publish-time", "2026-01-01T00:00:00Z".parse().unwrap());
        headers.insert("k", "v".parse().unwrap());
        let unwrapped = PubSubMessage::from_push(&headers, b"").unwrap();
        for message in [wrapped(r#""data":"","#), wrapped(r#""data":null,"#), wrapped(""), unwrapped] {
            assert_eq!(message.data, None, "{message:?}");
            assert_eq!(message.attributes.get("k").map(String::as_str), Some("v"));
            assert_eq!(message.text().unwrap(), None);
        }
        // Built with empty data, the message is the same, and its envelope decodes back to it.
        let built = PubSubMessage::new(Vec::new()).with_attribute("k", "v");
        assert_eq!(built.data, None);
        let envelope = make_pubsub_message(&PubSubMessage { data: Some(Vec::new()), ..built.clone() });
        assert!(envelope["message"].get("data").is_none(), "{envelope}");
        let back = PubSubMessage::from_push_envelope(&serde_json::to_vec(&envelope).unwrap()).unwrap();
        assert_eq!(PubSubMessage { subscription: None, ..back }, built);
    }
}
