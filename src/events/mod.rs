//! Pub/Sub and Eventarc push endpoints for axum (feature `events`).
//!
//! ```no_run
//! use sea_gcp::auth::{InvokerPolicy, OidcVerifier};
//! use sea_gcp::events::{Event, EventsRouter, HandlerError};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let policy = InvokerPolicy::new(OidcVerifier::google(), "https://app.example.com")
//!     .allow_email("pubsub-invoker@my-project.iam.gserviceaccount.com");
//! let events = EventsRouter::new(policy)
//!     .on("orders", |event: Event| async move {
//!         let message = event.pubsub()?;
//!         let order: Option<serde_json::Value> = message.json()?;
//!         tracing::info!(reference = %event.reference, ?order, "order event");
//!         Ok::<(), HandlerError>(())
//!     })
//!     .on_prefix("storage.", |event: Event| async move {
//!         let change = event.storage()?;
//!         tracing::info!(bucket = %change.bucket, name = %change.name, kind = ?change.kind, "object event");
//!         Ok(())
//!     });
//! let app = axum::Router::new().merge(events.into_router());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! - [`EventsRouter`]: the endpoint, with OIDC verification on by default ([`crate::auth`]).
//! - [`Event`]: kind, reference, JSON payload, query parameters, verified caller; decoders for the
//!   Pub/Sub message ([`crate::pubsub::PubSubMessage`]), the [`CloudEvent`] and the [`StorageEvent`].
//! - [`DedupTable`] (feature `orm`): run a handler at most once per message, in the transaction that
//!   records it.
//! - [`BlobRefresh`] (feature `orm`): keep blob-field caches true when objects change outside the app.
//! - [`event_url`]: the endpoint URL a subscription pushes to.

mod cloudevents;
mod event;
mod registry;
mod router;
mod storage;
mod url;

#[cfg(feature = "orm")]
mod blob_refresh;
#[cfg(feature = "orm")]
mod dedup;

pub use cloudevents::{CloudEvent, CloudEventError};
pub use event::{Event, HandlerError};
pub use registry::EventHandler;
pub use router::EventsRouter;
pub use storage::{StorageEvent, StorageEventError, StorageEventKind};
pub use url::event_url;

#[cfg(feature = "orm")]
pub use blob_refresh::{BlobRefresh, MissingPolicy, RefreshReport};
#[cfg(feature = "orm")]
pub use dedup::{CreateEventDedup, DedupTable, TransactionalHandler};
