//! `copy`: a server-side `objects.copy` (`copyTo`) within the bucket.
//!
//! Sent directly (not with `gcloud-storage`'s `copy_object`) because it must carry
//! `destinationPredefinedAcl`: the destination gets the store's ACL like any object the store writes.
//! Source conditions (`sourceGeneration`, `ifSourceGenerationMatch`, `ifSourceMetagenerationMatch`) and
//! destination preconditions (`ifGenerationMatch`, ...) are query parameters; the response is the
//! destination's object resource, returned as is (no extra read).
//!
//! With `opts.params`, the destination's metadata is the source's with those values laid over it
//! (custom metadata merged key by key), exactly like the memory store. GCS replaces rather than merges
//! metadata given in a copy request, so the source is read first and the copy pinned to the generation
//! read (`sourceGeneration`), keeping data and merged metadata consistent.

use super::GcsStore;
use super::client::encode_segment;
use super::convert;
use super::get::head_key;
use crate::Result;
use crate::storage::retry::Idempotency;
use crate::storage::{CopyOptions, ObjectMeta, ObjectParameters, Preconditions};

pub(super) async fn copy(store: &GcsStore, from: &str, to: &str, opts: CopyOptions) -> Result<ObjectMeta> {
    let (src_rel, src_key) = store.keyspace.key(from)?;
    let (dst_rel, dst_key) = store.keyspace.key(to)?;
    let mut source_generation = opts.source_generation;
    let mut acl = store.config.effective_acl().map(str::to_string);
    let body = match &opts.params {
        None => None,
        Some(params) => {
            let source_conditions = Preconditions {
                if_generation_match: opts.if_source_generation_match,
                if_metageneration_match: opts.if_source_metageneration_match,
                ..Default::default()
            };
            let source = head_key(store, &src_rel, &src_key, opts.source_generation, &source_conditions).await?;
            source_generation = Some(source.generation);
            if params.acl.is_some() {
                acl.clone_from(&params.acl);
            }
            Some(convert::to_object(&dst_key, &merged(&source, params)))
        }
    };
    let d = &opts.destination;
    let mut query: Vec<(&str, String)> = Vec::new();
    let mut add = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            query.push((k, v));
        }
    };
    add("sourceGeneration", source_generation.map(|g| g.to_string()));
    add("ifSourceGenerationMatch", opts.if_source_generation_match.map(|g| g.to_string()));
    add("ifSourceMetagenerationMatch", opts.if_source_metageneration_match.map(|g| g.to_string()));
    add("ifGenerationMatch", d.if_generation_match.map(|g| g.to_string()));
    add("ifGenerationNotMatch", d.if_generation_not_match.map(|g| g.to_string()));
    add("ifMetagenerationMatch", d.if_metageneration_match.map(|g| g.to_string()));
    add("ifMetagenerationNotMatch", d.if_metageneration_not_match.map(|g| g.to_string()));
    add("destinationPredefinedAcl", acl);
    let bucket = encode_segment(store.bucket());
    let url = format!(
        "{}/b/{bucket}/o/{}/copyTo/b/{bucket}/o/{}",
        store.conn.api_base(),
        encode_segment(&src_key),
        encode_segment(&dst_key)
    );
    let ctx = store.ctx(&dst_rel);
    store
        .retry
        .run("gcs.copy", Idempotency::for_write(d), || async {
            let mut request = store.conn.request(reqwest::Method::POST, &url).await?.query(&query);
            request = match &body {
                Some(object) => request.json(object),
                None => request.header(reqwest::header::CONTENT_LENGTH, "0"),
            };
            let response = request.send().await.map_err(|e| ctx.middleware(e))?;
            convert::read_meta(&ctx, &store.keyspace, ctx.check(response).await?).await
        })
        .await
        .map_err(|e| match e {
            // A 404 names the source: the destination need not exist.
            crate::Error::NotFound { store, .. } => crate::Error::NotFound { store, name: src_rel.clone() },
            other => other,
        })
}

/// The source's metadata with `params` laid over it (the memory store's rule).
fn merged(source: &ObjectMeta, params: &ObjectParameters) -> ObjectParameters {
    let mut metadata = source.metadata.clone();
    metadata.extend(params.metadata.clone());
    let pick = |over: &Option<String>, base: &Option<String>| over.clone().or_else(|| base.clone());
    ObjectParameters {
        acl: None,
        cache_control: pick(&params.cache_control, &source.cache_control),
        content_disposition: pick(&params.content_disposition, &source.content_disposition),
        content_encoding: pick(&params.content_encoding, &source.content_encoding),
        content_language: pick(&params.content_language, &source.content_language),
        content_type: pick(&params.content_type, &source.content_type),
        metadata,
        storage_class: pick(&params.storage_class, &source.storage_class),
        custom_time: params.custom_time.or(source.custom_time),
    }
}
