//! # sea-gcp
//!
//! Google Cloud Storage for SeaORM and axum applications: what django-gcp gives Django.
//!
//! - [`storage`]: one [`Store`] API over GCS, a local directory and memory, with django-gcp's options.
//! - [`signing`]: V4 signed URLs and POST policies (service-account key, IAM signBlob, HMAC).
//! - [`field`] and [`promote`]: `BlobValue` columns on SeaORM entities and the crash-safe save protocol.
//! - [`upload`]: upload tickets, the axum router, the JS widget, the local-store routes.
//! - [`logging`] (feature `logging`): Cloud Logging structured JSON with trace correlation, request logs and
//!   Error Reporting; [`metadata`] (feature `metadata`): the Cloud Run metadata server client.
//! - [`migrate`]: path columns to blob columns; [`staticfiles`]: collectstatic; [`cli`]: the `sea-gcp` binary.
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

pub mod cli;
pub mod config;
mod error;
pub mod field;
#[cfg(feature = "logging")]
pub mod logging;
#[cfg(feature = "metadata")]
pub mod metadata;
pub mod migrate;
pub mod promote;
pub mod signing;
pub mod staticfiles;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;
pub mod upload;

pub use config::{Settings, StoreConfig};
pub use error::{BoxError, Error, Result};
pub use storage::{ObjectMeta, Store};
