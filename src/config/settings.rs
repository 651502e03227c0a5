//! [`Settings`]: the application's named stores.
//!
//! TOML shape (each table is a [`StoreConfig`]):
//!
//! ```toml
//! [stores.media]
//! bucket_name = "my-app-media"
//! location = "uploads"
//!
//! [stores.static]
//! bucket_name = "my-app-static"
//! default_acl = "publicRead"
//! gzip = true
//!
//! [stores.reports]          # an extra store
//! backend = "local"
//! root = "./reports"
//! ```
//!
//! Environment variables override or add single options: `SEA_GCP__<STORE>__<OPTION>=value`, e.g.
//! `SEA_GCP__MEDIA__BUCKET_NAME=my-bucket`, `SEA_GCP__STATIC__GZIP=true`,
//! `SEA_GCP__MEDIA__OBJECT_PARAMETERS__CACHE_CONTROL=public, max-age=60`. Values are parsed as TOML
//! scalars when they can be (numbers, booleans), else taken as strings.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::StoreConfig;
use crate::{Error, Result};

/// The environment variable prefix for store options.
pub const ENV_PREFIX: &str = "SEA_GCP__";

/// `default` is django's alias of `media`, `staticfiles` of `static`; other keys are lowercased.
pub fn canonical_store_key(key: &str) -> String {
    match key.to_ascii_lowercase().as_str() {
        "default" => "media".into(),
        "staticfiles" => "static".into(),
        other => other.to_string(),
    }
}

/// The named stores of an application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    stores: BTreeMap<String, StoreConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    stores: BTreeMap<String, toml::Table>,
}

impl Settings {
    /// A builder.
    pub fn builder() -> SettingsBuilder {
        SettingsBuilder::default()
    }

    /// Parse TOML text (see the module docs), then apply `SEA_GCP__*` environment overrides.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_toml_and_env(text, std::env::vars())
    }

    /// Read a TOML file, then apply `SEA_GCP__*` environment overrides.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(None, format!("cannot read settings file {}: {e}", path.display())))?;
        Self::from_toml_str(&text)
    }

    /// Only environment variables (`SEA_GCP__<STORE>__<OPTION>`).
    pub fn from_env() -> Result<Self> {
        Self::from_toml_and_env("", std::env::vars())
    }

    /// TOML text plus the given environment (testable form of [`Settings::from_toml_str`]).
    pub fn from_toml_and_env(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let shape: FileShape =
            toml::from_str(text).map_err(|e| Error::config(None, format!("settings TOML is invalid: {e}")))?;
        let mut tables: BTreeMap<String, toml::Table> = BTreeMap::new();
        for (key, table) in shape.stores {
            let canonical = canonical_store_key(&key);
            if tables.insert(canonical.clone(), table).is_some() {
                return Err(Error::config(
                    Some(canonical),
                    format!("defined twice (`{key}` is an alias); keep one table"),
                ));
            }
        }
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let mut parts = rest.split("__");
            let (Some(store), Some(first)) = (parts.next(), parts.next()) else {
                return Err(Error::config(
                    None,
                    format!("environment variable {var} should look like {ENV_PREFIX}<STORE>__<OPTION>"),
                ));
            };
            let path: Vec<String> = std::iter::once(first).chain(parts).map(|p| p.to_ascii_lowercase()).collect();
            let table = tables.entry(canonical_store_key(store)).or_default();
            set_path(table, &path, parse_env_value(&value));
        }
        let mut stores = BTreeMap::new();
        for (key, table) in tables {
            let config: StoreConfig =
                toml::Value::Table(table).try_into().map_err(|e| Error::config(Some(key.clone()), format!("{e}")))?;
            config.validate(&key)?;
            stores.insert(key, config);
        }
        Ok(Settings { stores })
    }

    /// The configuration of store `key` (aliases accepted).
    pub fn store_config(&self, key: &str) -> Result<&StoreConfig> {
        let canonical = canonical_store_key(key);
        self.stores.get(&canonical).ok_or_else(|| {
            Error::config(
                Some(canonical.clone()),
                format!(
                    "no such store; configured stores are {:?}. Add a [stores.{canonical}] table or \
                     SEA_GCP__{}__BUCKET_NAME",
                    self.stores.keys().collect::<Vec<_>>(),
                    canonical.to_ascii_uppercase()
                ),
            )
        })
    }

    /// Names of the configured stores.
    pub fn store_keys(&self) -> impl Iterator<Item = &str> {
        self.stores.keys().map(String::as_str)
    }
}

fn parse_env_value(value: &str) -> toml::Value {
    // Booleans and numbers as TOML scalars; anything else (including `1d`) as a string.
    match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut t) => match t.remove("v") {
            Some(v @ (toml::Value::Boolean(_) | toml::Value::Integer(_) | toml::Value::Float(_))) => v,
            Some(v @ toml::Value::Array(_)) => v,
            _ => toml::Value::String(value.to_string()),
        },
        Err(_) => toml::Value::String(value.to_string()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

/// Builds [`Settings`] in code.
#[derive(Debug, Default)]
pub struct SettingsBuilder {
    stores: BTreeMap<String, StoreConfig>,
}

impl SettingsBuilder {
    /// Add (or replace) store `key` (aliases `default`/`staticfiles` accepted).
    pub fn store(mut self, key: &str, config: StoreConfig) -> Self {
        self.stores.insert(canonical_store_key(key), config);
        self
    }

    /// Validate every store and build.
    pub fn build(self) -> Result<Settings> {
        for (key, config) in &self.stores {
            config.validate(key)?;
        }
        Ok(Settings { stores: self.stores })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::BackendConfig;

    #[test]
    fn toml_env_and_aliases() {
        let text = r#"
            [stores.default]
            bucket_name = "media-bucket"
            location = "uploads"
            expiration = "1h"
            object_parameters = { cache_control = "private", metadata = { team = "a" } }

            [stores.staticfiles]
            bucket_name = "static-bucket"
            default_acl = "publicRead"

            [stores.reports]
            backend = "local"
            root = "/tmp/reports"
        "#;
        let env = vec![
            ("SEA_GCP__STATIC__GZIP".to_string(), "true".to_string()),
            ("SEA_GCP__MEDIA__BLOB_CHUNK_SIZE".to_string(), "524288".to_string()),
            ("SEA_GCP__MEDIA__OBJECT_PARAMETERS__CONTENT_LANGUAGE".to_string(), "en".to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let s = Settings::from_toml_and_env(text, env).unwrap();
        let media = s.store_config("default").unwrap();
        assert_eq!(media.bucket_name, "media-bucket");
        assert_eq!(media.expiration, Duration::from_secs(3600));
        assert_eq!(media.blob_chunk_size, Some(524_288));
        assert_eq!(media.object_parameters.cache_control.as_deref(), Some("private"));
        assert_eq!(media.object_parameters.content_language.as_deref(), Some("en"));
        assert_eq!(media.object_parameters.metadata.get("team").map(String::as_str), Some("a"));
        assert!(media.querystring_auth && media.file_overwrite && !media.gzip);
        let stat = s.store_config("staticfiles").unwrap();
        assert!(stat.gzip && stat.public_urls());
        assert!(s.store_config("reports").unwrap().backend == BackendConfig::Local);
        let missing = s.store_config("extras").unwrap_err().to_string();
        assert!(missing.contains("no such store") && missing.contains("[stores.extras]"), "{missing}");
    }

    #[test]
    fn bad_options_name_the_store_and_fix() {
        let cases = [
            ("location = \"/x\"", "location = \"x\""),
            ("blob_chunk_size = 1000", "multiple of 256 KiB"),
            ("expiration = \"8d\"", "7 days"),
            ("default_acl = \"public\"", "predefined ACL"),
            ("custom_endpoint = \"cdn\"", "http(s) URL"),
            ("gzipp = true", "unknown field"),
        ];
        for (line, needle) in cases {
            let text = format!("[stores.media]\nbucket_name = \"b\"\n{line}\n");
            let err = Settings::from_toml_and_env(&text, Vec::new()).unwrap_err().to_string();
            assert!(err.contains("store `media`") && err.contains(needle), "{line}: {err}");
        }
        let err = Settings::from_toml_and_env("[stores.media]\n", Vec::new()).unwrap_err().to_string();
        assert!(err.contains("bucket_name is empty"), "{err}");
    }
}
