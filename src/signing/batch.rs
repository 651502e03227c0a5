//! Signing many URLs at once (a list page): signing is CPU bound, so large batches are split over all cores.
//!
//! [`sign_urls_parallel`] is synchronous and uses scoped threads; [`sign_urls`] is the async form (a
//! blocking task for in-memory keys, concurrent signBlob calls for IAM). Results keep the input order.
//! All URLs of one batch share one signing time.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;

use super::url::{sign_url, sign_url_blocking};
use super::{SignedUrl, Signer, SigningAlgorithm, V4Request};
use crate::{Error, Result};

/// Concurrent signBlob calls in [`sign_urls`] for network signers.
const NETWORK_CONCURRENCY: usize = 16;

/// Below this many URLs per thread, a thread costs more than it saves: a scoped thread takes tens of
/// microseconds to start and join.
fn min_per_thread(algorithm: SigningAlgorithm) -> usize {
    match algorithm {
        // ~0.27 ms per signature: worth a thread from two URLs on.
        SigningAlgorithm::Rsa => 2,
        // ~1.5 µs per URL: a thread pays off for a few hundred.
        SigningAlgorithm::Hmac => 256,
    }
}

/// URLs a thread takes at a time from the shared queue: small enough that a thread the scheduler
/// delays (other processes on the machine) leaves its share to the others, large enough that taking
/// a chunk costs nothing next to signing it.
fn chunk_len(algorithm: SigningAlgorithm) -> usize {
    match algorithm {
        SigningAlgorithm::Rsa => 1,
        SigningAlgorithm::Hmac => 64,
    }
}

/// The threads a batch of `len` URLs gets: one below the per-thread threshold, at most `max_threads`.
pub(crate) fn threads_for(algorithm: SigningAlgorithm, len: usize, max_threads: usize) -> usize {
    max_threads.clamp(1, (len / min_per_thread(algorithm)).max(1))
}

/// Sign `requests` on all cores with an in-memory signer (service-account key or HMAC).
///
/// Fails with [`Error::Signing`] for a network signer (IAM signBlob): use [`sign_urls`].
pub fn sign_urls_parallel(signer: &dyn Signer, requests: &[V4Request]) -> Result<Vec<SignedUrl>> {
    let threads = std::thread::available_parallelism().map(NonZeroUsize::get).unwrap_or(1);
    sign_urls_parallel_with(signer, requests, Utc::now(), threads)
}

/// [`sign_urls_parallel`] with an explicit signing time and at most `max_threads` threads (for benchmarks
/// and tests).
///
/// Small batches stay on the calling thread (below 2 RSA or 256 HMAC URLs per thread). Larger ones are
/// cut into chunks (1 RSA URL, 64 HMAC URLs) that the calling thread and the workers take from one queue,
/// so a worker that starts late or is descheduled never holds the batch up: the batch takes at most
/// about as long as on one thread, plus the cost of starting the workers.
pub fn sign_urls_parallel_with(
    signer: &dyn Signer,
    requests: &[V4Request],
    now: DateTime<Utc>,
    max_threads: usize,
) -> Result<Vec<SignedUrl>> {
    let algorithm = signer.algorithm();
    let threads = threads_for(algorithm, requests.len(), max_threads);
    if threads == 1 {
        return requests.iter().map(|r| sign_url_blocking(signer, r, now)).collect();
    }
    let mut slots: Vec<Option<Result<SignedUrl>>> = Vec::with_capacity(requests.len());
    slots.resize_with(requests.len(), || None);
    let chunk = chunk_len(algorithm);
    let queue = Mutex::new(requests.chunks(chunk).zip(slots.chunks_mut(chunk)));
    let work = || {
        loop {
            // The guard is dropped at the end of this statement: signing runs unlocked.
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((part, out)) = next else { break };
            for (request, slot) in part.iter().zip(out) {
                *slot = Some(sign_url_blocking(signer, request, now));
            }
        }
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        work();
        for worker in workers {
            worker.join().map_err(|_| Error::signing("a URL-signing worker thread panicked"))?;
        }
        Ok::<_, Error>(())
    })?;
    slots.into_iter().map(|slot| slot.unwrap_or_else(|| Err(Error::signing("a URL was left unsigned")))).collect()
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
    futures_util::stream::iter(requests.into_iter().map(|mut r| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_batches_stay_on_one_thread() {
        assert_eq!(threads_for(SigningAlgorithm::Hmac, 255, 2), 1);
        assert_eq!(threads_for(SigningAlgorithm::Hmac, 511, 2), 1);
        assert_eq!(threads_for(SigningAlgorithm::Hmac, 512, 2), 2);
        assert_eq!(threads_for(SigningAlgorithm::Hmac, 100_000, 2), 2);
        assert_eq!(threads_for(SigningAlgorithm::Rsa, 1, 8), 1);
        assert_eq!(threads_for(SigningAlgorithm::Rsa, 4, 8), 2);
        assert_eq!(threads_for(SigningAlgorithm::Rsa, 64, 0), 1);
    }
}
