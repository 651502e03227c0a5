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
use super::load::{Document, Origin, is_secret_key};
use super::sections::{EventSettings, LogSettings, TaskSettings, UploadSettings};
use crate::{Error, Result};

/// The environment variable prefix for store options.
pub(crate) const ENV_PREFIX: &str = "SEA_GCP__";

/// `default` is django's alias of `media`, `staticfiles` of `static`; other keys are lowercased.
pub(crate) fn canonical_store_key(key: &str) -> String {
    match key.to_ascii_lowercase().as_str() {
        "default" => "media".into(),
        "staticfiles" => "static".into(),
        other => other.to_string(),
    }
}

/// The application's settings: its named stores and the sections of each subsystem, with where every
/// value came from. See the module docs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    stores: BTreeMap<String, StoreConfig>,
    /// The Google Cloud project (`GCP_PROJECT_ID`, then `GOOGLE_CLOUD_PROJECT`; on Cloud Run the
    /// metadata server answers when neither is set).
    pub project_id: Option<String>,
    /// The URL at which the application is reached (`BASE_URL`), e.g. `https://shop.example.com`:
    /// the default audience of push tokens and origin of task URLs.
    pub base_url: Option<String>,
    /// The path under which the app handle mounts its routes (default `/gcp`).
    pub prefix: String,
    /// `[uploads]`.
    pub uploads: UploadSettings,
    /// `[events]`.
    pub events: EventSettings,
    /// `[tasks]`.
    pub tasks: TaskSettings,
    /// `[logging]`.
    pub logging: LogSettings,
    origins: BTreeMap<String, Origin>,
    resolved: Map<String, Value>,
}

impl std::fmt::Debug for Settings {
    /// The typed sections only: the raw document, which holds secrets as text, is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("stores", &self.stores)
            .field("project_id", &self.project_id)
            .field("base_url", &self.base_url)
            .field("prefix", &self.prefix)
            .field("uploads", &self.uploads)
            .field("events", &self.events)
            .field("tasks", &self.tasks)
            .field("logging", &self.logging)
            .finish()
    }
}

/// The default of [`Settings::prefix`].
pub(crate) const DEFAULT_PREFIX: &str = "/gcp";

/// The settings file [`Settings::load`] reads when `SEA_GCP_SETTINGS` names none.
pub(crate) const DEFAULT_FILE: &str = "sea-gcp.toml";

impl Settings {
    /// A builder.
    pub fn builder() -> SettingsBuilder {
        SettingsBuilder::default()
    }

    /// The settings of this process: the file named by `SEA_GCP_SETTINGS`, else `sea-gcp.toml` in the
    /// working directory when there is one, then the environment (django-gcp's names, then
    /// `SEA_GCP__*`). A file named by `SEA_GCP_SETTINGS` must exist.
    pub fn load() -> Result<Self> {
        Self::load_from(std::env::vars())
    }

    /// Like [`load`](Self::load), with the given environment.
    pub fn load_from(env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let named = env.iter().find(|(k, _)| k == "SEA_GCP_SETTINGS").map(|(_, v)| v.clone());
        let path = match named {
            Some(path) => Some(std::path::PathBuf::from(path)),
            None => Some(std::path::PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()),
        };
        let mut doc = Document::default();
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::config(
                    None,
                    format!("cannot read settings file {} ({e}); SEA_GCP_SETTINGS names it", path.display()),
                )
            })?;
            doc.apply_file(parse_toml(&text)?, &Origin::File(path.display().to_string()))?;
        }
        doc.apply_env(env)?;
        Self::from_document(doc)
    }

    /// Parse TOML text (see the module docs), then apply the process environment.
    #[cfg(feature = "toml")]
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_toml_and_env(text, std::env::vars())
    }

    /// Read a TOML file, then apply the process environment.
    #[cfg(feature = "toml")]
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(None, format!("cannot read settings file {}: {e}", path.display())))?;
        let mut doc = Document::default();
        doc.apply_file(parse_toml(&text)?, &Origin::File(path.display().to_string()))?;
        doc.apply_env(std::env::vars())?;
        Self::from_document(doc)
    }

    /// Only environment variables (django-gcp's names and `SEA_GCP__*`).
    pub fn from_env() -> Result<Self> {
        Self::from_env_vars(std::env::vars())
    }

    /// Only the given environment (testable form of [`Settings::from_env`]).
    pub fn from_env_vars(env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut doc = Document::default();
        doc.apply_env(env)?;
        Self::from_document(doc)
    }

    /// TOML text plus the given environment (testable form of [`Settings::from_toml_str`]).
    #[cfg(feature = "toml")]
    pub fn from_toml_and_env(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut doc = Document::default();
        doc.apply_file(parse_toml(text)?, &Origin::File("(text)".into()))?;
        doc.apply_env(env)?;
        Self::from_document(doc)
    }

    /// Check every section and store of the merged document.
    fn from_document(doc: Document) -> Result<Self> {
        let Document { root, origins } = doc;
        let section = |name: &str| root.get(name).cloned().unwrap_or_else(|| Value::Object(Map::new()));
        fn typed<T: serde::de::DeserializeOwned>(name: &str, value: Value) -> Result<T> {
            serde_json::from_value(value).map_err(|e| Error::config(None, format!("[{name}]: {e}")))
        }
        let text = |name: &str| -> Result<Option<String>> {
            match root.get(name) {
                None => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(other) => Err(Error::config(None, format!("`{name}` must be text, not {other}"))),
            }
        };
        let mut stores = BTreeMap::new();
        if let Some(Value::Object(tables)) = root.get("stores") {
            for (key, table) in tables {
                let config: StoreConfig = serde_json::from_value(table.clone())
                    .map_err(|e| Error::config(Some(key.clone()), format!("{e}")))?;
                config.validate(key)?;
                stores.insert(key.clone(), config);
            }
        }
        let prefix = normalize_prefix(text("prefix")?.as_deref().unwrap_or(DEFAULT_PREFIX))?;
        let base_url = text("base_url")?.map(|u| u.trim_end_matches('/').to_string());
        if let Some(url) = &base_url {
            url::Url::parse(url).map_err(|e| {
                Error::config(None, format!("base_url {url:?} is not a URL ({e}); write it as https://host[:port]"))
            })?;
        }
        Ok(Settings {
            stores,
            project_id: text("project_id")?,
            base_url,
            prefix,
            uploads: typed("uploads", section("uploads"))?,
            events: typed("events", section("events"))?,
            tasks: typed("tasks", section("tasks"))?,
            logging: typed("logging", section("logging"))?,
            origins,
            resolved: root,
        })
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

    /// Where the value at `path` (`tasks.queue`, `stores.media.bucket_name`) came from; None for a
    /// default.
    pub fn origin(&self, path: &str) -> Option<&Origin> {
        self.origins.get(path)
    }

    /// Every setting, one `path = value  # origin` line each (`file PATH`, `env NAME`, `code` for a
    /// value changed after loading, or `default`), secrets shown as `***`: what `sea-gcp settings`
    /// prints.
    pub fn describe(&self) -> String {
        let mut view = Map::new();
        view.insert("project_id".into(), serde_json::to_value(&self.project_id).unwrap_or_default());
        view.insert("base_url".into(), serde_json::to_value(&self.base_url).unwrap_or_default());
        view.insert("prefix".into(), Value::String(self.prefix.clone()));
        view.insert("stores".into(), serde_json::to_value(&self.stores).unwrap_or_default());
        view.insert("uploads".into(), serde_json::to_value(&self.uploads).unwrap_or_default());
        view.insert("events".into(), serde_json::to_value(&self.events).unwrap_or_default());
        view.insert("tasks".into(), serde_json::to_value(&self.tasks).unwrap_or_default());
        view.insert("logging".into(), serde_json::to_value(&self.logging).unwrap_or_default());
        let mut lines = Vec::new();
        describe_leaves("", &Value::Object(view), &mut lines);
        let mut out = String::new();
        for (path, value) in lines {
            let loaded = lookup(&self.resolved, &path);
            let origin = match self.origins.get(&path) {
                Some(origin) if loaded.is_some_and(|v| same_value(v, &value)) => origin.to_string(),
                Some(_) => "code".to_string(),
                None if loaded.is_none() && !value.is_null() && !is_default(&path, &value) => "code".to_string(),
                None => "default".to_string(),
            };
            let shown = if path.split('.').any(is_secret_key) && !value.is_null() {
                "\"***\"".to_string()
            } else {
                value.to_string()
            };
            out.push_str(&format!("{path} = {shown}  # {origin}\n"));
        }
        out
    }
}

/// The leaves of `value` with their dotted paths (empty tables and lists are leaves).
fn describe_leaves(path: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                describe_leaves(&child, v, out);
            }
        }
        _ => out.push((path.to_string(), value.clone())),
    }
}

fn lookup<'a>(root: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut node = root.get(parts.next()?)?;
    for part in parts {
        node = node.get(part)?;
    }
    Some(node)
}

/// Loaded text and typed value agree (`"90"` read for a duration of 90 s, `"15m"` for 900).
fn same_value(loaded: &Value, typed: &Value) -> bool {
    match (loaded, typed) {
        (a, b) if a == b => true,
        (Value::String(a), Value::String(b)) => a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/'),
        // Text read into a number, flag or duration: the typed value came from it.
        (Value::String(_), _) | (_, Value::String(_)) => true,
        _ => false,
    }
}

/// True when `value` is what an untouched [`Settings`] holds at `path`.
fn is_default(path: &str, value: &Value) -> bool {
    if value.is_null() {
        return true;
    }
    if let Some(rest) = path.strip_prefix("stores.") {
        let field = rest.split_once('.').map(|(_, f)| f).unwrap_or_default();
        let Ok(Value::Object(store)) = serde_json::to_value(StoreConfig::default()) else { return false };
        return lookup(&store, field).is_some_and(|d| d == value);
    }
    let defaults = Settings { prefix: DEFAULT_PREFIX.into(), ..Settings::default() };
    let view = serde_json::json!({
        "prefix": defaults.prefix,
        "stores": {},
        "uploads": defaults.uploads,
        "events": defaults.events,
        "tasks": defaults.tasks,
        "logging": defaults.logging,
    });
    let Value::Object(map) = view else { return false };
    lookup(&map, path).is_some_and(|d| d == value)
}

fn normalize_prefix(prefix: &str) -> Result<String> {
    let trimmed = prefix.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') || trimmed.contains(['?', '#', ' ']) {
        return Err(Error::config(None, format!("prefix {prefix:?} must be a path such as /gcp (or empty)")));
    }
    Ok(trimmed.to_string())
}

#[cfg(feature = "toml")]
fn parse_toml(text: &str) -> Result<Map<String, Value>> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| Error::config(None, format!("settings TOML is invalid: {e}")))?;
    let Value::Object(map) = toml_to_json(toml::Value::Table(table)) else { unreachable!("a table") };
    Ok(map)
}

#[cfg(not(feature = "toml"))]
fn parse_toml(_text: &str) -> Result<Map<String, Value>> {
    Err(Error::config(None, "reading a settings file needs sea-gcp's `toml` feature"))
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
        Ok(Settings { stores: self.stores, prefix: DEFAULT_PREFIX.into(), ..Settings::default() })
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
