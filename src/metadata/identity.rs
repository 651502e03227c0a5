//! OIDC ID tokens for calling other Cloud Run services (`Authorization: Bearer <id token>`).

use super::MetadataClient;
use crate::{Error, Result};

impl MetadataClient {
    /// A Google-signed ID token (a JWT) for `audience` (the receiving service's URL), with the `email`
    /// claim included (`format=full`). Not cached: ask for one per outgoing call or keep it under an hour.
    pub async fn identity_token(&self, audience: &str) -> Result<String> {
        if audience.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "an ID token needs an audience: the URL of the service that will receive it".into(),
            ));
        }
        let path = format!(
            "instance/service-accounts/default/identity?audience={}&format=full",
            crate::encoding::component_iter(audience)
        );
        let token = self.get(&path).await?;
        if token.split('.').count() != 3 {
            return Err(Error::Metadata {
                path: "instance/service-accounts/default/identity".into(),
                status: None,
                message: "the answer is not a JWT (three dot-separated parts)".into(),
            });
        }
        Ok(token)
    }
}
