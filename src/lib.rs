//! # sea-gcp
//!
//! Google Cloud Storage for SeaORM applications.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
mod error;
pub mod field;
pub mod migrate;
pub mod promote;
pub mod signing;
pub mod staticfiles;
pub mod storage;
pub mod upload;

pub use config::{Settings, StoreConfig};
pub use error::{BoxError, Error, Result};
pub use storage::{ObjectMeta, Store};
