//! Crash safety of the save protocol: an injected failure at every step (claim/head, copy, row write,
//! commit, temporary delete, old delete; before and after the call takes effect) and a simulated crash
//! between every pair of steps, then replay. After every case all six invariants of DESIGN.md are
//! checked, each with its own labelled assertion:
//!
//! 1. a committed row never references a missing object;
//! 2. a temporary upload is promoted at most once;
//! 3. a failed save leaves no new object and overwrites nothing (after replay);
//! 4. no object a committed row references is deleted;
//! 5. replaced/blanked/deleted-row objects are deleted only after the commit, per policy;
//! 6. replay repairs everything and is idempotent.

mod field_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use field_support::*;
use sea_gcp::field::{BlobChanges, BlobValue, PendingUpload};
use sea_gcp::promote::{BlobSaver, replay_outbox};
use sea_gcp::storage::StoreOp;
use sea_gcp::storage::{GetOptions, Store};
use sea_gcp::testing::fault::{FaultKind, FaultStore};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, TransactionTrait};

/// What a save does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    AddValid,
    ValidToValid,
    ValidToBlank,
    RowDelete,
}

/// Where it goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// No fault (the control case).
    None,
    /// A storage call fails: the n-th call of an operation, before or after taking effect.
    Store(StoreOp, u64, FaultKind),
    /// The row write fails (a model hook refuses it).
    RowWrite,
    /// The commit does not happen (the transaction rolls back instead; the save is aborted).
    Commit,
    /// The process dies right after this step; nothing else runs until replay.
    CrashAfter(Step),
}

/// The protocol's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The intent is recorded.
    Prepare,
    /// The temporary object is claimed (the copy never starts).
    Claim,
    /// The copy is made (its response is lost).
    Copy,
    /// The row is written and the intent marked done, uncommitted.
    Apply,
    /// The transaction committed; no after-commit work ran.
    Commit,
    /// The temporary object was deleted; the old one was not.
    TempDelete,
}

fn faults(scenario: Scenario) -> Vec<Fault> {
    use FaultKind::*;
    use StoreOp::*;
    let mut out = vec![Fault::None, Fault::RowWrite, Fault::Commit];
    let promotes = matches!(scenario, Scenario::AddValid | Scenario::ValidToValid);
    if promotes {
        for kind in [Before, After] {
            out.push(Fault::Store(PatchMetadata, 1, kind));
            out.push(Fault::Store(Copy, 1, kind));
            out.push(Fault::Store(Delete, 1, kind)); // the temporary object
        }
        out.extend(
            [Step::Prepare, Step::Claim, Step::Copy, Step::Apply, Step::Commit, Step::TempDelete]
                .map(Fault::CrashAfter),
        );
    } else {
        out.extend([Step::Apply, Step::Commit].map(Fault::CrashAfter));
    }
    if scenario != Scenario::AddValid {
        // the replaced / blanked / deleted-row object
        let n = if promotes { 2 } else { 1 };
        out.push(Fault::Store(Delete, n, Before));
        out.push(Fault::Store(Delete, n, After));
    }
    if scenario == Scenario::RowDelete {
        out.retain(|f| *f != Fault::RowWrite);
    }
    out
}

struct Case<'a> {
    db: &'a DatabaseConnection,
    tables: &'a Tables,
    base: Arc<dyn Store>,
    fault: Arc<FaultStore>,
    saver: BlobSaver<docs::Entity>,
    label: String,
}

impl<'a> Case<'a> {
    async fn new(db: &'a DatabaseConnection, tables: &'a Tables, backend: &Backend, label: String) -> Case<'a> {
        db.execute_unprepared(&format!("DELETE FROM {}", tables.docs)).await.unwrap();
        let base: Arc<dyn Store> = match backend {
            Backend::Memory => memory(false),
            Backend::Emulator { host, bucket } => emulator_store(host, bucket).await,
        };
        let fault = Arc::new(FaultStore::new(base.clone()));
        let saver = saver(db, tables, fault.clone());
        Case { db, tables, base, fault, saver, label }
    }

    fn store(&self) -> &dyn Store {
        self.base.as_ref()
    }

    async fn replay(&self) -> sea_gcp::promote::ReplayReport {
        replay_outbox(self.db, &self.tables.outbox, std::slice::from_ref(&self.base), Duration::ZERO).await.unwrap()
    }
}

/// The row before the save, and what the save attaches.
struct Start {
    row: Option<docs::Model>,
    old: Option<BlobValue>,
    old_generation: Option<i64>,
    upload: Option<PendingUpload>,
}

/// Where the objects live.
enum Backend {
    Memory,
    Emulator { host: String, bucket: String },
}

async fn run_case(
    db: &DatabaseConnection,
    tables: &Tables,
    backend: &Backend,
    scenario: Scenario,
    fault: Fault,
    dbname: &str,
) {
    let kind = if matches!(backend, Backend::Memory) { "memory" } else { "emulator" };
    let case = Case::new(db, tables, backend, format!("{dbname}+{kind} {scenario:?} {fault:?}")).await;
    let label = case.label.clone();

    // The starting state, made without faults.
    let row = if scenario == Scenario::AddValid {
        None
    } else {
        let up = upload(case.store(), "old.txt", b"old bytes", "text/plain").await;
        let doc = docs::ActiveModel { title: Set("doc".into()), ..Default::default() };
        Some(case.saver.insert(doc, BlobChanges::new().attach(docs::Column::File, up)).await.unwrap().model)
    };
    let old = row.as_ref().and_then(|r| r.file.clone());
    let old_generation = old.as_ref().and_then(|v| v.generation);
    let upload = match scenario {
        Scenario::AddValid | Scenario::ValidToValid => {
            Some(upload(case.store(), "new.txt", b"new bytes", "text/plain").await)
        }
        _ => None,
    };
    let before = Start { row, old, old_generation, upload };
    case.fault.reset();
    if let Fault::Store(op, n, kind) = fault {
        case.fault.fail(op, n, kind);
    }

    let outcome = save(&case, scenario, fault, &before).await;
    if let Fault::Store(..) = fault {
        assert_eq!(case.fault.fired(), 1, "{label}: the injected fault did not fire");
    }
    case.fault.clear();

    // Invariant 6: replay repairs whatever is left, and a second replay finds nothing.
    let first = case.replay().await;
    assert!(first.is_clean(), "{label}: invariant 6 (replay clean): {first}");
    let second = case.replay().await;
    assert_eq!(second.examined, 0, "{label}: invariant 6 (replay idempotent): {second}");

    let rows = docs::Entity::find().all(db).await.unwrap();
    let committed = match scenario {
        Scenario::AddValid => !rows.is_empty(),
        Scenario::ValidToValid | Scenario::ValidToBlank => rows[0].file != before.old,
        Scenario::RowDelete => rows.is_empty(),
    };
    assert_eq!(committed, expect_commit(fault), "{label}: commit outcome ({outcome:?})");
    if let Err(e) = &outcome {
        assert!(!committed || matches!(fault, Fault::CrashAfter(_)), "{label}: the save reported {e} but committed");
    }
    if outcome.is_ok() && !matches!(fault, Fault::CrashAfter(_)) {
        assert!(committed, "{label}: the save reported success but did not commit");
    }

    // Invariants 1 and 4: every committed reference is live, at its cached generation.
    assert_references_live(db, case.store(), &format!("{label}: invariants 1/4")).await;

    // Invariant 3: a failed save leaves no new object and overwrites nothing; invariant 5: the old object
    // survives unless the change committed (policy Delete).
    assert_no_orphans(db, case.store(), &case.tables.outbox, &BTreeSet::new(), &format!("{label}: invariants 3/5"))
        .await;
    if let Some(old) = &before.old {
        let live = case.store().head(&old.name, GetOptions::default()).await;
        if committed {
            assert!(live.is_err(), "{label}: invariant 5: the replaced object outlived the commit (after replay)");
        } else {
            let live =
                live.unwrap_or_else(|e| panic!("{label}: invariant 5: old object deleted without a commit: {e}"));
            assert_eq!(Some(live.generation), before.old_generation, "{label}: invariant 3: old object overwritten");
            assert_eq!(rows[0].file, before.old, "{label}: invariant 3: row changed");
        }
    }

    // Invariant 2: a promoted upload is gone (cannot be promoted again); an unpromoted one stays and can be
    // promoted exactly once by a retry.
    if let Some(up) = &before.upload {
        let temp_live = case.store().exists(&up.temp_name).await.unwrap();
        assert_eq!(temp_live, !committed, "{label}: invariant 2: temporary object state after replay");
        let retry_row = rows.first().cloned().or(before.row.clone());
        let retry = |model: Option<docs::Model>| {
            let saver = case.saver.clone();
            let up = up.clone();
            async move {
                match model {
                    Some(m) if scenario != Scenario::AddValid => {
                        saver.update(m.into_active_model(), BlobChanges::new().attach(docs::Column::File, up)).await
                    }
                    _ => {
                        let doc = docs::ActiveModel { title: Set("retry".into()), ..Default::default() };
                        saver.insert(doc, BlobChanges::new().attach(docs::Column::File, up)).await
                    }
                }
            }
        };
        let first_retry = retry(retry_row.clone()).await;
        assert_eq!(first_retry.is_ok(), !committed, "{label}: invariant 2: retry of the same upload: {first_retry:?}");
        let again = retry(docs::Entity::find().all(db).await.unwrap().into_iter().next()).await;
        assert!(again.is_err(), "{label}: invariant 2: an upload was promoted twice");
        assert_references_live(db, case.store(), &format!("{label}: after retry")).await;
        assert_no_orphans(db, case.store(), &case.tables.outbox, &BTreeSet::new(), &format!("{label}: after retry"))
            .await;
    }
}

/// Whether the save must have committed: failures before the commit undo it, failures after it only
/// delay the clean-up until replay.
fn expect_commit(fault: Fault) -> bool {
    match fault {
        Fault::None => true,
        Fault::Store(StoreOp::Delete, ..) => true,
        Fault::Store(..) | Fault::RowWrite | Fault::Commit => false,
        Fault::CrashAfter(step) => matches!(step, Step::Commit | Step::TempDelete),
    }
}

/// Run the save with the fault; `Err` when the save reported failure.
async fn save(case: &Case<'_>, scenario: Scenario, fault: Fault, before: &Start) -> Result<(), String> {
    let changes = match (&before.upload, scenario) {
        (Some(up), _) => BlobChanges::new().attach(docs::Column::File, up.clone()),
        (None, Scenario::ValidToBlank) => BlobChanges::new().blank(docs::Column::File),
        (None, _) => BlobChanges::new(),
    };
    let title = if fault == Fault::RowWrite { "fail-write" } else { "saved" };
    let active = || match &before.row {
        Some(row) if scenario != Scenario::AddValid => {
            let mut am = row.clone().into_active_model();
            am.title = Set(title.into());
            am
        }
        _ => docs::ActiveModel { title: Set(title.into()), ..Default::default() },
    };
    let saver = &case.saver;
    let db = case.db;
    match fault {
        Fault::None | Fault::Store(..) | Fault::RowWrite => match scenario {
            Scenario::AddValid => saver.insert(active(), changes).await.map(|_| ()).map_err(|e| e.to_string()),
            Scenario::ValidToValid | Scenario::ValidToBlank => {
                saver.update(active(), changes).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Scenario::RowDelete => {
                let row = before.row.clone().unwrap();
                saver.delete(row).await.map(|_| ()).map_err(|e| e.to_string())
            }
        },
        Fault::Commit => {
            let save = prepare(saver, scenario, changes).await?;
            let txn = db.begin().await.unwrap();
            let applied = match apply(save, &txn, active(), before).await {
                Ok(applied) => applied,
                Err(failed) => {
                    txn.rollback().await.unwrap();
                    return Err(failed.abort().await.to_string());
                }
            };
            txn.rollback().await.unwrap();
            applied.abort().await;
            Err("commit failed".into())
        }
        Fault::CrashAfter(step) => {
            let save = prepare(saver, scenario, changes).await?;
            if step == Step::Prepare {
                return Err("crashed".into());
            }
            match step {
                Step::Claim => {
                    case.fault.fail(StoreOp::Copy, 1, FaultKind::Before);
                }
                Step::Copy => {
                    case.fault.fail(StoreOp::Copy, 1, FaultKind::After);
                }
                Step::TempDelete => {
                    case.fault.fail(StoreOp::Delete, 2, FaultKind::Before);
                }
                _ => {}
            }
            let txn = db.begin().await.unwrap();
            let applied = match apply(save, &txn, active(), before).await {
                Ok(applied) if step != Step::Apply => applied,
                _ => {
                    drop(txn); // the process died: the database rolls the transaction back
                    return Err("crashed".into());
                }
            };
            txn.commit().await.unwrap();
            if step == Step::TempDelete {
                let report = applied.committed().await;
                assert!(!report.left_for_replay.is_empty() || scenario == Scenario::AddValid);
            }
            Ok(())
        }
    }
}

/// A prepared save of either kind.
enum Prepared {
    Save(sea_gcp::promote::BlobSave<docs::Entity>),
    Delete(sea_gcp::promote::BlobDelete<docs::Entity>),
}

async fn prepare(
    saver: &BlobSaver<docs::Entity>,
    scenario: Scenario,
    changes: BlobChanges<docs::Entity>,
) -> Result<Prepared, String> {
    let r = match scenario {
        Scenario::AddValid => saver.prepare_insert(changes).await.map(Prepared::Save),
        Scenario::ValidToValid | Scenario::ValidToBlank => saver.prepare_update(changes).await.map(Prepared::Save),
        Scenario::RowDelete => Ok(Prepared::Delete(saver.prepare_delete())),
    };
    r.map_err(|e| e.to_string())
}

async fn apply(
    save: Prepared,
    txn: &sea_orm::DatabaseTransaction,
    model: docs::ActiveModel,
    before: &Start,
) -> Result<sea_gcp::promote::AppliedSave<docs::Entity>, sea_gcp::promote::FailedSave<docs::Entity>> {
    match save {
        Prepared::Delete(save) => save.apply(txn, before.row.clone().unwrap()).await,
        Prepared::Save(save) => save.apply(txn, model).await,
    }
}

async fn every_fault(scenario: Scenario) {
    let mut backends = vec![Backend::Memory];
    if let Some((host, bucket)) = emulator_bucket(&format!("{scenario:?} faults")).await {
        backends.push(Backend::Emulator { host, bucket });
    }
    for db in databases().await {
        let tables = Tables::create(&db.conn).await;
        for backend in &backends {
            for fault in faults(scenario) {
                run_case(&db.conn, &tables, backend, scenario, fault, db.name).await;
            }
        }
        tables.drop(&db.conn).await;
    }
}

#[tokio::test]
async fn add_valid_survives_every_fault_and_crash() {
    every_fault(Scenario::AddValid).await;
}

#[tokio::test]
async fn valid_to_valid_survives_every_fault_and_crash() {
    every_fault(Scenario::ValidToValid).await;
}

#[tokio::test]
async fn valid_to_blank_survives_every_fault_and_crash() {
    every_fault(Scenario::ValidToBlank).await;
}

#[tokio::test]
async fn row_delete_survives_every_fault_and_crash() {
    every_fault(Scenario::RowDelete).await;
}

#[tokio::test]
async fn replay_respects_the_grace_period() {
    for db in databases().await {
        let tables = Tables::create(&db.conn).await;
        let case = Case::new(&db.conn, &tables, &Backend::Memory, db.name.to_string()).await;
        let up = upload(case.store(), "g.txt", b"g", "text/plain").await;
        let save = case.saver.prepare_insert(BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
        // a save in flight is left alone by a replay with a grace period
        let report =
            replay_outbox(&db.conn, &tables.outbox, std::slice::from_ref(&case.base), Duration::from_secs(3600))
                .await
                .unwrap();
        assert_eq!(report.examined, 0, "{report}");
        assert_eq!(save.intent_ids().len(), 1);
        assert_eq!(tables.outbox.list(&db.conn, None).await.unwrap().len(), 1);
        let report = case.replay().await;
        assert_eq!((report.examined, report.undone), (1, 1), "{report}");
        tables.drop(&db.conn).await;
    }
}
