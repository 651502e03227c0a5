//! `sync` for subscriber tasks: one Pub/Sub push subscription per subscriber task (id
//! `{task}{delimiter}{affix}`), pushing to the task's worker route with the invoker service account's OIDC
//! token, on the task's topic (created when missing). With `cleanup`, subscriptions carrying the
//! application's affix that no task claims are deleted. Plans first; applying twice changes nothing the
//! second time.
//!
//! Pub/Sub can change a subscription's push configuration in place (`modifyPushConfig`) but not its topic or
//! its ordering: such a difference is reported as [`SubscriptionChange::Conflict`] and left alone, since
//! replacing the subscription would drop its undelivered messages.

use std::fmt;

use serde_json::Value;

use super::TasksSettings;
use super::sync::Manifest;
use crate::pubsub::{PubSubClient, PushSubscription};
use crate::{Error, Result};

/// One planned change to a push subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionChange {
    /// Create the subscription (and its topic if it does not exist).
    Create(PushSubscription),
    /// Replace its push configuration; the names of the fields that differ.
    Update(PushSubscription, Vec<&'static str>),
    /// The subscription is as wanted.
    Unchanged(PushSubscription),
    /// It differs in what cannot change in place (topic, ordering); left as it is.
    Conflict(PushSubscription, String),
    /// Delete it (cleanup: it carries the affix and no task claims it).
    Delete(String),
}

impl fmt::Display for SubscriptionChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionChange::Create(s) => write!(f, "create    subscription {} (topic {})", s.name, s.topic),
            SubscriptionChange::Update(s, fields) => {
                write!(f, "update    subscription {} ({})", s.name, fields.join(", "))
            }
            SubscriptionChange::Unchanged(s) => write!(f, "unchanged subscription {}", s.name),
            SubscriptionChange::Conflict(s, why) => write!(f, "conflict  subscription {}: {why}", s.name),
            SubscriptionChange::Delete(name) => write!(f, "delete    subscription {name}"),
        }
    }
}

/// The subscriptions part of a sync plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionPlan {
    /// The changes, in order.
    pub changes: Vec<SubscriptionChange>,
}

impl SubscriptionPlan {
    /// True when applying changes nothing.
    pub fn is_noop(&self) -> bool {
        self.changes.iter().all(|c| matches!(c, SubscriptionChange::Unchanged(_) | SubscriptionChange::Conflict(..)))
    }
}

/// The push subscription of each subscriber task in `manifest`.
pub fn desired_subscriptions(manifest: &Manifest, settings: &TasksSettings) -> Vec<PushSubscription> {
    manifest
        .subscribers
        .iter()
        .map(|entry| {
            let url = settings.subscriber_task_url(&entry.task);
            let mut sub = PushSubscription::new(settings.affixed(&entry.task), &entry.topic, &url)
                .with_message_ordering(entry.enable_message_ordering);
            if let Some(email) = &settings.invoker_service_account {
                sub = sub.with_service_account(email).with_audience(url);
            }
            sub
        })
        .collect()
}

/// The last path segment of a resource name (`projects/p/topics/t` -> `t`).
fn id(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Compare a wanted subscription with the current resource.
fn compare(wanted: &PushSubscription, current: &Value) -> SubscriptionChange {
    let topic = id(current["topic"].as_str().unwrap_or_default());
    if topic != wanted.topic {
        let why = format!("it is on topic {topic}, the task wants {}; delete it to let sync recreate it", wanted.topic);
        return SubscriptionChange::Conflict(wanted.clone(), why);
    }
    let ordering = current["enableMessageOrdering"].as_bool().unwrap_or(false);
    if ordering != wanted.enable_message_ordering {
        let why = format!(
            "message ordering is {ordering}, the task wants {}; ordering cannot change on an existing subscription",
            wanted.enable_message_ordering
        );
        return SubscriptionChange::Conflict(wanted.clone(), why);
    }
    let push = &current["pushConfig"];
    let mut fields = Vec::new();
    if push["pushEndpoint"].as_str() != Some(wanted.push_endpoint.as_str()) {
        fields.push("pushEndpoint");
    }
    if push["oidcToken"]["serviceAccountEmail"].as_str() != wanted.service_account_email.as_deref() {
        fields.push("oidcToken.serviceAccountEmail");
    }
    let audience = push["oidcToken"]["audience"].as_str().filter(|a| !a.is_empty());
    if wanted.service_account_email.is_some() && audience != wanted.audience.as_deref() {
        fields.push("oidcToken.audience");
    }
    if fields.is_empty() {
        SubscriptionChange::Unchanged(wanted.clone())
    } else {
        SubscriptionChange::Update(wanted.clone(), fields)
    }
}

/// Plan the push subscriptions of `manifest`'s subscriber tasks. Cleanup without an affix is refused.
pub async fn plan_subscriptions(
    client: &PubSubClient,
    settings: &TasksSettings,
    manifest: &Manifest,
    cleanup: bool,
) -> Result<SubscriptionPlan> {
    if cleanup && settings.resource_affix.is_none() {
        return Err(Error::config(
            None,
            "cleanup needs GCP_TASKS_RESOURCE_AFFIX: without an affix the subscriptions this application created \
             cannot be told apart from others, so none are deleted",
        ));
    }
    let wanted = desired_subscriptions(manifest, settings);
    let mut changes = Vec::new();
    for sub in &wanted {
        changes.push(match client.get_subscription(&sub.name).await? {
            None => SubscriptionChange::Create(sub.clone()),
            Some(current) => compare(sub, &current),
        });
    }
    if cleanup {
        for current in client.list_subscriptions().await? {
            let name = id(current["name"].as_str().unwrap_or_default()).to_string();
            if settings.carries_affix(&name) && !wanted.iter().any(|w| w.name == name) {
                changes.push(SubscriptionChange::Delete(name));
            }
        }
    }
    Ok(SubscriptionPlan { changes })
}

/// Apply `plan`: create topics and subscriptions, replace push configurations, delete.
pub async fn apply_subscriptions(client: &PubSubClient, plan: &SubscriptionPlan) -> Result<()> {
    for change in &plan.changes {
        match change {
            SubscriptionChange::Create(sub) => {
                client.create_topic(&sub.topic).await?;
                client.create_push_subscription(sub).await?;
            }
            SubscriptionChange::Update(sub, _) => client.modify_push_config(sub).await?,
            SubscriptionChange::Unchanged(_) | SubscriptionChange::Conflict(..) => {}
            SubscriptionChange::Delete(name) => {
                client.delete_subscription(name).await?;
            }
        }
    }
    Ok(())
}
