//! The Cloud Run (and GCE / GKE) metadata server: project, region, instance, service account, tokens.
//!
//! [`MetadataClient`] sends every request with `Metadata-Flavor: Google`, accepts only answers that carry the
//! same header back (anything else at that address is not a metadata server), and uses short timeouts so
//! that code running off Google Cloud fails fast with [`Error::NotOnCloudRun`](crate::Error::NotOnCloudRun).
//! `GCE_METADATA_HOST` overrides the host (`metadata.google.internal`), as in Google's own libraries.
//!
//! Values that never change for an instance (project id and number, region, instance id, account email) are
//! fetched once and cached. The access token is cached until shortly before it expires; concurrent callers
//! share one fetch. [`is_cloud_run`] answers from the environment only (`K_SERVICE` / `CLOUD_RUN_JOB`),
//! without a network probe.
//!
//! ```no_run
//! # async fn demo() -> sea_gcp::Result<()> {
//! use sea_gcp::metadata::{MetadataClient, is_cloud_run};
//!
//! let metadata = MetadataClient::from_env();
//! if is_cloud_run() {
//!     let project = metadata.project_id().await?;
//!     let region = metadata.region().await?;
//!     let token = metadata.access_token().await?; // cached, one fetch for concurrent callers
//!     let id_token = metadata.identity_token("https://my-service-abc.a.run.app").await?;
//!     # let _ = (project, region, token, id_token);
//! }
//! # Ok(()) }
//! ```

mod client;
mod environment;
mod identity;
mod project;
mod token;

pub(crate) use client::DEFAULT_METADATA_HOST;
pub use client::{MetadataClient, MetadataOptions};
pub use environment::{CloudRunEnvironment, is_cloud_run};
pub use token::MetadataToken;
