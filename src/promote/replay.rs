//! Replay: repair the outbox after a crash (at startup, or with `sea-gcp repair`).
//!
//! For every intent last changed more than `grace` ago:
//!
//! * `done` (the caller's transaction committed): finish the after-commit work — the deferred overwrite
//!   copy, deleting the temporary object and the obsolete objects — then remove the intent.
//! * `pending` (the caller's transaction never committed, or is still running past the grace period):
//!   undo — delete the destination only if it carries this intent's tag — then remove the intent. The
//!   temporary object is left for a retry (the ingress prefix should have a lifecycle rule).
//!
//! Each intent is resolved inside its own transaction that first writes the intent's row: on PostgreSQL
//! and MySQL this waits for a caller's transaction still holding that row, on SQLite for the writer
//! lock, so replay never undoes a promotion whose transaction is about to commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, TransactionTrait};

use super::outbox::{Intent, IntentState, Outbox, now_millis};
use super::steps::{self, ClaimState};
use crate::storage::{ObjectMeta, Store};
use crate::{Error, Result};

/// What [`replay`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Intents examined (older than the grace period).
    pub examined: usize,
    /// Committed intents whose after-commit work was completed.
    pub finished: usize,
    /// Uncommitted intents undone.
    pub undone: usize,
    /// Destinations deleted while undoing.
    pub destinations_deleted: usize,
    /// Pending intents whose temporary object had vanished: a copy made before the crash, if any,
    /// could not be located. Their ids (the intents are removed; the ids appear in the log).
    pub lost: Vec<String>,
    /// Intents left in the outbox because a step failed, with the error; a later replay retries them.
    pub failed: Vec<(String, String)>,
    /// Intents whose store was not passed to replay, by store key.
    pub unknown_store: Vec<(String, String)>,
}

impl ReplayReport {
    /// True when nothing was left behind (no failures, no unknown stores).
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.unknown_store.is_empty()
    }
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "examined {}, finished {}, undone {} ({} destinations deleted), lost {}, failed {}, unknown store {}",
            self.examined,
            self.finished,
            self.undone,
            self.destinations_deleted,
            self.lost.len(),
            self.failed.len(),
            self.unknown_store.len()
        )
    }
}

/// Replay the default outbox (`sea_gcp_outbox`) for `stores`, skipping intents changed less than
/// `grace` ago (saves still in flight). `Duration::ZERO` when nothing else runs (startup, tests).
pub async fn replay(db: &DatabaseConnection, stores: &[Arc<dyn Store>], grace: Duration) -> Result<ReplayReport> {
    replay_outbox(db, &Outbox::default(), stores, grace).await
}

/// [`replay`] for an outbox in another table.
pub async fn replay_outbox(
    db: &DatabaseConnection,
    outbox: &Outbox,
    stores: &[Arc<dyn Store>],
    grace: Duration,
) -> Result<ReplayReport> {
    let by_key: BTreeMap<&str, &Arc<dyn Store>> = stores.iter().map(|s| (s.key(), s)).collect();
    let cutoff = now_millis() - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let mut report = ReplayReport::default();
    for intent in outbox.list(db, Some(cutoff)).await? {
        report.examined += 1;
        let Some(store) = by_key.get(intent.store.as_str()) else {
            report.unknown_store.push((intent.id.clone(), intent.store.clone()));
            continue;
        };
        match resolve(db, outbox, store.as_ref(), &intent.id, Mode::Any, None).await {
            Ok(Resolution::Finished(_)) => report.finished += 1,
            Ok(Resolution::Undone { deleted, lost }) => {
                report.undone += 1;
                report.destinations_deleted += usize::from(deleted);
                if lost {
                    tracing::warn!(intent = %intent.id, temp = ?intent.temp_name, "temporary object gone; a copy made before the crash cannot be located");
                    report.lost.push(intent.id.clone());
                }
            }
            Ok(Resolution::Gone | Resolution::LeftPending) => {}
            Ok(Resolution::Failed(e)) | Err(e) => report.failed.push((intent.id.clone(), e.to_string())),
        }
    }
    Ok(report)
}

/// Which states [`resolve`] may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// After the caller's commit: finish `done`, leave `pending` alone.
    AfterCommit,
    /// After the caller's rollback: undo `pending`, leave `done` alone (it committed after all).
    Undo,
    /// Replay: both.
    Any,
}

/// The outcome of resolving one intent.
#[derive(Debug)]
pub(crate) enum Resolution {
    /// The intent no longer exists (someone else resolved it).
    Gone,
    /// A `done` intent was finished; the deferred copy's metadata when there was one.
    Finished(Option<Box<ObjectMeta>>),
    /// A `pending` intent was undone.
    Undone {
        /// Whether a destination was deleted.
        deleted: bool,
        /// Whether the temporary object was gone (the copy could not be located).
        lost: bool,
    },
    /// The intent was in a state this mode leaves alone.
    LeftPending,
    /// A storage step failed; the error is recorded on the intent.
    Failed(Error),
}

/// Resolve one intent in its own transaction (see the module docs). `hint` is the destination and the
/// generation the caller's copy returned, when the caller knows them (abort after a rollback).
pub(crate) async fn resolve(
    db: &DatabaseConnection,
    outbox: &Outbox,
    store: &dyn Store,
    id: &str,
    mode: Mode,
    hint: Option<(String, Option<i64>)>,
) -> Result<Resolution> {
    let txn = db.begin().await?;
    if outbox.touch(&txn, id, None).await? == 0 {
        txn.commit().await?;
        return Ok(Resolution::Gone);
    }
    let Some(intent) = outbox.get(&txn, id).await? else {
        txn.commit().await?;
        return Ok(Resolution::Gone);
    };
    let outcome = match (intent.state, mode) {
        (IntentState::Done, Mode::AfterCommit | Mode::Any) => {
            steps::finish(store, &intent).await.map(|m| Resolution::Finished(m.map(Box::new)))
        }
        (IntentState::Pending, Mode::Undo | Mode::Any) => undo(store, &intent, hint).await,
        _ => {
            txn.rollback().await?;
            return Ok(Resolution::LeftPending);
        }
    };
    match outcome {
        Ok(resolution) => {
            outbox.delete(&txn, id, None).await?;
            txn.commit().await?;
            Ok(resolution)
        }
        Err(e) => {
            outbox.touch(&txn, id, Some(e.to_string())).await?;
            txn.commit().await?;
            Ok(Resolution::Failed(e))
        }
    }
}

async fn undo(store: &dyn Store, intent: &Intent, hint: Option<(String, Option<i64>)>) -> Result<Resolution> {
    if let Some((dest, generation)) = hint {
        let deleted = steps::undo_destination(store, &dest, &intent.id, generation).await?;
        return Ok(Resolution::Undone { deleted, lost: false });
    }
    match steps::claim_state(store, intent).await? {
        ClaimState::Claimed(dest) => {
            let deleted = steps::undo_destination(store, &dest, &intent.id, None).await?;
            Ok(Resolution::Undone { deleted, lost: false })
        }
        ClaimState::NotClaimed => Ok(Resolution::Undone { deleted: false, lost: false }),
        ClaimState::TempGone => Ok(Resolution::Undone { deleted: false, lost: true }),
    }
}
