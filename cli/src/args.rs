//! Flags shared by the signing subcommands, and their parsers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

use sea_gcp::config::{SigningConfig, parse_duration};
use sea_gcp::signing::{Endpoint, HmacSigner, IamSigner, ServiceAccountKeySigner, Signer, UrlStyle, check_expiration};
use sea_gcp::{Error, Result};

/// Which key signs. Without any of these flags: `GOOGLE_APPLICATION_CREDENTIALS` if it names a
/// service-account key, else IAM signBlob as the metadata server's account.
#[derive(Debug, Clone, Args)]
pub struct SignerArgs {
    /// Service-account JSON key file to sign with.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["hmac_access_id", "impersonate_service_account"])]
    pub private_key_file: Option<PathBuf>,

    /// HMAC key access id: sign with GOOG4-HMAC-SHA256 instead (needs --hmac-secret).
    #[arg(long, value_name = "ACCESS_ID", requires = "hmac_secret", conflicts_with = "impersonate_service_account")]
    pub hmac_access_id: Option<String>,

    /// HMAC key secret (used with --hmac-access-id).
    #[arg(long, value_name = "SECRET", env = "SEA_GCP_HMAC_SECRET", hide_env_values = true)]
    pub hmac_secret: Option<String>,

    /// Sign as this service account through IAM signBlob (no key file; needs
    /// roles/iam.serviceAccountTokenCreator on it).
    #[arg(long, value_name = "EMAIL")]
    pub impersonate_service_account: Option<String>,
}

impl SignerArgs {
    /// Build the signer the flags ask for.
    pub async fn signer(&self) -> Result<Arc<dyn Signer>> {
        if let Some(path) = &self.private_key_file {
            return Ok(Arc::new(ServiceAccountKeySigner::from_file(path)?));
        }
        if let Some(access_id) = &self.hmac_access_id {
            let secret = self.hmac_secret.clone().unwrap_or_default();
            return Ok(Arc::new(HmacSigner::new(access_id, secret)?));
        }
        if let Some(email) = &self.impersonate_service_account {
            return Ok(Arc::new(IamSigner::application_default(Some(email.clone()))?));
        }
        sea_gcp::signing::signer_from_config(&SigningConfig::Auto).await
    }

    /// True when no signing flag was given, so the signer comes from the environment (a key file in
    /// `GOOGLE_APPLICATION_CREDENTIALS`, else IAM signBlob as the metadata server's account).
    fn signer_from_environment(&self) -> bool {
        self.private_key_file.is_none() && self.hmac_access_id.is_none() && self.impersonate_service_account.is_none()
    }

    /// Build the signer and sign with it, naming the CLI's own flags when the environment has no
    /// credentials (off Google Cloud with no key file, the metadata server cannot be reached).
    pub async fn sign_with<T, F, Fut>(&self, sign: F) -> Result<T>
    where
        F: FnOnce(Arc<dyn Signer>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let result = match self.signer().await {
            Ok(signer) => sign(signer).await,
            Err(e) => Err(e),
        };
        match result {
            Err(Error::Signing { message, source }) if self.signer_from_environment() => Err(Error::Signing {
                message: format!(
                    "no signing credentials found ({message}); pass --private-key-file KEY.json (a service-account \
                     key), --hmac-access-id ID with --hmac-secret SECRET, or --impersonate-service-account EMAIL"
                ),
                source,
            }),
            other => other,
        }
    }
}

/// Lifetime, signing time and where the URL points.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// How long the signature is valid: 10s, 10m, 1h, 7d (at most 7 days).
    #[arg(short = 'd', long, value_name = "DURATION", default_value = "1h", value_parser = parse_lifetime)]
    pub duration: Duration,

    /// Signing time (RFC 3339, e.g. 2026-01-01T10:00:00Z); default now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub at: Option<DateTime<Utc>>,

    /// URL style: path, virtual-hosted or bucket-bound-hostname.
    #[arg(long, value_name = "STYLE", default_value = "path", value_parser = parse_style)]
    pub url_style: UrlStyle,

    /// Host serving the bucket for --url-style bucket-bound-hostname (e.g. cdn.example.com).
    #[arg(long, value_name = "HOST")]
    pub bucket_bound_hostname: Option<String>,

    /// URL scheme: https (default) or http.
    #[arg(long, value_name = "SCHEME", value_parser = ["http", "https"])]
    pub scheme: Option<String>,

    /// Host to sign for; beats --endpoint, the emulator host and --universe-domain.
    #[arg(long, value_name = "HOST")]
    pub hostname: Option<String>,

    /// Storage endpoint (e.g. https://storage.example.com:8443); beats the emulator host.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Storage emulator (fake-gcs-server) to sign for; beats --universe-domain.
    #[arg(long, value_name = "URL", env = "STORAGE_EMULATOR_HOST")]
    pub emulator_host: Option<String>,

    /// Universe domain: the host becomes storage.DOMAIN (default googleapis.com).
    #[arg(long, value_name = "DOMAIN")]
    pub universe_domain: Option<String>,
}

impl TargetArgs {
    /// The host selection these flags describe.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            url_style: self.url_style,
            scheme: self.scheme.clone(),
            hostname: self.hostname.clone(),
            client_endpoint: self.endpoint.clone(),
            emulator_host: self.emulator_host.clone(),
            universe_domain: self.universe_domain.clone(),
            bucket_bound_hostname: self.bucket_bound_hostname.clone(),
        }
    }
}

/// `gs://BUCKET/OBJECT` → (bucket, object); the object may be empty.
pub fn parse_gs_url(text: &str) -> Result<(String, String)> {
    let rest = text
        .strip_prefix("gs://")
        .ok_or_else(|| Error::InvalidArgument(format!("`{text}` is not a gs:// URL: write gs://BUCKET/OBJECT")))?;
    let (bucket, object) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::InvalidArgument(format!("`{text}` names no bucket: write gs://BUCKET/OBJECT")));
    }
    Ok((bucket.to_string(), object.to_string()))
}

fn invalid_message(e: Error) -> String {
    match e {
        Error::InvalidArgument(message) => message,
        other => other.to_string(),
    }
}

/// A signature lifetime: [`parse_duration`], then at least 1 second and at most 7 days.
pub fn parse_lifetime(text: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(text).map_err(invalid_message)?;
    check_expiration(d).map_err(invalid_message)?;
    Ok(d)
}

/// An RFC 3339 time.
pub fn parse_time(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}: write an RFC 3339 time such as 2026-01-01T10:00:00Z"))
}

/// A URL style name.
pub fn parse_style(text: &str) -> std::result::Result<UrlStyle, String> {
    text.parse().map_err(invalid_message)
}

/// `KEY=VALUE`, split at the first `=` not escaped as `\=` (write `\\` for a backslash in the key). The
/// value is taken as is.
pub fn parse_key_value(text: &str) -> std::result::Result<(String, String), String> {
    let mut key = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, next @ ('=' | '\\'))) => key.push(next),
                Some((_, other)) => {
                    key.push('\\');
                    key.push(other);
                }
                None => key.push('\\'),
            },
            '=' => {
                if key.trim().is_empty() {
                    return Err(format!("`{text}` has an empty KEY: write KEY=VALUE"));
                }
                return Ok((key, text[i + 1..].to_string()));
            }
            _ => key.push(c),
        }
    }
    Err(format!("`{text}` is not KEY=VALUE (no `=`; write `\\=` for an `=` inside the key)"))
}

/// Collect `KEY=VALUE` pairs; `what` names the flag in the error for a repeated key.
pub fn pairs_to_map(pairs: &[(String, String)], what: &str, join_repeats: bool) -> Result<BTreeMap<String, String>> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in pairs {
        match map.get_mut(k) {
            Some(existing) if join_repeats => {
                existing.push(',');
                existing.push_str(v);
            }
            Some(_) => {
                return Err(Error::InvalidArgument(format!("{what} `{k}` is given twice: give it once")));
            }
            None => {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(map)
}

/// The stores for a command: `--settings FILE` (or `$SEA_GCP_SETTINGS`), else `./sea-gcp.toml` when present,
/// else the environment alone; `SEA_GCP__<STORE>__<OPTION>` variables apply on top in every case.
pub fn load_settings(path: Option<&std::path::PathBuf>) -> sea_gcp::Result<sea_gcp::Settings> {
    match path {
        Some(p) => sea_gcp::Settings::from_file(p),
        None if std::path::Path::new("sea-gcp.toml").exists() => sea_gcp::Settings::from_file("sea-gcp.toml"),
        None => sea_gcp::Settings::from_env(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        assert_eq!(parse_key_value("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_key_value(r"x\=y=z").unwrap(), ("x=y".into(), "z".into()));
        assert_eq!(parse_key_value("k=").unwrap(), ("k".into(), "".into()));
        assert!(parse_key_value("novalue").unwrap_err().contains("not KEY=VALUE"));
        assert!(parse_key_value("=v").unwrap_err().contains("empty KEY"));
    }

    #[test]
    fn gs_urls_and_lifetimes() {
        assert_eq!(parse_gs_url("gs://b/a/b.txt").unwrap(), ("b".into(), "a/b.txt".into()));
        assert_eq!(parse_gs_url("gs://b").unwrap(), ("b".into(), "".into()));
        assert!(parse_gs_url("s3://b/o").is_err());
        assert_eq!(parse_lifetime("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_lifetime("8d").unwrap_err().contains("7 days"));
        assert!(parse_lifetime("ten").unwrap_err().contains("not understood"));
    }
}
