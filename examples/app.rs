//! The sea-gcp example: one app using every subsystem the way the README shows. Documents with a
//! required and an optional file uploaded straight from the browser, a receipt task enqueued in the
//! same transaction as the save, a nightly report on a cron schedule, and Pub/Sub pushes of storage
//! notifications, all through one [`Gcp`] handle.
//!
//! ```sh
//! cargo run --example app          # then open the printed address
//! cargo run --example app -- sea-gcp settings   # what the app resolved, and from where
//! ```
//!
//! On its embedded defaults it needs no cloud: SQLite file `sea-gcp-example.db` (`DATABASE_URL`
//! overrides), a local media store under `.sea-gcp/media` served by the crate's signed routes, and local
//! tasks: a local Cloud Tasks and Scheduler push to the app's own `/gcp/tasks/*` route with tokens the
//! worker verifies, as Google's would be. Port 8000 on 127.0.0.1 (`PORT`). Every setting comes from
//! `sea-gcp.toml`, `SEA_GCP__*` or django-gcp's names: `GCP_PROJECT_ID=my-project BASE_URL=https://...
//! SEA_GCP__MEDIA__BUCKET_NAME=my-bucket SEA_GCP__MEDIA__BACKEND=gcs` runs it against Google Cloud.
//!
//! Knobs for tests and demos: `SEA_GCP_EXAMPLE_MAX_SIZE` (bytes, the `file` field's limit, default
//! 100 MiB), `SEA_GCP_EXAMPLE_RESUMABLE_THRESHOLD` (default 8 MiB), `SEA_GCP_EXAMPLE_CHUNK_SIZE`
//! (default 8 MiB), `SEA_GCP_SECRET_KEY` (signs tickets and local URLs; default: a random secret kept
//! in `./.tmp/example-secret`).
//!
//! What to copy for your own app: every form carries a CSRF token tied to the session cookie and every
//! POST checks `Origin` (a cross-site form cannot delete or change documents); `POST /gcp/uploads`
//! takes only `application/json` (the library refuses anything else), and the authorisation hook binds
//! each ticket to the session, so a leaked ticket cannot be attached from another session. A real app
//! binds the signed-in user's id instead of the session id. The same form sent twice (a double click on
//! Save) saves once: the widget sends one submission at a time, and a second one is answered with
//! the first one's result (`ticket_replayed` leads to the list, "already saved").

#[path = "app/pages.rs"]
mod pages;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use sea_gcp::blobs::BlobFormRejection;
use sea_gcp::events::{Event, HandlerError};
use sea_gcp::images::Variant;
use sea_gcp::storage::UrlOptions;
use sea_gcp::tasks::{Task, TaskContext};
use sea_gcp::upload::{Grant, Refusal};
use sea_gcp::{BlobForm, Blobs, BoxError, Gcp, Settings};
use sea_orm::{
    ActiveValue, ConnectionTrait, Database, DatabaseConnection, EntityTrait, PaginatorTrait, QueryOrder, QuerySelect,
    Schema, TransactionTrait,
};
use serde::{Deserialize, Serialize};

/// The example's documents: a title, a required file and an optional attachment.
pub mod document {
    use sea_gcp::field::BlobValue;
    use sea_orm::entity::prelude::*;

    /// A row of `documents`.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "documents")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// Title.
        pub title: String,
        /// The document (required).
        #[sea_orm(column_type = "JsonBinary")]
        pub file: BlobValue,
        /// An optional attachment (nullable, so blankable).
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub attachment: Option<BlobValue>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What the background work did, shown under the list.
pub mod activity {
    use sea_orm::entity::prelude::*;

    /// A row of `activity`.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "activity")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// When (RFC 3339).
        pub at: String,
        /// What happened.
        pub text: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Record one line of activity.
async fn record(db: &DatabaseConnection, text: String) -> Result<(), BoxError> {
    let row = activity::ActiveModel {
        at: ActiveValue::Set(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        text: ActiveValue::Set(text),
        ..Default::default()
    };
    activity::Entity::insert(row).exec(db).await?;
    Ok(())
}

/// The receipt of a saved document.
#[derive(Debug, Serialize, Deserialize)]
struct Receipt {
    document: i32,
    title: String,
}

/// Sends the receipt of a saved document; enqueued in the save's own transaction.
struct SendReceipt(DatabaseConnection);

#[async_trait::async_trait]
impl Task for SendReceipt {
    const NAME: &'static str = "send-receipt";
    type Payload = Receipt;
    type Output = ();
    async fn run(&self, receipt: Receipt, ctx: TaskContext) -> Result<(), BoxError> {
        let by = ctx.caller.map(|c| c.email).unwrap_or_default();
        record(&self.0, format!("receipt sent for document {} ({}), pushed by {by}", receipt.document, receipt.title))
            .await
    }
}

/// Counts the documents every night at 03:00, London time.
struct NightlyReport(DatabaseConnection);

#[async_trait::async_trait]
impl Task for NightlyReport {
    const NAME: &'static str = "nightly-report";
    const SCHEDULE: Option<&'static str> = Some("CRON_TZ=Europe/London 0 3 * * *");
    type Payload = serde_json::Value;
    type Output = ();
    async fn run(&self, _: serde_json::Value, _: TaskContext) -> Result<(), BoxError> {
        let count = document::Entity::find().count(&self.0).await?;
        record(&self.0, format!("nightly report: {count} documents")).await
    }
}

/// Storage notifications pushed by Pub/Sub (`POST /gcp/events/storage/{bucket}`).
async fn storage_event(db: DatabaseConnection, event: Event) -> Result<(), HandlerError> {
    let change = event.storage().map_err(|e| HandlerError::drop_event(e.to_string()))?;
    record(&db, format!("storage: {:?} {}/{}", change.kind, change.bucket, change.name))
        .await
        .map_err(HandlerError::failed)
}

const MIB: u64 = 1024 * 1024;

/// The app's state; [`BlobForm`] finds the registry in it through `FromRef`.
#[derive(Clone, FromRef)]
struct App {
    /// Signs CSRF tokens (HMAC of the session id).
    csrf_key: sea_gcp::Secret,
    /// sea-gcp: the database, stores, blob fields, tasks.
    gcp: Gcp,
    db: DatabaseConnection,
    /// Stores, blob fields, uploads and saving.
    blobs: Blobs,
    /// The store's backend, for the page footer.
    #[from_ref(skip)]
    backend: &'static str,
}

type Shared = State<App>;

/// The document form's own fields (its blob inputs are read by [`BlobForm`]).
#[derive(Debug, Deserialize)]
struct DocForm {
    #[serde(default)]
    title: String,
}

/// A posted document form: checked by [`BlobForm`] (tickets verified for this session), or refused.
type Posted = Result<BlobForm<document::Entity, DocForm>, BlobFormRejection>;

/// The session cookie: a random id, HttpOnly, SameSite=Lax (not sent with cross-site POSTs).
const SESSION_COOKIE: &str = "sea_gcp_example_sid";

/// The session id in the request's cookies, when it has a well-formed one.
fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The request's session, or a new one with the `Set-Cookie` header that starts it.
fn ensure_session(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match session_of(headers) {
        Some(sid) => (sid, None),
        None => {
            let sid = uuid::Uuid::new_v4().simple().to_string();
            let cookie = format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax");
            (sid, Some(HeaderValue::from_str(&cookie).expect("ASCII cookie")))
        }
    }
}

fn csrf_mac(key: &sea_gcp::Secret, sid: &str) -> Hmac<sha2::Sha256> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.expose_bytes()).expect("HMAC takes any key length");
    mac.update(b"sea-gcp-example-csrf\0");
    mac.update(sid.as_bytes());
    mac
}

/// The CSRF token of session `sid`.
fn csrf_token(key: &sea_gcp::Secret, sid: &str) -> String {
    hex::encode(csrf_mac(key, sid).finalize().into_bytes())
}

/// Is the request from this site? `Origin` (sent by browsers with every POST) must name the host the
/// request was sent to; without `Origin`, `Sec-Fetch-Site` must not say cross-site.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("")) {
        Some(origin) => host.is_some_and(|h| origin == format!("http://{h}") || origin == format!("https://{h}")),
        None => headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|site| matches!(site, "same-origin" | "none")),
    }
}

/// The session of a state-changing POST: same origin, and a CSRF token (`csrf`) that matches the
/// session. `None` (logged): refuse with [`refused`].
fn check_post(app: &App, headers: &HeaderMap, csrf: Option<&str>) -> Option<String> {
    let refuse = |why: &str| {
        tracing::warn!("refused a POST: {why}");
        None
    };
    if !same_origin(headers) {
        return refuse("cross-origin request");
    }
    let Some(sid) = session_of(headers) else { return refuse("no session cookie") };
    let token = csrf.and_then(|t| hex::decode(t).ok()).unwrap_or_default();
    if csrf_mac(&app.csrf_key, &sid).verify_slice(&token).is_err() {
        return refuse("missing or invalid CSRF token");
    }
    Some(sid)
}

/// The answer to a POST that failed [`check_post`].
fn refused() -> Response {
    let text = "This form came from another site or has expired. Go back, reload the page and try again.";
    (StatusCode::FORBIDDEN, Html(pages::message("Refused", text))).into_response()
}

/// Who may ask for upload tickets: requests from this site with a session; tickets are bound to it.
/// It decides from the request alone, so it runs before the requested field is looked at.
fn authorize_upload(parts: &axum::http::request::Parts) -> Result<Grant, Refusal> {
    if !same_origin(&parts.headers) {
        return Err(Refusal::forbidden("Uploads are accepted from this site only."));
    }
    match session_of(&parts.headers) {
        Some(sid) => Ok(Grant::for_subject(sid)),
        None => Err(Refusal::unauthenticated("Your session has expired. Reload the page and try again.")),
    }
}

/// A page response, starting the session when it is new.
fn page(body: String, set_cookie: Option<HeaderValue>) -> Response {
    let mut response = Html(body).into_response();
    if let Some(cookie) = set_cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// A secret kept in `.tmp/` across restarts, for when the settings give none (signed URLs and tickets
/// then survive a restart of the example).
fn kept_secret() -> std::io::Result<String> {
    let path = std::path::Path::new(".tmp/example-secret");
    if let Ok(s) = std::fs::read_to_string(path)
        && s.trim().len() >= 32
    {
        return Ok(s.trim().to_string());
    }
    std::fs::create_dir_all(".tmp")?;
    let s = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    std::fs::write(path, &s)?;
    Ok(s)
}

/// Start-up errors are printed with their message (which says what to set), not in debug form.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .with_writer(std::io::stderr) // stdout is for management commands' output
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
    let mut settings = Settings::load()?;
    settings.base_url.get_or_insert_with(|| format!("http://127.0.0.1:{port}"));
    if settings.uploads.secret.is_none() {
        settings.uploads.secret = Some(kept_secret()?.into());
    }
    let csrf_key = sea_gcp::Secret::new(format!("csrf:{}", settings.uploads.secret.as_ref().unwrap().expose()));

    let db_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://sea-gcp-example.db?mode=rwc".into());
    let db = Database::connect(&db_url)
        .await
        .map_err(|e| format!("cannot open the database at {db_url} ({e}); set DATABASE_URL to a reachable one"))?;

    // Both fields, their limits and transport tuning (the knobs are for tests and demos).
    let max_size = env_u64("SEA_GCP_EXAMPLE_MAX_SIZE", 100 * MIB);
    let (threshold, chunk) =
        (env_u64("SEA_GCP_EXAMPLE_RESUMABLE_THRESHOLD", 8 * MIB), env_u64("SEA_GCP_EXAMPLE_CHUNK_SIZE", 8 * MIB));
    let accept = ["image/*", "application/pdf", "text/plain"];
    let events_db = db.clone();

    let gcp = Gcp::builder(settings, db.clone())
        .blob_field_with(document::Column::File, "media", |f| f.max_size(max_size).delete_replaced())
        .blob_field_with(document::Column::Attachment, "media", |f| {
            // Images get a thumbnail, made by a task after the save commits (the list shows it).
            f.max_size(10 * MIB).delete_replaced().accept(accept).variant(Variant::limit("thumb", 160, 160))
        })
        .authenticate_uploads(authorize_upload)
        .blobs(move |b| b.tune_uploads(move |f| f.resumable_threshold(threshold).chunk_size(chunk)))
        .task(SendReceipt(db.clone()))
        .task(NightlyReport(db.clone()))
        .on_event("storage", move |event| storage_event(events_db.clone(), event))
        .create_tables()
        .build()
        .await?;
    if gcp.manage().await? {
        return Ok(()); // `cargo run --example app -- sea-gcp tasks sync`, `settings`, `migrate`, ...
    }

    // sea-gcp's tables (`create_tables()` on the builder), then the app's own, in one transaction.
    let schema = Schema::new(db.get_database_backend());
    let txn = db.begin().await?;
    txn.execute(schema.create_table_from_entity(document::Entity).if_not_exists()).await?;
    txn.execute(schema.create_table_from_entity(activity::Entity).if_not_exists()).await?;
    txn.commit().await?;
    let backend = gcp.blobs().store("media")?.kind().as_str();
    let _ = pages::UPLOADS.set(format!("{}/uploads", gcp.settings().prefix));
    let app = App { csrf_key, gcp: gcp.clone(), db, blobs: gcp.blobs().clone(), backend };

    let router = Router::new()
        .route("/", get(list))
        .route("/documents/new", get(new_form))
        .route("/documents", post(create))
        .route("/documents/{id}/edit", get(edit_form))
        .route("/documents/{id}", post(update))
        .route("/documents/{id}/delete", post(delete))
        .route("/documents/{id}/download/{column}", get(download))
        .with_state(app)
        .merge(gcp.router());

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(format!(
                "port {port} on 127.0.0.1 is already in use (another server, or an earlier run of this example); \
                 stop it or choose another port with the PORT variable, e.g. `PORT={} cargo run --example app`",
                port.wrapping_add(1).max(1024)
            )
            .into());
        }
        Err(e) => return Err(format!("cannot listen on {addr}: {e}").into()),
    };
    let background = gcp.spawn_background();
    println!("sea-gcp example ({backend} store, database {db_url})");
    println!("open http://{}/", listener.local_addr()?);
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    background.stop().await;
    Ok(())
}

/// Ctrl-C or SIGTERM (what Cloud Run sends before it stops an instance).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// A 500 page: the details go to the log, the user gets a generic message.
fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!("{e}");
    let text = "The server could not complete the request. Try again in a moment.";
    (StatusCode::INTERNAL_SERVER_ERROR, Html(pages::message("Something went wrong", text))).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Html(pages::message("Not found", "No such document."))).into_response()
}

/// The list's query: `?saved=again` after a form that was already saved was sent again.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    saved: String,
}

async fn list(State(app): Shared, headers: HeaderMap, Query(query): Query<ListQuery>) -> Response {
    let (sid, cookie) = ensure_session(&headers);
    let notice = (query.saved == "again").then_some("This document was already saved.");
    let rows = document::Entity::find().order_by_asc(document::Column::Id).all(&app.db).await;
    let log = activity::Entity::find().order_by_desc(activity::Column::Id).limit(10).all(&app.db).await;
    let (rows, log) = match (rows, log) {
        (Ok(rows), Ok(log)) => (rows, log),
        (Err(e), _) | (_, Err(e)) => return server_error(e),
    };
    // Thumbnails of image attachments, once their variant is made: URLs from the row, no storage call.
    let mut thumbs = std::collections::HashMap::new();
    for row in &rows {
        let Some(thumb) = row.attachment.as_ref().and_then(|v| v.variant("thumb").map(|t| (v, t))) else { continue };
        let url = app.blobs.variant_url(document::Column::Attachment, thumb.0, "thumb", UrlOptions::default()).await;
        match url {
            Ok(url) => thumbs.insert(row.id, pages::Thumb { url, width: thumb.1.width, height: thumb.1.height }),
            Err(e) => return server_error(e),
        };
    }
    page(pages::list(&rows, &log, &thumbs, app.backend, &csrf_token(&app.csrf_key, &sid), notice), cookie)
}

async fn new_form(State(app): Shared, headers: HeaderMap) -> Response {
    let (sid, cookie) = ensure_session(&headers);
    let form = pages::Form { csrf: &csrf_token(&app.csrf_key, &sid), ..pages::Form::default() };
    form_page(&app, &form, cookie)
}

async fn edit_form(State(app): Shared, headers: HeaderMap, Path(id): Path<i32>) -> Response {
    let (sid, cookie) = ensure_session(&headers);
    match document::Entity::find_by_id(id).one(&app.db).await {
        Ok(Some(row)) => {
            let csrf = csrf_token(&app.csrf_key, &sid);
            let form = pages::Form { row: Some(&row), title: &row.title, csrf: &csrf, ..pages::Form::default() };
            form_page(&app, &form, cookie)
        }
        Ok(None) => not_found(),
        Err(e) => server_error(e),
    }
}

/// The form again, with the refusal's message, the posted title and the uploads that verified.
fn reshow(app: &App, sid: &str, row: Option<&document::Model>, refused: BlobFormRejection) -> Response {
    let csrf = csrf_token(&app.csrf_key, sid);
    let form =
        pages::Form { row, title: refused.value("title").unwrap_or_default(), csrf: &csrf, refused: Some(&refused) };
    (refused.refusal.status, form_page(app, &form, None)).into_response()
}

/// A refused form, unless it was refused because its upload was already saved: the same form sent
/// twice (a double click on Save, the back button). The first submission saved it, so the user is
/// shown that result (the list) instead of an error that would make them upload again.
fn reshow_or_saved(app: &App, sid: &str, row: Option<&document::Model>, refused: BlobFormRejection) -> Response {
    if refused.refusal.error == "ticket_replayed" {
        return Redirect::to("/?saved=again").into_response();
    }
    reshow(app, sid, row, refused)
}

/// The document form page.
fn form_page(app: &App, form: &pages::Form<'_>, set_cookie: Option<HeaderValue>) -> Response {
    page(pages::form(&app.blobs, form), set_cookie)
}

/// The CSRF token of a posted form, accepted or refused.
fn csrf_of(posted: &Posted) -> Option<&str> {
    posted.as_ref().map_or_else(|refused| refused.value("csrf"), |form| form.value("csrf"))
}

/// The document's title, or the form refused.
fn title_of(form: &BlobForm<document::Entity, DocForm>) -> Result<String, BlobFormRejection> {
    let title = form.fields.title.trim();
    if title.is_empty() || title.len() > 200 {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Err(form.reject(status, "invalid_title", "Give the document a title (at most 200 bytes)."));
    }
    Ok(title.to_string())
}

async fn create(State(app): Shared, headers: HeaderMap, posted: Posted) -> Response {
    let Some(sid) = check_post(&app, &headers, csrf_of(&posted)) else { return refused() };
    let saved = async {
        let form = posted?;
        let model = document::ActiveModel { title: ActiveValue::Set(title_of(&form)?), ..Default::default() };
        // The row, its files and the receipt task commit together, or none of them does.
        let refused = |e: sea_gcp::Error| form.refused(&e);
        let save = app.blobs.begin_insert(model, form.changes.clone()).await.map_err(refused)?;
        let receipt = Receipt { document: save.model().id, title: save.model().title.clone() };
        app.gcp.enqueue_in(save.txn(), SendReceipt(app.db.clone()), &receipt).await.map_err(refused)?;
        app.gcp.commit_save(save).await.map_err(refused)
    };
    match saved.await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(refused) => reshow_or_saved(&app, &sid, None, refused),
    }
}

async fn update(State(app): Shared, headers: HeaderMap, Path(id): Path<i32>, posted: Posted) -> Response {
    let Some(sid) = check_post(&app, &headers, csrf_of(&posted)) else { return refused() };
    let row = match document::Entity::find_by_id(id).one(&app.db).await {
        Ok(Some(row)) => row,
        Ok(None) => return not_found(),
        Err(e) => return server_error(e),
    };
    let saved = async {
        let form = posted?;
        let mut model: document::ActiveModel = row.clone().into();
        model.title = ActiveValue::Set(title_of(&form)?);
        app.blobs.update(model, form.changes.clone()).await.map_err(|e| form.refused(&e))
    };
    match saved.await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(refused) => reshow_or_saved(&app, &sid, Some(&row), refused),
    }
}

/// The delete form's only field.
#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn delete(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<i32>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if check_post(&app, &headers, Some(&form.csrf)).is_none() {
        return refused();
    }
    match document::Entity::find_by_id(id).one(&app.db).await {
        Ok(Some(row)) => match app.blobs.delete(row).await {
            Ok(_) => Redirect::to("/").into_response(),
            Err(e) => server_error(e),
        },
        Ok(None) => Redirect::to("/").into_response(),
        Err(e) => server_error(e),
    }
}

/// Redirect to a short-lived signed URL of the file (a local-route URL on the local store).
async fn download(State(app): Shared, Path((id, column)): Path<(i32, String)>) -> Response {
    let row = match document::Entity::find_by_id(id).one(&app.db).await {
        Ok(Some(row)) => row,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such document").into_response(),
        Err(e) => return server_error(e),
    };
    let (column, value) = match column.as_str() {
        "file" => (document::Column::File, Some(&row.file)),
        "attachment" => (document::Column::Attachment, row.attachment.as_ref()),
        _ => (document::Column::File, None),
    };
    let Some(value) = value else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    match app.blobs.download_url(column, value, Duration::from_secs(300)).await {
        Ok(url) => ([(header::CACHE_CONTROL, "no-store")], Redirect::to(&url)).into_response(),
        Err(e) => server_error(e),
    }
}
