//! Building the app handle for production makes no network call: tokens, keys and the project id stay
//! lazy. The metadata server (the source of all three on Cloud Run) is a local fake that counts every
//! request; building the handle, its router and answering a page of the app's own must make none.
//! (One test in this binary: it sets the process environment.)

use std::time::Duration;

use sea_gcp::tasks::{Task, TaskContext};
use sea_gcp::testing::metadata_server::{FakeMetadata, FakeMetadataServer};
use sea_gcp::{BoxError, Gcp, Settings};

/// A table with one blob field.
mod doc {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "docs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub file: sea_gcp::BlobValue,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

struct Noop;

#[async_trait::async_trait]
impl Task for Noop {
    const NAME: &'static str = "noop";
    const SCHEDULE: Option<&'static str> = Some("0 3 * * *");
    type Payload = serde_json::Value;
    type Output = ();
    async fn run(&self, _: serde_json::Value, _: TaskContext) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_for_production_calls_nothing() {
    let metadata = FakeMetadataServer::start(FakeMetadata::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: the only test of this binary; set before any thread reads the environment.
    unsafe {
        std::env::set_var("GCE_METADATA_HOST", metadata.base_url().trim_start_matches("http://"));
        std::env::remove_var("GOOGLE_APPLICATION_CREDENTIALS");
        std::env::set_var("HOME", dir.path());
        std::env::set_var("CLOUDSDK_CONFIG", dir.path());
    }
    let vars = [
        ("GCP_PROJECT_ID", "shop-prod"),
        ("BASE_URL", "https://shop.example.com"),
        ("GCP_TASKS_INVOKER_SERVICE_ACCOUNT", "tasks@shop-prod.iam.gserviceaccount.com"),
        ("GCP_INVOKER_SERVICE_ACCOUNT_EMAILS", "push@shop-prod.iam.gserviceaccount.com"),
        ("SEA_GCP__MEDIA__BUCKET_NAME", "shop-media"),
        ("SEA_GCP__UPLOADS__SECRET", "0123456789abcdef0123456789abcdef"),
    ];
    let settings = Settings::from_env_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    let gcp =
        Gcp::builder(settings, db).task(Noop).on_event("orders", |_event| async { Ok(()) }).build().await.unwrap();
    assert!(gcp.local_cloud().is_none(), "a project is set: production mode");
    let tasks = gcp.tasks().unwrap().settings();
    assert_eq!(tasks.tasks_domain, "https://shop.example.com/gcp");
    assert_eq!(tasks.task_url("noop"), "https://shop.example.com/gcp/tasks/noop");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "home" })).merge(gcp.router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let r = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(r.status(), 200);
    let background = gcp.spawn_background();
    tokio::time::sleep(Duration::from_millis(300)).await;
    background.stop().await;
    assert_eq!(metadata.requests(), 0, "no call to the metadata server while building and serving");

    // Deployed, uploads need a key every instance shares: a per-process one is refused at build.
    let vars = [("GCP_PROJECT_ID", "shop-prod"), ("SEA_GCP__UPLOADS__ALLOW_ANONYMOUS", "true")];
    let settings = Settings::from_env_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    let err = Gcp::builder(settings, db).blob_field(doc::Column::File, "media").build().await.unwrap_err().to_string();
    assert!(err.contains("SEA_GCP__UPLOADS__SECRET") && err.contains("another instance"), "{err}");
}
