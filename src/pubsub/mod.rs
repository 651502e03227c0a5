//! Pub/Sub messages and a small REST client (feature `pubsub`).
//!
//! - [`PubSubMessage`]: a pushed message, decoded from a wrapped push envelope
//!   ([`PubSubMessage::from_push_envelope`]) or an unwrapped (`noWrapper`) push with its metadata in
//!   headers (`PubSubMessage::from_unwrapped`); `PubSubMessage::from_push` picks the right one. A message
//!   without `data` is valid. [`make_pubsub_message`] builds the envelope Pub/Sub would send (for tests).
//! - [`PubSubClient`]: publish to a topic, create/get/delete topics and push subscriptions over the Pub/Sub
//!   REST API (`PUBSUB_EMULATOR_HOST` is honoured). REST rather than the gRPC client crates: see
//!   `docs/events.md`.

mod client;
mod message;

pub use client::{OutgoingMessage, PubSubClient, PushSubscription};
pub use message::{MessageError, PubSubMessage, make_pubsub_message};
