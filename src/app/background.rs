//! [`Gcp::spawn_background`]: the loops an application runs beside its server, and their clean stop.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Gcp;

/// How often the promotion repair loop replays the blob outbox.
pub(super) const REPAIR_EVERY: Duration = Duration::from_secs(600);

/// The background loops of a [`Gcp`]; [`stop`](Self::stop) them when the server has shut down.
#[derive(Debug)]
pub struct Background {
    token: CancellationToken,
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

impl Background {
    /// The names of the running loops (`dispatcher`, `repair`, `local-scheduler`).
    pub fn loops(&self) -> Vec<&'static str> {
        self.handles.iter().filter(|(_, h)| !h.is_finished()).map(|(name, _)| *name).collect()
    }

    /// Stop every loop and wait for each to finish its current step (a dispatcher finishes the batch it
    /// claimed; unsent rows stay in the outbox for the next start or another instance).
    pub async fn stop(self) {
        self.token.cancel();
        for (name, handle) in self.handles {
            if let Err(e) = handle.await
                && e.is_panic()
            {
                tracing::error!(task = name, "background loop panicked");
            }
        }
    }
}

impl Gcp {
    /// Start the background loops of the enabled subsystems on the current Tokio runtime: the task
    /// dispatcher (claims and sends committed outbox rows; unless tasks are eager or disabled), the
    /// promotion repair loop (replays interrupted saves every 10 minutes, and once now), and in local
    /// mode the Scheduler clock (creates the periodic tasks' jobs through the same sync as production,
    /// then fires them on their cron schedules) and, when `PUBSUB_EMULATOR_HOST` is set, the subscriber
    /// tasks' push subscriptions on the emulator. Local stores clean their expired upload sessions from
    /// their routes' own timer.
    pub fn spawn_background(&self) -> Background {
        let token = CancellationToken::new();
        let mut handles = Vec::new();
        #[cfg(feature = "tasks")]
        if let Some(part) = &self.inner.tasks {
            if part.tasks.settings().sends() {
                let dispatcher =
                    crate::tasks::Dispatcher::new(part.tasks.clone(), self.inner.db.clone(), part.outbox.clone());
                let stop = token.clone();
                handles.push((
                    "dispatcher",
                    tokio::spawn(async move {
                        if let Err(e) = dispatcher.run_until(stop.cancelled_owned()).await {
                            tracing::error!(error = %e, "task dispatcher stopped");
                        }
                    }),
                ));
            }
            if part.local.is_some() {
                let gcp = self.clone();
                let stop = token.clone();
                handles.push((
                    "local-scheduler",
                    tokio::spawn(async move {
                        if let Err(e) = gcp.sync_schedules(false, false).await {
                            tracing::error!(error = %e, "local scheduler: creating the periodic tasks' jobs failed");
                        }
                        // Held until the loop stops: the emulator's pushes go through it.
                        let _proxy = match std::env::var("PUBSUB_EMULATOR_HOST") {
                            Ok(host) if !host.is_empty() => match gcp.push_emulator_to_worker(&host).await {
                                Ok(proxy) => proxy,
                                Err(e) => {
                                    tracing::error!(error = %e, "local tasks: subscribing on the Pub/Sub emulator failed");
                                    None
                                }
                            },
                            _ => None,
                        };
                        if let Some(local) = gcp.local_cloud() {
                            local.run_schedules(stop.cancelled_owned()).await;
                        }
                    }),
                ));
            }
        }
        let blobs = self.inner.blobs.clone();
        let stop = token.clone();
        handles.push((
            "repair",
            tokio::spawn(async move {
                loop {
                    match blobs.repair().await {
                        Ok(report) if !report.is_clean() => tracing::info!(%report, "blob outbox repaired"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "blob outbox repair failed; trying again later"),
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(REPAIR_EVERY) => {}
                    }
                }
            }),
        ));
        Background { token, handles }
    }
}
