//! One settings document from three sources, each value remembering where it came from.
//!
//! Precedence, lowest first: built-in defaults, the settings file, django-gcp's variable names
//! (`GCP_TASKS_*`, `GCP_PROJECT_ID`, ...), then `SEA_GCP__<SECTION>__<KEY>`. A later source replaces a
//! value, never merges into it (a list set by a variable replaces the file's list).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::settings::{ENV_PREFIX, canonical_store_key, parse_env_value};
use crate::{Error, Result};

/// The top-level keys of the settings file, and of `SEA_GCP__<KEY>`.
pub(crate) const TOP_KEYS: &[&str] =
    &["project_id", "base_url", "prefix", "stores", "uploads", "events", "tasks", "logging"];

/// The keys of each section (kept equal to the section structs by a test).
pub(crate) const SECTION_KEYS: &[(&str, &[&str])] = &[
    ("uploads", &["secret", "ticket_lifetime", "allow_anonymous"]),
    ("events", &["external_url", "invoker_emails", "authenticate"]),
    (
        "tasks",
        &[
            "queue",
            "domain",
            "region",
            "affix",
            "delimiter",
            "eager",
            "disabled",
            "invoker_account",
            "cloud_tasks_emulator",
            "scheduler_emulator",
            "django_gcp_compat",
            "local",
            "dispatch_deadline",
        ],
    ),
    ("logging", &["service", "version", "trusted_proxies"]),
];

/// How a django-gcp variable's text becomes a value.
#[derive(Clone, Copy)]
enum Shape {
    Text,
    Flag,
    List,
}

/// django-gcp's variables (and two older sea-gcp ones), in the order they apply: a later line wins over
/// an earlier one with the same key (`GCP_PROJECT_ID` over `GOOGLE_CLOUD_PROJECT`).
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("GOOGLE_CLOUD_PROJECT", "project_id"),
    ("GCP_PROJECT_ID", "project_id"),
    ("BASE_URL", "base_url"),
    ("SEA_GCP_SECRET_KEY", "uploads.secret"),
    ("SEA_GCP_INVOKER_EMAILS", "events.invoker_emails"),
    ("GCP_INVOKER_SERVICE_ACCOUNT_EMAILS", "events.invoker_emails"),
    ("GCP_TASKS_DEFAULT_QUEUE_NAME", "tasks.queue"),
    ("GCP_TASKS_DOMAIN", "tasks.domain"),
    ("GCP_TASKS_REGION", "tasks.region"),
    ("GCP_TASKS_RESOURCE_AFFIX", "tasks.affix"),
    ("GCP_TASKS_DELIMITER", "tasks.delimiter"),
    ("GCP_TASKS_EAGER_EXECUTE", "tasks.eager"),
    ("GCP_TASKS_DISABLE_EXECUTE", "tasks.disabled"),
    ("GCP_TASKS_INVOKER_SERVICE_ACCOUNT", "tasks.invoker_account"),
    ("GCP_TASKS_EMULATOR_TARGET", "tasks.cloud_tasks_emulator"),
    ("GCP_SCHEDULER_EMULATOR_TARGET", "tasks.scheduler_emulator"),
    ("GCP_TASKS_DJANGO_GCP_COMPAT", "tasks.django_gcp_compat"),
    ("GCP_ERROR_REPORTING_SERVICE_NAME", "logging.service"),
];

fn shape_of(path: &str) -> Shape {
    match path {
        "tasks.eager" | "tasks.disabled" | "tasks.django_gcp_compat" => Shape::Flag,
        "events.invoker_emails" => Shape::List,
        _ => Shape::Text,
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The settings file (its path when read from one).
    File(String),
    /// An environment variable, by name.
    Env(String),
    /// Set in code through the builder.
    Code,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "file {path}"),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Code => f.write_str("code"),
        }
    }
}

/// The merged document and the origin of each of its values (by dotted path).
#[derive(Debug, Default)]
pub(crate) struct Document {
    pub(crate) root: Map<String, Value>,
    pub(crate) origins: BTreeMap<String, Origin>,
}

/// The valid name nearest to `wrong`, when one is near enough to be a typo.
pub(crate) fn nearest<'a>(wrong: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(wrong, v), *v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

fn unknown(what: &str, key: &str, valid: &[&str], origin: &Origin) -> Error {
    let hint = match nearest(key, valid) {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!("valid keys: {}", valid.join(", ")),
    };
    Error::config(None, format!("unknown setting `{what}{key}` ({origin}): {hint}"))
}

impl Document {
    fn set(&mut self, path: &[String], value: Value, origin: Origin) {
        let dotted = path.join(".");
        // A replaced table forgets the origins of what it held.
        self.origins.retain(|k, _| !(k.starts_with(&dotted) && k[dotted.len()..].starts_with('.')));
        record_leaves(&dotted, &value, &origin, &mut self.origins);
        set_path(&mut self.root, path, value);
    }

    /// A file's (or TOML text's) top-level table.
    pub(crate) fn apply_file(&mut self, table: Map<String, Value>, origin: &Origin) -> Result<()> {
        for (key, value) in table {
            match key.as_str() {
                "stores" => {
                    let Value::Object(stores) = value else {
                        return Err(Error::config(None, format!("`stores` must be a table of stores ({origin})")));
                    };
                    let mut seen = BTreeMap::new();
                    for (store, config) in stores {
                        let canonical = canonical_store_key(&store);
                        if let Some(first) = seen.insert(canonical.clone(), store.clone()) {
                            return Err(Error::config(
                                Some(canonical),
                                format!("defined twice (`{first}` and `{store}` name the same store); keep one table"),
                            ));
                        }
                        self.set(&["stores".into(), canonical], config, origin.clone());
                    }
                }
                "uploads" | "events" | "tasks" | "logging" => {
                    let Value::Object(section) = value else {
                        return Err(Error::config(None, format!("`{key}` must be a table ({origin})")));
                    };
                    let valid = section_keys(&key);
                    for (field, v) in section {
                        if !valid.contains(&field.as_str()) {
                            return Err(unknown(&format!("{key}."), &field, valid, origin));
                        }
                        self.set(&[key.clone(), field], v, origin.clone());
                    }
                }
                "project_id" | "base_url" | "prefix" => self.set(&[key], value, origin.clone()),
                other => return Err(unknown("", other, TOP_KEYS, origin)),
            }
        }
        Ok(())
    }

    /// django-gcp's variables, then `SEA_GCP__*`.
    pub(crate) fn apply_env(&mut self, env: impl IntoIterator<Item = (String, String)>) -> Result<()> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for (var, path) in ALIASES {
            let Some(raw) = env.get(*var) else { continue };
            // The delimiter is taken as written; elsewhere an empty value means "unset", as in django-gcp.
            let text = if *var == "GCP_TASKS_DELIMITER" { raw.as_str() } else { raw.trim() };
            if text.is_empty() {
                continue;
            }
            let value = match shape_of(path) {
                Shape::Text => Value::String(text.to_string()),
                Shape::Flag => Value::Bool(parse_flag(var, text)?),
                Shape::List => Value::Array(
                    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.into())).collect(),
                ),
            };
            let path: Vec<String> = path.split('.').map(String::from).collect();
            self.set(&path, value, Origin::Env((*var).to_string()));
        }
        for (var, value) in &env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
            let origin = Origin::Env(var.clone());
            let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let path = match parts.as_slice() {
                [top] if matches!(top.as_str(), "project_id" | "base_url" | "prefix") => parts.clone(),
                [section, key] if !section_keys(section).is_empty() => {
                    let valid = section_keys(section);
                    if !valid.contains(&key.as_str()) {
                        return Err(unknown(&format!("{section}."), key, valid, &origin));
                    }
                    parts.clone()
                }
                [stores, store, rest @ ..] if stores == "stores" && !rest.is_empty() => {
                    let mut path = vec!["stores".to_string(), canonical_store_key(store)];
                    path.extend(rest.iter().cloned());
                    path
                }
                // The short form of the store options: SEA_GCP__MEDIA__BUCKET_NAME.
                [store, first, rest @ ..] if !TOP_KEYS.contains(&store.as_str()) => {
                    let mut path = vec!["stores".to_string(), canonical_store_key(store), first.clone()];
                    path.extend(rest.iter().cloned());
                    path
                }
                _ => {
                    let hint = match parts.first().and_then(|top| nearest(top, TOP_KEYS)) {
                        Some(near) if parts.len() == 1 => {
                            format!("; did you mean {ENV_PREFIX}{}?", near.to_uppercase())
                        }
                        _ => String::new(),
                    };
                    return Err(Error::config(
                        None,
                        format!(
                            "environment variable {var} should look like {ENV_PREFIX}<SECTION>__<KEY> \
                             (e.g. {ENV_PREFIX}TASKS__QUEUE), {ENV_PREFIX}PROJECT_ID or \
                             {ENV_PREFIX}<STORE>__<OPTION> (e.g. {ENV_PREFIX}MEDIA__BUCKET_NAME){hint}"
                        ),
                    ));
                }
            };
            let parsed = match path.as_slice() {
                // Text settings stay text even when they look like numbers (a queue named `2024`).
                [s, k] if s != "stores" && is_text_key(s, k) => Value::String(value.clone()),
                [s, k] if is_list_key(s, k) && !value.trim_start().starts_with('[') => Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.into()))
                        .collect(),
                ),
                [top] if top != "stores" => Value::String(value.clone()),
                _ => parse_env_value(value),
            };
            self.set(&path, parsed, origin);
        }
        Ok(())
    }
}

/// List settings, which a variable may give as comma-separated text.
fn is_list_key(section: &str, key: &str) -> bool {
    matches!((section, key), ("events", "invoker_emails") | ("logging", "trusted_proxies"))
}

fn is_text_key(section: &str, key: &str) -> bool {
    matches!(
        (section, key),
        ("uploads", "secret")
            | ("events", "external_url")
            | ("tasks", "queue" | "domain" | "region" | "affix" | "delimiter" | "invoker_account")
            | ("tasks", "cloud_tasks_emulator" | "scheduler_emulator")
            | ("logging", "service" | "version")
    )
}

pub(crate) fn section_keys(section: &str) -> &'static [&'static str] {
    SECTION_KEYS.iter().find(|(s, _)| *s == section).map(|(_, keys)| *keys).unwrap_or(&[])
}

fn parse_flag(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(Error::config(None, format!("{name}={other:?} is not a boolean: use true or false"))),
    }
}

fn record_leaves(path: &str, value: &Value, origin: &Origin, out: &mut BTreeMap<String, Origin>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                record_leaves(&format!("{path}.{k}"), v, origin, out);
            }
        }
        _ => {
            out.insert(path.to_string(), origin.clone());
        }
    }
}

fn set_path(table: &mut Map<String, Value>, path: &[String], value: Value) {
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

/// True for keys whose values are never printed.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "private_key", "password", "credentials", "token"].iter().any(|s| key.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_are_typos_only() {
        assert_eq!(nearest("quue", section_keys("tasks")), Some("queue"));
        assert_eq!(nearest("invoker_email", section_keys("events")), Some("invoker_emails"));
        assert_eq!(nearest("colour", section_keys("tasks")), None);
    }
}
