//! [`TasksSettings`]: django-gcp's `GCP_TASKS_*` settings, with its names and defaults, checked at
//! start-up.
//!
//! | setting | environment variable | default |
//! |---|---|---|
//! | [`default_queue`](TasksSettings::default_queue) | `GCP_TASKS_DEFAULT_QUEUE_NAME` | required |
//! | [`tasks_domain`](TasksSettings::tasks_domain) | `GCP_TASKS_DOMAIN` | required (https unless eager or a fake endpoint) |
//! | [`resource_affix`](TasksSettings::resource_affix) | `GCP_TASKS_RESOURCE_AFFIX` | none |
//! | [`region`](TasksSettings::region) | `GCP_TASKS_REGION` | `europe-west1` |
//! | [`delimiter`](TasksSettings::delimiter) | `GCP_TASKS_DELIMITER` | `--` |
//! | [`eager_execute`](TasksSettings::eager_execute) | `GCP_TASKS_EAGER_EXECUTE` | false |
//! | [`disable_execute`](TasksSettings::disable_execute) | `GCP_TASKS_DISABLE_EXECUTE` | false |
//! | [`project_id`](TasksSettings::project_id) | `GCP_PROJECT_ID` (then `GOOGLE_CLOUD_PROJECT`, then the metadata server) | required unless eager or disabled |
//! | [`invoker_service_account`](TasksSettings::invoker_service_account) | `GCP_TASKS_INVOKER_SERVICE_ACCOUNT` | required unless eager or disabled |
//! | [`cloud_tasks_endpoint`](TasksSettings::cloud_tasks_endpoint) | `GCP_TASKS_EMULATOR_TARGET` | `https://cloudtasks.googleapis.com` |
//! | [`scheduler_endpoint`](TasksSettings::scheduler_endpoint) | `GCP_SCHEDULER_EMULATOR_TARGET` | `https://cloudscheduler.googleapis.com` |
//! | [`django_gcp_compat`](TasksSettings::django_gcp_compat) | `GCP_TASKS_DJANGO_GCP_COMPAT` | false |
//!
//! django-gcp documents `GCP_PROJECT_ID` but never reads it; here it is read, and [`resolve_project_id`]
//! asks the metadata server when neither variable is set (on Cloud Run, GKE, GCE).

use std::time::Duration;

use crate::{Error, Result};

/// The Cloud Tasks REST endpoint.
pub(crate) const CLOUD_TASKS_ENDPOINT: &str = "https://cloudtasks.googleapis.com";
/// The Cloud Scheduler REST endpoint.
pub(crate) const SCHEDULER_ENDPOINT: &str = "https://cloudscheduler.googleapis.com";
/// django-gcp's default region.
pub(crate) const DEFAULT_REGION: &str = "europe-west1";
/// django-gcp's default delimiter.
pub(crate) const DEFAULT_DELIMITER: &str = "--";

/// The settings of the tasks module. The app handle builds them from `[tasks]`; without it, read
/// django-gcp's environment with [`TasksSettings::from_env`], or start from `TasksSettings::default()`,
/// set the fields and check the combination with [`TasksSettings::validate`] (`Tasks::new` checks it too).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TasksSettings {
    /// The queue tasks go to unless they name their own (`GCP_TASKS_DEFAULT_QUEUE_NAME`).
    pub default_queue: String,
    /// The worker's base URL, to which Cloud Tasks, Scheduler and Pub/Sub push (`GCP_TASKS_DOMAIN`), e.g.
    /// `https://worker.example.com` or `https://worker.example.com/internal` when the worker router is
    /// mounted under a prefix.
    pub tasks_domain: String,
    /// A label affixed to every resource this crate creates (task ids of deduplicated tasks, Scheduler
    /// jobs, subscriptions); `sync --cleanup` deletes only resources carrying it.
    pub resource_affix: Option<String>,
    /// The region of the queues and Scheduler jobs.
    pub region: String,
    /// The delimiter in resource names.
    pub delimiter: String,
    /// Run tasks in-process at enqueue instead of sending them (tests, local development).
    pub eager_execute: bool,
    /// Enqueue nothing (and say so): for environments that must not run background work.
    pub disable_execute: bool,
    /// The Google Cloud project of the queues, jobs and topics.
    pub project_id: Option<String>,
    /// The service account Cloud Tasks, Scheduler and Pub/Sub sign their OIDC tokens as; also the
    /// worker's invoker allow-list.
    pub invoker_service_account: Option<String>,
    /// The Cloud Tasks endpoint (a fake's loopback URL in tests).
    pub cloud_tasks_endpoint: String,
    /// The Cloud Scheduler endpoint.
    pub scheduler_endpoint: String,
    /// Cloud Tasks' dispatch deadline for tasks that set none (Cloud Tasks' default: 10 minutes).
    pub dispatch_deadline: Option<Duration>,
    /// Name things the way django-gcp does (`GCP_TASKS_DJANGO_GCP_COMPAT`, default false), for an
    /// application taking over from a django-gcp one: deduplication ids hash the payload as Python's
    /// `json.dumps` writes it ([`django_gcp_json`](super::django_gcp_json)), and Scheduler jobs are
    /// named `{affix}{delimiter}{task}` instead of `{task}{delimiter}{affix}`.
    pub django_gcp_compat: bool,
}

impl Default for TasksSettings {
    /// The defaults of every optional setting; the required ones are empty (and `validate` says so).
    fn default() -> Self {
        Self {
            default_queue: String::new(),
            tasks_domain: String::new(),
            resource_affix: None,
            region: DEFAULT_REGION.into(),
            delimiter: DEFAULT_DELIMITER.into(),
            eager_execute: false,
            disable_execute: false,
            project_id: None,
            invoker_service_account: None,
            cloud_tasks_endpoint: CLOUD_TASKS_ENDPOINT.into(),
            scheduler_endpoint: SCHEDULER_ENDPOINT.into(),
            dispatch_deadline: None,
            django_gcp_compat: false,
        }
    }
}

fn config(message: impl std::fmt::Display) -> Error {
    Error::config(None, message)
}

pub(crate) fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(config(format!("{name}={other:?} is not a boolean: use true or false"))),
    }
}

impl TasksSettings {
    /// Read the `GCP_TASKS_*` variables (see the module docs), then [`validate`](Self::validate).
    pub fn from_env() -> Result<Self> {
        Self::from_vars(std::env::vars())
    }

    /// Like [`from_env`](Self::from_env), from the given variables.
    pub(crate) fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let s = Self::read_vars(vars)?;
        s.validate()?;
        Ok(s)
    }

    /// The settings `sea-gcp tasks sync` needs, from the given variables: everything
    /// `from_vars` checks but the default queue, which Scheduler jobs and push
    /// subscriptions never name (a queue set anyway is still checked).
    pub fn for_sync_from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut s = Self::read_vars(vars)?;
        let placeholder = s.default_queue.trim().is_empty();
        if placeholder {
            s.default_queue = "unused-by-sync".into();
        }
        s.validate()?;
        if placeholder {
            s.default_queue.clear();
        }
        Ok(s)
    }

    /// The variables as settings, unchecked.
    fn read_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        let get = |k: &str| vars.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut s = TasksSettings::default();
        if let Some(v) = get("GCP_TASKS_DEFAULT_QUEUE_NAME") {
            s.default_queue = v;
        }
        if let Some(v) = get("GCP_TASKS_DOMAIN") {
            s.tasks_domain = v;
        }
        s.resource_affix = get("GCP_TASKS_RESOURCE_AFFIX");
        if let Some(v) = get("GCP_TASKS_REGION") {
            s.region = v;
        }
        // The delimiter is read untrimmed: only an unset variable means the default.
        if let Some(v) = vars.get("GCP_TASKS_DELIMITER").filter(|v| !v.is_empty()) {
            s.delimiter = v.clone();
        }
        if let Some(v) = get("GCP_TASKS_EAGER_EXECUTE") {
            s.eager_execute = parse_bool("GCP_TASKS_EAGER_EXECUTE", &v)?;
        }
        if let Some(v) = get("GCP_TASKS_DISABLE_EXECUTE") {
            s.disable_execute = parse_bool("GCP_TASKS_DISABLE_EXECUTE", &v)?;
        }
        s.project_id = get("GCP_PROJECT_ID").or_else(|| get("GOOGLE_CLOUD_PROJECT"));
        s.invoker_service_account = get("GCP_TASKS_INVOKER_SERVICE_ACCOUNT");
        if let Some(v) = get("GCP_TASKS_DJANGO_GCP_COMPAT") {
            s.django_gcp_compat = parse_bool("GCP_TASKS_DJANGO_GCP_COMPAT", &v)?;
        }
        if let Some(v) = get("GCP_TASKS_EMULATOR_TARGET") {
            s.cloud_tasks_endpoint = v;
        }
        if let Some(v) = get("GCP_SCHEDULER_EMULATOR_TARGET") {
            s.scheduler_endpoint = v;
        }
        Ok(s)
    }

    /// True when tasks are sent to Cloud Tasks (neither eager nor disabled).
    pub fn sends(&self) -> bool {
        !self.eager_execute && !self.disable_execute
    }

    /// True when the Cloud Tasks endpoint is a loopback fake or emulator, not Google's.
    pub(crate) fn uses_fake_endpoint(&self) -> bool {
        is_loopback_url(&self.cloud_tasks_endpoint)
    }

    /// Check the combination: the errors a misconfigured deployment must hit at start-up, not at the
    /// first enqueue.
    pub fn validate(&self) -> Result<()> {
        if self.eager_execute && self.disable_execute {
            return Err(config(
                "GCP_TASKS_EAGER_EXECUTE and GCP_TASKS_DISABLE_EXECUTE are both true: eager runs every task \
                 in-process, disabled runs none; set at most one",
            ));
        }
        if self.default_queue.trim().is_empty() {
            return Err(config(
                "GCP_TASKS_DEFAULT_QUEUE_NAME is required: name the Cloud Tasks queue tasks go to by default \
                 (gcloud tasks queues create NAME --location REGION)",
            ));
        }
        if !valid_queue_id(&self.default_queue) {
            return Err(config(format!(
                "GCP_TASKS_DEFAULT_QUEUE_NAME={:?} is not a queue id: use letters, digits and hyphens (at most \
                 100); give the id, not the full projects/.../queues/... path",
                self.default_queue
            )));
        }
        if self.delimiter.is_empty() {
            return Err(config("GCP_TASKS_DELIMITER must not be empty (default `--`)"));
        }
        if let Some(affix) = &self.resource_affix
            && !affix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(config(format!(
                "GCP_TASKS_RESOURCE_AFFIX={affix:?} must hold only letters, digits, `-` and `_` (it goes into \
                 task ids and resource names)"
            )));
        }
        if self.tasks_domain.trim().is_empty() {
            return Err(config(
                "GCP_TASKS_DOMAIN is required: the worker's base URL Cloud Tasks pushes to, e.g. \
                 https://worker-abc123-ew.a.run.app",
            ));
        }
        let domain = url::Url::parse(&self.tasks_domain).map_err(|e| {
            config(format!(
                "GCP_TASKS_DOMAIN={:?} is not an absolute URL ({e}): give https://host[/prefix]",
                self.tasks_domain
            ))
        })?;
        if domain.query().is_some() || domain.fragment().is_some() {
            return Err(config("GCP_TASKS_DOMAIN must not carry a query string or fragment"));
        }
        let fake = self.uses_fake_endpoint() || self.eager_execute || self.disable_execute;
        if domain.scheme() != "https" && !fake {
            return Err(config(format!(
                "GCP_TASKS_DOMAIN={:?} must use https: Cloud Tasks sends OIDC tokens only to secure endpoints \
                 (http is accepted only with eager execution or a loopback GCP_TASKS_EMULATOR_TARGET)",
                self.tasks_domain
            )));
        }
        if self.sends() {
            if self.project_id.as_deref().is_none_or(|p| p.trim().is_empty()) {
                return Err(config(
                    "no project id: set GCP_PROJECT_ID (or GOOGLE_CLOUD_PROJECT) to the Google Cloud project of \
                     the queue and the jobs",
                ));
            }
            if self.invoker_service_account.as_deref().is_none_or(|a| !a.contains('@')) {
                return Err(config(
                    "GCP_TASKS_INVOKER_SERVICE_ACCOUNT is required: the service account e-mail Cloud Tasks signs \
                     its OIDC token as (it needs roles/run.invoker on the worker; the enqueuing identity needs \
                     roles/iam.serviceAccountUser on it)",
                ));
            }
        }
        Ok(())
    }

    /// The queue's full name, `projects/P/locations/REGION/queues/Q`.
    pub fn queue_path(&self, queue: &str) -> String {
        format!("projects/{}/locations/{}/queues/{queue}", self.project_id.as_deref().unwrap_or_default(), self.region)
    }

    /// The URL of a task's worker route: `{tasks_domain}/tasks/{name}`.
    pub fn task_url(&self, task: &str) -> String {
        format!("{}/tasks/{task}", self.tasks_domain.trim_end_matches('/'))
    }

    /// The URL of a subscriber task's push route: `{tasks_domain}/subscriber-tasks/{name}`.
    pub fn subscriber_task_url(&self, task: &str) -> String {
        format!("{}/subscriber-tasks/{task}", self.tasks_domain.trim_end_matches('/'))
    }

    /// The origin of [`tasks_domain`](Self::tasks_domain) (`https://host[:port]`): the external base URL
    /// token audiences are built from.
    pub(crate) fn tasks_origin(&self) -> String {
        match url::Url::parse(&self.tasks_domain) {
            Ok(u) => u.origin().ascii_serialization(),
            Err(_) => self.tasks_domain.clone(),
        }
    }

    /// `value` with the resource affix appended (`value{delimiter}{affix}`), or `value` without an affix.
    pub fn affixed(&self, value: &str) -> String {
        match &self.resource_affix {
            Some(affix) => format!("{value}{}{affix}", self.delimiter),
            None => value.to_string(),
        }
    }

    /// True when `name` carries this application's affix (`…{delimiter}{affix}`): what `sync --cleanup`
    /// may delete. Always false without an affix.
    pub(crate) fn carries_affix(&self, name: &str) -> bool {
        match &self.resource_affix {
            Some(affix) => name.ends_with(&format!("{}{affix}", self.delimiter)),
            None => false,
        }
    }

    /// The Scheduler job id of the periodic task `task`: `{task}{delimiter}{affix}`, or django-gcp's
    /// `{affix}{delimiter}{task}` with [`django_gcp_compat`](Self::django_gcp_compat) (the task alone
    /// without an affix).
    pub fn job_id(&self, task: &str) -> String {
        match &self.resource_affix {
            Some(affix) if self.django_gcp_compat => format!("{affix}{}{task}", self.delimiter),
            _ => self.affixed(task),
        }
    }

    /// True when the Scheduler job id `id` carries the affix where [`job_id`](Self::job_id) puts it:
    /// a job `sync --cleanup` may delete. Always false without an affix.
    pub(crate) fn job_carries_affix(&self, id: &str) -> bool {
        match &self.resource_affix {
            Some(affix) if self.django_gcp_compat => id.starts_with(&format!("{affix}{}", self.delimiter)),
            _ => self.carries_affix(id),
        }
    }

    /// True when the Scheduler job id `id` carries the affix where the other naming puts it (a prefix by
    /// default, a suffix with [`django_gcp_compat`](Self::django_gcp_compat)): a job of the same
    /// application named the other way, which `sync` reports and never deletes.
    pub(crate) fn job_carries_affix_elsewhere(&self, id: &str) -> bool {
        let Some(affix) = &self.resource_affix else { return false };
        let other = if self.django_gcp_compat {
            id.ends_with(&format!("{}{affix}", self.delimiter))
        } else {
            id.starts_with(&format!("{affix}{}", self.delimiter))
        };
        other && !self.job_carries_affix(id)
    }

    /// Fill [`project_id`](Self::project_id) from the metadata server when it is unset (`GCE_METADATA_HOST`
    /// overrides the host), then validate again.
    pub async fn resolve_project_id(mut self) -> Result<Self> {
        if self.project_id.is_none() {
            self.project_id = Some(metadata_project_id().await?);
        }
        self.validate()?;
        Ok(self)
    }
}

/// Queue ids: letters, digits and hyphens, 1 to 100 characters.
pub(crate) fn valid_queue_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The project id from the metadata server (`/computeMetadata/v1/project/project-id`).
pub(crate) async fn metadata_project_id() -> Result<String> {
    let host = std::env::var("GCE_METADATA_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| crate::signing::token::DEFAULT_METADATA_HOST.to_string());
    let base = if host.contains("://") { host } else { format!("http://{host}") };
    let url = format!("{}/computeMetadata/v1/project/project-id", base.trim_end_matches('/'));
    let hint = "set GCP_PROJECT_ID, or run on Cloud Run / GKE / GCE";
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| config(format!("HTTP client: {e}")))?;
    let response = client
        .get(&url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .map_err(|e| config(format!("cannot reach the metadata server for the project id ({e}); {hint}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() || text.trim().is_empty() {
        return Err(config(format!("the metadata server answered HTTP {status} for the project id; {hint}")));
    }
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const BASE: [(&str, &str); 4] = [
        ("GCP_TASKS_DEFAULT_QUEUE_NAME", "primary"),
        ("GCP_TASKS_DOMAIN", "https://worker.example.com"),
        ("GCP_PROJECT_ID", "my-project"),
        ("GCP_TASKS_INVOKER_SERVICE_ACCOUNT", "invoker@my-project.iam.gserviceaccount.com"),
    ];

    #[test]
    fn django_gcp_names_and_defaults() {
        let s = TasksSettings::from_vars(vars(&BASE)).unwrap();
        assert_eq!(s.region, "europe-west1");
        assert_eq!(s.delimiter, "--");
        assert_eq!(s.resource_affix, None);
        assert!(!s.eager_execute && !s.disable_execute);
        assert_eq!(s.project_id.as_deref(), Some("my-project"));
        assert_eq!(s.queue_path("primary"), "projects/my-project/locations/europe-west1/queues/primary");
        assert_eq!(s.task_url("send-mail"), "https://worker.example.com/tasks/send-mail");
        assert_eq!(s.cloud_tasks_endpoint, CLOUD_TASKS_ENDPOINT);

        let mut v = vars(&BASE);
        v.extend(vars(&[
            ("GCP_TASKS_RESOURCE_AFFIX", "shop-prod"),
            ("GCP_TASKS_REGION", "us-central1"),
            ("GCP_TASKS_DELIMITER", "__"),
            ("GCP_TASKS_EAGER_EXECUTE", "false"),
        ]));
        let s = TasksSettings::from_vars(v).unwrap();
        assert_eq!(s.affixed("nightly"), "nightly__shop-prod");
        assert!(s.carries_affix("nightly__shop-prod"));
        assert!(!s.carries_affix("nightly__shop-staging"));
        assert_eq!(s.region, "us-central1");
    }

    #[test]
    fn project_id_is_read_with_a_fallback() {
        let mut v: Vec<_> = vars(&BASE).into_iter().filter(|(k, _)| k != "GCP_PROJECT_ID").collect();
        v.push(("GOOGLE_CLOUD_PROJECT".into(), "from-gcloud".into()));
        assert_eq!(TasksSettings::from_vars(v).unwrap().project_id.as_deref(), Some("from-gcloud"));
        let v: Vec<_> = vars(&BASE).into_iter().filter(|(k, _)| k != "GCP_PROJECT_ID").collect();
        let err = TasksSettings::from_vars(v).unwrap_err().to_string();
        assert!(err.contains("GCP_PROJECT_ID"), "{err}");
    }

    #[test]
    fn eager_and_disabled_together_is_a_start_up_error() {
        let mut v = vars(&BASE);
        v.push(("GCP_TASKS_EAGER_EXECUTE".into(), "true".into()));
        v.push(("GCP_TASKS_DISABLE_EXECUTE".into(), "1".into()));
        let err = TasksSettings::from_vars(v).unwrap_err().to_string();
        assert!(err.contains("both true"), "{err}");
        let both = TasksSettings {
            default_queue: "q".into(),
            tasks_domain: "http://localhost".into(),
            eager_execute: true,
            disable_execute: true,
            ..TasksSettings::default()
        };
        let err = both.validate().unwrap_err();
        assert!(err.to_string().contains("at most one"));
    }

    #[test]
    fn required_settings_and_https() {
        let missing_queue: Vec<_> =
            vars(&BASE).into_iter().filter(|(k, _)| k != "GCP_TASKS_DEFAULT_QUEUE_NAME").collect();
        assert!(
            TasksSettings::from_vars(missing_queue).unwrap_err().to_string().contains("GCP_TASKS_DEFAULT_QUEUE_NAME")
        );
        let missing_domain: Vec<_> = vars(&BASE).into_iter().filter(|(k, _)| k != "GCP_TASKS_DOMAIN").collect();
        assert!(
            TasksSettings::from_vars(missing_domain).unwrap_err().to_string().contains("GCP_TASKS_DOMAIN is required")
        );

        let mut http = vars(&BASE);
        http[1].1 = "http://worker.example.com".into();
        let err = TasksSettings::from_vars(http.clone()).unwrap_err().to_string();
        assert!(err.contains("must use https"), "{err}");
        // http is fine with eager execution, or a loopback fake endpoint.
        let mut eager = http.clone();
        eager.push(("GCP_TASKS_EAGER_EXECUTE".into(), "true".into()));
        assert!(TasksSettings::from_vars(eager).is_ok());
        let mut fake = http.clone();
        fake.push(("GCP_TASKS_EMULATOR_TARGET".into(), "http://127.0.0.1:8123".into()));
        assert!(TasksSettings::from_vars(fake).is_ok());
        // A non-loopback "emulator" does not relax it.
        let mut remote = http;
        remote.push(("GCP_TASKS_EMULATOR_TARGET".into(), "http://10.0.0.5:8123".into()));
        assert!(TasksSettings::from_vars(remote).is_err());

        let missing_invoker: Vec<_> =
            vars(&BASE).into_iter().filter(|(k, _)| k != "GCP_TASKS_INVOKER_SERVICE_ACCOUNT").collect();
        assert!(TasksSettings::from_vars(missing_invoker).unwrap_err().to_string().contains("INVOKER"));

        let mut bad_queue = vars(&BASE);
        bad_queue[0].1 = "projects/p/locations/l/queues/q".into();
        assert!(TasksSettings::from_vars(bad_queue).unwrap_err().to_string().contains("not a queue id"));
        let mut bad_bool = vars(&BASE);
        bad_bool.push(("GCP_TASKS_EAGER_EXECUTE".into(), "maybe".into()));
        assert!(TasksSettings::from_vars(bad_bool).unwrap_err().to_string().contains("not a boolean"));
    }

    #[test]
    fn origin_of_a_prefixed_domain() {
        let s = TasksSettings {
            default_queue: "q".into(),
            tasks_domain: "https://worker.example.com/internal/".into(),
            project_id: Some("p".into()),
            invoker_service_account: Some("i@p.iam.gserviceaccount.com".into()),
            ..TasksSettings::default()
        };
        s.validate().unwrap();
        assert_eq!(s.tasks_origin(), "https://worker.example.com");
        assert_eq!(s.task_url("x"), "https://worker.example.com/internal/tasks/x");
    }
}
