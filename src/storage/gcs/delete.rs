//! `delete`: the live object or one generation, with GCS's preconditions as query parameters.
//!
//! Retried on transient errors only when guarded (`ifGenerationMatch` or a pinned `generation`): an
//! unguarded repeat could delete an object written in between.

use gcloud_storage::http::objects::delete::DeleteObjectRequest;

use super::GcsStore;
use crate::Result;
use crate::storage::DeleteOptions;
use crate::storage::retry::Idempotency;

pub(super) async fn delete(store: &GcsStore, name: &str, opts: DeleteOptions) -> Result<()> {
    let (rel, key) = store.keyspace.key(name)?;
    let ctx = store.ctx(&rel);
    let p = &opts.preconditions;
    let req = DeleteObjectRequest {
        bucket: store.bucket().to_string(),
        object: key,
        generation: opts.generation,
        if_generation_match: p.if_generation_match,
        if_generation_not_match: p.if_generation_not_match,
        if_metageneration_match: p.if_metageneration_match,
        if_metageneration_not_match: p.if_metageneration_not_match,
    };
    store
        .retry
        .run("gcs.delete", Idempotency::for_delete(opts.generation, p), || async {
            store.conn.client.delete_object(&req).await.map_err(|e| ctx.gcloud(e))
        })
        .await
}
