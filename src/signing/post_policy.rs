//! V4 POST policies: an HTML form upload to GCS, bounded by signed conditions.
//!
//! The policy document is compact JSON, `{"conditions":[...],"expiration":"YYYY-MM-DDTHH:MM:SSZ"}`, whose
//! conditions are, in order: the caller's conditions; one `{"field": "value"}` per form field (sorted by
//! name, except `x-ignore-*` fields, which GCS ignores); then `bucket`, `key`, `x-goog-date`,
//! `x-goog-credential` and `x-goog-algorithm`. Non-ASCII characters are written as `\uXXXX` escapes
//! (UTF-16, lowercase hex), as in Google's vectors. The form's `policy` field is the base64 of that
//! document and `x-goog-signature` is the hex signature of that base64 text.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::Signer;
use super::canonical::{credential_scope, format_timestamp};
use super::target::{self, Endpoint, Target};
use super::url::check_expiration;
use crate::{Error, Result};

/// One condition of a POST policy.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyCondition {
    /// `["eq", "$field", "value"]`: the form field must equal `value`.
    Exact {
        /// Field name without `$`.
        field: String,
        /// Required value.
        value: String,
    },
    /// `["starts-with", "$field", "prefix"]`: the form field must start with `prefix` (empty: anything).
    StartsWith {
        /// Field name without `$`.
        field: String,
        /// Required prefix.
        prefix: String,
    },
    /// `["content-length-range", min, max]`: the upload's size in bytes.
    ContentLengthRange {
        /// Smallest size accepted.
        min: u64,
        /// Largest size accepted.
        max: u64,
    },
    /// Any other condition, as JSON (an array or a one-key object).
    Raw(Value),
}

fn dollar(field: &str) -> String {
    if field.starts_with('$') { field.to_string() } else { format!("${field}") }
}

impl PolicyCondition {
    /// The condition as it appears in the policy document.
    pub fn to_json(&self) -> Value {
        match self {
            PolicyCondition::Exact { field, value } => serde_json::json!(["eq", dollar(field), value]),
            PolicyCondition::StartsWith { field, prefix } => {
                serde_json::json!(["starts-with", dollar(field), prefix])
            }
            PolicyCondition::ContentLengthRange { min, max } => serde_json::json!(["content-length-range", min, max]),
            PolicyCondition::Raw(v) => v.clone(),
        }
    }

    /// Parse and check a condition written as JSON: `["starts-with","$acl","public"]`,
    /// `["eq","$Content-Type","image/png"]`, `["content-length-range",0,1048576]` or `{"acl":"private"}`.
    pub fn from_json(value: Value) -> Result<Self> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "policy condition {value} {why}: use [\"starts-with\",\"$field\",\"prefix\"], \
                 [\"eq\",\"$field\",\"value\"], [\"content-length-range\",MIN,MAX] or {{\"field\":\"value\"}}"
            ))
        };
        match &value {
            Value::Array(items) => {
                let op = items.first().and_then(Value::as_str).ok_or_else(|| bad("has no operator"))?;
                match (op.to_ascii_lowercase().as_str(), &items[1..]) {
                    ("content-length-range", [min, max]) => {
                        let (Some(min), Some(max)) = (min.as_u64(), max.as_u64()) else {
                            return Err(bad("needs two non-negative integers"));
                        };
                        if min > max {
                            return Err(bad("has its minimum above its maximum"));
                        }
                        Ok(PolicyCondition::ContentLengthRange { min, max })
                    }
                    ("starts-with", [Value::String(f), Value::String(p)]) if f.starts_with('$') => {
                        Ok(PolicyCondition::StartsWith { field: f[1..].to_string(), prefix: p.clone() })
                    }
                    ("eq", [Value::String(f), Value::String(v)]) if f.starts_with('$') => {
                        Ok(PolicyCondition::Exact { field: f[1..].to_string(), value: v.clone() })
                    }
                    _ => Err(bad("is not understood")),
                }
            }
            Value::Object(map) if map.len() == 1 && map.values().all(Value::is_string) => {
                Ok(PolicyCondition::Raw(value))
            }
            _ => Err(bad("is neither an array nor a one-field object")),
        }
    }
}

/// A POST policy request.
#[derive(Debug, Clone, Default)]
pub struct PostPolicyRequest {
    /// Bucket.
    pub bucket: String,
    /// Object name the form uploads to (the `key` field).
    pub object: String,
    /// How long the form may be used: at least 1 second, at most 7 days.
    pub expiration: Duration,
    /// Signing time (None: now).
    pub timestamp: Option<DateTime<Utc>>,
    /// Extra form fields, each also bound by an exact-match condition (`acl`, `cache-control`,
    /// `success_action_redirect`, `x-goog-meta-*`, ...).
    pub fields: BTreeMap<String, String>,
    /// Extra conditions, first in the policy.
    pub conditions: Vec<PolicyCondition>,
    /// Where the policy points (host selection).
    pub endpoint: Endpoint,
}

/// A signed POST policy: post a `multipart/form-data` form with `fields` (plus `file`, last) to `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostPolicy {
    /// Where to post the form.
    pub url: String,
    /// Form fields: `key`, the extra fields, `x-goog-*`, `policy`.
    pub fields: BTreeMap<String, String>,
}

/// Compact JSON with non-ASCII written as `\uXXXX` (lowercase hex, UTF-16 surrogates above U+FFFF).
fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn one(key: &str, value: &str) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(key.to_string(), Value::String(value.to_string()));
    Value::Object(map)
}

/// Sign a V4 POST policy.
pub async fn post_policy(signer: &dyn Signer, req: &PostPolicyRequest) -> Result<PostPolicy> {
    let expires = check_expiration(req.expiration)?;
    if req.object.is_empty() {
        return Err(Error::InvalidArgument("a POST policy needs an object name (the form's `key`)".into()));
    }
    let resolved =
        target::resolve(&Target { bucket: &req.bucket, object: Some(&req.object), endpoint: &req.endpoint }, true)?;
    let credential_id = signer.credential_id().await?;
    let at = req.timestamp.unwrap_or_else(Utc::now);
    let (datetime, date) = format_timestamp(&at);
    let scope = credential_scope(&date);
    let credential = format!("{credential_id}/{scope}");
    let algorithm = signer.algorithm().as_str();
    let expiration = (at + chrono::Duration::seconds(expires as i64)).format("%Y-%m-%dT%H:%M:%SZ").to_string();

    let mut conditions: Vec<Value> = req.conditions.iter().map(PolicyCondition::to_json).collect();
    for (name, value) in &req.fields {
        if !name.starts_with("x-ignore-") {
            conditions.push(one(name, value));
        }
    }
    for (name, value) in [
        ("bucket", req.bucket.as_str()),
        ("key", req.object.as_str()),
        ("x-goog-date", datetime.as_str()),
        ("x-goog-credential", credential.as_str()),
        ("x-goog-algorithm", algorithm),
    ] {
        conditions.push(one(name, value));
    }
    let document = format!(
        "{{\"conditions\":{},\"expiration\":{}}}",
        ascii_json(&Value::Array(conditions)),
        ascii_json(&Value::String(expiration))
    );
    let policy = base64::engine::general_purpose::STANDARD.encode(document.as_bytes());
    let signature = signer.sign_scoped(&scope, policy.as_bytes()).await?;

    let mut fields = req.fields.clone();
    fields.insert("key".into(), req.object.clone());
    fields.insert("x-goog-algorithm".into(), algorithm.to_string());
    fields.insert("x-goog-credential".into(), credential);
    fields.insert("x-goog-date".into(), datetime);
    fields.insert("x-goog-signature".into(), hex::encode(signature));
    fields.insert("policy".into(), policy);
    Ok(PostPolicy { url: resolved.base_url(), fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_non_ascii_like_the_vectors() {
        assert_eq!(ascii_json(&Value::String("$a-é😀\"/".into())), r#""$a-\u00e9\ud83d\ude00\"/""#);
    }

    #[test]
    fn conditions_parse_and_refuse() {
        let c = PolicyCondition::from_json(serde_json::json!(["starts-with", "$acl", "public"])).unwrap();
        assert_eq!(c.to_json(), serde_json::json!(["starts-with", "$acl", "public"]));
        let c = PolicyCondition::from_json(serde_json::json!(["content-length-range", 0, 1048576])).unwrap();
        assert_eq!(c, PolicyCondition::ContentLengthRange { min: 0, max: 1_048_576 });
        for bad in [
            serde_json::json!(["content-length-range", 5, 1]),
            serde_json::json!(["starts-with", "acl", "x"]),
            serde_json::json!("text"),
            serde_json::json!([]),
        ] {
            assert!(matches!(PolicyCondition::from_json(bad), Err(Error::InvalidArgument(_))));
        }
    }
}
