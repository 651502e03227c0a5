//! Test support applications may reuse (feature `testing`).
//!
//! - [`metadata_server`]: a local fake of the GCE / Cloud Run metadata server.

pub mod metadata_server;
