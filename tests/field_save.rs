//! Blob fields on SeaORM: the save scenarios, validation, the column's JSON, metadata and versions, on
//! SQLite always and PostgreSQL/MariaDB when reachable, against the memory store (and the GCS emulator
//! when `STORAGE_EMULATOR_HOST` is set).

mod field_support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use field_support::*;
use sea_gcp::Error;
use sea_gcp::field::{BlobChanges, BlobFieldSpec, BlobValue, DeletePolicy, OverwriteMode, PendingUpload, find_checked};
use sea_gcp::promote::{BlobSaver, replay_outbox};
use sea_gcp::storage::{CountingStore, StoreOp};
use sea_gcp::storage::{GetOptions, ObjectParameters, Store, UrlOptions};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel};

fn new_doc(title: &str) -> docs::ActiveModel {
    docs::ActiveModel { title: Set(title.into()), ..Default::default() }
}

/// The seven scenarios, with call counts and the invariants checked after each step.
async fn scenarios(db: &DatabaseConnection, store: Arc<dyn Store>, label: &str) {
    let tables = Tables::create(db).await;
    let counting = Arc::new(CountingStore::new(store.clone()));
    type Seen = Vec<(Option<String>, Option<String>)>;
    let changes: Arc<Mutex<Seen>> = Arc::default();
    let seen = changes.clone();
    let saver = BlobSaver::new(db.clone())
        .store(counting.clone())
        .outbox(tables.outbox.clone())
        .field(file_spec().on_change(move |ev| {
            seen.lock()
                .unwrap()
                .push((ev.old.as_ref().map(|v| v.name.clone()), ev.new.as_ref().map(|v| v.name.clone())))
        }))
        .field(cover_spec());
    let check = |ctx: String| {
        let store = store.clone();
        let outbox = tables.outbox.clone();
        async move {
            assert_references_live(db, store.as_ref(), &ctx).await;
            assert_no_orphans(db, store.as_ref(), &outbox, &BTreeSet::new(), &ctx).await;
            assert!(temp_objects(store.as_ref()).await.is_empty(), "{ctx}: temporary objects left");
        }
    };

    // add blank
    let saved = saver.insert(new_doc("blank"), BlobChanges::new().blank(docs::Column::File)).await.unwrap();
    assert_eq!(saved.model.file, None);
    check(format!("{label}: add blank")).await;

    // add valid: the destination uses the database-generated id
    let up = upload(store.as_ref(), "a.txt", b"first", "text/plain").await;
    counting.reset();
    let saved = saver.insert(new_doc("valid"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
    let calls = counting.counts();
    assert!(calls.remote() <= 3, "{label}: a new upload took {calls}");
    let id = saved.model.id;
    let file = saved.model.file.clone().expect("file set");
    assert!(file.name.starts_with(&format!("docs/{id}/")), "{label}: {}", file.name);
    assert_eq!(file.size, Some(5));
    assert_eq!(file.content_type.as_deref(), Some("text/plain"));
    assert_eq!(file.original_name.as_deref(), Some("a.txt"));
    assert!(file.is_cached());
    assert_eq!(store.get_bytes(&file.name).await.unwrap().as_ref(), b"first");
    check(format!("{label}: add valid")).await;

    // reading size, type and URL from a loaded row: zero storage calls (URL formatting is local)
    let loaded = docs::Entity::find_by_id(id).one(db).await.unwrap().unwrap();
    counting.reset();
    let f = loaded.file.clone().unwrap();
    assert_eq!((f.size, f.content_type.as_deref()), (Some(5), Some("text/plain")));
    let url = f.pinned_url(counting.as_ref(), UrlOptions::default()).await.unwrap();
    assert!(url.contains(&f.generation.unwrap().to_string()) || store.kind() != sea_gcp::storage::BackendKind::Memory);
    assert_eq!(counting.counts().remote(), 0, "{label}: reading a cached value made storage calls");

    // unchanged: a plain field update makes no storage call
    counting.reset();
    let mut am = loaded.clone().into_active_model();
    am.title = Set("renamed".into());
    let saved = saver.update(am, BlobChanges::new()).await.unwrap();
    assert_eq!(counting.counts().remote(), 0, "{label}: unchanged save made storage calls");
    assert_eq!(saved.model.file, loaded.file);
    check(format!("{label}: unchanged")).await;

    // valid -> valid: new object, old one deleted after commit (policy Delete)
    let up = upload(store.as_ref(), "b.txt", b"second!", "text/plain").await;
    let saved =
        saver.update(saved.model.into_active_model(), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
    let second = saved.model.file.clone().unwrap();
    assert_ne!(second.name, file.name);
    assert!(!store.exists(&file.name).await.unwrap(), "{label}: replaced object kept");
    check(format!("{label}: valid->valid")).await;

    // valid -> blank
    let saved =
        saver.update(saved.model.into_active_model(), BlobChanges::new().blank(docs::Column::File)).await.unwrap();
    assert_eq!(saved.model.file, None);
    assert!(!store.exists(&second.name).await.unwrap(), "{label}: blanked object kept");
    check(format!("{label}: valid->blank")).await;

    // blank -> valid
    let up = upload(store.as_ref(), "c.bin", b"third", "application/octet-stream").await;
    let saved =
        saver.update(saved.model.into_active_model(), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
    let third = saved.model.file.clone().unwrap();
    check(format!("{label}: blank->valid")).await;

    // row delete
    let report = saver.delete(saved.model).await.unwrap();
    assert!(report.left_for_replay.is_empty(), "{report:?}");
    assert!(!store.exists(&third.name).await.unwrap(), "{label}: deleted row's object kept");
    check(format!("{label}: row delete")).await;

    let seen = changes.lock().unwrap().clone();
    assert_eq!(seen.len(), 6, "{label}: on_change calls {seen:?}");
    assert_eq!(seen[0], (None, None));
    assert_eq!(seen.last().unwrap(), &(Some(third.name.clone()), None));

    let report = replay_outbox(db, &tables.outbox, std::slice::from_ref(&store), Duration::ZERO).await.unwrap();
    assert_eq!(report.examined, 0, "{label}: {report}");
    tables.drop(db).await;
}

#[tokio::test]
async fn scenarios_on_every_database_with_the_memory_store() {
    for db in databases().await {
        scenarios(&db.conn, memory(false), db.name).await;
    }
}

#[tokio::test]
async fn scenarios_on_the_gcs_emulator() {
    let Some((host, bucket)) = emulator_bucket("blob field scenarios").await else { return };
    for db in databases().await {
        let store = emulator_store(&host, &bucket).await;
        scenarios(&db.conn, store, &format!("{} + emulator", db.name)).await;
    }
}

#[tokio::test]
async fn validation_matrix_and_limits_reach_the_caller() {
    for db in databases().await {
        let store = memory(false);
        let db = &db.conn;
        let tables = Tables::create(db).await;
        let required = BlobSaver::<docs::Entity>::new(db.clone())
            .store(store.clone())
            .outbox(tables.outbox.clone())
            .field(BlobFieldSpec::new(docs::Column::File, "media").max_size(4).accept(["image/*"]));
        // adding without a value, blank not allowed
        let err = required.insert(new_doc("x"), BlobChanges::new()).await.unwrap_err();
        assert!(
            matches!(&err, Error::Validation { field, message } if field.ends_with(".file") && message.contains("required")),
            "{err}"
        );
        // too large / wrong type: refused, nothing left behind
        let up = upload(store.as_ref(), "big.png", b"12345", "image/png").await;
        let err = required.insert(new_doc("x"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap_err();
        assert!(err.to_string().contains("at most 4 bytes"), "{err}");
        let up = upload(store.as_ref(), "t.txt", b"123", "text/plain").await;
        let err = required.insert(new_doc("x"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap_err();
        assert!(err.to_string().contains("not accepted"), "{err}");
        // an upload outside the ingress prefix cannot be attached
        let err = required
            .insert(
                new_doc("x"),
                BlobChanges::new().attach(docs::Column::File, PendingUpload::trusted("docs/1/x", None, "x")),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ingress prefix"), "{err}");
        // a ticket bound to another field is refused
        let up = upload(store.as_ref(), "ok.png", b"1", "image/png").await.bound_to("media", "other.col");
        let err = required.insert(new_doc("x"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap_err();
        assert!(err.to_string().contains("issued for `other.col`"), "{err}");
        // an upload that never arrived
        let ghost = PendingUpload::trusted("_tmp/nope/x.png", None, "x.png");
        let err =
            required.insert(new_doc("x"), BlobChanges::new().attach(docs::Column::File, ghost)).await.unwrap_err();
        assert!(err.to_string().contains("upload incomplete"), "{err}");
        assert!(docs::Entity::find().all(db).await.unwrap().is_empty(), "refused saves wrote rows");
        assert!(permanent_objects(store.as_ref()).await.is_empty());

        // not editable: set on insert, refused on update
        let fixed = BlobSaver::<docs::Entity>::new(db.clone())
            .store(store.clone())
            .outbox(tables.outbox.clone())
            .field(BlobFieldSpec::new(docs::Column::File, "media").editable(false));
        let up = upload(store.as_ref(), "a.txt", b"a", "text/plain").await;
        let saved = fixed.insert(new_doc("x"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
        let up = upload(store.as_ref(), "b.txt", b"b", "text/plain").await;
        let err = fixed
            .update(saved.model.clone().into_active_model(), BlobChanges::new().attach(docs::Column::File, up))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not editable"), "{err}");
        // not blankable: refused blank on update
        let err = fixed
            .update(saved.model.clone().into_active_model(), BlobChanges::new().blank(docs::Column::File))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot be blank"), "{err}");
        // writing the column directly on the ActiveModel is refused; the raw escape hatch is allowed
        let mut am = saved.model.clone().into_active_model();
        am.file = Set(Some(BlobValue::uncached("somewhere/else")));
        let err = fixed.update(am, BlobChanges::new()).await.unwrap_err();
        assert!(err.to_string().contains("cannot be set directly"), "{err}");
        let raw = BlobValue::uncached("fixtures/a.txt");
        let saved = fixed
            .update(
                saved.model.clone().into_active_model(),
                BlobChanges::new().raw(docs::Column::File, Some(raw.clone())),
            )
            .await
            .unwrap();
        assert_eq!(saved.model.file.as_ref().map(|v| v.name.as_str()), Some("fixtures/a.txt"));

        // a callback's refusal reaches the caller as a validation error
        let picky = BlobSaver::<docs::Entity>::new(db.clone())
            .store(store.clone())
            .outbox(tables.outbox.clone())
            .field(BlobFieldSpec::new(docs::Column::File, "media").blank(true).destination(|ctx| {
                if ctx.original_name.ends_with(".exe") {
                    Err(Error::Validation { field: "docs.file".into(), message: "no executables".into() })
                } else {
                    Ok((format!("ok/{}", ctx.original_name), false))
                }
            }));
        let up = upload(store.as_ref(), "evil.exe", b"MZ", "application/octet-stream").await;
        let temp = up.temp_name.clone();
        let err = picky.insert(new_doc("x"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap_err();
        assert!(matches!(&err, Error::Validation { message, .. } if message == "no executables"), "{err}");
        assert!(store.exists(&temp).await.unwrap(), "a refused upload stays for a retry");
        assert!(tables.outbox.list(db, None).await.unwrap().is_empty(), "refused save left intents");
        tables.drop(db).await;
    }
}

#[tokio::test]
async fn a_temporary_upload_is_promoted_at_most_once() {
    for db in databases().await {
        let store = memory(false);
        let db = &db.conn;
        let tables = Tables::create(db).await;
        let saver = saver(db, &tables, store.clone());
        let up = upload(store.as_ref(), "once.txt", b"1", "text/plain").await;
        // Two saves race for the same upload: the outbox admits one intent per temporary object.
        let first = saver.prepare_insert(BlobChanges::new().attach(docs::Column::File, up.clone())).await.unwrap();
        let err = saver
            .insert(new_doc("second"), BlobChanges::new().attach(docs::Column::File, up.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TicketReplayed { .. }), "{err}");
        drop(first);
        replay_outbox(db, &tables.outbox, &[store.clone() as Arc<dyn Store>], Duration::ZERO).await.unwrap();
        // After a completed promotion the temporary object is gone: a replayed form cannot promote it again.
        saver.insert(new_doc("first"), BlobChanges::new().attach(docs::Column::File, up.clone())).await.unwrap();
        let err = saver.insert(new_doc("again"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap_err();
        assert!(err.to_string().contains("upload incomplete"), "{err}");
        assert_eq!(docs::Entity::find().all(db).await.unwrap().len(), 1);
        tables.drop(db).await;
    }
}

#[tokio::test]
async fn overwrite_modes_read_the_buckets_versioning() {
    for db in databases().await {
        let db = &db.conn;
        for versioning in [false, true] {
            let store = memory(versioning);
            let counting = Arc::new(CountingStore::new(store.clone()));
            let tables = Tables::create(db).await;
            let fixed_path = |mode: OverwriteMode| {
                BlobFieldSpec::<docs::Entity>::new(docs::Column::File, "media")
                    .blank(true)
                    .overwrite_mode(mode)
                    .update_attributes(|_| {
                        Ok(ObjectParameters { cache_control: Some("max-age=60".into()), ..Default::default() })
                    })
                    .destination(|ctx| Ok((format!("fixed/{}.txt", ctx.model.id), ctx.allow_overwrite)))
            };
            let never = BlobSaver::new(db.clone())
                .store(counting.clone())
                .outbox(tables.outbox.clone())
                .field(fixed_path(OverwriteMode::Never));
            let up = upload(store.as_ref(), "v1.txt", b"v1", "text/plain").await;
            let saved = never.insert(new_doc("x"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
            let v1 = saved.model.file.clone().unwrap();
            assert_eq!(v1.name, format!("fixed/{}.txt", saved.model.id));
            // never: replacing at the same path is refused, nothing changes
            let up = upload(store.as_ref(), "v2.txt", b"v2", "text/plain").await;
            let err = never
                .update(saved.model.clone().into_active_model(), BlobChanges::new().attach(docs::Column::File, up))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("overwrite mode `never`"), "{err}");
            assert_eq!(store.get_bytes(&v1.name).await.unwrap().as_ref(), b"v1");

            // update-versioned: allowed only on a versioned bucket (read from the store, once)
            let versioned = BlobSaver::new(db.clone())
                .store(counting.clone())
                .outbox(tables.outbox.clone())
                .field(fixed_path(OverwriteMode::UpdateVersioned));
            counting.reset();
            let up = upload(store.as_ref(), "v2.txt", b"v2!", "text/plain").await;
            let result = versioned
                .update(saved.model.clone().into_active_model(), BlobChanges::new().attach(docs::Column::File, up))
                .await;
            assert_eq!(counting.counts().get(StoreOp::VersioningEnabled), 1);
            if versioning {
                let saved = result.unwrap();
                let v2 = saved.model.file.clone().unwrap();
                assert_eq!(v2.name, v1.name);
                assert_eq!(store.get_bytes(&v2.name).await.unwrap().as_ref(), b"v2!");
                // the deferred overwrite refreshed the cache in the row
                let row = docs::Entity::find_by_id(saved.model.id).one(db).await.unwrap().unwrap();
                let cached = row.file.unwrap();
                let live = store.head(&v1.name, GetOptions::default()).await.unwrap();
                assert_eq!(cached.generation, Some(live.generation));
                assert_eq!(live.cache_control.as_deref(), Some("max-age=60"));
                // generations: both kept on the versioned bucket
                let gens = cached.generations(store.as_ref()).await.unwrap();
                assert_eq!(gens.len(), 2);
                assert_eq!(gens[0].generation, v1.generation.unwrap());
            } else {
                let err = result.unwrap_err();
                assert!(err.to_string().contains("no object versioning"), "{err}");
                assert_eq!(store.get_bytes(&v1.name).await.unwrap().as_ref(), b"v1");
            }
            assert!(tables.outbox.list(db, None).await.unwrap().is_empty());
            tables.drop(db).await;
        }
    }
}

#[tokio::test]
async fn the_column_json_legacy_values_and_garbage() {
    for db in databases().await {
        let store = memory(false);
        let name = db.name;
        let db = &db.conn;
        let tables = Tables::create(db).await;
        let saver = saver(db, &tables, store.clone());
        let up = upload(store.as_ref(), "r.pdf", b"%PDF", "application/pdf").await;
        let saved = saver.insert(new_doc("json"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
        // the stored JSON is the documented shape
        let sql = format!("SELECT file FROM {} WHERE id = {}", tables.docs, saved.model.id);
        let row =
            db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
        let raw = sea_gcp::field::read_raw(&row, "file").unwrap().unwrap();
        let json = match raw {
            sea_gcp::field::RawCell::Json(j) => j,
            sea_gcp::field::RawCell::Text(t) => serde_json::from_str(&t).unwrap(),
        };
        assert_eq!(json["v"], 1, "{name}: {json}");
        assert!(json["generation"].is_string(), "{name}: generation must be a string: {json}");
        assert_eq!(json["size"], 4);
        assert_eq!(json["content_type"], "application/pdf");
        assert_eq!(json["original_name"], "r.pdf");

        // django-gcp's legacy shape reads, with no cache; refresh() fills it and reports the drift
        let legacy_name = saved.model.file.as_ref().unwrap().name.clone();
        let legacy = format!(r#"{{"path": "{legacy_name}"}}"#);
        exec(db, &format!("UPDATE {} SET file = '{legacy}' WHERE id = {}", tables.docs, saved.model.id)).await;
        let row = docs::Entity::find_by_id(saved.model.id).one(db).await.unwrap().unwrap();
        let mut value = row.file.unwrap();
        assert!(value.legacy && !value.is_cached() && value.size.is_none());
        let drift = value.refresh(store.as_ref()).await.unwrap();
        assert!(drift.changed.contains(&"generation") && drift.changed.contains(&"size"), "{drift:?}");
        assert_eq!(value.size, Some(4));

        // garbage: a typed error naming table, column and row; never blank, never a panic
        let bad = [r#"{"v": 7, "name": "x"}"#, r#"{"v": 1, "name": 3}"#, r#"[1, 2]"#];
        for garbage in bad {
            exec(db, &format!("UPDATE {} SET file = '{garbage}' WHERE id = {}", tables.docs, saved.model.id)).await;
            let err = docs::Entity::find().all(db).await.unwrap_err();
            assert!(err.to_string().contains("corrupt blob column `file`"), "{name}: {err}");
            let err = find_checked(db, docs::Entity::find()).await.unwrap_err();
            match err {
                Error::CorruptColumn { table, column, row, .. } => {
                    assert_eq!(
                        (table.as_str(), column.as_str(), row.clone()),
                        (tables.docs, "file", saved.model.id.to_string())
                    );
                }
                other => panic!("{name}: expected CorruptColumn, got {other}"),
            }
            // saving through the saver reports it too
            let err = saver.update(saved.model.clone().into_active_model(), BlobChanges::new()).await.unwrap_err();
            assert!(matches!(err, Error::CorruptColumn { .. }), "{name}: {err}");
        }
        if name == "sqlite" {
            // SQLite stores text: not even JSON
            exec(db, &format!("UPDATE {} SET file = 'not json at all' WHERE id = {}", tables.docs, saved.model.id))
                .await;
            let err = find_checked(db, docs::Entity::find()).await.unwrap_err();
            assert!(matches!(&err, Error::CorruptColumn { message, .. } if message.contains("not JSON")), "{err}");
            let bad_rows = sea_gcp::field::scan_column::<docs::Entity, _>(db, docs::Column::File).await.unwrap();
            assert_eq!(bad_rows.len(), 1);
        }
        tables.drop(db).await;
    }
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn a_hundred_concurrent_saves_do_not_cross_talk() {
    for db in databases().await {
        let store = memory(false);
        let name = db.name;
        let db = &db.conn;
        let tables = Tables::create(db).await;
        let saver = saver(db, &tables, store.clone());
        let mut uploads = Vec::new();
        for i in 0..100 {
            let body = format!("body of upload {i}");
            uploads.push((i, upload(store.as_ref(), &format!("f{i}.txt"), body.as_bytes(), "text/plain").await));
        }
        let saves = uploads.into_iter().map(|(i, up)| {
            let saver = saver.clone();
            async move {
                let saved = saver
                    .insert(new_doc(&format!("doc {i}")), BlobChanges::new().attach(docs::Column::File, up))
                    .await
                    .unwrap();
                (i, saved.model)
            }
        });
        let results = futures::future::join_all(saves).await;
        for (i, model) in &results {
            assert_eq!(model.title, format!("doc {i}"));
            let file = model.file.as_ref().unwrap();
            assert!(file.name.starts_with(&format!("docs/{}/", model.id)), "{name}: {}", file.name);
            let bytes = store.get_bytes(&file.name).await.unwrap();
            assert_eq!(
                bytes.as_ref(),
                format!("body of upload {i}").as_bytes(),
                "{name}: cross-talk on row {}",
                model.id
            );
        }
        let names: BTreeSet<_> = results.iter().map(|(_, m)| m.file.as_ref().unwrap().name.clone()).collect();
        assert_eq!(names.len(), 100);
        let report =
            replay_outbox(db, &tables.outbox, &[store.clone() as Arc<dyn Store>], Duration::ZERO).await.unwrap();
        assert!(report.is_clean(), "{report}");
        assert_references_live(db, store.as_ref(), name).await;
        assert_no_orphans(db, store.as_ref(), &tables.outbox, &BTreeSet::new(), name).await;
        assert!(temp_objects(store.as_ref()).await.is_empty());
        exec(db, &format!("DELETE FROM {}", tables.docs)).await;
        for n in &names {
            store.delete(n, Default::default()).await.unwrap();
        }
        tables.drop(db).await;
    }
}

#[tokio::test]
async fn keep_policy_leaves_replaced_objects() {
    for db in databases().await {
        let store = memory(false);
        let db = &db.conn;
        let tables = Tables::create(db).await;
        let saver = BlobSaver::new(db.clone())
            .store(store.clone())
            .outbox(tables.outbox.clone())
            .field(file_spec().delete_policy(DeletePolicy::Keep));
        let up = upload(store.as_ref(), "a", b"a", "text/plain").await;
        let saved = saver.insert(new_doc("k"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
        let first = saved.model.file.clone().unwrap().name;
        let saved =
            saver.update(saved.model.into_active_model(), BlobChanges::new().blank(docs::Column::File)).await.unwrap();
        assert!(store.exists(&first).await.unwrap());
        saver.delete(saved.model).await.unwrap();
        assert!(store.exists(&first).await.unwrap());
        store.delete(&first, Default::default()).await.unwrap();
        tables.drop(db).await;
    }
}

#[tokio::test]
async fn the_explicit_steps_inside_a_callers_transaction() {
    use sea_orm::TransactionTrait;
    for db in databases().await {
        let store = memory(false);
        let db = &db.conn;
        let tables = Tables::create(db).await;
        let saver = saver(db, &tables, store.clone());
        let up = upload(store.as_ref(), "t.txt", b"t", "text/plain").await;
        let save = saver.prepare_insert(BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
        let txn = db.begin().await.unwrap();
        let save = save.apply(&txn, new_doc("in txn")).await.unwrap();
        let model = save.model().clone();
        // the caller's own work in the same transaction
        let mut other = new_doc("sibling").insert(&txn).await.unwrap().into_active_model();
        other.title = Set("sibling 2".into());
        other.update(&txn).await.unwrap();
        txn.commit().await.unwrap();
        let report = save.committed().await;
        assert_eq!(report.finished, 1, "{report:?}");
        assert_references_live(db, store.as_ref(), "explicit").await;
        assert_no_orphans(db, store.as_ref(), &tables.outbox, &BTreeSet::new(), "explicit").await;
        assert!(model.file.is_some());
        // and a caller's rollback leaves nothing behind
        let up = upload(store.as_ref(), "r.txt", b"r", "text/plain").await;
        let save = saver.prepare_insert(BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
        let txn = db.begin().await.unwrap();
        let save = save.apply(&txn, new_doc("rolled back")).await.unwrap();
        txn.rollback().await.unwrap();
        assert_eq!(save.abort().await, 1);
        assert_no_orphans(db, store.as_ref(), &tables.outbox, &BTreeSet::new(), "rollback").await;
        assert_eq!(docs::Entity::find().all(db).await.unwrap().len(), 2);
        tables.drop(db).await;
    }
}

#[tokio::test]
async fn the_outbox_migration_runs_up_and_down() {
    use sea_gcp::promote::OutboxMigrator;
    use sea_gcp::promote::{Outbox, replay};
    use sea_orm_migration::MigratorTrait;
    // SQLite only: the default table name is shared on the PostgreSQL/MariaDB test databases.
    let db = databases().await.into_iter().next().unwrap();
    assert_eq!(db.name, "sqlite");
    OutboxMigrator::up(&db.conn, None).await.unwrap();
    let outbox = Outbox::default();
    assert!(outbox.list(&db.conn, None).await.unwrap().is_empty());
    let store: Arc<dyn Store> = memory(false);
    let report = replay(&db.conn, &[store], Duration::ZERO).await.unwrap();
    assert_eq!(report.examined, 0);
    OutboxMigrator::down(&db.conn, None).await.unwrap();
    assert!(outbox.list(&db.conn, None).await.is_err(), "down drops the table");
}

/// One operation of [`concurrent_operations_on_one_row_orphan_and_lose_nothing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowOp {
    /// `update` attaching a new upload.
    Replace,
    /// `update` blanking the field.
    Blank,
    /// `delete` of the row.
    Delete,
}

/// Run `op` on the row, with the model as the caller loaded it before either operation started
/// (possibly stale). An update of a row deleted meanwhile fails with "not found"; that is a valid
/// outcome of the race, anything else is not.
async fn run_row_op(
    saver: &BlobSaver<docs::Entity>,
    memory: &dyn Store,
    op: RowOp,
    loaded: docs::Model,
    tag: &str,
) -> Result<(), Error> {
    let result = match op {
        RowOp::Replace => {
            let up = upload(memory, &format!("{tag}.txt"), tag.as_bytes(), "text/plain").await;
            let changes = BlobChanges::new().attach(docs::Column::File, up);
            saver.update(loaded.into_active_model(), changes).await.map(|s| s.report)
        }
        RowOp::Blank => {
            let changes = BlobChanges::new().blank(docs::Column::File);
            saver.update(loaded.into_active_model(), changes).await.map(|s| s.report)
        }
        RowOp::Delete => saver.delete(loaded).await,
    };
    match result {
        Ok(report) => {
            assert!(report.left_for_replay.is_empty(), "{op:?}: {report:?}");
            Ok(())
        }
        Err(e @ Error::Database(sea_orm::DbErr::RecordNotFound(_))) if op != RowOp::Delete => Err(e),
        Err(e) => panic!("{op:?} failed: {e}"),
    }
}

/// Every pair of concurrent operations on one row's blob (replace/replace, replace/delete in both
/// orders, replace/blank in both orders, delete/delete), both started at once and with the second
/// 5 ms after the first while the first holds the row (its copy takes 30 ms), from the same loaded
/// model. A save reads the row under the row lock and acts on what it holds then, so no round may
/// leave an orphan (an object no row references) or a missing object (a reference to a deleted
/// object). The counts are printed per database and pair; both must be zero.
#[tokio::test]
async fn concurrent_operations_on_one_row_orphan_and_lose_nothing() {
    use RowOp::*;
    const ROUNDS: usize = 4;
    let pairs = [
        (Replace, Replace),
        (Replace, Delete),
        (Delete, Replace),
        (Replace, Blank),
        (Blank, Replace),
        (Delete, Delete),
    ];
    for db in databases().await {
        let name = db.name;
        let db = &db.conn;
        let memory = memory(false);
        // The first operation holds the row lock while it promotes (a slow destination or copy).
        let store = Arc::new(sea_gcp::testing::fault::FaultStore::new(memory.clone()));
        store.delay(StoreOp::Copy, Duration::from_millis(30));
        let tables = Tables::create(db).await;
        let saver = saver(db, &tables, store.clone());
        let mut failures = Vec::new();
        for (first, second) in pairs {
            for offset in [Duration::ZERO, Duration::from_millis(5)] {
                let (mut orphans, mut missing) = (0, 0);
                for round in 0..ROUNDS {
                    let up = upload(memory.as_ref(), "v0.txt", b"v0", "text/plain").await;
                    let changes = BlobChanges::new().attach(docs::Column::File, up);
                    let loaded = saver.insert(new_doc("raced"), changes).await.unwrap().model;
                    let id = loaded.id;
                    let (a, b) = (loaded.clone(), loaded);
                    let (tag_a, tag_b) = (format!("a{round}-{}", offset.as_millis()), format!("b{round}"));
                    let _ = tokio::join!(run_row_op(&saver, memory.as_ref(), first, a, &tag_a), async {
                        tokio::time::sleep(offset).await;
                        run_row_op(&saver, memory.as_ref(), second, b, &tag_b).await
                    });
                    // This row's objects (destinations are `docs/<id>/...`) against what it references.
                    let prefix = format!("docs/{id}/");
                    let have: BTreeSet<String> = permanent_objects(memory.as_ref())
                        .await
                        .into_iter()
                        .filter(|n| n.starts_with(&prefix))
                        .collect();
                    let row = docs::Entity::find_by_id(id).one(db).await.unwrap();
                    let want: BTreeSet<String> = row.and_then(|r| r.file).map(|v| v.name).into_iter().collect();
                    orphans += have.difference(&want).count();
                    missing += want.difference(&have).count();
                }
                eprintln!(
                    "{name}: {first:?}/{second:?} +{}ms: {orphans} orphans, {missing} missing in {ROUNDS} rounds",
                    offset.as_millis()
                );
                if orphans + missing > 0 {
                    failures.push(format!(
                        "{first:?}/{second:?} +{}ms: {orphans} orphans, {missing} missing",
                        offset.as_millis()
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{name}: {failures:#?}");
        let report =
            replay_outbox(db, &tables.outbox, &[store.clone() as Arc<dyn Store>], Duration::ZERO).await.unwrap();
        assert!(report.is_clean(), "{name}: {report}");
        assert_references_live(db, memory.as_ref(), name).await;
        assert_no_orphans(db, memory.as_ref(), &tables.outbox, &BTreeSet::new(), name).await;
        tables.drop(db).await;
    }
}

/// A 1x1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

#[tokio::test]
async fn uploads_are_identified_from_their_bytes_and_contradictions_change_nothing() {
    for db in databases().await {
        let (db, name) = (&db.conn, db.name);
        let store = memory(false);
        let counting = Arc::new(CountingStore::new(store.clone() as Arc<dyn Store>));
        let tables = Tables::create(db).await;
        let images = BlobSaver::<docs::Entity>::new(db.clone())
            .store(counting.clone())
            .outbox(tables.outbox.clone())
            .field(BlobFieldSpec::new(docs::Column::File, "media").accept(["image/*"]));

        // A PNG sent as one: saved, with one ranged read more than without identification.
        let up = upload(store.as_ref(), "a.png", PNG, "image/png").await;
        counting.reset();
        let saved = images.insert(new_doc("png"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
        let calls = counting.counts();
        assert!(calls.remote() <= 4, "{name}: a new identified upload took {calls}");
        assert_eq!(calls.get(StoreOp::Get), 1, "{name}: one read of the first bytes: {calls}");
        assert_eq!(saved.model.file.as_ref().unwrap().content_type.as_deref(), Some("image/png"));

        // Sent as application/octet-stream: saved as what the bytes are, on the row and on the object.
        let up = upload(store.as_ref(), "b.bin", PNG, "application/octet-stream").await;
        let saved = images.insert(new_doc("generic"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
        let value = saved.model.file.clone().unwrap();
        assert_eq!(value.content_type.as_deref(), Some("image/png"), "{name}");
        let object = store.head(&value.name, GetOptions::default()).await.unwrap();
        assert_eq!(object.content_type.as_deref(), Some("image/png"), "{name}: the object carries it too");

        // Contradictions are refused and leave nothing: HTML or SVG sent as an image, a script after a
        // GIF header, a PNG sent as a JPEG.
        let rows_before = docs::Entity::find().all(db).await.unwrap().len();
        let objects_before = permanent_objects(store.as_ref()).await;
        let mut polyglot = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,".to_vec();
        polyglot.extend_from_slice(b"<script>alert(document.cookie)</script>");
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#;
        for (file, bytes, declared, why) in [
            ("x.png", &b"<!doctype html><script>alert(1)</script>"[..], "image/png", "markup"),
            ("x.png", &svg[..], "image/png", "markup"),
            ("x.gif", &polyglot[..], "image/gif", "markup"),
            ("x.jpg", PNG, "image/jpeg", "`image/png` but was sent as `image/jpeg`"),
        ] {
            let up = upload(store.as_ref(), file, bytes, declared).await;
            let err =
                images.insert(new_doc("bad"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap_err();
            assert!(matches!(&err, Error::Validation { .. }) && err.to_string().contains(why), "{name}: {err}");
        }
        assert_eq!(docs::Entity::find().all(db).await.unwrap().len(), rows_before, "{name}: refused saves wrote rows");
        assert_eq!(permanent_objects(store.as_ref()).await, objects_before, "{name}: refused saves left objects");

        // Turned off, the declaration is trusted as before.
        let trusting = BlobSaver::<docs::Entity>::new(db.clone())
            .store(store.clone())
            .outbox(tables.outbox.clone())
            .field(BlobFieldSpec::new(docs::Column::File, "media").accept(["image/*"]).identify_type(false));
        let up = upload(store.as_ref(), "y.png", b"<html></html>", "image/png").await;
        trusting.insert(new_doc("trusted"), BlobChanges::new().attach(docs::Column::File, up)).await.unwrap();
    }
}
