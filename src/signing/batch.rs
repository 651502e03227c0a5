//! Signing many URLs at once (a list page): RSA signing is CPU bound, so the work is split over all cores.
//!
//! [`sign_urls_parallel`] is synchronous and uses scoped threads; [`sign_urls`] is the async form (a
//! blocking task for in-memory keys, concurrent signBlob calls for IAM). Results keep the input order.
//! All URLs of one batch share one signing time.

use std::num::NonZeroUsize;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use super::url::{sign_url, sign_url_blocking};
use super::{SignedUrl, Signer, SigningAlgorithm, V4Request};
use crate::{Error, Result};

/// Concurrent signBlob calls in [`sign_urls`] for network signers.
const NETWORK_CONCURRENCY: usize = 16;

/// Below this many URLs per thread, a thread costs more than it saves.
fn min_per_thread(algorithm: SigningAlgorithm) -> usize {
    match algorithm {
        // ~0.5 ms per signature: worth a thread from two URLs on.
        SigningAlgorithm::Rsa => 2,
        // ~2 µs per signature: a thread (~20 µs to spawn) pays off for a few hundred.
        SigningAlgorithm::Hmac => 256,
    }
}

/// Sign `requests` on all cores with an in-memory signer (service-account key or HMAC).
///
/// Fails with [`Error::Signing`] for a network signer (IAM signBlob): use [`sign_urls`].
pub fn sign_urls_parallel(signer: &dyn Signer, requests: &[V4Request]) -> Result<Vec<SignedUrl>> {
    let threads = std::thread::available_parallelism().map(NonZeroUsize::get).unwrap_or(1);
    sign_urls_parallel_with(signer, requests, Utc::now(), threads)
}

/// [`sign_urls_parallel`] with an explicit signing time and thread count (for benchmarks and tests).
pub fn sign_urls_parallel_with(
    signer: &dyn Signer,
    requests: &[V4Request],
    now: DateTime<Utc>,
    max_threads: usize,
) -> Result<Vec<SignedUrl>> {
    let wanted = requests.len().div_ceil(min_per_thread(signer.algorithm()));
    let threads = max_threads.clamp(1, wanted.max(1));
    if threads == 1 {
        return requests.iter().map(|r| sign_url_blocking(signer, r, now)).collect();
    }
    let chunk = requests.len().div_ceil(threads);
    let mut chunks = requests.chunks(chunk);
    let first = chunks.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .map(|part| {
                scope.spawn(move || part.iter().map(|r| sign_url_blocking(signer, r, now)).collect::<Result<Vec<_>>>())
            })
            .collect();
        let mut out = Vec::with_capacity(requests.len());
        out.extend(first.iter().map(|r| sign_url_blocking(signer, r, now)).collect::<Result<Vec<_>>>()?);
        for handle in handles {
            let part = handle.join().map_err(|_| Error::signing("a URL-signing worker thread panicked"))??;
            out.extend(part);
        }
        Ok(out)
    })
}

/// Sign `requests` without blocking the async runtime: on all cores for in-memory keys, with up to 16
/// concurrent signBlob calls for IAM.
pub async fn sign_urls(signer: Arc<dyn Signer>, requests: Vec<V4Request>) -> Result<Vec<SignedUrl>> {
    if signer.local_credential_id().is_some() {
        return tokio::task::spawn_blocking(move || sign_urls_parallel(&*signer, &requests))
            .await
            .map_err(|e| Error::signing(format!("URL-signing task failed: {e}")))?;
    }
    let now = Utc::now();
    futures::stream::iter(requests.into_iter().map(|mut r| {
        let signer = Arc::clone(&signer);
        r.timestamp.get_or_insert(now);
        async move { sign_url(&*signer, &r).await }
    }))
    .buffered(NETWORK_CONCURRENCY)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect()
}
