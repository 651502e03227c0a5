//! The typestates of a save: [`BlobSave`] / [`BlobDelete`] (prepared), [`AppliedSave`] (written in the
//! caller's transaction) and [`FailedSave`] (its `apply` failed). Each step consumes the state before it,
//! so applying twice, committing before applying or applying a delete as a row write do not compile:
//!
//! ```compile_fail
//! // A prepared save has no `committed`: it must be applied first.
//! async fn commit_unapplied<E: sea_orm::EntityTrait>(save: sea_gcp::promote::BlobSave<E>) {
//!     save.committed().await;
//! }
//! ```
//!
//! ```no_run
//! use sea_orm::{ActiveModelBehavior, ActiveModelTrait, EntityTrait, IntoActiveModel};
//! // An applied one has.
//! async fn commit_applied<E>(save: sea_gcp::promote::AppliedSave<E>)
//! where
//!     E: EntityTrait,
//!     E::Model: IntoActiveModel<E::ActiveModel> + Sync,
//!     E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
//! {
//!     save.committed().await;
//! }
//! ```

use std::fmt;

use sea_orm::EntityTrait;

use super::rows::column_str;
use super::{BlobSaver, RowOp};
use crate::Error;
use crate::field::validate::Scenario;
use crate::field::{BlobChange, BlobValue};
use crate::promote::outbox::Intent;

/// Where the promoting copy of a plan got to (for abort).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CopyState {
    NotAttempted,
    /// The copy was sent; its outcome is unknown (error or lost response).
    Attempted(String),
    /// The copy succeeded: destination and generation.
    Copied(String, i64),
    /// The destination exists and will be overwritten after the commit.
    Deferred(String),
}

/// One changed field of a save.
pub(super) struct FieldPlan<E: EntityTrait> {
    pub(super) column: E::Column,
    pub(super) change: BlobChange,
    pub(super) scenario: Option<Scenario>,
    pub(super) intent: Option<Intent>,
    pub(super) old: Option<BlobValue>,
    pub(super) new: Option<BlobValue>,
    pub(super) copy: CopyState,
}

impl<E: EntityTrait> FieldPlan<E> {
    pub(super) fn new(column: E::Column, change: BlobChange) -> Self {
        Self { column, change, scenario: None, intent: None, old: None, new: None, copy: CopyState::NotAttempted }
    }
}

/// What every state carries: the saver, the row operation, the field plans and the written row.
pub(super) struct SaveCore<E: EntityTrait> {
    pub(super) saver: BlobSaver<E>,
    pub(super) op: RowOp,
    pub(super) plans: Vec<FieldPlan<E>>,
    pub(super) row: Option<E::Model>,
}

impl<E: EntityTrait> SaveCore<E> {
    pub(super) fn new(saver: BlobSaver<E>, op: RowOp, plans: Vec<FieldPlan<E>>) -> Self {
        Self { saver, op, plans, row: None }
    }

    fn intent_ids(&self) -> Vec<String> {
        self.plans.iter().filter_map(|p| p.intent.as_ref().map(|i| i.id.clone())).collect()
    }

    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name).field("op", &self.op).field("intents", &self.intent_ids()).finish()
    }
}

/// A prepared insert or update (step 1 done): [`apply`](BlobSave::apply) it in the caller's
/// transaction, or [`abort`](BlobSave::abort) it.
#[must_use = "apply the save, or abort it to remove its intents now (replay removes them later)"]
pub struct BlobSave<E: EntityTrait> {
    pub(super) core: SaveCore<E>,
}

/// A prepared row delete: [`apply`](BlobDelete::apply) it in the caller's transaction.
#[must_use = "apply the delete in the caller's transaction"]
pub struct BlobDelete<E: EntityTrait> {
    pub(super) core: SaveCore<E>,
}

/// A save written in the caller's transaction (step 2 done): after the commit call
/// [`committed`](AppliedSave::committed); after a rollback or a failed commit, [`abort`](AppliedSave::abort).
#[must_use = "call committed() after the commit or abort() after a rollback (replay finishes it otherwise)"]
pub struct AppliedSave<E: EntityTrait> {
    pub(super) core: SaveCore<E>,
}

/// A save whose `apply` failed: roll the caller's transaction back, then [`abort`](FailedSave::abort).
#[must_use = "roll back, then abort() to delete what the save created and get its error"]
pub struct FailedSave<E: EntityTrait> {
    pub(super) core: SaveCore<E>,
    pub(super) error: Error,
}

impl<E: EntityTrait> BlobSave<E> {
    /// The row operation ([`RowOp::Insert`] or [`RowOp::Update`]).
    pub fn op(&self) -> RowOp {
        self.core.op
    }

    /// The ids of the outbox intents this save recorded.
    pub fn intent_ids(&self) -> Vec<String> {
        self.core.intent_ids()
    }

    /// Step 2 failed at `error`: a [`FailedSave`] to abort.
    pub(super) fn failed(self, error: Error) -> FailedSave<E> {
        FailedSave { core: self.core, error }
    }
}

impl<E: EntityTrait> AppliedSave<E> {
    /// The row operation.
    pub fn op(&self) -> RowOp {
        self.core.op
    }

    /// The row as written (for a delete: as it was before).
    pub fn model(&self) -> &E::Model {
        self.core.row.as_ref().expect("an applied save has its row")
    }

    /// The scenario of each changed field (`table.column` → scenario).
    pub fn scenarios(&self) -> Vec<(String, Scenario)> {
        let table = E::default().table_name();
        self.core
            .plans
            .iter()
            .filter_map(|p| p.scenario.map(|s| (format!("{table}.{}", column_str::<E>(p.column)), s)))
            .collect()
    }

    /// The ids of the outbox intents this save recorded.
    pub fn intent_ids(&self) -> Vec<String> {
        self.core.intent_ids()
    }
}

impl<E: EntityTrait> FailedSave<E> {
    /// Why `apply` failed.
    pub fn error(&self) -> &Error {
        &self.error
    }
}

impl<E: EntityTrait> fmt::Debug for BlobSave<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("BlobSave", f)
    }
}

impl<E: EntityTrait> fmt::Debug for BlobDelete<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("BlobDelete", f)
    }
}

impl<E: EntityTrait> fmt::Debug for AppliedSave<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("AppliedSave", f)
    }
}

impl<E: EntityTrait> fmt::Debug for FailedSave<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailedSave")
            .field("op", &self.core.op)
            .field("intents", &self.core.intent_ids())
            .field("error", &self.error)
            .finish()
    }
}
