//! The settings sections beside `[stores.*]`: `[uploads]`, `[events]`, `[tasks]` and `[logging]`.
//!
//! Each section is a plain struct with the defaults a new application wants; every field can come from
//! the settings file, from `SEA_GCP__<SECTION>__<KEY>` or from the django-gcp variable named in its doc.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// `[uploads]`: direct browser uploads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct UploadSettings {
    /// The key that signs upload tickets and local-store URLs (`SEA_GCP__UPLOADS__SECRET`; at least 32
    /// bytes). Unset: a random key per process, which is fine for one local process only.
    pub secret: Option<Secret>,
    /// How long an upload ticket is valid (default: the upload field's own, 1 hour).
    #[serde(default, with = "optional_duration")]
    pub ticket_lifetime: Option<Duration>,
    /// Accept uploads from anyone, with tickets bound to no session (local development, public forms).
    pub allow_anonymous: bool,
}

/// `[events]`: Pub/Sub and Eventarc push endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EventSettings {
    /// The URL at which Google reaches the app, the audience of push tokens (default: `base_url`).
    pub external_url: Option<String>,
    /// The service accounts allowed to push (`GCP_INVOKER_SERVICE_ACCOUNT_EMAILS`, comma-separated).
    pub invoker_emails: Vec<String>,
    /// Verify push tokens (default true). Turning it off is refused outside loopback development.
    pub authenticate: bool,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self { external_url: None, invoker_emails: Vec::new(), authenticate: true }
    }
}

/// `[tasks]`: Cloud Tasks, Cloud Scheduler and subscriber tasks (django-gcp's `GCP_TASKS_*`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TaskSettings {
    /// The queue tasks go to unless they name their own (`GCP_TASKS_DEFAULT_QUEUE_NAME`; default
    /// `default`).
    pub queue: String,
    /// The base URL Cloud Tasks and Scheduler push to (`GCP_TASKS_DOMAIN`; default: `base_url`). An
    /// origin alone gets the routes' prefix (`https://worker.example.com` → `.../gcp`); a URL with a path
    /// is taken as written.
    pub domain: Option<String>,
    /// The region of queues and jobs (`GCP_TASKS_REGION`; default `europe-west1`).
    pub region: String,
    /// A label on every resource the crate creates (`GCP_TASKS_RESOURCE_AFFIX`).
    pub affix: Option<String>,
    /// The delimiter in resource names (`GCP_TASKS_DELIMITER`; default `--`).
    pub delimiter: String,
    /// Run tasks in-process at enqueue (`GCP_TASKS_EAGER_EXECUTE`).
    pub eager: bool,
    /// Enqueue nothing (`GCP_TASKS_DISABLE_EXECUTE`).
    pub disabled: bool,
    /// The account Cloud Tasks and Scheduler sign their tokens as (`GCP_TASKS_INVOKER_SERVICE_ACCOUNT`).
    pub invoker_account: Option<String>,
    /// A Cloud Tasks emulator or fake on loopback (`GCP_TASKS_EMULATOR_TARGET`).
    pub cloud_tasks_emulator: Option<String>,
    /// A Cloud Scheduler emulator or fake on loopback (`GCP_SCHEDULER_EMULATOR_TARGET`).
    pub scheduler_emulator: Option<String>,
    /// Name dedup ids and jobs as django-gcp does (`GCP_TASKS_DJANGO_GCP_COMPAT`).
    pub django_gcp_compat: bool,
    /// Run a local Cloud Tasks and Scheduler inside the app: tasks go through a queue to the app's own
    /// worker route with a locally signed, verified token (`SEA_GCP__TASKS__LOCAL`; the default when no
    /// project is configured).
    pub local: Option<bool>,
    /// Cloud Tasks' dispatch deadline for tasks that set none.
    #[serde(default, with = "optional_duration")]
    pub dispatch_deadline: Option<Duration>,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            queue: "default".into(),
            domain: None,
            region: "europe-west1".into(),
            affix: None,
            delimiter: "--".into(),
            eager: false,
            disabled: false,
            invoker_account: None,
            cloud_tasks_emulator: None,
            scheduler_emulator: None,
            django_gcp_compat: false,
            local: None,
            dispatch_deadline: None,
        }
    }
}

/// `[logging]`: Cloud Logging and Error Reporting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LogSettings {
    /// The service name in Error Reporting (`GCP_ERROR_REPORTING_SERVICE_NAME`; default: Cloud Run's
    /// `K_SERVICE`).
    pub service: Option<String>,
    /// The service version (default: Cloud Run's `K_REVISION`).
    pub version: Option<String>,
    /// Proxies whose `X-Forwarded-For` is trusted for the client address (CIDR ranges).
    pub trusted_proxies: Vec<String>,
}

/// `Option<Duration>` as seconds or text (`90`, `"15m"`).
mod optional_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => crate::config::duration_serde::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        crate::config::duration_serde::deserialize(d).map(Some)
    }
}

#[cfg(feature = "logging")]
impl LogSettings {
    /// The Cloud Logging layer's options, with Error Reporting's service context from `service` and
    /// `version` (each unset one falls back to Cloud Run's `K_SERVICE` / `K_REVISION`).
    pub fn logging_options(&self) -> crate::logging::LoggingOptions {
        let mut options = crate::logging::LoggingOptions::default();
        options.service = self.service.clone().or(options.service);
        options.version = self.version.clone().or(options.version);
        options
    }

    /// `trusted_proxies` as the trace and request-log layers take them: CIDR networks (`10.0.0.0/8`), or
    /// one number, the count of proxies in front of the app (`"1"` on Cloud Run alone, `"2"` behind an
    /// external load balancer). Empty: trust none.
    pub fn trusted_proxies(&self) -> crate::Result<crate::logging::TrustedProxies> {
        use crate::logging::TrustedProxies;
        if let [only] = self.trusted_proxies.as_slice()
            && let Ok(hops) = only.trim().parse::<usize>()
        {
            return Ok(TrustedProxies::Hops(hops));
        }
        if self.trusted_proxies.is_empty() {
            return Ok(TrustedProxies::None);
        }
        let networks = self
            .trusted_proxies
            .iter()
            .map(|n| {
                n.trim().parse::<ipnet::IpNet>().map_err(|_| {
                    crate::Error::config(
                        None,
                        format!(
                            "[logging] trusted_proxies entry {n:?} is not a network (10.0.0.0/8) nor a count of proxies"
                        ),
                    )
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(TrustedProxies::Networks(networks))
    }
}
