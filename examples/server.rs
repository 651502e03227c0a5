//! The sea-gcp example: an axum app with documents that have a required and an optional blob field,
//! uploaded straight from the browser.
//!
//! ```sh
//! cargo run --example server          # then open the printed address
//! ```
//!
//! Defaults: SQLite file `sea-gcp-example.db` (`DATABASE_URL` overrides), a local store under
//! `./.tmp/example-media` served by the crate's own signed routes, port 8000 on 127.0.0.1 (`PORT`).
//! Google Cloud Storage instead: `SEA_GCP__MEDIA__BACKEND=gcs SEA_GCP__MEDIA__BUCKET_NAME=my-bucket`
//! (credentials from Application Default Credentials, or `STORAGE_EMULATOR_HOST` for an emulator); the
//! bucket needs the CORS rule of `docs/direct-uploads.md` for `http://127.0.0.1:8000`.
//!
//! Knobs for tests and demos: `SEA_GCP_EXAMPLE_MAX_SIZE` (bytes, the `file` field's limit, default
//! 100 MiB), `SEA_GCP_EXAMPLE_RESUMABLE_THRESHOLD` (default 8 MiB), `SEA_GCP_EXAMPLE_CHUNK_SIZE`
//! (default 8 MiB), `SEA_GCP_SECRET_KEY` (signs tickets and local URLs; default: a random secret kept
//! in `./.tmp/example-secret`).
//!
//! What to copy for your own app: every form carries a CSRF token tied to the session cookie and every
//! POST checks `Origin` (a cross-site form cannot delete or change documents); `POST /uploads` takes
//! only `application/json` (the library refuses anything else), and the authorisation hook binds each
//! ticket to the session, so a leaked ticket cannot be attached from another session. A real app binds
//! the signed-in user's id instead of the session id. The same form sent twice (a double click on
//! Save) saves once: the widget sends one submission at a time, and a second one is answered with
//! the first one's result (`ticket_replayed` leads to the list, "already saved").

#[path = "server/pages.rs"]
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use sea_gcp::blobs::BlobFormRejection;
use sea_gcp::config::{BackendConfig, SigningConfig};
use sea_gcp::field::BlobFieldSpec;
use sea_gcp::storage::local::LocalStore;
use sea_gcp::upload::{Grant, Refusal};
use sea_gcp::{BlobForm, Blobs, Settings, Store, StoreConfig};
use sea_orm::{ActiveValue, ConnectionTrait, Database, DatabaseConnection, EntityTrait, QueryOrder, Schema};
use serde::Deserialize;

/// The example's table: a title, a required file and an optional attachment.
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

const MIB: u64 = 1024 * 1024;

/// The app's state; [`BlobForm`] finds the registry in it through `FromRef`.
#[derive(Clone, FromRef)]
struct App {
    /// Signs CSRF tokens (HMAC of the session id).
    csrf_key: sea_gcp::Secret,
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

/// The secret signing tickets and local URLs: `SEA_GCP_SECRET_KEY`, else one kept in `.tmp/`.
fn secret() -> std::io::Result<String> {
    if let Ok(s) = std::env::var(sea_gcp::storage::local::SECRET_ENV)
        && !s.is_empty()
    {
        return Ok(s);
    }
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

/// The media store: GCS (or memory) when configured by environment, else a local directory whose
/// signed URLs the registry serves.
async fn media_store(settings: &Settings, secret: &str) -> sea_gcp::Result<(Arc<dyn Store>, Option<Arc<LocalStore>>)> {
    let mut config =
        settings.store_config("media").cloned().unwrap_or_else(|_| StoreConfig::local("./.tmp/example-media"));
    if config.backend != BackendConfig::Local {
        return Ok((sea_gcp::storage::open("media", config).await?, None));
    }
    config.root.get_or_insert_with(|| "./.tmp/example-media".into());
    // The local store signs its URLs with an HMAC secret from its signing settings.
    config.signing = SigningConfig::Hmac { access_id: "local".into(), secret: secret.into() };
    let local = Arc::new(LocalStore::new("media", config).await?.with_url_secret(secret));
    Ok((local.clone(), Some(local)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .init();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
    let secret = secret()?;
    let (store, local) = media_store(&Settings::from_env()?, &secret).await?;

    let db_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://sea-gcp-example.db?mode=rwc".into());
    let db = Database::connect(&db_url).await?;
    let schema = Schema::new(db.get_database_backend());
    db.execute(schema.create_table_from_entity(document::Entity).if_not_exists()).await?;

    // Transport tuning for tests and demos (the field limits live on the blob fields).
    let (threshold, chunk) =
        (env_u64("SEA_GCP_EXAMPLE_RESUMABLE_THRESHOLD", 8 * MIB), env_u64("SEA_GCP_EXAMPLE_CHUNK_SIZE", 8 * MIB));
    let max_size = env_u64("SEA_GCP_EXAMPLE_MAX_SIZE", 100 * MIB);

    // The registry: the store, both fields and their limits, ticket signing, who may upload.
    let file = BlobFieldSpec::new(document::Column::File, "media").max_size(max_size).delete_replaced();
    let attachment = BlobFieldSpec::new(document::Column::Attachment, "media").max_size(10 * MIB).delete_replaced();
    let attachment = attachment.accept(["image/*", "application/pdf", "text/plain"]);
    let blobs = Blobs::builder(db.clone()).store(store.clone()).local_routes(local).secret(&secret);
    let blobs = blobs
        .authenticate_fn(authorize_upload)
        .tune_uploads(move |f| f.resumable_threshold(threshold).chunk_size(chunk));
    let blobs = blobs.entity(|e| e.field(file).field(attachment)).build()?;
    blobs.create_tables().await?;
    tracing::info!("outbox replayed: {}", blobs.repair().await?);
    let uploads = blobs.router();
    let backend = store.kind().as_str();
    let app = App { csrf_key: sea_gcp::Secret::new(format!("csrf:{secret}")), db, blobs, backend };

    let router = Router::new()
        .route("/", get(list))
        .route("/documents/new", get(new_form))
        .route("/documents", post(create))
        .route("/documents/{id}/edit", get(edit_form))
        .route("/documents/{id}", post(update))
        .route("/documents/{id}/delete", post(delete))
        .route("/documents/{id}/download/{column}", get(download))
        .with_state(app)
        .merge(uploads);

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(format!(
                "port {port} on 127.0.0.1 is already in use (another server, or an earlier run of this example); \
                 stop it or choose another port with the PORT variable, e.g. `PORT={} cargo run --example server`",
                port.wrapping_add(1).max(1024)
            )
            .into());
        }
        Err(e) => return Err(format!("cannot listen on {addr}: {e}").into()),
    };
    println!("sea-gcp example ({backend} store, database {db_url})");
    println!("open http://{}/", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
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
    match document::Entity::find().order_by_asc(document::Column::Id).all(&app.db).await {
        Ok(rows) => page(pages::list(&rows, app.backend, &csrf_token(&app.csrf_key, &sid), notice), cookie),
        Err(e) => server_error(e),
    }
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
        app.blobs.insert(model, form.changes.clone()).await.map_err(|e| form.refused(&e))
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
