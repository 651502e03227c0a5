//! Task ids of deduplicated tasks: a hash of the payload's canonical JSON.
//!
//! `id = sha256(canonical JSON)[..8 hex] + delimiter + slug [+ delimiter + affix]`. Canonical JSON has its
//! object keys sorted at every level (serde_json's default map is ordered), so `{"a":1,"b":2}` and
//! `{"b":2,"a":1}` give one id; django-gcp hashes `json.dumps` output, whose key order follows the dict.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The longest Cloud Tasks task id.
pub const MAX_TASK_ID_LEN: usize = 500;

/// The canonical JSON text of `payload`: compact, object keys sorted.
pub fn canonical_json<P: Serialize + ?Sized>(payload: &P) -> Result<String> {
    // Through `Value` (a BTreeMap without serde_json's `preserve_order`): keys come out sorted.
    let value = serde_json::to_value(payload)
        .map_err(|e| Error::InvalidArgument(format!("task payload does not serialize to JSON: {e}")))?;
    Ok(value.to_string())
}

/// The task id of a deduplicated task with `payload`, for the task `slug`.
pub fn task_id<P: Serialize + ?Sized>(payload: &P, slug: &str, delimiter: &str, affix: Option<&str>) -> Result<String> {
    let canonical = canonical_json(payload)?;
    let digest = hex::encode(Sha256::digest(canonical.as_bytes()));
    let mut id = format!("{}{delimiter}{slug}", &digest[..8]);
    if let Some(affix) = affix {
        id.push_str(delimiter);
        id.push_str(affix);
    }
    check_task_id(&id)?;
    Ok(id)
}

/// Cloud Tasks' task id rule: `[A-Za-z0-9_-]{1,500}`.
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TASK_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_task_id(id: &str) -> Result<()> {
    if valid_task_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "task id {id:?} is not valid for Cloud Tasks ([A-Za-z0-9_-], 1 to 500 characters): use a delimiter \
             and affix of letters, digits, `-` and `_`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        let a = task_id(&json!({"user": 1, "kind": {"z": 1, "a": [3, 2]}}), "mail", "--", None).unwrap();
        let b = task_id(&json!({"kind": {"a": [3, 2], "z": 1}, "user": 1}), "mail", "--", None).unwrap();
        assert_eq!(a, b);
        let c = task_id(&json!({"user": 2, "kind": {"z": 1, "a": [3, 2]}}), "mail", "--", None).unwrap();
        assert_ne!(a, c);
        // Array order is data: it changes the id.
        let d = task_id(&json!({"user": 1, "kind": {"z": 1, "a": [2, 3]}}), "mail", "--", None).unwrap();
        assert_ne!(a, d);
    }

    #[test]
    fn shape_hash_slug_affix() {
        let id = task_id(&json!({"a": 1}), "mail", "--", Some("shop-prod")).unwrap();
        let digest = hex::encode(Sha256::digest(br#"{"a":1}"#));
        assert_eq!(id, format!("{}--mail--shop-prod", &digest[..8]));
        assert_eq!(task_id(&json!({"a": 1}), "mail", "__", None).unwrap(), format!("{}__mail", &digest[..8]));
        assert!(task_id(&json!({"a": 1}), "mail", "//", None).is_err());
        assert!(valid_task_id(&"a".repeat(500)) && !valid_task_id(&"a".repeat(501)) && !valid_task_id(""));
    }
}
