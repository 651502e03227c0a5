//! Retries: exponential backoff with full jitter, only where repeating a request cannot do harm.
//!
//! # The rule
//!
//! A call is retried when **both** hold:
//!
//! 1. **The error is transient**: [`Error::is_retryable`] — HTTP 408, 429, any 5xx, and connection
//!    errors or timeouts (no response at all). A 4xx answer (404, 412, 416, ...) is final.
//! 2. **Repeating the call is safe** ([`Idempotency`]), following Google's retry strategy for Cloud
//!    Storage:
//!    * reads (`GET`, `HEAD`, `LIST`, bucket metadata) are always safe: [`Idempotency::Always`];
//!    * writes (`PUT`/upload, `DELETE`, `COPY`, `PATCH`) are safe only when a precondition pins what they
//!      act on, so that a repeat of a request that did succeed the first time fails with 412 instead of
//!      acting twice: [`Idempotency::Guarded`]. The guards are `ifGenerationMatch` (including 0,
//!      create-only) for uploads, copies and deletes, a pinned `generation` for deletes, and
//!      `ifMetagenerationMatch` for metadata patches ([`Idempotency::for_write`],
//!      [`Idempotency::for_patch`], [`Idempotency::for_delete`]). A patch its caller marks
//!      [`repeatable`](super::MetadataPatch::repeatable) (constant values of keys only it writes, like
//!      the save protocol's claim) is also guarded by `ifGenerationMatch`
//!      ([`Idempotency::for_repeatable_patch`]);
//!    * an unguarded write is never retried: [`Idempotency::Never`]. The transient error is returned
//!      to the caller, who knows whether repeating is acceptable.
//!
//! The chunks of a resumable upload session are a special case handled by the GCS backend: the session
//! itself makes them idempotent (the server reports how many bytes it holds and the upload continues from
//! there), so they are resumed whatever the object preconditions.
//!
//! # Backoff
//!
//! Attempt `n` (0-based: the first retry waits after attempt 0) waits a uniformly random duration in
//! `[0, min(max_backoff, initial_backoff * multiplier^n)]` ("full jitter"), at most
//! [`RetryConfig::max_retries`] times. Every retry is logged with `tracing::warn!` naming the
//! operation, the attempt, the delay and the error.

use std::future::Future;
use std::time::Duration;

use super::Preconditions;
use crate::config::RetryConfig;
use crate::{Error, Result};

/// Whether a call may be repeated after a transient failure. See the [module docs](self) for the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Reads: repeating them has no effect.
    Always,
    /// Writes pinned by a precondition: a repeat of a call that already succeeded fails with 412.
    Guarded,
    /// Unguarded writes: a repeat could act twice (overwrite a newer object, delete a new generation).
    Never,
}

impl Idempotency {
    /// Uploads and copies: guarded by `ifGenerationMatch` (0 = create-only).
    pub(crate) fn for_write(destination: &Preconditions) -> Self {
        if destination.if_generation_match.is_some() { Idempotency::Guarded } else { Idempotency::Never }
    }

    /// Deletes: guarded by `ifGenerationMatch` or by deleting one pinned `generation`.
    pub(crate) fn for_delete(generation: Option<i64>, preconditions: &Preconditions) -> Self {
        if generation.is_some() || preconditions.if_generation_match.is_some() {
            Idempotency::Guarded
        } else {
            Idempotency::Never
        }
    }

    /// Metadata patches: guarded by `ifMetagenerationMatch`.
    pub(crate) fn for_patch(preconditions: &Preconditions) -> Self {
        if preconditions.if_metageneration_match.is_some() { Idempotency::Guarded } else { Idempotency::Never }
    }

    /// Metadata patches marked [`MetadataPatch::repeatable`](super::MetadataPatch::repeatable) (constant
    /// values of keys only the caller writes): guarded by `ifMetagenerationMatch` or `ifGenerationMatch`.
    /// Repeating such a patch after it took effect sets the same values again, and the generation
    /// precondition keeps it off any other content.
    pub(crate) fn for_repeatable_patch(preconditions: &Preconditions) -> Self {
        if preconditions.if_metageneration_match.is_some() || preconditions.if_generation_match.is_some() {
            Idempotency::Guarded
        } else {
            Idempotency::Never
        }
    }

    /// True when a transient failure may be retried.
    pub(crate) fn allows_retry(&self) -> bool {
        !matches!(self, Idempotency::Never)
    }
}

/// A retry policy built from a store's [`RetryConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    config: RetryConfig,
}

impl RetryPolicy {
    /// A policy following `config`.
    pub(crate) fn new(config: RetryConfig) -> Self {
        Self { config }
    }

    /// A policy that never retries.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self { config: RetryConfig { max_retries: 0, ..RetryConfig::default() } }
    }

    /// The configuration.
    #[cfg(test)]
    pub(crate) fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// Upper bound of the wait before retry number `attempt + 1` (after attempt `attempt`, 0-based):
    /// `min(max_backoff, initial_backoff * multiplier^attempt)`.
    pub(crate) fn backoff_cap(&self, attempt: u32) -> Duration {
        let factor = (self.config.multiplier.max(1) as f64).powi(attempt.min(64) as i32);
        let cap = self.config.initial_backoff.as_secs_f64() * factor;
        let max = self.config.max_backoff.as_secs_f64();
        Duration::from_secs_f64(cap.min(max).max(0.0))
    }

    /// A full-jitter delay: uniform in `[0, backoff_cap(attempt)]`.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let cap = self.backoff_cap(attempt);
        if cap.is_zero() {
            return cap;
        }
        Duration::from_secs_f64(crate::random::unit() * cap.as_secs_f64())
    }

    /// Whether the failure `error` of attempt `attempt` (0-based) should be retried.
    pub(crate) fn should_retry(&self, idempotency: Idempotency, error: &Error, attempt: u32) -> bool {
        idempotency.allows_retry() && error.is_retryable() && attempt < self.config.max_retries
    }

    /// Run `call` until it succeeds, fails for good, or the retries are spent. `operation` names the
    /// call in logs (`"gcs.get"`, ...).
    pub(crate) async fn run<T, F, Fut>(&self, operation: &str, idempotency: Idempotency, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0u32;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) if self.should_retry(idempotency, &error, attempt) => {
                    let delay = self.delay(attempt);
                    tracing::warn!(
                        operation,
                        attempt = attempt + 1,
                        max_retries = self.config.max_retries,
                        delay_ms = delay.as_millis() as u64,
                        error = %error,
                        "transient storage error; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(RetryConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn transient(status: u16) -> Error {
        Error::Backend {
            backend: "gcs",
            store: "t".into(),
            status: Some(status),
            retryable: true,
            source: "unavailable".into(),
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy::new(RetryConfig {
            max_retries: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            multiplier: 2,
        })
    }

    #[test]
    fn which_calls_retry() {
        assert_eq!(Idempotency::for_write(&Preconditions::default()), Idempotency::Never);
        assert_eq!(Idempotency::for_write(&Preconditions::create_only()), Idempotency::Guarded);
        assert_eq!(Idempotency::for_write(&Preconditions::generation(7)), Idempotency::Guarded);
        let meta_only = Preconditions { if_metageneration_match: Some(1), ..Default::default() };
        assert_eq!(Idempotency::for_write(&meta_only), Idempotency::Never);
        assert_eq!(Idempotency::for_patch(&meta_only), Idempotency::Guarded);
        assert_eq!(Idempotency::for_patch(&Preconditions::default()), Idempotency::Never);
        assert_eq!(Idempotency::for_patch(&Preconditions::generation(3)), Idempotency::Never);
        assert_eq!(Idempotency::for_repeatable_patch(&Preconditions::generation(3)), Idempotency::Guarded);
        assert_eq!(Idempotency::for_repeatable_patch(&meta_only), Idempotency::Guarded);
        assert_eq!(Idempotency::for_repeatable_patch(&Preconditions::default()), Idempotency::Never);
        assert_eq!(Idempotency::for_delete(None, &Preconditions::default()), Idempotency::Never);
        assert_eq!(Idempotency::for_delete(Some(3), &Preconditions::default()), Idempotency::Guarded);
        assert_eq!(Idempotency::for_delete(None, &Preconditions::generation(3)), Idempotency::Guarded);
        let not_match = Preconditions { if_generation_not_match: Some(3), ..Default::default() };
        assert_eq!(Idempotency::for_delete(None, &not_match), Idempotency::Never);

        let policy = fast();
        assert!(policy.should_retry(Idempotency::Always, &transient(503), 0));
        assert!(policy.should_retry(Idempotency::Guarded, &transient(429), 2));
        assert!(!policy.should_retry(Idempotency::Guarded, &transient(429), 3), "retries are spent");
        assert!(!policy.should_retry(Idempotency::Never, &transient(503), 0));
        let not_found = Error::NotFound { store: "t".into(), name: "a".into() };
        assert!(!policy.should_retry(Idempotency::Always, &not_found, 0));
        let final_400 = Error::Backend {
            backend: "gcs",
            store: "t".into(),
            status: Some(400),
            retryable: false,
            source: "bad".into(),
        };
        assert!(!policy.should_retry(Idempotency::Always, &final_400, 0));
    }

    #[test]
    fn backoff_bounds() {
        let policy = RetryPolicy::new(RetryConfig {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            multiplier: 2,
        });
        assert_eq!(policy.backoff_cap(0), Duration::from_millis(100));
        assert_eq!(policy.backoff_cap(1), Duration::from_millis(200));
        assert_eq!(policy.backoff_cap(3), Duration::from_millis(800));
        assert_eq!(policy.backoff_cap(4), Duration::from_secs(1), "capped at max_backoff");
        assert_eq!(policy.backoff_cap(1000), Duration::from_secs(1), "no overflow");
        for attempt in 0..8 {
            for _ in 0..200 {
                assert!(policy.delay(attempt) <= policy.backoff_cap(attempt));
            }
        }
        // Full jitter spreads delays over the whole window, not just near the cap.
        let delays: Vec<Duration> = (0..500).map(|_| policy.delay(4)).collect();
        assert!(delays.iter().any(|d| *d < Duration::from_millis(300)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(700)));
        assert_eq!(RetryPolicy::none().config().max_retries, 0);
    }

    #[tokio::test]
    async fn runs_until_success_or_final() {
        let policy = fast();
        let calls = AtomicU32::new(0);
        let value = policy
            .run("test.read", Idempotency::Always, || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(transient(503)) } else { Ok(42) }
            })
            .await
            .unwrap();
        assert_eq!((value, calls.load(Ordering::SeqCst)), (42, 3));

        let calls = AtomicU32::new(0);
        let err = policy
            .run("test.put", Idempotency::Never, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(transient(503))
            })
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "unguarded writes are not retried");

        let calls = AtomicU32::new(0);
        let _ = policy
            .run("test.read", Idempotency::Always, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(transient(500))
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 4, "one attempt plus max_retries");
    }
}
