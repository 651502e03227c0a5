//! Downloading an object to a file, in parallel slices for large objects (as `gcloud storage cp` does).
//!
//! [`download_to_file`] works over any [`Store`] with ranged [`Store::get`]s, so every backend runs the
//! same code (and the same behaviour-suite check). It:
//!
//! 1. starts one GET of the whole object, which also returns its metadata (no separate request), and
//!    pins that generation, so every slice reads the same bytes even if the object is overwritten;
//! 2. below [`DownloadOptions::sliced_threshold`] (or for an object the store gzip-encoded, whose ranges
//!    are of the compressed bytes) that stream is the download; above it, the stream is kept for the
//!    first slice only and up to [`DownloadOptions::max_slices`] − 1 ranged GETs run concurrently for
//!    the others, each written at its offset;
//! 3. computes each slice's CRC32C while it streams, combines them into the whole object's CRC32C
//!    (`crc32c_combine`, no second read) and compares it with the CRC32C GCS reports for the object;
//! 4. writes into a temporary file beside the destination and renames it into place only when every
//!    byte arrived and the checksum matched: a failed download leaves no partial file at `path`.
//!
//! One stream per connection is limited by the network path's per-connection throughput (TCP window
//! and round trip to GCS), not by the client; slices multiply it. Each slice buffers at most
//! [`DownloadOptions::buffer_size`] bytes before writing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use futures_util::TryStreamExt;

use super::{ByteStream, GetOptions, ObjectMeta, Store};
use crate::{Error, Result};

/// How [`download_to_file`] reads an object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Objects of at least this many bytes are downloaded in slices (default 150 MiB, as
    /// `gcloud storage`'s `sliced_object_download_threshold`). `u64::MAX` turns slicing off.
    pub sliced_threshold: u64,
    /// Most concurrent slices (default 4, as `gcloud storage`'s `sliced_object_download_max_components`).
    pub max_slices: usize,
    /// Smallest slice (default 16 MiB): fewer slices are used when the object is too small for
    /// `max_slices` of this size.
    pub min_slice_size: u64,
    /// Bytes each slice collects before writing them to the file (default 1 MiB).
    pub buffer_size: usize,
    /// Check the whole object's CRC32C against the store's (default true). Skipped when the store has
    /// none or when the bytes were decoded (an object the store gzip-encoded).
    pub verify_crc32c: bool,
    /// Download this generation instead of the live one.
    pub generation: Option<i64>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            sliced_threshold: 150 * 1024 * 1024,
            max_slices: 4,
            min_slice_size: 16 * 1024 * 1024,
            buffer_size: 1024 * 1024,
            verify_crc32c: true,
            generation: None,
        }
    }
}

impl DownloadOptions {
    /// Slice objects of at least `bytes` bytes.
    pub fn with_sliced_threshold(mut self, bytes: u64) -> Self {
        self.sliced_threshold = bytes;
        self
    }

    /// Never slice: one stream per object.
    pub fn single_stream(mut self) -> Self {
        self.sliced_threshold = u64::MAX;
        self
    }

    /// Use at most `slices` concurrent slices (at least 1).
    pub fn with_max_slices(mut self, slices: usize) -> Self {
        self.max_slices = slices.max(1);
        self
    }

    /// Make slices at least `bytes` long (at least 1).
    pub fn with_min_slice_size(mut self, bytes: u64) -> Self {
        self.min_slice_size = bytes.max(1);
        self
    }

    /// Collect `bytes` per slice before each file write (at least 8 KiB).
    pub fn with_buffer_size(mut self, bytes: usize) -> Self {
        self.buffer_size = bytes.max(8 * 1024);
        self
    }

    /// Check (true) or skip (false) the CRC32C comparison.
    pub fn with_verify_crc32c(mut self, verify: bool) -> Self {
        self.verify_crc32c = verify;
        self
    }

    /// Download a pinned generation.
    pub fn with_generation(mut self, generation: i64) -> Self {
        self.generation = Some(generation);
        self
    }

    /// The byte ranges an object of `size` bytes is read in (one range below the threshold).
    pub fn plan(&self, size: u64) -> Vec<std::ops::Range<u64>> {
        let slices = if size >= self.sliced_threshold && size > 0 {
            (self.max_slices.max(1) as u64).min(size.div_ceil(self.min_slice_size.max(1))).max(1)
        } else {
            1
        };
        let len = size.div_ceil(slices).max(1);
        (0..slices).map(|i| (i * len).min(size)..((i + 1) * len).min(size)).filter(|r| !r.is_empty()).collect()
    }
}

/// What [`download_to_file`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Downloaded {
    /// Metadata of the generation written to the file.
    pub meta: ObjectMeta,
    /// Bytes written.
    pub bytes: u64,
    /// Requests the bytes came in (1: a single stream).
    pub slices: usize,
    /// Whether the whole object's CRC32C was compared with the store's (and matched).
    pub crc32c_checked: bool,
}

fn integrity(store: &dyn Store, message: String) -> Error {
    Error::Backend {
        backend: store.kind().as_str(),
        store: store.key().to_string(),
        status: None,
        retryable: true,
        source: message.into(),
    }
}

/// GCS's CRC32C format: base64 of the big-endian value.
fn parse_crc32c(text: &str) -> Option<u32> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Write `body` into `path` from offset `range.start`, stopping after the range's length when `limit`
/// (the rest of the stream is dropped unread). Returns the bytes written and their CRC32C.
///
/// The received chunks are kept as they came (`Bytes`, no copy) until they add up to `buffer_size`, then
/// written with one vectored write on a blocking thread while the next piece fills. Each slice has its
/// own file handle, positioned once at its start, so its writes are sequential.
async fn write_at(
    store: &dyn Store,
    name: &str,
    mut body: ByteStream,
    path: &Path,
    range: std::ops::Range<u64>,
    limit: bool,
    buffer_size: usize,
) -> Result<(u64, u32)> {
    let (target, start) = (path.to_path_buf(), range.start);
    let file = blocking("file open", move || {
        use std::io::Seek as _;
        let file = std::fs::OpenOptions::new().write(true).open(&target)?;
        (&file).seek(std::io::SeekFrom::Start(start))?;
        Ok(Arc::new(file))
    })
    .await?;
    let want = range.end - range.start;
    let (mut written, mut crc) = (0u64, 0u32);
    let mut piece = Piece::default();
    let mut in_flight: Option<tokio::task::JoinHandle<std::io::Result<Piece>>> = None;
    while let Some(chunk) = body.try_next().await? {
        let take = if limit { chunk.len().min((want - written) as usize) } else { chunk.len() };
        crc = crc32c::crc32c_append(crc, &chunk[..take]);
        written += take as u64;
        piece.push(chunk.slice(..take));
        if piece.len >= buffer_size {
            // Wait for the previous piece (its list comes back for reuse), then hand this one over.
            let spare = match in_flight.take() {
                Some(write) => finish(write).await?,
                None => Piece::default(),
            };
            in_flight = Some(spawn_write(file.clone(), std::mem::replace(&mut piece, spare)));
        }
        if limit && written == want {
            break;
        }
    }
    if let Some(write) = in_flight.take() {
        finish(write).await?;
    }
    if piece.len > 0 {
        finish(spawn_write(file, piece)).await?;
    }
    if limit && written != want {
        return Err(integrity(
            store,
            format!(
                "download of `{name}` bytes {}..{} returned {written} bytes instead of {want}: the connection was \
                 cut; download again",
                range.start, range.end
            ),
        ));
    }
    Ok((written, crc))
}

/// Chunks received and not yet written, in order.
#[derive(Default)]
struct Piece {
    chunks: Vec<bytes::Bytes>,
    len: usize,
}

impl Piece {
    fn push(&mut self, chunk: bytes::Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }
}

/// Write `piece` at the file's position on a blocking thread; the piece comes back, emptied, for reuse.
fn spawn_write(file: Arc<std::fs::File>, mut piece: Piece) -> tokio::task::JoinHandle<std::io::Result<Piece>> {
    tokio::task::spawn_blocking(move || {
        write_all_vectored(&file, &piece.chunks)?;
        piece.chunks.clear();
        piece.len = 0;
        Ok(piece)
    })
}

async fn finish(write: tokio::task::JoinHandle<std::io::Result<Piece>>) -> Result<Piece> {
    joined("file write", write.await)
}

/// Run `work` on a blocking thread.
async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    joined(what, tokio::task::spawn_blocking(work).await)
}

/// The result of a blocking task; a task that panicked is an I/O error naming `what` it was doing.
fn joined<T>(what: &str, done: std::result::Result<std::io::Result<T>, tokio::task::JoinError>) -> Result<T> {
    let done = done.map_err(|e| Error::Io(std::io::Error::other(format!("{what} task failed: {e}"))))?;
    Ok(done?)
}

/// Write every chunk, in order, with as few vectored writes (`writev`) as the system allows.
fn write_all_vectored(mut file: &std::fs::File, chunks: &[bytes::Bytes]) -> std::io::Result<()> {
    use std::io::{IoSlice, Write as _};
    // At most 1024 buffers per call (Linux's IOV_MAX).
    for group in chunks.chunks(1024) {
        let mut slices: Vec<IoSlice<'_>> = group.iter().map(|c| IoSlice::new(c)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = file.write_vectored(rest)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
    }
    Ok(())
}

/// Give the new file its final length. On Linux the blocks are allocated up front (`fallocate`): a disk
/// without room for the object fails here, before any byte is downloaded, and the slices' writes need no
/// block allocation of their own. Elsewhere, or where the filesystem cannot allocate ahead, the file is
/// extended sparsely.
fn allocate(file: &std::fs::File, size: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        let len = libc::off_t::try_from(size).map_err(std::io::Error::other)?;
        // SAFETY: `fallocate` only reads its integer arguments; the descriptor belongs to `file`, which
        // outlives the call.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if !matches!(err.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL)) {
            return Err(err);
        }
    }
    file.set_len(size)
}

/// An I/O error on the destination, naming the file and, for a missing folder, the fix.
fn file_error(e: std::io::Error, verb: &str, path: &Path) -> std::io::Error {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    let hint = match folder {
        Some(dir) if e.kind() == std::io::ErrorKind::NotFound && !dir.is_dir() => {
            format!(" (the folder {} does not exist: create it first)", dir.display())
        }
        _ => String::new(),
    };
    std::io::Error::new(e.kind(), format!("cannot {verb} {}{hint}: {e}", path.display()))
}

/// A temporary name beside `path` (same directory, so the final rename stays on one filesystem).
fn temporary_beside(path: &Path) -> PathBuf {
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{file}.{}.part", uuid::Uuid::new_v4().simple()))
}

/// Download `name` from `store` into the file `path` (created or replaced), in parallel slices when the
/// object is large (see the module docs), checking the whole object's CRC32C.
pub async fn download_to_file(
    store: &dyn Store,
    name: &str,
    path: impl AsRef<Path>,
    opts: &DownloadOptions,
) -> Result<Downloaded> {
    let path = path.as_ref();
    // The first request reads the whole object: below the threshold it is the only one; above it, its
    // first slice is kept and the rest of its stream dropped. No separate metadata request.
    let first = store.get(name, GetOptions { generation: opts.generation, ..GetOptions::default() }).await?;
    let meta = first.meta.clone();
    let encoded = meta.content_encoding.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
    // Ranges of a gzip-encoded object are ranges of its compressed bytes: one decoded stream.
    let plan = if encoded { Vec::new() } else { opts.plan(meta.size) };
    let pinned = GetOptions { generation: Some(meta.generation), raw: true, ..GetOptions::default() };

    let tmp = temporary_beside(path);
    let result = async {
        let (target, size, shown) = (tmp.clone(), (!encoded).then_some(meta.size), path.to_path_buf());
        blocking("file creation", move || {
            let file = std::fs::File::create(&target).map_err(|e| file_error(e, "create", &shown))?;
            size.map_or(Ok(()), |size| allocate(&file, size).map_err(|e| file_error(e, "allocate", &shown)))
        })
        .await?;
        let (first_range, limit) = match plan.first() {
            Some(r) if plan.len() > 1 => (r.clone(), true),
            _ => (0..meta.size, !encoded),
        };
        let mut parts: Vec<futures_util::future::BoxFuture<'_, Result<(u64, u32)>>> =
            vec![Box::pin(write_at(store, name, first.body, &tmp, first_range, limit, opts.buffer_size))];
        for range in plan.iter().skip(1).cloned() {
            let get = pinned.clone().with_range(range.clone());
            let tmp = &tmp;
            parts.push(Box::pin(async move {
                let got = store.get(name, get).await?;
                write_at(store, name, got.body, tmp, range, true, opts.buffer_size).await
            }));
        }
        let slices = parts.len();
        let parts = futures_util::future::try_join_all(parts).await?;
        let (bytes, crc) = parts.iter().fold((0u64, 0u32), |(total, crc), &(len, part)| {
            (total + len, crc32c::crc32c_combine(crc, part, len as usize))
        });
        let expected = meta.crc32c.as_deref().and_then(parse_crc32c);
        let checked = opts.verify_crc32c && !encoded && expected.is_some();
        if checked && expected != Some(crc) {
            return Err(integrity(
                store,
                format!(
                    "download of `{name}` (generation {}) has CRC32C {} but the store reports {}: the bytes were \
                     corrupted in transit; download again",
                    meta.generation,
                    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes()),
                    meta.crc32c.as_deref().unwrap_or_default()
                ),
            ));
        }
        tokio::fs::rename(&tmp, path).await.map_err(|e| file_error(e, "replace", path))?;
        Ok((bytes, slices, checked))
    }
    .await;
    match result {
        Ok((bytes, slices, crc32c_checked)) => Ok(Downloaded { meta, bytes, slices, crc32c_checked }),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_the_object_exactly() {
        let o = DownloadOptions::default().with_sliced_threshold(100).with_min_slice_size(30);
        assert_eq!(o.plan(99), vec![0..99]);
        assert_eq!(o.plan(100), vec![0..25, 25..50, 50..75, 75..100]);
        assert_eq!(o.clone().with_sliced_threshold(50).plan(61), vec![0..21, 21..42, 42..61]);
        assert_eq!(o.plan(0), Vec::<std::ops::Range<u64>>::new());
        assert_eq!(DownloadOptions::default().single_stream().plan(u64::MAX / 2), vec![0..u64::MAX / 2]);
        for size in [100u64, 101, 103, 1000, 4097] {
            let plan = o.clone().with_max_slices(3).plan(size);
            assert!(plan.len() <= 3);
            assert_eq!(plan.first().unwrap().start, 0);
            assert_eq!(plan.last().unwrap().end, size);
            assert!(plan.windows(2).all(|w| w[0].end == w[1].start));
        }
    }

    #[test]
    fn crc32c_is_read_in_gcs_format() {
        assert_eq!(parse_crc32c("AAAAAA=="), Some(0));
        let crc = crc32c::crc32c(b"hello");
        let text = base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes());
        assert_eq!(parse_crc32c(&text), Some(crc));
        assert_eq!(parse_crc32c("not base64!"), None);
    }

    #[tokio::test]
    async fn pieces_of_many_small_chunks_are_written_in_order() {
        use futures_util::StreamExt as _;

        use crate::storage::memory::MemoryStore;

        let store = MemoryStore::default_for("media");
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let at = 10u64;
        let chunks = |data: &[u8]| {
            // Chunks of 1 to 7 bytes: an 8 KiB piece holds more than the 1024 buffers of one `writev`.
            let mut parts = Vec::new();
            let mut rest = data;
            for size in (1..=7).cycle() {
                if rest.is_empty() {
                    break;
                }
                let (head, tail) = rest.split_at(size.min(rest.len()));
                parts.push(Ok(bytes::Bytes::copy_from_slice(head)));
                rest = tail;
            }
            futures_util::stream::iter(parts).boxed()
        };
        let file = std::fs::File::create(&path).unwrap();
        allocate(&file, at + data.len() as u64).unwrap();
        let range = at..at + data.len() as u64;
        let (written, crc) = write_at(&store, "o", chunks(&data), &path, range, true, 8 * 1024).await.unwrap();
        assert_eq!((written, crc), (data.len() as u64, crc32c::crc32c(&data)));
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len() as u64, at + data.len() as u64);
        assert!(got[..at as usize].iter().all(|&b| b == 0) && got[at as usize..] == data[..]);

        // With a limit, the stream is cut inside a chunk and the rest is not written.
        std::fs::write(&path, vec![0u8; 100]).unwrap();
        let (written, crc) = write_at(&store, "o", chunks(&data), &path, 0..50, true, 8 * 1024).await.unwrap();
        assert_eq!((written, crc), (50, crc32c::crc32c(&data[..50])));
        let got = std::fs::read(&path).unwrap();
        assert!(got[..50] == data[..50] && got[50..].iter().all(|&b| b == 0));
        // A stream shorter than its range is an error naming the cut.
        let err = write_at(&store, "o", chunks(&data[..20]), &path, 0..50, true, 8 * 1024).await.unwrap_err();
        assert!(err.to_string().contains("returned 20 bytes instead of 50"), "{err}");
    }

    #[test]
    fn allocation_gives_the_final_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let file = std::fs::File::create(&path).unwrap();
        allocate(&file, 3 * 1024 * 1024 + 5).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 3 * 1024 * 1024 + 5);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::MetadataExt as _;
            // Where the filesystem allocates ahead, the blocks are reserved, not a sparse hole.
            let probe = std::env::temp_dir().join(format!("sea-gcp-fallocate-{}", uuid::Uuid::new_v4().simple()));
            let supported = std::fs::File::create(&probe)
                .map(|f| {
                    use std::os::fd::AsRawFd as _;
                    // SAFETY: as in `allocate`.
                    unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 4096) == 0 }
                })
                .unwrap_or(false);
            let _ = std::fs::remove_file(&probe);
            if supported {
                assert!(meta.blocks() * 512 >= meta.len(), "{} blocks for {} bytes", meta.blocks(), meta.len());
            }
        }
    }

    #[tokio::test]
    async fn a_failed_slice_leaves_the_destination_untouched() {
        use std::sync::Arc;

        use crate::storage::counting::StoreOp;
        use crate::storage::memory::MemoryStore;
        use crate::storage::{PutOptions, PutPayload};
        use crate::testing::fault::{FaultKind, FaultStore};

        let inner: Arc<dyn Store> = Arc::new(MemoryStore::default_for("media"));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        inner.put("o.bin", PutPayload::from(data.clone()), PutOptions::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.bin");
        std::fs::write(&path, b"previous contents").unwrap();
        let opts = DownloadOptions::default().with_sliced_threshold(1).with_min_slice_size(50_000);

        let faulty = FaultStore::new(Arc::clone(&inner));
        // Calls: the whole-object GET (first slice), then one ranged GET per other slice.
        faulty.fail(StoreOp::Get, 3, FaultKind::Before);
        let err = download_to_file(&faulty, "o.bin", &path, &opts).await.unwrap_err();
        assert!(matches!(err, Error::Backend { status: Some(503), .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"previous contents");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the temporary file is removed");

        faulty.clear();
        let got = download_to_file(&faulty, "o.bin", &path, &opts).await.unwrap();
        assert_eq!((got.slices, got.crc32c_checked), (4, true));
        assert!(std::fs::read(&path).unwrap() == data);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
