//! Signing many URLs at once (a list page): signing is CPU bound, so large batches are split over all cores.
//!
//! [`sign_urls_parallel`] is synchronous and uses scoped threads; [`sign_urls`] is the async form (a
//! blocking task for in-memory keys, concurrent signBlob calls for IAM). Results keep the input order.
//! All URLs of one batch share one signing time.
//!
//! Per URL, a batch thread allocates nothing: it rewrites one canonical request and one string to sign,
//! signs with the scope's signer held for the whole batch (HMAC: the derived key, no lock), and appends
//! the URL to the buffer of its share of the batch ([`SignedUrls`]). So a batch on one thread costs no
//! more per URL than signing one URL at a time, and two threads share no cache line but the queue's.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;

use super::url::{prepare_into, push_signature, sign_url};
use super::{ScopedSigner, SignedUrl, Signer, SigningAlgorithm, V4Request};
use crate::{Error, Result};

/// Concurrent signBlob calls in [`sign_urls`] for network signers.
const NETWORK_CONCURRENCY: usize = 16;

/// Below this many URLs per thread, a thread costs more than it saves: a scoped thread takes tens of
/// microseconds to start and join.
fn min_per_thread(algorithm: SigningAlgorithm) -> usize {
    match algorithm {
        // ~0.27 ms per signature: worth a thread from two URLs on.
        SigningAlgorithm::Rsa => 2,
        // ~1.2 µs per URL: a thread pays off from about a hundred (starting and joining one costs tens
        // of microseconds).
        SigningAlgorithm::Hmac => 128,
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

/// The URLs of a batch, in the order of its requests.
///
/// They are held in one large buffer per thread that signed them rather than one allocation per URL:
/// a page of thousands of URLs costs a handful of allocations, and the allocator reuses the memory a
/// previous batch freed as a whole instead of handing thousands of small blocks back to the system. Read them with [`get`](Self::get), indexing (`urls[i]`) or
/// [`iter`](Self::iter). Unlike [`SignedUrl`], a batch keeps no canonical request or string to sign:
/// sign one URL with [`sign_url`](super::sign_url) to see them.
#[derive(Clone, Default)]
pub struct SignedUrls {
    /// One buffer per thread that signed.
    buffers: Vec<Buffer>,
    /// For each chunk of `chunk_len` requests, in request order: its buffer and the position of its
    /// first URL there (the last chunk may be shorter).
    chunks: Vec<(usize, usize)>,
    chunk_len: usize,
    len: usize,
}

/// URLs written one after the other, and where each ends.
#[derive(Clone, Default)]
struct Buffer {
    text: String,
    ends: Vec<usize>,
}

impl Buffer {
    fn url(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// Equal when they hold the same URLs in the same order, however the threads shared the work.
impl PartialEq for SignedUrls {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for SignedUrls {}

/// A batch's URLs carry signatures: Debug shows how many there are, not the URLs.
impl std::fmt::Debug for SignedUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedUrls").field("len", &self.len).finish_non_exhaustive()
    }
}

impl SignedUrls {
    /// One buffer holding every URL in order.
    fn single(buffer: Buffer) -> Self {
        let len = buffer.ends.len();
        Self { buffers: vec![buffer], chunks: vec![(0, 0)], chunk_len: len.max(1), len }
    }

    fn url(&self, i: usize) -> &str {
        let (buffer, first) = self.chunks[i / self.chunk_len];
        self.buffers[buffer].url(first + i % self.chunk_len)
    }

    /// How many URLs the batch holds (as many as it had requests).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The URL of the `i`-th request, if there is one.
    pub fn get(&self, i: usize) -> Option<&str> {
        (i < self.len).then(|| self.url(i))
    }

    /// The URLs in request order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len).map(|i| self.url(i))
    }

    /// The URLs as owned strings (one allocation each).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl std::ops::Index<usize> for SignedUrls {
    type Output = str;

    /// The URL of the `i`-th request; panics past the end, like a slice.
    fn index(&self, i: usize) -> &str {
        self.get(i).unwrap_or_else(|| panic!("URL {i} of a batch of {}", self.len))
    }
}

impl<S: Into<String>> FromIterator<S> for SignedUrls {
    fn from_iter<I: IntoIterator<Item = S>>(urls: I) -> Self {
        let mut buffer = Buffer::default();
        for url in urls {
            buffer.text.push_str(&url.into());
            buffer.ends.push(buffer.text.len());
        }
        Self::single(buffer)
    }
}

/// Sign `requests` on all cores with an in-memory signer (service-account key or HMAC).
///
/// Fails with [`Error::Signing`] for a network signer (IAM signBlob): use [`sign_urls`].
pub fn sign_urls_parallel(signer: &dyn Signer, requests: &[V4Request]) -> Result<SignedUrls> {
    let threads = std::thread::available_parallelism().map(NonZeroUsize::get).unwrap_or(1);
    sign_urls_parallel_with(signer, requests, Utc::now(), threads)
}

/// One thread's reusable state: the canonical request and string to sign are rewritten for every URL,
/// the signature goes into one buffer, the URLs into another, and the scope's signer is kept while the
/// scope stays the same (a batch shares one signing time, so it normally never changes).
struct Worker<'s> {
    /// The URLs this thread signed, and how many it expects to sign (to size the buffer once).
    out: Buffer,
    expected: usize,
    signer: &'s dyn Signer,
    credential_id: &'s str,
    now: DateTime<Utc>,
    canonical_request: String,
    string_to_sign: String,
    signature: Vec<u8>,
    scoped: Option<(String, ScopedSigner<'s>)>,
}

impl<'s> Worker<'s> {
    fn new(signer: &'s dyn Signer, credential_id: &'s str, now: DateTime<Utc>, expected: usize) -> Self {
        Self {
            out: Buffer { text: String::new(), ends: Vec::with_capacity(expected) },
            expected,
            signer,
            credential_id,
            now,
            canonical_request: String::new(),
            string_to_sign: String::new(),
            signature: Vec::with_capacity(512),
            scoped: None,
        }
    }

    /// Sign `requests`, appending their URLs to this thread's buffer; returns where the first one is.
    fn run(&mut self, requests: &[V4Request]) -> Result<usize> {
        let first = self.out.ends.len();
        for request in requests {
            let scope = prepare_into(
                request,
                self.signer.algorithm(),
                self.credential_id,
                self.now,
                &mut self.canonical_request,
                &mut self.string_to_sign,
                &mut self.out.text,
            )?;
            let scope = &self.string_to_sign[scope];
            if self.scoped.as_ref().is_none_or(|(held, _)| held != scope) {
                let scoped = self.signer.scoped_local(scope).ok_or_else(|| not_local(self.signer))??;
                self.scoped = Some((scope.to_string(), scoped));
            }
            let (_, sign) = self.scoped.as_mut().expect("set above");
            sign(self.string_to_sign.as_bytes(), &mut self.signature)?;
            push_signature(&mut self.out.text, &self.signature);
            self.out.ends.push(self.out.text.len());
            if self.out.ends.len() == 1 {
                // The rest are about as long as the first: one allocation for the whole share.
                self.out.text.reserve((self.out.text.len() + 16) * self.expected.saturating_sub(1));
            }
        }
        Ok(first)
    }
}

fn not_local(signer: &dyn Signer) -> Error {
    Error::signing(format!("{signer:?} signs over the network and cannot sign synchronously: call sign_urls"))
}

/// [`sign_urls_parallel`] with an explicit signing time and at most `max_threads` threads (for benchmarks
/// and tests).
///
/// Small batches stay on the calling thread (below 2 RSA or 128 HMAC URLs per thread). Larger ones are
/// cut into chunks (1 RSA URL, 64 HMAC URLs) that the calling thread and the workers take from one queue,
/// so a worker that starts late or is descheduled never holds the batch up: the batch takes at most
/// about as long as on one thread, plus the cost of starting the workers.
pub fn sign_urls_parallel_with(
    signer: &dyn Signer,
    requests: &[V4Request],
    now: DateTime<Utc>,
    max_threads: usize,
) -> Result<SignedUrls> {
    let credential_id = signer.local_credential_id().ok_or_else(|| not_local(signer))?;
    let algorithm = signer.algorithm();
    let threads = threads_for(algorithm, requests.len(), max_threads);
    if threads == 1 {
        let mut worker = Worker::new(signer, credential_id, now, requests.len());
        worker.run(requests)?;
        return Ok(SignedUrls::single(worker.out));
    }
    let chunk = chunk_len(algorithm);
    let queue = Mutex::new(requests.chunks(chunk).enumerate());
    let work = || {
        let mut worker = Worker::new(signer, credential_id, now, requests.len() / threads + chunk);
        let mut done = Vec::new();
        loop {
            // The guard is dropped at the end of this statement: signing runs unlocked.
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((index, part)) = next else { break };
            done.push((index, worker.run(part)));
        }
        (done, worker.out)
    };
    let shares = std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut shares = vec![work()];
        for worker in workers {
            shares.push(worker.join().map_err(|_| Error::signing("a URL-signing worker thread panicked"))?);
        }
        Ok::<_, Error>(shares)
    })?;
    let mut chunks: Vec<Option<Result<(usize, usize)>>> = (0..requests.len().div_ceil(chunk)).map(|_| None).collect();
    let mut buffers = Vec::with_capacity(shares.len());
    for (buffer, (done, out)) in shares.into_iter().enumerate() {
        for (index, first) in done {
            chunks[index] = Some(first.map(|first| (buffer, first)));
        }
        buffers.push(out);
    }
    let chunks = chunks
        .into_iter()
        .map(|c| c.unwrap_or_else(|| Err(Error::signing("a share of the batch was left unsigned"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(SignedUrls { buffers, chunks, chunk_len: chunk, len: requests.len() })
}

/// Sign `requests` without blocking the async runtime: on all cores for in-memory keys, with up to 16
/// concurrent signBlob calls for IAM.
pub async fn sign_urls(signer: Arc<dyn Signer>, requests: Vec<V4Request>) -> Result<SignedUrls> {
    if signer.local_credential_id().is_some() {
        return tokio::task::spawn_blocking(move || sign_urls_parallel(&*signer, &requests))
            .await
            .map_err(|e| Error::signing(format!("URL-signing task failed: {e}")))?;
    }
    let now = Utc::now();
    let signed: Vec<SignedUrl> = futures_util::stream::iter(requests.into_iter().map(|mut r| {
        let signer = Arc::clone(&signer);
        r.timestamp.get_or_insert(now);
        async move { sign_url(&*signer, &r).await }
    }))
    .buffered(NETWORK_CONCURRENCY)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_>>()?;
    Ok(signed.into_iter().map(|s| s.url).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_batches_stay_on_one_thread() {
        assert_eq!(threads_for(SigningAlgorithm::Hmac, 127, 2), 1);
        assert_eq!(threads_for(SigningAlgorithm::Hmac, 255, 2), 1);
        assert_eq!(threads_for(SigningAlgorithm::Hmac, 256, 2), 2);
        assert_eq!(threads_for(SigningAlgorithm::Hmac, 100_000, 2), 2);
        assert_eq!(threads_for(SigningAlgorithm::Rsa, 1, 8), 1);
        assert_eq!(threads_for(SigningAlgorithm::Rsa, 4, 8), 2);
        assert_eq!(threads_for(SigningAlgorithm::Rsa, 64, 0), 1);
    }
}
