//! Test support users may reuse (feature `testing`): faithful local fakes of services that have no
//! emulator. Nothing here reaches an address off loopback.
//!
//! - [`metadata_server`]: a local fake of the GCE / Cloud Run metadata server.
//! - `oidc` (with feature `oidc`): a fake JWKS endpoint, ID-token minting and a token-adding proxy.

#[cfg(feature = "tasks")]
pub mod cloud_tasks;
#[cfg(feature = "metadata")]
pub mod metadata_server;
#[cfg(feature = "oidc")]
pub mod oidc;
#[cfg(feature = "tasks")]
pub mod scheduler;
