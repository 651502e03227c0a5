//! `list` and `list_generations`.
//!
//! Prefixes are sent as full keys (location included) and every name and common prefix in the answer is
//! made relative to the location again. Page tokens are GCS's, passed through unchanged.

use gcloud_storage::http::objects::list::ListObjectsRequest;

use super::GcsStore;
use super::convert;
use crate::Result;
use crate::storage::naming::normalize_prefix;
use crate::storage::retry::Idempotency;
use crate::storage::{ListOptions, ListPage, ObjectMeta};

pub(super) async fn list(store: &GcsStore, opts: ListOptions) -> Result<ListPage> {
    let prefix = normalize_prefix(opts.prefix.as_deref().unwrap_or(""))?;
    let full_prefix = store.keyspace.prefix_key(&prefix)?;
    let req = ListObjectsRequest {
        bucket: store.bucket().to_string(),
        prefix: (!full_prefix.is_empty()).then_some(full_prefix),
        delimiter: opts.delimiter.clone().filter(|d| !d.is_empty()),
        page_token: opts.page_token.clone(),
        max_results: opts.max_results.map(|m| m.clamp(1, 1000) as i32),
        versions: opts.versions.then_some(true),
        start_offset: opts.start_offset.as_ref().map(|o| format!("{}{o}", store.keyspace.prefix())),
        end_offset: opts.end_offset.as_ref().map(|o| format!("{}{o}", store.keyspace.prefix())),
        ..Default::default()
    };
    list_page(store, &prefix, &req).await
}

async fn list_page(store: &GcsStore, prefix: &str, req: &ListObjectsRequest) -> Result<ListPage> {
    let ctx = store.ctx(if prefix.is_empty() { "(listing)" } else { prefix });
    let response = store
        .retry
        .run("gcs.list", Idempotency::Always, || async {
            store.conn.client.list_objects(req).await.map_err(|e| ctx.gcloud(e))
        })
        .await?;
    let mut objects: Vec<ObjectMeta> =
        response.items.unwrap_or_default().into_iter().map(|o| convert::to_meta(&store.keyspace, o)).collect();
    // GCS lists versions of a name oldest first; keep that order whatever the server does.
    objects.sort_by(|a, b| a.name.cmp(&b.name).then(a.generation.cmp(&b.generation)));
    let prefixes =
        response.prefixes.unwrap_or_default().into_iter().map(|p| store.keyspace.relative(&p).to_string()).collect();
    Ok(ListPage { objects, prefixes, next_page_token: response.next_page_token.filter(|t| !t.is_empty()) })
}

pub(super) async fn list_generations(store: &GcsStore, name: &str) -> Result<Vec<ObjectMeta>> {
    let (rel, key) = store.keyspace.key(name)?;
    let mut req = ListObjectsRequest {
        bucket: store.bucket().to_string(),
        prefix: Some(key.clone()),
        versions: Some(true),
        ..Default::default()
    };
    let mut all = Vec::new();
    loop {
        let page = list_page(store, &rel, &req).await?;
        all.extend(page.objects.into_iter().filter(|m| m.name == rel));
        match page.next_page_token {
            Some(token) => req.page_token = Some(token),
            None => break,
        }
    }
    all.sort_by_key(|m| m.generation);
    Ok(all)
}
