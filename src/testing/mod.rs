//! Test support users may reuse (feature `testing`): faithful local fakes of services that have no
//! emulator. Nothing here reaches an address off loopback.

#[cfg(feature = "tasks")]
pub mod cloud_tasks;
#[cfg(feature = "oidc")]
pub mod oidc;
#[cfg(feature = "tasks")]
pub mod scheduler;
