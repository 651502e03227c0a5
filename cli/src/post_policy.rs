//! `sea-gcp post-policy gs://BUCKET/OBJECT`: print a V4 POST policy as JSON.

use std::io::Write;

use clap::Args;

use crate::args::{SignerArgs, TargetArgs, pairs_to_map, parse_gs_url, parse_key_value};
use sea_gcp::signing::{PolicyCondition, PostPolicyRequest, post_policy};
use sea_gcp::{Error, Result};

/// Flags of `sea-gcp post-policy`.
#[derive(Debug, Clone, Args)]
pub struct PostPolicyArgs {
    /// The object the form uploads to, as gs://BUCKET/OBJECT.
    #[arg(value_name = "URL")]
    pub url: String,

    /// A form field bound by the policy, KEY=VALUE (repeat for more), e.g. acl=public-read.
    #[arg(long = "field", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub fields: Vec<(String, String)>,

    /// A policy condition as JSON (repeat for more), e.g. '["starts-with","$acl","public"]' or
    /// '["content-length-range",0,1048576]'.
    #[arg(long = "condition", value_name = "JSON", value_parser = parse_condition)]
    pub conditions: Vec<PolicyCondition>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub signer: SignerArgs,
}

fn parse_condition(text: &str) -> std::result::Result<PolicyCondition, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("`{text}` is not JSON ({e}): write e.g. [\"eq\",\"$acl\",\"private\"]"))?;
    PolicyCondition::from_json(value).map_err(|e| match e {
        Error::InvalidArgument(m) => m,
        other => other.to_string(),
    })
}

impl PostPolicyArgs {
    /// The library request these flags describe.
    pub fn request(&self) -> Result<PostPolicyRequest> {
        let (bucket, object) = parse_gs_url(&self.url)?;
        if object.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "`{}` names no object: a POST policy is for one object, write gs://BUCKET/OBJECT",
                self.url
            )));
        }
        let t = &self.target;
        Ok(PostPolicyRequest {
            bucket,
            object,
            expiration: t.duration,
            timestamp: t.at,
            fields: pairs_to_map(&self.fields, "field", false)?,
            conditions: self.conditions.clone(),
            endpoint: t.endpoint(),
        })
    }

    /// Sign and print `{"url": ..., "fields": {...}}`.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let request = self.request()?;
        let policy = self.signer.sign_with(|signer| async move { post_policy(&*signer, &request).await }).await?;
        let json = serde_json::to_string(&policy).map_err(|e| Error::signing(format!("cannot write JSON: {e}")))?;
        writeln!(out, "{json}")?;
        Ok(())
    }
}
