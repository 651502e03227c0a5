//! A ticket promotes at most once for its whole lifetime, on SQLite, PostgreSQL and MariaDB: after its
//! save committed (temp object and outbox intent gone, the ticket and its create-only URL still valid),
//! posting the same ticket again (with or without uploading again) fails with `ticket_replayed` and
//! changes nothing.

mod field_support;

use std::sync::Arc;

use field_support::*;
use sea_gcp::Error;
use sea_gcp::field::BlobChanges;
use sea_gcp::promote::UsedTicketTable;
use sea_gcp::storage::{PutOptions, PutPayload, Store};
use sea_gcp::upload::{Refusal, TicketClaims, TicketProblem, TicketSigner, UploadField, UploadFields, UploadRouter};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use serde_json::json;

/// A local store (the memory store issues no signed uploads), keyed `media`.
async fn local_store() -> (Arc<sea_gcp::storage::LocalStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = sea_gcp::storage::LocalStore::new("media", sea_gcp::StoreConfig::local(dir.path())).await.unwrap();
    (Arc::new(store.with_url_secret("url-secret")), dir)
}

fn claims_of(ticket: &str) -> TicketClaims {
    use base64::Engine;
    let payload = ticket.split_once('.').unwrap().0;
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Ask the router for a ticket for `bytes` and write them to its temp name, as the browser's PUT does.
async fn upload_with_ticket(router: &UploadRouter, store: &dyn Store, field: &str, bytes: &[u8]) -> String {
    let (parts, _) =
        axum::http::Request::post("/uploads").header("content-type", "application/json").body(()).unwrap().into_parts();
    let body = json!({"field": field, "filename": "a.txt", "size": bytes.len(), "content_type": "text/plain"});
    let grant = router.issue(&parts, body.to_string().as_bytes()).await.unwrap();
    put_again(store, &grant.ticket, bytes).await;
    grant.ticket
}

/// The create-only PUT of the ticket's URL, again (the temp object is gone after a committed save).
async fn put_again(store: &dyn Store, ticket: &str, bytes: &[u8]) {
    let name = claims_of(ticket).name;
    store
        .put(&name, PutPayload::Bytes(bytes.to_vec().into()), PutOptions::create_only().with_content_type("text/plain"))
        .await
        .unwrap();
}

async fn replay_is_refused(db: &DatabaseConnection, label: &str) {
    let tables = Tables::create(db).await;
    let used = UsedTicketTable::for_outbox(&tables.outbox);
    used.create(db).await.unwrap();
    let (store, _dir) = local_store().await;
    let dyn_store: Arc<dyn Store> = store.clone();
    let field_id = format!("{}.file", tables.docs);
    let fields = UploadFields::new().register(UploadField::from_spec(&file_spec(), dyn_store.clone())).unwrap();
    let router = UploadRouter::new(fields, TicketSigner::new("ticket-secret")).allow_all();
    let verifier = router.verifier();
    let saver = saver(db, &tables, dyn_store.clone());

    // First save: fine.
    let ticket = upload_with_ticket(&router, store.as_ref(), &field_id, b"one").await;
    let upload = verifier.verify(&field_id, &ticket).await.unwrap();
    let model = docs::ActiveModel { title: Set("first".into()), ..Default::default() };
    saver.insert(model, BlobChanges::new().attach(docs::Column::File, upload)).await.unwrap();
    assert!(temp_objects(store.as_ref()).await.is_empty(), "{label}: the temp object is gone after the commit");
    assert_eq!(used.count(db).await.unwrap(), 1, "{label}: the ticket is recorded");
    let rows_before = docs::Entity::find().all(db).await.unwrap();
    let objects_before = permanent_objects(store.as_ref()).await;

    // The same form posted again as it is (a second click on Save, the back button): its upload is
    // gone, and the answer is the documented replay, 409 `ticket_replayed`, not "no file was
    // uploaded". A verifier that cannot read the used-ticket table can only say the upload is missing.
    let with_table = verifier.clone().with_used_tickets(db.clone(), used.clone());
    let refused = with_table.verify(&field_id, &ticket).await.unwrap_err();
    assert_eq!(refused.problem, TicketProblem::Replayed, "{label}: {refused:?}");
    let refusal = Refusal::from(refused);
    assert_eq!((refusal.status.as_u16(), refusal.error.as_str()), (409, "ticket_replayed"), "{label}");
    assert!(!sea_gcp::testing::looks_like_code(&refusal.message), "{label}: {}", refusal.message);
    assert_eq!(verifier.verify(&field_id, &ticket).await.unwrap_err().problem, TicketProblem::BadUpload);

    // The attack: PUT again through the still-valid create-only URL, post the same ticket, for an
    // insert and for an update of the existing row.
    put_again(store.as_ref(), &ticket, b"two").await;
    let again = verifier.verify(&field_id, &ticket).await.unwrap();
    let model = docs::ActiveModel { title: Set("second".into()), ..Default::default() };
    let err = saver.insert(model, BlobChanges::new().attach(docs::Column::File, again.clone())).await.unwrap_err();
    assert!(matches!(err, Error::TicketReplayed { .. }), "{label}: {err:?}");
    let refusal = Refusal::from_save_error(&err);
    assert_eq!((refusal.status.as_u16(), refusal.error.as_str()), (409, "ticket_replayed"), "{label}");
    let mut existing: docs::ActiveModel = rows_before[0].clone().into();
    existing.title = Set("changed".into());
    let err = saver.update(existing, BlobChanges::new().attach(docs::Column::File, again)).await.unwrap_err();
    assert!(matches!(err, Error::TicketReplayed { .. }), "{label}: {err:?}");

    // Nothing changed: one row, same values, same permanent objects, empty outbox, one record.
    assert_eq!(docs::Entity::find().all(db).await.unwrap(), rows_before, "{label}: rows unchanged");
    assert_eq!(permanent_objects(store.as_ref()).await, objects_before, "{label}: no second object");
    assert!(tables.outbox.list(db, None).await.unwrap().is_empty(), "{label}: outbox empty");
    assert_eq!(used.count(db).await.unwrap(), 1, "{label}");
    assert_references_live(db, store.as_ref(), label).await;

    // Another ticket still works; records are pruned only after expiry.
    let other = upload_with_ticket(&router, store.as_ref(), &field_id, b"three").await;
    let upload = verifier.verify(&field_id, &other).await.unwrap();
    let model = docs::ActiveModel { title: Set("third".into()), ..Default::default() };
    saver.insert(model, BlobChanges::new().attach(docs::Column::File, upload)).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    assert_eq!(used.prune(db, now).await.unwrap(), 0, "{label}: unexpired records are kept");
    assert!(used.contains(db, &claims_of(&ticket).nonce).await.unwrap());
    assert_eq!(used.prune(db, now + 2 * 3600).await.unwrap(), 2, "{label}: expired records are pruned");
    assert_eq!(used.count(db).await.unwrap(), 0);

    used.drop(db).await.unwrap();
    tables.drop(db).await;
}

#[tokio::test]
async fn a_ticket_promotes_at_most_once_on_every_database() {
    for db in databases().await {
        replay_is_refused(&db.conn, db.name).await;
    }
}

#[tokio::test]
async fn declared_size_is_rechecked_when_promoting() {
    for db in databases().await {
        let (db, label) = (&db.conn, db.name);
        let tables = Tables::create(db).await;
        let used = UsedTicketTable::for_outbox(&tables.outbox);
        used.create(db).await.unwrap();
        let (store, _dir) = local_store().await;
        let dyn_store: Arc<dyn Store> = store.clone();
        let field_id = format!("{}.file", tables.docs);
        let fields = UploadFields::new().register(UploadField::from_spec(&file_spec(), dyn_store.clone())).unwrap();
        let router = UploadRouter::new(fields, TicketSigner::new("ticket-secret")).allow_all();
        let ticket = upload_with_ticket(&router, store.as_ref(), &field_id, b"0123456789").await;
        let mut upload = router.verifier().verify(&field_id, &ticket).await.unwrap();
        // A verified upload whose declared size was smaller than what is promoted (e.g. a verifier
        // of another version): the save itself refuses it.
        upload.claims.size = 5;
        let model = docs::ActiveModel { title: Set("t".into()), ..Default::default() };
        let err = saver(db, &tables, dyn_store.clone())
            .insert(model, BlobChanges::new().attach(docs::Column::File, upload))
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::Validation { message, .. } if message.contains("declared")), "{label}: {err}");
        assert!(docs::Entity::find().all(db).await.unwrap().is_empty(), "{label}: no row");
        assert!(permanent_objects(store.as_ref()).await.is_empty(), "{label}: no object");
        assert_eq!(used.count(db).await.unwrap(), 0, "{label}: nothing recorded");
        used.drop(db).await.unwrap();
        tables.drop(db).await;
    }
}
