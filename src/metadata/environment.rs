//! What the Cloud Run environment variables say, without a network call.

/// True when `K_SERVICE` (a Cloud Run service) or `CLOUD_RUN_JOB` (a Cloud Run job) is set.
///
/// This never probes the network: on GCE or GKE it is false although a metadata server answers there.
pub fn is_cloud_run() -> bool {
    CloudRunEnvironment::from_env().is_cloud_run()
}

/// Cloud Run's environment variables, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]

pub struct CloudRunEnvironment {
    /// `K_SERVICE`: the service name (services only).
    pub service: Option<String>,
    /// `K_REVISION`: the revision name (services only).
    pub revision: Option<String>,
    /// `K_CONFIGURATION`: the configuration name (services only).
    pub configuration: Option<String>,
    /// `CLOUD_RUN_JOB`: the job name (jobs only).
    pub job: Option<String>,
    /// `CLOUD_RUN_EXECUTION`: the job execution (jobs only).
    pub execution: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl CloudRunEnvironment {
    /// Read the variables.
    pub fn from_env() -> Self {
        Self {
            service: var("K_SERVICE"),
            revision: var("K_REVISION"),
            configuration: var("K_CONFIGURATION"),
            job: var("CLOUD_RUN_JOB"),
            execution: var("CLOUD_RUN_EXECUTION"),
        }
    }

    /// True for a Cloud Run service or job.
    pub fn is_cloud_run(&self) -> bool {
        self.service.is_some() || self.job.is_some()
    }
}
