//! Values fixed for the life of an instance, each fetched once.

use tokio::sync::OnceCell;

use super::MetadataClient;
use crate::{Error, Result};

impl MetadataClient {
    async fn cached(&self, cell: &OnceCell<String>, path: &str) -> Result<String> {
        cell.get_or_try_init(|| self.get(path)).await.cloned()
    }

    /// The project id (`project/project-id`), fetched once.
    pub async fn project_id(&self) -> Result<String> {
        self.cached(&self.inner.project_id, "project/project-id").await
    }

    /// The project number (`project/numeric-project-id`), fetched once.
    pub async fn project_number(&self) -> Result<String> {
        self.cached(&self.inner.project_number, "project/numeric-project-id").await
    }

    /// The region (`us-central1`): the last segment of `instance/region` (`projects/N/regions/R`), fetched once.
    pub async fn region(&self) -> Result<String> {
        self.inner
            .region
            .get_or_try_init(|| async {
                let full = self.get("instance/region").await?;
                match full.rsplit('/').next().filter(|r| !r.is_empty()) {
                    Some(region) => Ok(region.to_string()),
                    None => Err(Error::Metadata {
                        path: "instance/region".into(),
                        status: None,
                        message: format!("`{full}` is not of the form projects/N/regions/R"),
                    }),
                }
            })
            .await
            .cloned()
    }

    /// The instance id (`instance/id`), fetched once.
    pub async fn instance_id(&self) -> Result<String> {
        self.cached(&self.inner.instance_id, "instance/id").await
    }

    /// The default service account's email (`instance/service-accounts/default/email`), fetched once.
    pub async fn service_account_email(&self) -> Result<String> {
        self.cached(&self.inner.email, "instance/service-accounts/default/email").await
    }
}
