//! The handle's tasks: the Cloud Tasks client and outbox built from `[tasks]`, the worker routes, the
//! local cloud in local mode, and enqueueing without turbofish or outbox argument.

use sea_orm::ConnectionTrait;

use super::Gcp;
use crate::config::Settings;
use crate::local::{LOCAL_INVOKER, LOCAL_PROJECT, LocalCloud};
use crate::tasks::{
    CLOUD_TASKS_ENDPOINT, CloudTasksClient, Enqueued, Registry, SCHEDULER_ENDPOINT, Task, TaskOutbox, Tasks,
    TasksSettings, When, WorkerOptions,
};
use crate::{Error, Result};

/// The local base URL when `base_url` is unset in local mode (the complete example's address).
pub(super) const LOCAL_BASE_URL: &str = "http://127.0.0.1:8000";

pub(crate) struct TaskPart {
    pub(crate) tasks: Tasks,
    pub(crate) outbox: TaskOutbox,
    pub(crate) worker: axum::Router,
    pub(crate) local: Option<LocalCloud>,
}

/// True when `[tasks] local` is on, or unset with no project and no emulator: a laptop.
pub(crate) fn is_local(settings: &Settings) -> bool {
    let t = &settings.tasks;
    t.local.unwrap_or(settings.project_id.is_none() && t.cloud_tasks_emulator.is_none() && !t.eager && !t.disabled)
}

/// `[tasks]` and the top-level settings as the tasks module's settings.
pub(crate) fn tasks_settings(settings: &Settings, local: Option<&LocalCloud>) -> TasksSettings {
    let t = &settings.tasks;
    let base = settings.base_url.clone().or_else(|| local.map(|_| LOCAL_BASE_URL.to_string()));
    TasksSettings {
        default_queue: t.queue.clone(),
        tasks_domain: t
            .domain
            .as_deref()
            .map(|d| with_prefix(d, &settings.prefix))
            .or_else(|| base.map(|b| format!("{b}{}", settings.prefix)))
            .unwrap_or_default(),
        resource_affix: t.affix.clone(),
        region: t.region.clone(),
        delimiter: t.delimiter.clone(),
        eager_execute: t.eager,
        disable_execute: t.disabled,
        project_id: settings.project_id.clone().or_else(|| local.map(|_| LOCAL_PROJECT.to_string())),
        invoker_service_account: t.invoker_account.clone().or_else(|| local.map(|_| LOCAL_INVOKER.to_string())),
        cloud_tasks_endpoint: match local {
            Some(l) => l.cloud_tasks_url(),
            None => t.cloud_tasks_emulator.clone().unwrap_or_else(|| CLOUD_TASKS_ENDPOINT.into()),
        },
        scheduler_endpoint: match local {
            Some(l) => l.scheduler_url(),
            None => t.scheduler_emulator.clone().unwrap_or_else(|| SCHEDULER_ENDPOINT.into()),
        },
        dispatch_deadline: t.dispatch_deadline,
        django_gcp_compat: t.django_gcp_compat,
    }
}

/// A tasks domain that names only an origin (`https://worker.example.com`) gets the routes' prefix, where
/// the handle mounts the worker; one with a path is taken as written.
fn with_prefix(domain: &str, prefix: &str) -> String {
    let domain = domain.trim_end_matches('/');
    match url::Url::parse(domain) {
        Ok(url) if url.path() == "/" || url.path().is_empty() => format!("{domain}{prefix}"),
        _ => domain.to_string(),
    }
}

impl TaskPart {
    pub(crate) async fn build(settings: &Settings, registry: Registry) -> Result<Self> {
        let local = if is_local(settings) {
            let cloud = LocalCloud::start().await;
            tracing::info!(
                cloud_tasks = %cloud.cloud_tasks_url(),
                scheduler = %cloud.scheduler_url(),
                "local tasks: a local Cloud Tasks and Scheduler push to this app's worker route with signed tokens"
            );
            Some(cloud)
        } else {
            None
        };
        let task_settings = tasks_settings(settings, local.as_ref());
        task_settings.validate().map_err(|e| match e {
            Error::Config { store, message } => Error::Config {
                store,
                message: format!("{message} (in sea-gcp settings: [tasks], project_id and base_url)"),
            },
            other => other,
        })?;
        if let Some(cloud) = &local {
            let mut queues: Vec<String> = registry.iter().filter_map(|t| t.options().queue).collect();
            queues.push(task_settings.default_queue.clone());
            for queue in queues {
                cloud.create_queue(&task_settings.queue_path(&queue));
            }
        }
        let client = if local.is_some() || task_settings.uses_fake_endpoint() {
            CloudTasksClient::unauthenticated(&task_settings.cloud_tasks_endpoint)
        } else {
            CloudTasksClient::application_default(&task_settings.cloud_tasks_endpoint)?
        };
        let verifier = match &local {
            Some(cloud) => cloud.verifier(),
            None => crate::auth::OidcVerifier::google(),
        };
        let tasks = Tasks::new(task_settings, registry, client)?;
        let worker = tasks.worker_router(verifier, WorkerOptions::default())?;
        Ok(Self { tasks, outbox: TaskOutbox::default(), worker, local })
    }
}

impl Gcp {
    /// Local mode with the Pub/Sub emulator: make the emulator hold one push subscription per subscriber
    /// task (the same sync as production), pushing through a proxy that adds the token the emulator
    /// does not send, signed by the local issuer for the worker's URL. The proxy lives as long as the
    /// returned value.
    pub(crate) async fn push_emulator_to_worker(
        &self,
        emulator: &str,
    ) -> Result<Option<crate::local::oidc::BearerProxy>> {
        use crate::pubsub::PubSubClient;
        use crate::tasks::sync::Manifest;
        use crate::tasks::sync_subscriptions::{apply_subscriptions, plan_subscriptions};
        let (Some(local), Some(tasks)) = (self.local_cloud(), self.tasks()) else { return Ok(None) };
        if tasks.registry().subscribers().is_empty() {
            return Ok(None);
        }
        let settings = tasks.settings();
        let origin = settings.tasks_origin();
        let proxy = crate::local::oidc::BearerProxy::start(local.issuer(), LOCAL_INVOKER, &origin, &origin).await;
        let mut via_proxy = settings.clone();
        via_proxy.tasks_domain = settings.tasks_domain.replacen(&origin, &proxy.url(), 1);
        via_proxy.invoker_service_account = None; // the emulator sends no token: the proxy signs
        let project = settings.project_id.clone().unwrap_or_else(|| LOCAL_PROJECT.into());
        let client = PubSubClient::emulator(emulator, project);
        let manifest = Manifest::from(tasks.registry());
        let plan = plan_subscriptions(&client, &via_proxy, &manifest, false).await?;
        apply_subscriptions(&client, &plan).await?;
        tracing::info!(
            emulator,
            subscriptions = plan.changes.len(),
            "local tasks: the Pub/Sub emulator pushes subscriber tasks to this app through a token-adding proxy"
        );
        Ok(Some(proxy))
    }

    fn task_part(&self) -> Result<&TaskPart> {
        self.inner.tasks.as_ref().ok_or_else(|| {
            Error::config(None, "no task is registered: add it with Gcp::builder(..).task(..) before enqueueing it")
        })
    }

    /// The tasks module's handle (settings, registry, client), when a task is registered.
    pub fn tasks(&self) -> Option<&Tasks> {
        self.inner.tasks.as_ref().map(|t| &t.tasks)
    }

    /// The task outbox.
    pub fn task_outbox(&self) -> Option<&TaskOutbox> {
        self.inner.tasks.as_ref().map(|t| &t.outbox)
    }

    /// The local Cloud Tasks and Scheduler, in local mode.
    pub fn local_cloud(&self) -> Option<&LocalCloud> {
        self.inner.tasks.as_ref().and_then(|t| t.local.as_ref())
    }

    /// Enqueue `task` with `payload` now, outside any transaction: `gcp.enqueue(SendReceipt, &receipt)`.
    /// Prefer [`enqueue_in`](Self::enqueue_in) when the task follows from a database change.
    pub async fn enqueue<T: Task>(&self, task: T, payload: &T::Payload) -> Result<Enqueued> {
        drop(task);
        self.task_part()?.tasks.enqueue::<T>(payload).await
    }

    /// Enqueue `task` to run after a delay (`Duration`) or at a time (`DateTime<Utc>`).
    pub async fn enqueue_later<T: Task>(
        &self,
        task: T,
        payload: &T::Payload,
        when: impl Into<When>,
    ) -> Result<Enqueued> {
        drop(task);
        self.task_part()?.tasks.enqueue_later::<T>(payload, when).await
    }

    /// Enqueue `task` in the caller's transaction `txn`: it is sent only if `txn` commits, exactly once
    /// (the task outbox). Commit with [`commit`](Self::commit) to send it right away.
    pub async fn enqueue_in<T: Task, C: ConnectionTrait>(
        &self,
        txn: &C,
        task: T,
        payload: &T::Payload,
    ) -> Result<Enqueued> {
        drop(task);
        let part = self.task_part()?;
        part.tasks.enqueue_in::<T, C>(txn, &part.outbox, payload).await
    }

    /// [`enqueue_in`](Self::enqueue_in) to run after a delay or at a time.
    pub async fn enqueue_later_in<T: Task, C: ConnectionTrait>(
        &self,
        txn: &C,
        task: T,
        payload: &T::Payload,
        when: impl Into<When>,
    ) -> Result<Enqueued> {
        drop(task);
        let part = self.task_part()?;
        part.tasks.enqueue_later_in::<T, C>(txn, &part.outbox, payload, when).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_gets_the_prefix_a_path_is_kept() {
        assert_eq!(with_prefix("https://worker.example.com", "/gcp"), "https://worker.example.com/gcp");
        assert_eq!(with_prefix("https://worker.example.com/", "/gcp"), "https://worker.example.com/gcp");
        assert_eq!(with_prefix("https://worker.example.com/internal", "/gcp"), "https://worker.example.com/internal");
        assert_eq!(with_prefix("https://worker.example.com", ""), "https://worker.example.com");
    }
}
