//! Test support users may reuse (feature `testing`): faithful local fakes of services that have no
//! emulator. Nothing here reaches an address off loopback.
//!
//! - [`conformance`]: the behaviour every [`Store`](crate::storage::Store) must show, as reusable checks.
//! - [`fault`]: a store wrapper that injects failures and latency at chosen calls.
//! - [`metadata_server`]: a local fake of the GCE / Cloud Run metadata server.
//! - `oidc` (with feature `oidc`): a fake JWKS endpoint, ID-token minting and a token-adding proxy.
//! - `cloud_tasks`, `scheduler` (with feature `tasks`): local Cloud Tasks and Cloud Scheduler. The same
//!   services back the app handle's local mode ([`crate::local`]).

#[cfg(feature = "tasks")]
pub mod cloud_tasks;
pub mod conformance;
pub mod fault;
#[cfg(feature = "metadata")]
pub mod metadata_server;
#[cfg(feature = "oidc")]
pub mod oidc;
#[cfg(feature = "tasks")]
pub mod scheduler;

/// Whether a message meant for end users reads like code (a Rust type, a path, a stack frame): the
/// check the refusal tests apply to every message a client sees.
#[cfg(feature = "axum")]
pub use crate::upload::plain::looks_like_code;
