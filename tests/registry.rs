//! The `Blobs` registry end to end over real HTTP: its upload router issues a ticket (local store) or
//! a ticket is issued the way the router does and the bytes written the way a browser would (memory
//! store, which cannot take browser uploads), then a form handler built on `BlobForm` verifies it and
//! saves with `Blobs::insert` / `update`; refusals (a ticket of another subject, a replayed ticket, a
//! clear of a required field) answer the right status and change nothing. SQLite always; PostgreSQL
//! and MariaDB when reachable.

mod field_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use field_support::{Tables, databases, docs, permanent_objects, temp_objects};
use sea_gcp::blobs::BlobFormRejection;
use sea_gcp::field::{BlobFieldSpec, DeletePolicy};
use sea_gcp::storage::LocalStore;
use sea_gcp::storage::{PutOptions, PutPayload, Store};
use sea_gcp::upload::{AuthorizeFn, Grant, Refusal, TICKET_VERSION, TicketClaims, TicketSigner, UploadField};
use sea_gcp::{BlobForm, Blobs, StoreConfig};
use sea_orm::{ActiveValue, DatabaseConnection, EntityTrait};
use serde::Deserialize;

const SECRET: &str = "registry-test-ticket-secret";

#[derive(Clone)]
struct AppState {
    blobs: Blobs,
}

impl FromRef<AppState> for Blobs {
    fn from_ref(s: &AppState) -> Blobs {
        s.blobs.clone()
    }
}

#[derive(Debug, Deserialize)]
struct DocForm {
    title: String,
}

type Posted = Result<BlobForm<docs::Entity, DocForm>, BlobFormRejection>;

async fn create(State(s): State<AppState>, posted: Posted) -> Response {
    let form = match posted {
        Ok(form) => form,
        Err(rejection) => return rejection.into_response(),
    };
    let model = docs::ActiveModel { title: ActiveValue::Set(form.fields.title), ..Default::default() };
    match s.blobs.insert(model, form.changes).await {
        Ok(saved) => Redirect::to(&format!("/docs/{}", saved.model.id)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn update(State(s): State<AppState>, Path(id): Path<i32>, posted: Posted) -> Response {
    let form = match posted {
        Ok(form) => form,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(row) = docs::Entity::find_by_id(id).one(s.blobs.connection()).await.unwrap() else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let mut model: docs::ActiveModel = row.into();
    model.title = ActiveValue::Set(form.fields.title);
    match s.blobs.update(model, form.changes).await {
        Ok(_) => Redirect::to(&format!("/docs/{id}")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Tickets are bound to the `x-user` header; no header: refused.
fn authorize(parts: &axum::http::request::Parts, _field: &UploadField) -> Result<Grant, Refusal> {
    match parts.headers.get("x-user").and_then(|u| u.to_str().ok()) {
        Some(user) => Ok(Grant::for_subject(user)),
        None => Err(Refusal::unauthenticated("sign in")),
    }
}

enum Kind {
    Local,
    Memory,
}

struct Harness {
    base: String,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    blobs: Blobs,
    local: bool,
    _dir: tempfile::TempDir,
}

async fn harness(db: &DatabaseConnection, tables: &Tables, kind: Kind) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let builder = Blobs::builder(db.clone()).outbox(tables.outbox.clone());
    let (builder, store, local): (_, Arc<dyn Store>, bool) = match kind {
        Kind::Local => {
            let mut config = StoreConfig::local(dir.path());
            config.base_url = Some(format!("{base}/storage/media"));
            let local = Arc::new(LocalStore::new("media", config).await.unwrap().with_url_secret("url-secret"));
            (builder.local_store(local.clone()), local, true)
        }
        Kind::Memory => {
            let store = field_support::memory(false);
            (builder.store(store.clone()), store, false)
        }
    };
    let blobs = builder
        .secret(SECRET)
        .authorize(AuthorizeFn(authorize))
        .entity(|e| {
            // `file` is nullable: blankable without saying so. `cover` is made required.
            e.field(BlobFieldSpec::new(docs::Column::File, "media").max_size(1024).delete_policy(DeletePolicy::Delete))
                .field(BlobFieldSpec::new(docs::Column::Cover, "media").blank(false))
        })
        .build()
        .unwrap();
    blobs.create_tables().await.unwrap();
    let app = Router::new()
        .route("/docs", post(create))
        .route("/docs/{id}", post(update))
        .with_state(AppState { blobs: blobs.clone() })
        .merge(blobs.router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Harness { base, http, store, blobs, local, _dir: dir }
}

impl Harness {
    /// A ticket for `field` issued to `user`, and its bytes uploaded: through `POST /uploads` and the
    /// signed PUT on the local store; on the memory store signed like the router signs it and written
    /// to the temp name like a browser would.
    async fn upload(&self, user: &str, column: &str, bytes: &[u8]) -> (String, String) {
        let field = format!("{}.{column}", field_support::DOCS_TABLE.with(|t| t.get()));
        if self.local {
            let body = serde_json::json!({"field": field, "filename": "a.txt", "size": bytes.len(), "content_type": "text/plain"});
            let r = self.http.post(format!("{}/uploads", self.base)).header("x-user", user).json(&body).send().await;
            let r = r.unwrap();
            assert_eq!(r.status(), 200);
            let grant: serde_json::Value = r.json().await.unwrap();
            let url = grant["url"].as_str().unwrap();
            let url = if url.starts_with('/') { format!("{}{url}", self.base) } else { url.to_string() };
            let ticket = grant["ticket"].as_str().unwrap().to_string();
            self.put(&url, &grant, bytes).await;
            (ticket, url)
        } else {
            let name = format!("_tmp/{}/a.txt", uuid::Uuid::now_v7());
            let claims = TicketClaims {
                v: TICKET_VERSION,
                store: "media".into(),
                field,
                name: name.clone(),
                original_name: "a.txt".into(),
                max_size: 1024,
                size: bytes.len() as u64,
                content_type: "text/plain".into(),
                expires: chrono::Utc::now().timestamp() + 600,
                nonce: uuid::Uuid::new_v4().to_string(),
                sub: Some(user.into()),
            };
            self.write_temp(&name, bytes).await;
            (TicketSigner::new(SECRET).issue(&claims), name)
        }
    }

    async fn put(&self, url: &str, grant: &serde_json::Value, bytes: &[u8]) -> reqwest::StatusCode {
        let mut put = self.http.put(url).body(bytes.to_vec());
        for (k, v) in grant["headers"].as_object().unwrap() {
            put = put.header(k, v.as_str().unwrap());
        }
        put.send().await.unwrap().status()
    }

    async fn write_temp(&self, name: &str, bytes: &[u8]) {
        let opts = PutOptions::create_only().with_content_type("text/plain");
        self.store.put(name, PutPayload::Bytes(bytes.to_vec().into()), opts).await.unwrap();
    }

    async fn post(&self, path: &str, user: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self.http.post(format!("{}{path}", self.base)).header("x-user", user).form(form).send().await.unwrap();
        let status = r.status().as_u16();
        let location = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
        let body = r.text().await.unwrap();
        (status, location.unwrap_or(body))
    }

    async fn snapshot(&self) -> (Vec<docs::Model>, BTreeSet<String>) {
        let rows = docs::Entity::find().all(self.blobs.connection()).await.unwrap();
        (rows, permanent_objects(self.store.as_ref()).await)
    }
}

async fn run(db: &DatabaseConnection, kind: Kind, what: &str) {
    let tables = Tables::create(db).await;
    let h = harness(db, &tables, kind).await;

    // A genuine post: both fields attached, for alice.
    let (file, _) = h.upload("alice", "file", b"alice's file").await;
    let (cover, _) = h.upload("alice", "cover", b"alice's cover").await;
    let (status, location) =
        h.post("/docs", "alice", &[("title", "a"), ("file", &file), ("cover", &cover), ("csrf", "x")]).await;
    assert_eq!(status, 303, "{what}: saved ({location})");
    let id: i32 = location.rsplit('/').next().unwrap().parse().unwrap();
    let (rows, objects) = h.snapshot().await;
    assert_eq!(rows.len(), 1, "{what}");
    assert_eq!(rows[0].file.as_ref().unwrap().size, Some(12), "{what}: size cached from the save");
    assert_eq!(objects.len(), 2, "{what}: two promoted objects {objects:?}");
    assert!(temp_objects(h.store.as_ref()).await.is_empty(), "{what}: temp objects deleted");

    // Alice's ticket posted by bob: 403 ticket_wrong_subject, nothing changes.
    let (leaked, _) = h.upload("alice", "file", b"leaked").await;
    let before = h.snapshot().await;
    let (status, body) = h.post("/docs", "bob", &[("title", "b"), ("file", &leaked), ("cover", &cover)]).await;
    assert_eq!(status, 403, "{what}: {body}");
    assert!(body.contains("\"error\":\"ticket_wrong_subject\""), "{what}: {body}");
    assert_eq!(h.snapshot().await, before, "{what}: a foreign ticket changes nothing");

    // Replay: the saved ticket's bytes written again to its temp name, the ticket posted again:
    // 409 ticket_replayed (Error::into_response), nothing changes.
    let (again, target) = h.upload("alice", "file", b"first").await;
    let (status, _) = h.post(&format!("/docs/{id}"), "alice", &[("title", "a2"), ("file", &again)]).await;
    assert_eq!(status, 303, "{what}: replaced");
    // The second PUT (the create-only URL stays valid once the temp object is gone), as the store sees it.
    let _ = target;
    h.write_temp(&temp_name_of(&again), b"again").await;
    let before = h.snapshot().await;
    let (status, body) = h.post(&format!("/docs/{id}"), "alice", &[("title", "a3"), ("file", &again)]).await;
    assert_eq!(status, 409, "{what}: {body}");
    assert!(body.contains("\"error\":\"ticket_replayed\""), "{what}: {body}");
    assert!(!body.contains("_tmp/"), "{what}: no object names in the answer: {body}");
    assert_eq!(h.snapshot().await, before, "{what}: a replayed ticket changes nothing");

    // Clearing the required `cover`: refused by the extractor (422), nothing changes.
    let (status, body) = h.post(&format!("/docs/{id}"), "alice", &[("title", "a4"), ("cover__clear", "1")]).await;
    assert_eq!(status, 422, "{what}: {body}");
    assert_eq!(h.snapshot().await, before, "{what}: a refused clear changes nothing");

    // Clearing the nullable `file` (blankable from its column): saved, its object deleted per policy.
    let (status, _) = h.post(&format!("/docs/{id}"), "alice", &[("title", "a5"), ("file__clear", "1")]).await;
    assert_eq!(status, 303, "{what}: cleared");
    let (rows, objects) = h.snapshot().await;
    assert!(rows[0].file.is_none() && rows[0].cover.is_some(), "{what}");
    assert_eq!(objects.len(), 1, "{what}: the cleared file's object is deleted {objects:?}");

    // A fresh insert without the required cover: the save's own check refuses it (422 invalid_value).
    let (file2, _) = h.upload("alice", "file", b"x").await;
    let (status, body) = h.post("/docs", "alice", &[("title", "c"), ("file", &file2)]).await;
    assert_eq!(status, 422, "{what}: {body}");
    assert!(body.contains("\"error\":\"invalid_value\""), "{what}: {body}");
    assert_eq!(h.snapshot().await.0.len(), 1, "{what}: nothing inserted");

    assert!(h.blobs.repair_older_than(std::time::Duration::ZERO).await.unwrap().is_clean(), "{what}");
    tables.drop(db).await;
    let used = sea_gcp::promote::UsedTicketTable::for_outbox(&tables.outbox);
    used.drop(db).await.unwrap();
}

/// The temp name a ticket names (its claims are readable; only the signature is secret).
fn temp_name_of(ticket: &str) -> String {
    use base64::Engine;
    let claims = ticket.split('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    v["name"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn registry_router_extractor_and_save_on_the_local_store() {
    for db in databases().await {
        run(&db.conn, Kind::Local, &format!("local/{}", db.name)).await;
    }
}

#[tokio::test]
async fn registry_extractor_and_save_on_the_memory_store() {
    for db in databases().await {
        run(&db.conn, Kind::Memory, &format!("memory/{}", db.name)).await;
    }
}

#[tokio::test]
async fn a_field_on_an_unregistered_store_fails_to_build() {
    let db = &databases().await[0];
    let err = Blobs::builder(db.conn.clone())
        .entity(|e| e.field(BlobFieldSpec::new(docs::Column::File, "media")))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("store `media`"), "{err}");
}
