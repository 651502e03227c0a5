//! OIDC ID-token verification for Google-signed push requests (feature `oidc`).
//!
//! Pub/Sub push subscriptions, Eventarc triggers, Cloud Tasks and Cloud Scheduler call an endpoint with
//! `Authorization: Bearer <ID token>`, a JWT signed by Google (RS256) for a service account the caller
//! configured. [`OidcVerifier`] checks it: the header's `alg` is RS256 (anything else, including `none`
//! and HS256 keyed with the public key, is refused before any key is looked up), the signature against
//! Google's JWKS ([`JwksCache`]: cached per `Cache-Control`, refreshed on an unknown `kid` with one fetch
//! however many requests wait for it, a failed fetch shared by its waiters and retried only after a
//! backoff), `iss`, `aud`, `exp`/`iat`/`nbf` with a small skew and `email_verified`. A request with more
//! than one `Authorization` header is refused before anything else (`single_authorization`). [`InvokerPolicy`] adds what an endpoint needs on top: the audience built from a
//! configured external base URL (never from the `Host` header), the e-mail allow-list (fail closed when
//! none is configured) and an explicit, logged opt-out.
//!
//! ```no_run
//! use sea_gcp::auth::{InvokerPolicy, OidcVerifier};
//!
//! # async fn demo(headers: reqwest::header::HeaderMap) -> Result<(), sea_gcp::auth::AuthError> {
//! let verifier = OidcVerifier::google();
//! let policy = InvokerPolicy::new(verifier, "https://app.example.com")
//!     .allow_email("pubsub-invoker@my-project.iam.gserviceaccount.com");
//! let caller = policy.authorize(&headers, "/events/orders/new?shard=1").await?;
//! println!("pushed by {}", caller.map(|c| c.email).unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! Why this is built on `jsonwebtoken` rather than `google-cloud-auth`'s verifier: see `docs/events.md`.

mod claims;
mod error;
mod jwks;
mod policy;
mod unverified;
mod verifier;

pub use claims::VerifiedCaller;
pub use error::AuthError;
pub use jwks::{JwksCache, JwksFailure, JwksOptions};
pub use policy::{InvokerPolicy, audiences_for};
#[cfg(feature = "fuzzing")]
pub(crate) use unverified::parse_unverified;
pub use verifier::{OidcVerifier, VerifierOptions};
