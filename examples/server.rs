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

#[path = "server/pages.rs"]
mod pages;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sea_gcp::config::BackendConfig;
use sea_gcp::field::{BlobChanges, BlobFieldSpec, BlobValue, DeletePolicy};
use sea_gcp::promote::BlobSaver;
use sea_gcp::storage::local::LocalStore;
use sea_gcp::storage::{Store, UrlOptions};
use sea_gcp::upload::{
    Submission, TicketSigner, UploadField, UploadFields, UploadRouter, UploadVerifier, local_store_routes,
};
use sea_gcp::{Settings, StoreConfig};
use sea_orm::{ActiveValue, ConnectionTrait, Database, DatabaseConnection, EntityTrait, QueryOrder, Schema};

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
        /// An optional attachment (blankable).
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub attachment: Option<BlobValue>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const MIB: u64 = 1024 * 1024;

struct App {
    db: DatabaseConnection,
    saver: BlobSaver<document::Entity>,
    store: Arc<dyn Store>,
    verifier: UploadVerifier,
    fields: Arc<UploadFields>,
}

type Shared = State<Arc<App>>;

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

/// The media store: GCS (or memory) when configured by environment, else a local directory.
async fn media_store(settings: &Settings, secret: &str) -> sea_gcp::Result<(Arc<dyn Store>, Option<Arc<LocalStore>>)> {
    let config = match settings.store_config("media") {
        Ok(c) => c.clone(),
        Err(_) => StoreConfig::local("./.tmp/example-media"),
    };
    if config.backend == BackendConfig::Local {
        let mut config = config;
        if config.root.is_none() {
            config.root = Some("./.tmp/example-media".into());
        }
        // The local store signs its URLs with an HMAC secret from its signing settings.
        config.signing = sea_gcp::config::SigningConfig::Hmac { access_id: "local".into(), secret: secret.into() };
        let local = Arc::new(LocalStore::new("media", config).await?.with_url_secret(secret));
        let store: Arc<dyn Store> = local.clone();
        return Ok((store, Some(local)));
    }
    Ok((sea_gcp::storage::open("media", config).await?, None))
}

async fn create_tables(db: &DatabaseConnection) -> sea_gcp::Result<()> {
    let schema = Schema::new(db.get_database_backend());
    db.execute(schema.create_table_from_entity(document::Entity).if_not_exists()).await?;
    sea_gcp::promote::Outbox::default().create(db).await
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
    let settings = Settings::from_env()?;
    let (store, local) = media_store(&settings, &secret).await?;

    let db_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://sea-gcp-example.db?mode=rwc".into());
    let db = Database::connect(&db_url).await?;
    create_tables(&db).await?;
    let report = sea_gcp::promote::replay(&db, std::slice::from_ref(&store), Duration::from_secs(3600)).await?;
    if !report.is_clean() {
        tracing::info!(?report, "outbox replayed");
    }

    let file_spec = BlobFieldSpec::new(document::Column::File, "media")
        .max_size(env_u64("SEA_GCP_EXAMPLE_MAX_SIZE", 100 * MIB))
        .delete_policy(DeletePolicy::Delete);
    let attachment_spec = BlobFieldSpec::new(document::Column::Attachment, "media")
        .max_size(10 * MIB)
        .accept(["image/*", "application/pdf", "text/plain"])
        .blank(true)
        .delete_policy(DeletePolicy::Delete);
    let tune = |f: UploadField| {
        f.resumable_threshold(env_u64("SEA_GCP_EXAMPLE_RESUMABLE_THRESHOLD", 8 * MIB))
            .chunk_size(env_u64("SEA_GCP_EXAMPLE_CHUNK_SIZE", 8 * MIB))
    };
    let fields = UploadFields::new()
        .register(tune(UploadField::from_spec(&file_spec, store.clone())))?
        .register(tune(UploadField::from_spec(&attachment_spec, store.clone())))?;
    let saver = BlobSaver::new(db.clone()).store(store.clone()).field(file_spec).field(attachment_spec);
    let uploads = UploadRouter::new(fields, TicketSigner::new(&secret));
    let app = Arc::new(App {
        db,
        saver,
        store: store.clone(),
        verifier: uploads.verifier(),
        fields: uploads.fields().clone(),
    });

    let mut router = Router::new()
        .route("/", get(list))
        .route("/documents/new", get(new_form))
        .route("/documents", post(create))
        .route("/documents/{id}/edit", get(edit_form))
        .route("/documents/{id}", post(update))
        .route("/documents/{id}/delete", post(delete))
        .route("/documents/{id}/download/{column}", get(download))
        .with_state(app)
        .merge(uploads.router());
    if let Some(local) = local {
        router = router.merge(local_store_routes(local));
    }

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let backend = store.kind().as_str();
    println!("sea-gcp example ({backend} store, database {db_url})");
    println!("open http://{}/", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!("{e}");
    (StatusCode::INTERNAL_SERVER_ERROR, Html(pages::message("Something went wrong", &e.to_string()))).into_response()
}

async fn list(State(app): Shared) -> Response {
    match document::Entity::find().order_by_asc(document::Column::Id).all(&app.db).await {
        Ok(rows) => Html(pages::list(&rows, app.store.kind().as_str())).into_response(),
        Err(e) => server_error(e),
    }
}

async fn new_form(State(app): Shared) -> Response {
    Html(pages::form(&app.fields, None, "", None)).into_response()
}

async fn edit_form(State(app): Shared, Path(id): Path<i32>) -> Response {
    match document::Entity::find_by_id(id).one(&app.db).await {
        Ok(Some(row)) => Html(pages::form(&app.fields, Some(&row), &row.title, None)).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, Html(pages::message("Not found", "No such document."))).into_response(),
        Err(e) => server_error(e),
    }
}

/// The blob changes a posted form asks for: verified tickets, clears; refusals as user messages.
async fn changes_from(
    app: &App,
    form: &HashMap<String, String>,
    creating: bool,
) -> Result<BlobChanges<document::Entity>, (StatusCode, String)> {
    let mut changes = BlobChanges::new();
    let columns = [
        ("file", document::Column::File, "documents.file"),
        ("attachment", document::Column::Attachment, "documents.attachment"),
    ];
    for (input, column, field) in columns {
        let clear = form.get(&format!("{input}{}", sea_gcp::upload::CLEAR_SUFFIX)).map(String::as_str);
        match Submission::parse(form.get(input).map(String::as_str), clear) {
            Submission::Ticket(ticket) => {
                let upload = app.verifier.verify(field, &ticket).await.map_err(|r| {
                    (StatusCode::from_u16(r.problem.status()).unwrap_or(StatusCode::BAD_REQUEST), r.message)
                })?;
                changes = changes.attach(column, upload);
            }
            Submission::Clear if input == "attachment" && !creating => changes = changes.blank(column),
            Submission::Clear | Submission::Keep => {
                if creating && input == "file" {
                    return Err((StatusCode::UNPROCESSABLE_ENTITY, "Choose a file for the document.".into()));
                }
            }
        }
    }
    Ok(changes)
}

fn title_of(form: &HashMap<String, String>) -> Result<String, (StatusCode, String)> {
    let title = form.get("title").map(|t| t.trim().to_string()).unwrap_or_default();
    if title.is_empty() || title.len() > 200 {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, "Give the document a title (at most 200 bytes).".into()));
    }
    Ok(title)
}

fn save_error(e: sea_gcp::Error) -> (StatusCode, String) {
    match e {
        sea_gcp::Error::Validation { message, .. } => (StatusCode::UNPROCESSABLE_ENTITY, message),
        other => {
            tracing::error!("save failed: {other}");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("The document could not be saved: {other}"))
        }
    }
}

async fn create(State(app): Shared, Form(form): Form<HashMap<String, String>>) -> Response {
    let result = async {
        let title = title_of(&form)?;
        let changes = changes_from(&app, &form, true).await?;
        let model = document::ActiveModel { title: ActiveValue::Set(title), ..Default::default() };
        app.saver.insert(model, changes).await.map_err(save_error)
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/").into_response(),
        Err((status, message)) => {
            let title = form.get("title").cloned().unwrap_or_default();
            (status, Html(pages::form(&app.fields, None, &title, Some(&message)))).into_response()
        }
    }
}

async fn update(State(app): Shared, Path(id): Path<i32>, Form(form): Form<HashMap<String, String>>) -> Response {
    let row = match document::Entity::find_by_id(id).one(&app.db).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            return (StatusCode::NOT_FOUND, Html(pages::message("Not found", "No such document."))).into_response();
        }
        Err(e) => return server_error(e),
    };
    let result = async {
        let title = title_of(&form)?;
        let changes = changes_from(&app, &form, false).await?;
        let mut model: document::ActiveModel = row.clone().into();
        model.title = ActiveValue::Set(title);
        app.saver.update(model, changes).await.map_err(save_error)
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/").into_response(),
        Err((status, message)) => {
            let title = form.get("title").cloned().unwrap_or_default();
            (status, Html(pages::form(&app.fields, Some(&row), &title, Some(&message)))).into_response()
        }
    }
}

async fn delete(State(app): Shared, Path(id): Path<i32>) -> Response {
    match document::Entity::find_by_id(id).one(&app.db).await {
        Ok(Some(row)) => match app.saver.delete(row).await {
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
    let value: Option<&BlobValue> = match column.as_str() {
        "file" => Some(&row.file),
        "attachment" => row.attachment.as_ref(),
        _ => None,
    };
    let Some(value) = value else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mut opts = UrlOptions::default();
    opts.expires_in = Some(Duration::from_secs(300));
    let filename =
        value.original_name.clone().unwrap_or_else(|| value.name.rsplit('/').next().unwrap_or("file").to_string());
    opts.response_content_disposition = Some(pages::attachment_disposition(&filename));
    match app.store.url(&value.name, opts).await {
        Ok(url) => ([(header::CACHE_CONTROL, "no-store")], Redirect::to(&url)).into_response(),
        Err(e) => server_error(e),
    }
}
