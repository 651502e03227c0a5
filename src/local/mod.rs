//! The cloud on a laptop: local stand-ins for the Google services that have no emulator, faithful to
//! what the real services check, shipped for local development and used by the crate's own tests.
//!
//! - [`LocalCloud`] (feature `tasks`): Cloud Tasks, Cloud Scheduler with a cron clock, an ID-token
//!   issuer and its JWKS, started together on loopback. The app handle starts one when `[tasks] local`
//!   is on (the default without a project), so tasks travel the production path: outbox, dispatcher,
//!   Cloud Tasks REST API, an HTTP push to the app's own worker route with a signed OIDC token, verified
//!   against the JWKS before the task runs, retried with backoff on failure, deduplicated by id; periodic
//!   tasks get Scheduler jobs through the same `sync` code as production and fire on their cron schedule.
//! - [`cloud_tasks`], [`scheduler`]: the two services on their own.
//! - [`oidc`]: the token issuer, a JWKS server and a token-adding proxy (for the Pub/Sub emulator, which
//!   sends no token).
//!
//! Nothing here listens off loopback or calls off loopback.

#[cfg(feature = "tasks")]
mod clock;
#[cfg(feature = "tasks")]
pub mod cloud_tasks;
pub mod oidc;
#[cfg(feature = "tasks")]
pub mod scheduler;

#[cfg(feature = "tasks")]
use std::sync::Arc;
#[cfg(feature = "tasks")]
use std::time::Duration;

/// A Google API error answer (`{"error": {"code", "message", "status"}}`), as the fakes send them.
#[cfg(feature = "tasks")]
pub(crate) fn google_error(
    status: axum::http::StatusCode,
    code: &str,
    message: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let body = serde_json::json!({"error": {"code": status.as_u16(), "message": message.into(), "status": code}});
    (status, axum::Json(body)).into_response()
}

/// The service account the local services sign their tokens as when `[tasks] invoker_account` is unset.
#[cfg(feature = "tasks")]
pub const LOCAL_INVOKER: &str = "local-invoker@local-project.iam.gserviceaccount.com";

/// The project id used locally when none is configured.
#[cfg(feature = "tasks")]
pub const LOCAL_PROJECT: &str = "local-project";

/// Local Cloud Tasks, Scheduler and token issuer, on loopback ports. See the [module docs](self).
#[cfg(feature = "tasks")]
pub struct LocalCloud {
    issuer: Arc<oidc::TestIssuer>,
    jwks: oidc::FakeJwks,
    tasks: cloud_tasks::FakeCloudTasks,
    scheduler: scheduler::FakeScheduler,
}

#[cfg(feature = "tasks")]
impl std::fmt::Debug for LocalCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCloud")
            .field("cloud_tasks", &self.tasks.url())
            .field("scheduler", &self.scheduler.url())
            .field("jwks", &self.jwks.url())
            .finish()
    }
}

#[cfg(feature = "tasks")]
impl LocalCloud {
    /// Start the services on free loopback ports, with a fresh signing key made in the background
    /// (about 0.1 s, needed only when the first token is signed or the JWKS first served).
    pub async fn start() -> Self {
        let kid = format!("local-{}", uuid::Uuid::new_v4().simple());
        let issuer = Arc::new(oidc::TestIssuer::generate_in_background(kid));
        let jwks = oidc::FakeJwks::start(&[]).await;
        jwks.publish_shared(issuer.clone());
        let tasks = cloud_tasks::FakeCloudTasks::start(issuer.clone()).await;
        let scheduler = scheduler::FakeScheduler::start(issuer.clone()).await;
        Self { issuer, jwks, tasks, scheduler }
    }

    /// Create queue `queue_path` with Cloud Tasks-like retries for development: 10 attempts, backoff
    /// from 1 s doubling to 60 s.
    pub fn create_queue(&self, queue_path: &str) {
        let config = cloud_tasks::QueueConfig {
            max_attempts: 10,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            ..Default::default()
        };
        self.tasks.create_queue(queue_path, config);
    }

    /// The Cloud Tasks endpoint.
    pub(crate) fn cloud_tasks_url(&self) -> String {
        self.tasks.url()
    }

    /// The Cloud Scheduler endpoint.
    pub(crate) fn scheduler_url(&self) -> String {
        self.scheduler.url()
    }

    /// A verifier of the tokens these services sign.
    pub fn verifier(&self) -> crate::auth::OidcVerifier {
        self.jwks.verifier()
    }

    /// Local Cloud Tasks, for inspection (tasks held, dispatches made).
    pub fn cloud_tasks(&self) -> &cloud_tasks::FakeCloudTasks {
        &self.tasks
    }

    /// Local Cloud Scheduler, for inspection (jobs held, runs made).
    pub fn scheduler(&self) -> &scheduler::FakeScheduler {
        &self.scheduler
    }

    /// The token issuer (for a [`oidc::BearerProxy`] in front of the Pub/Sub emulator).
    pub(crate) fn issuer(&self) -> Arc<oidc::TestIssuer> {
        self.issuer.clone()
    }

    /// Sign an ID token for `audience` as `email` (to call the app's routes by hand, e.g. with curl).
    pub fn mint_token(&self, audience: &str, email: &str) -> String {
        self.issuer.mint(&self.issuer.claims(audience, email))
    }

    /// Fire every Scheduler job at its cron times until `shutdown` resolves: the clock Cloud Scheduler
    /// runs. Jobs created later are picked up within 30 s.
    pub(crate) async fn run_schedules(&self, shutdown: impl std::future::Future<Output = ()>) {
        clock::run(&self.scheduler, shutdown).await;
    }
}
