//! The wiring of a blob field saved from a browser upload: the entity's field, its registration, the
//! route, the handler and the template's input (`scripts/count-wiring.py` counts what lies outside the
//! `// app {` ... `// }` blocks).

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sea_gcp::{BlobForm, BlobValue, BoxError, Gcp, Grant, Refusal};
use sea_orm::ActiveValue::Set;

// app {
mod doc {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "documents")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub title: String,
        // }
        pub file: super::BlobValue,
        // app {
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(serde::Deserialize)]
struct NewDocument {
    title: String,
}

/// Who may upload: here, requests carrying a session cookie (a real app checks its own session).
// }
fn signed_in(request: &axum::http::request::Parts) -> Result<Grant, Refusal> {
    // app {
    let session = request.headers.get("cookie").and_then(|c| c.to_str().ok()).map(str::to_owned);
    // }
    session.map(Grant::for_subject).ok_or_else(|| Refusal::unauthenticated("Sign in to upload."))
}

async fn create(State(gcp): State<Gcp>, form: BlobForm<doc::Entity, NewDocument>) -> Result<Redirect, Response> {
    // app {
    let row = doc::ActiveModel { title: Set(form.fields.title.clone()), ..Default::default() };
    // }
    gcp.blobs().insert(row, form.changes).await.map_err(IntoResponse::into_response)?;
    // app {
    Ok(Redirect::to("/"))
}

async fn new_form(State(gcp): State<Gcp>) -> Html<String> {
    // }
    let file = gcp.blobs().input(doc::Column::File).required(true);
    // app {
    Html(format!(
        "<form method=post action=/documents><input name=title>{file}<button>Save</button></form>\
         <script src=/gcp/uploads/widget.js defer></script>"
    ))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let db = sea_orm::Database::connect("sqlite::memory:").await?;
    // }
    let gcp = Gcp::load(db)?.blob_field(doc::Column::File, "media").authenticate_uploads(signed_in).build().await?;
    // app {
    let app = axum::Router::new()
        .route("/documents/new", get(new_form))
        // }
        .route("/documents", post(create))
        .with_state(gcp.clone())
        .merge(gcp.router());
    // app {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
// }
