//! `patch_metadata`: `objects.patch` of the live object.
//!
//! Sent directly with a JSON body (not `gcloud-storage`'s `patch_object`): removing a custom metadata
//! key, or clearing a field given as an empty string, needs an explicit JSON `null`, which its `Object`
//! type cannot express. Retried only when guarded by `ifMetagenerationMatch`, or, for a patch marked
//! [`repeatable`](crate::storage::MetadataPatch::repeatable), by `ifGenerationMatch`.

use serde_json::{Map, Value};

use super::GcsStore;
use super::client::encode_segment;
use super::convert;
use crate::Result;
use crate::storage::retry::Idempotency;
use crate::storage::{MetadataPatch, ObjectMeta};

/// The JSON body for `patch`: only fields set in it; `""` and removed keys become `null`.
pub(super) fn patch_body(patch: &MetadataPatch) -> Value {
    let mut body = Map::new();
    let mut field = |key: &str, value: &Option<String>| {
        if let Some(v) = value {
            body.insert(key.to_string(), if v.is_empty() { Value::Null } else { Value::String(v.clone()) });
        }
    };
    field("contentType", &patch.content_type);
    field("cacheControl", &patch.cache_control);
    field("contentDisposition", &patch.content_disposition);
    field("contentLanguage", &patch.content_language);
    field("contentEncoding", &patch.content_encoding);
    if let Some(t) = patch.custom_time {
        body.insert("customTime".into(), Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
    }
    if !patch.metadata.is_empty() {
        let metadata: Map<String, Value> = patch
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().map(Value::String).unwrap_or(Value::Null)))
            .collect();
        body.insert("metadata".into(), Value::Object(metadata));
    }
    Value::Object(body)
}

pub(super) async fn patch_metadata(store: &GcsStore, name: &str, patch: MetadataPatch) -> Result<ObjectMeta> {
    let (rel, key) = store.keyspace.key(name)?;
    let ctx = store.ctx(&rel);
    let p = &patch.preconditions;
    let query: Vec<(&str, i64)> = [
        ("ifGenerationMatch", p.if_generation_match),
        ("ifGenerationNotMatch", p.if_generation_not_match),
        ("ifMetagenerationMatch", p.if_metageneration_match),
        ("ifMetagenerationNotMatch", p.if_metageneration_not_match),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let url = format!("{}/b/{}/o/{}", store.conn.api_base(), encode_segment(store.bucket()), encode_segment(&key));
    let body = patch_body(&patch);
    let idempotency = if patch.repeatable { Idempotency::for_repeatable_patch(p) } else { Idempotency::for_patch(p) };
    store
        .retry
        .run("gcs.patch_metadata", idempotency, || async {
            let request = store.conn.request(reqwest::Method::PATCH, &url).await?.query(&query).json(&body);
            let response = request.send().await.map_err(|e| ctx.middleware(e))?;
            convert::read_meta(&ctx, &store.keyspace, ctx.check(response).await?).await
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_nulls() {
        let mut patch = MetadataPatch { content_type: Some("text/plain".into()), ..Default::default() };
        patch.cache_control = Some(String::new());
        patch.metadata.insert("keep".into(), Some("1".into()));
        patch.metadata.insert("drop".into(), None);
        let body = patch_body(&patch);
        assert_eq!(
            body,
            serde_json::json!({"contentType": "text/plain", "cacheControl": null, "metadata": {"keep": "1", "drop": null}})
        );
    }
}
