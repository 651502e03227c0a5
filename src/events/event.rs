//! [`Event`]: what a handler receives; [`HandlerError`]: what it may answer.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cloudevents::{CloudEvent, CloudEventError};
use super::storage::{StorageEvent, StorageEventError};
use crate::BoxError;
use crate::auth::VerifiedCaller;
use crate::pubsub::{MessageError, PubSubMessage};

/// One pushed event: `POST <prefix>/events/{kind}/{reference}?<parameters>`.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event kind (first path segment), e.g. `orders` or `storage.media`.
    pub kind: String,
    /// The event reference (second path segment), e.g. an id the subscription was created for.
    pub reference: String,
    /// The body as JSON (`Value::Null` for an empty body, or for a non-JSON body of an unwrapped
    /// Pub/Sub push or a binary-mode CloudEvent, whose bytes are in [`Event::body`]).
    pub payload: Value,
    /// The query string, decoded (django-gcp's `event_parameters`).
    pub parameters: BTreeMap<String, String>,
    /// Who pushed it (`None` only when authentication is disabled).
    pub caller: Option<VerifiedCaller>,
    /// The request headers (after verification).
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
}

impl Event {
    /// The Pub/Sub message, wrapped or unwrapped (see `PubSubMessage::from_push`).
    pub fn pubsub(&self) -> Result<PubSubMessage, MessageError> {
        PubSubMessage::from_push(&self.headers, &self.body)
    }

    /// The CloudEvent (Eventarc), binary or structured mode.
    pub fn cloud_event(&self) -> Result<CloudEvent, CloudEventError> {
        CloudEvent::from_http(&self.headers, &self.body)
    }

    /// True when the request is a CloudEvent (`ce-id` header, or `application/cloudevents+json`).
    pub(crate) fn is_cloud_event(&self) -> bool {
        CloudEvent::is_cloud_event(&self.headers)
    }

    /// The Cloud Storage notification this event carries (a GCS Pub/Sub notification or an Eventarc
    /// `google.cloud.storage.object.v1.*` event).
    pub fn storage(&self) -> Result<StorageEvent, StorageEventError> {
        if self.is_cloud_event() {
            StorageEvent::from_cloud_event(&self.cloud_event()?)
        } else {
            StorageEvent::from_pubsub(&self.pubsub()?)
        }
    }

    /// The delivery's identity for deduplication: SHA-256 (hex) of the kind and the CloudEvent's
    /// `source`+`id`, or the Pub/Sub subscription and message id. `None` when the body is neither.
    pub fn dedup_key(&self) -> Option<String> {
        let identity = if self.is_cloud_event() {
            let ce = self.cloud_event().ok()?;
            format!("ce\n{}\n{}", ce.source, ce.id)
        } else {
            let m = self.pubsub().ok()?;
            format!("pubsub\n{}\n{}", m.subscription.unwrap_or_default(), m.message_id)
        };
        Some(hex::encode(Sha256::digest(format!("{}\n{identity}", self.kind))))
    }
}

/// A handler's refusal. Anything other than `Ok(())` is logged with its detail; the client never sees it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The handler failed: 400 with a generic body (Pub/Sub redelivers it with backoff).
    #[error("handler failed: {0}")]
    Failed(#[source] BoxError),
    /// Not now: 503 with `Retry-After` (a dependency is down, an ordering gap).
    #[error("retry later (after {after:?}): {reason}")]
    RetryLater {
        /// Suggested delay (`Retry-After`, whole seconds, at least 1).
        after: Duration,
        /// Why (logged).
        reason: String,
    },
    /// Acknowledge without processing (a message this app does not care about): 200, logged.
    #[error("dropped: {0}")]
    Drop(String),
}

impl HandlerError {
    /// A failure with `error` as its detail.
    pub fn failed(error: impl Into<BoxError>) -> Self {
        HandlerError::Failed(error.into())
    }
    /// Ask the sender to retry after `after`.
    pub fn retry_later(after: Duration, reason: impl Into<String>) -> Self {
        HandlerError::RetryLater { after, reason: reason.into() }
    }
    /// Acknowledge and drop.
    pub fn drop_event(reason: impl Into<String>) -> Self {
        HandlerError::Drop(reason.into())
    }
}

impl From<crate::Error> for HandlerError {
    fn from(e: crate::Error) -> Self {
        HandlerError::Failed(Box::new(e))
    }
}

#[cfg(feature = "orm")]
impl From<sea_orm::DbErr> for HandlerError {
    fn from(e: sea_orm::DbErr) -> Self {
        HandlerError::Failed(Box::new(e))
    }
}

impl From<MessageError> for HandlerError {
    fn from(e: MessageError) -> Self {
        HandlerError::Failed(Box::new(e))
    }
}

impl From<CloudEventError> for HandlerError {
    fn from(e: CloudEventError) -> Self {
        HandlerError::Failed(Box::new(e))
    }
}

impl From<StorageEventError> for HandlerError {
    fn from(e: StorageEventError) -> Self {
        HandlerError::Failed(Box::new(e))
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        HandlerError::Failed(Box::new(e))
    }
}
