//! The handle's variants (features `tasks` and `images`): the built-in task that makes a blob field's
//! variants, and the queue that puts its jobs into each save's transaction through the task outbox.

use std::sync::OnceLock;

use async_trait::async_trait;
use sea_orm::{DatabaseBackend, Statement};

use crate::blobs::Blobs;
use crate::images::generate::{VariantJob, VariantQueue, VariantsMade, make_variants};
use crate::tasks::{Task, TaskContext, TaskOutbox, Tasks, When};
use crate::{BoxError, Error, Result};

/// The built-in task making one original's variants (`docs/images.md`).
pub(crate) struct MakeVariants {
    pub(crate) blobs: Blobs,
}

#[async_trait]
impl Task for MakeVariants {
    const NAME: &'static str = "sea-gcp-variants";
    type Payload = VariantJob;
    type Output = VariantsMade;

    async fn run(&self, job: VariantJob, _ctx: TaskContext) -> std::result::Result<VariantsMade, BoxError> {
        let Some(target) = self.blobs.variant_target(&job.table, &job.column) else {
            tracing::warn!(table = %job.table, column = %job.column, "variants job for a field that has no variants now: skipped");
            return Ok(VariantsMade::default());
        };
        let made = make_variants(self.blobs.connection(), target, &job).await?;
        tracing::info!(name = %job.name, generation = job.generation, ?made, "variants made");
        Ok(made)
    }
}

/// The save hook queueing [`MakeVariants`] jobs in the task outbox; given the tasks once they are built
/// (the blob registry is built first, because the task needs it).
#[derive(Default)]
pub(crate) struct OutboxQueue {
    tasks: OnceLock<(Tasks, TaskOutbox)>,
}

impl OutboxQueue {
    pub(crate) fn set(&self, tasks: Tasks, outbox: TaskOutbox) {
        let _ = self.tasks.set((tasks, outbox));
    }
}

impl VariantQueue for OutboxQueue {
    fn statement(&self, backend: DatabaseBackend, job: &VariantJob) -> Result<Option<Statement>> {
        let (tasks, outbox) = self
            .tasks
            .get()
            .ok_or_else(|| Error::config(None, "variants are queued through the app handle's tasks, not built yet"))?;
        if tasks.settings().disable_execute || tasks.settings().eager_execute {
            return Ok(None);
        }
        let prepared = tasks.prepare::<MakeVariants>(job, When::Now, true)?;
        let id = prepared.id.clone().unwrap_or_default();
        Ok(Some(backend.build(&outbox.insert_statement(&prepared, &id))))
    }
}
