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
//! `SEA_GCP__MEDIA__OBJECT_PARAMETERS__CACHE_CONTROL=public, max-age=60`. Values are read as JSON
//! numbers, booleans and arrays when they parse as one (`true`, `524288`, `["text/css"]`), else taken as
//! strings. Reading TOML text needs the `toml` feature (on by default); [`Settings::from_env`] and the
//! builder do not.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

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

/// One store's options before they are checked: TOML tables and environment variables both become this.
type Table = Map<String, Value>;

#[cfg(feature = "toml")]
#[derive(serde::Deserialize)]
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
    #[cfg(feature = "toml")]
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_toml_and_env(text, std::env::vars())
    }

    /// Read a TOML file, then apply `SEA_GCP__*` environment overrides.
    #[cfg(feature = "toml")]
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(None, format!("cannot read settings file {}: {e}", path.display())))?;
        Self::from_toml_str(&text)
    }

    /// Only environment variables (`SEA_GCP__<STORE>__<OPTION>`).
    pub fn from_env() -> Result<Self> {
        Self::from_env_vars(std::env::vars())
    }

    /// Only the given environment (testable form of [`Settings::from_env`]).
    pub fn from_env_vars(env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        Self::from_tables(BTreeMap::new(), env)
    }

    /// TOML text plus the given environment (testable form of [`Settings::from_toml_str`]).
    #[cfg(feature = "toml")]
    pub fn from_toml_and_env(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let shape: FileShape =
            toml::from_str(text).map_err(|e| Error::config(None, format!("settings TOML is invalid: {e}")))?;
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        for (key, table) in shape.stores {
            let canonical = canonical_store_key(&key);
            let Value::Object(table) = toml_to_json(toml::Value::Table(table)) else { unreachable!("a table") };
            if tables.insert(canonical.clone(), table).is_some() {
                return Err(Error::config(
                    Some(canonical),
                    format!("defined twice (`{key}` is an alias); keep one table"),
                ));
            }
        }
        Self::from_tables(tables, env)
    }

    /// Apply the `SEA_GCP__*` variables of `env` over `tables`, then check every store.
    fn from_tables(
        mut tables: BTreeMap<String, Table>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
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
            let config: StoreConfig = serde_json::from_value(Value::Object(table))
                .map_err(|e| Error::config(Some(key.clone()), format!("{e}")))?;
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

pub(crate) fn parse_env_value(value: &str) -> Value {
    // Booleans, numbers and arrays as such; anything else (including `1d`) as a string.
    match serde_json::from_str::<Value>(value) {
        Ok(v @ (Value::Bool(_) | Value::Number(_) | Value::Array(_))) => v,
        _ => Value::String(value.to_string()),
    }
}

/// A TOML value as JSON: dates and times become their RFC 3339 text.
#[cfg(feature = "toml")]
fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect()),
    }
}

fn set_path(table: &mut Table, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(t) = entry {
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
    fn environment_only() {
        let env = [
            ("SEA_GCP__DEFAULT__BUCKET_NAME", "b"),
            ("SEA_GCP__MEDIA__GZIP", "true"),
            ("SEA_GCP__MEDIA__BLOB_CHUNK_SIZE", "524288"),
            ("SEA_GCP__MEDIA__GZIP_CONTENT_TYPES", r#"["text/css"]"#),
            ("SEA_GCP__MEDIA__EXPIRATION", "1h"),
            ("SEA_GCP__MEDIA__OBJECT_PARAMETERS__CACHE_CONTROL", "public, max-age=60"),
        ];
        let s = Settings::from_env_vars(env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        let media = s.store_config("media").unwrap();
        assert_eq!((media.bucket_name.as_str(), media.gzip, media.blob_chunk_size), ("b", true, Some(524_288)));
        assert_eq!(media.gzip_content_types, vec!["text/css".to_string()]);
        assert_eq!(media.expiration, Duration::from_secs(3600));
        assert_eq!(media.object_parameters.cache_control.as_deref(), Some("public, max-age=60"));
        let bad = [
            ("SEA_GCP__MEDIA__BUCKET_NAME".to_string(), "b".to_string()),
            ("SEA_GCP__MEDIA__GZIPP".into(), "1".into()),
        ];
        let err = Settings::from_env_vars(bad).unwrap_err().to_string();
        assert!(err.contains("store `media`") && err.contains("unknown field"), "{err}");
    }

    #[cfg(feature = "toml")]
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

    #[cfg(feature = "toml")]
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
