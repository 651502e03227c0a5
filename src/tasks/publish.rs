//! [`Tasks::publish`]: send a subscriber task's payload to its topic.

use std::collections::BTreeMap;

use super::{RunError, SubscriberTask, TaskContext, Tasks};
use crate::pubsub::{OutgoingMessage, PubSubClient, PubSubMessage};
use crate::{Error, Result};

impl Tasks {
    /// Publish `payload` (as JSON data) with `attributes` to `T`'s topic through `pubsub`; returns the
    /// message id. Eager execution runs `T` in-process with the message
    /// Pub/Sub would push; disabled execution publishes nothing.
    pub async fn publish<T: SubscriberTask>(
        &self,
        pubsub: &PubSubClient,
        task: &T,
        payload: &T::Payload,
        attributes: BTreeMap<String, String>,
        ordering_key: Option<&str>,
    ) -> Result<PublishOutcome> {
        let settings = self.settings();
        if settings.disable_execute {
            tracing::info!(task = T::NAME, "message not published: GCP_TASKS_DISABLE_EXECUTE is true");
            return Ok(PublishOutcome::Disabled);
        }
        let mut message = OutgoingMessage::json(payload)?;
        message.attributes = attributes;
        message.ordering_key = ordering_key.map(str::to_owned);
        if settings.eager_execute {
            let registered = self
                .registry()
                .get(T::NAME)
                .ok_or_else(|| Error::config(None, format!("subscriber task `{}` is not in the registry", T::NAME)))?;
            let mut pushed = PubSubMessage::new(message.data.clone());
            pushed.attributes = message.attributes.clone();
            pushed.ordering_key = message.ordering_key.clone();
            let mut ctx = TaskContext::eager(T::NAME, "");
            ctx.queue = None;
            ctx.message = Some(pushed);
            let output = registered.run_json(&message.data, ctx).await.map_err(|e| Error::TaskFailed {
                task: T::NAME.into(),
                message: match e {
                    RunError::Failed(e) => e.to_string(),
                    other => other.to_string(),
                },
            })?;
            return Ok(PublishOutcome::Ran(output));
        }
        let topic = task.subscription().topic;
        let ids = pubsub.publish(&topic, &[message]).await?;
        Ok(PublishOutcome::Published(ids.into_iter().next().unwrap_or_default()))
    }
}

/// What [`Tasks::publish`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PublishOutcome {
    /// Published; the message id.
    Published(String),
    /// Eager execution: the subscriber task ran in-process; its output.
    Ran(serde_json::Value),
    /// `disable_execute`: nothing was published.
    Disabled,
}
