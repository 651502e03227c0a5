//! # sea-gcp
//!
//! Google Cloud for SeaORM and axum applications: what django-gcp gives Django.
//!
//! - [`Gcp`] (features `orm` + `axum`): the application's one handle, built from [`Settings`] (one
//!   source for every subsystem) and a database connection: every route under one prefix, every
//!   background loop, management commands, and locally the whole production path ([`local`]).
//! - [`migrations`] and [`create_tables`]: every table of the enabled features, as one list.
//! - [`storage`]: one [`Store`] API over GCS, a local directory and memory, with django-gcp's options.
//! - [`signing`]: V4 signed URLs and POST policies (service-account key, IAM signBlob, HMAC).
//! - [`field`] and [`promote`]: `BlobValue` columns on SeaORM entities and the crash-safe save protocol.
//! - [`upload`]: upload tickets, the axum router, the JS widget, the local-store routes.
//! - `auth`, `pubsub`, `events` (features `oidc`, `pubsub`, `events`): OIDC-verified Pub/Sub and Eventarc push
//!   endpoints, typed storage notifications, exactly-once handling; `testing`: fakes (JWKS, token minting).
//! - [`logging`] (feature `logging`): Cloud Logging structured JSON with trace correlation, request logs and
//!   Error Reporting; [`metadata`] (feature `metadata`): the Cloud Run metadata server client.
//! - [`migrate`]: path columns to blob columns; [`staticfiles`]: collectstatic. The `sea-gcp` command is the
//!   separate package `sea-gcp-cli`.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `gcs` | yes | the GCS backend, IAM `signBlob` signing, bucket checks |
//! | `orm` | yes | `BlobValue` columns, the save protocol and outbox, path-column migration (sea-orm; your app picks the drivers) |
//! | `images` | no | blob-field image analysis: width and height at promotion, a pixel limit against decompression bombs; named variants made by a task after the save commits (with `tasks`) (implies `orm`) |
//! | `axum` | yes | the direct-upload router, widget and local-store routes (implies `orm`) |
//! | `testing` | no | the behaviour suite for your own `Store`, fault-injecting and call-counting stores, fakes of Google services |
//! | `oidc` | no | verification of Google-signed ID tokens (JWKS cache, allow-lists) |
//! | `pubsub` | no | Pub/Sub push envelopes and a REST client (publish, topics, subscriptions) |
//! | `logging` | no | Cloud Logging JSON lines with trace correlation, request logs, Error Reporting, panic hook |
//! | `metadata` | with `gcs` | the Cloud Run metadata server client (project, region, tokens) |
//! | `events` | no | Pub/Sub and Eventarc push endpoints, storage notifications (implies `oidc`, `pubsub`; exactly-once handling and blob refresh with `orm`; no sea-orm without it) |
//! | `tasks` | no | Cloud Tasks / Scheduler / Pub/Sub subscriber tasks, the transactional task outbox, the worker router, local Cloud Tasks and Scheduler ([`local`]) |
//!
//! A storage-only user writes `sea-gcp = { version = "0.1", default-features = false, features = ["gcs"] }`
//! and compiles no sea-orm and no axum. The memory and local stores and the key and HMAC signers need no
//! feature.
//!
//! ```no_run
//! use sea_gcp::storage::{GetOptions, PutOptions, PutPayload, UrlOptions};
//! use sea_gcp::{Settings, StoreConfig};
//!
//! # async fn demo() -> sea_gcp::Result<()> {
//! let settings = Settings::builder()
//!     .store("media", StoreConfig { location: "uploads".into(), ..StoreConfig::gcs("my-app-media") })
//!     .store("static", StoreConfig { gzip: true, ..StoreConfig::gcs("my-app-static") })
//!     .build()?;
//! let media = settings.open("media").await?;
//! let meta = media.put("q3.pdf", PutPayload::File("q3.pdf".into()), PutOptions::create_only()).await?;
//! let url = media.url("q3.pdf", UrlOptions::default()).await?; // V4-signed for `expiration` (1 day)
//! let bytes = media.get("q3.pdf", GetOptions::default()).await?.bytes().await?;
//! assert_eq!(bytes.len() as u64, meta.size);
//! # let _ = url;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![warn(unreachable_pub)]
// Crate-private helpers serve several features; a build with only some of them leaves some unused. Dead
// code is checked where every feature is on (`cargo clippy --all-features -D warnings`).
#![cfg_attr(
    not(all(
        feature = "gcs",
        feature = "orm",
        feature = "axum",
        feature = "toml",
        feature = "testing",
        feature = "metadata",
        feature = "logging",
        feature = "oidc",
        feature = "pubsub",
        feature = "events",
        feature = "tasks",
        feature = "images"
    )),
    allow(dead_code, unused_imports, unreachable_pub)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(all(feature = "orm", feature = "axum"))]
pub mod app;
#[cfg(feature = "oidc")]
pub mod auth;
#[cfg(feature = "orm")]
pub mod blobs;
pub mod config;
mod encoding;
mod error;
#[cfg(feature = "events")]
pub mod events;
#[cfg(feature = "orm")]
pub mod field;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "images")]
pub mod images;
#[cfg(feature = "oidc")]
mod lazy_client;
#[cfg(any(feature = "tasks", all(feature = "testing", feature = "oidc")))]
pub mod local;
#[cfg(feature = "logging")]
pub mod logging;
#[cfg(feature = "metadata")]
pub mod metadata;
#[cfg(feature = "orm")]
pub mod migrate;
#[cfg(feature = "orm")]
mod migrations;
pub mod naming;
#[cfg(feature = "orm")]
pub mod promote;
#[cfg(feature = "pubsub")]
pub mod pubsub;
mod random;
#[cfg(feature = "orm")]
mod schema;
pub mod secret;
pub mod signing;
pub mod staticfiles;
pub mod storage;
#[cfg(feature = "tasks")]
pub mod tasks;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "axum")]
pub mod upload;

#[cfg(all(feature = "orm", feature = "axum"))]
pub use app::Gcp;
#[cfg(feature = "axum")]
pub use blobs::{BlobForm, FileInput};
#[cfg(feature = "orm")]
pub use blobs::{Blobs, BlobsBuilder};
pub use config::{Settings, StoreConfig};
pub use error::{BoxError, Error, ErrorKind, Result, SaveStep};
#[cfg(feature = "orm")]
pub use field::{BlobFieldSpec, BlobValue};
/// The `http` crate, whose [`Method`](http::Method) the signing and storage options use.
pub use http;
#[cfg(feature = "orm")]
pub use migrations::{create_tables, migrations};
pub use secret::Secret;
pub use storage::{ObjectMeta, Store};
#[cfg(feature = "axum")]
pub use upload::{Grant, Refusal};
