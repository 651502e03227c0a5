//! Bodies in and out of a store: [`PutPayload`] (bytes, a stream or a file) and [`GetResult`].

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

use super::ObjectMeta;
use crate::Result;

/// A stream of byte chunks.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// What to write with [`Store::put`](super::Store::put).
pub enum PutPayload {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A stream of chunks; `size` when known up front (lets GCS skip a resumable session).
    Stream {
        /// The chunks.
        stream: ByteStream,
        /// Total size, when known.
        size: Option<u64>,
    },
    /// A local file, read in `blob_chunk_size` pieces (never whole into memory).
    File(PathBuf),
}

impl std::fmt::Debug for PutPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PutPayload::Bytes(b) => write!(f, "PutPayload::Bytes({} bytes)", b.len()),
            PutPayload::Stream { size, .. } => write!(f, "PutPayload::Stream(size: {size:?})"),
            PutPayload::File(p) => write!(f, "PutPayload::File({})", p.display()),
        }
    }
}

impl From<Bytes> for PutPayload {
    fn from(b: Bytes) -> Self {
        PutPayload::Bytes(b)
    }
}

impl From<Vec<u8>> for PutPayload {
    fn from(b: Vec<u8>) -> Self {
        PutPayload::Bytes(Bytes::from(b))
    }
}

impl From<&'static [u8]> for PutPayload {
    fn from(b: &'static [u8]) -> Self {
        PutPayload::Bytes(Bytes::from_static(b))
    }
}

impl From<&'static str> for PutPayload {
    fn from(s: &'static str) -> Self {
        PutPayload::Bytes(Bytes::from_static(s.as_bytes()))
    }
}

impl From<String> for PutPayload {
    fn from(s: String) -> Self {
        PutPayload::Bytes(Bytes::from(s))
    }
}

impl PutPayload {
    /// A payload from a stream of chunks.
    pub fn stream(stream: ByteStream, size: Option<u64>) -> Self {
        PutPayload::Stream { stream, size }
    }

    /// Turn any payload into a chunk stream (files are read in `chunk_size` pieces).
    pub(crate) async fn into_stream(self, chunk_size: usize) -> Result<ByteStream> {
        Ok(match self {
            PutPayload::Bytes(b) => futures_util::stream::once(async move { Ok(b) }).boxed(),
            PutPayload::Stream { stream, .. } => stream,
            PutPayload::File(path) => {
                let file = tokio::fs::File::open(&path).await?;
                tokio_util::io::ReaderStream::with_capacity(file, chunk_size.max(8 * 1024)).boxed()
            }
        })
    }

    /// Read everything into memory. Only for backends that keep objects in memory.
    pub async fn into_bytes(self) -> Result<Bytes> {
        match self {
            PutPayload::Bytes(b) => Ok(b),
            other => {
                let mut stream = other.into_stream(1 << 20).await?;
                let mut buf = bytes::BytesMut::new();
                while let Some(chunk) = stream.try_next().await? {
                    buf.extend_from_slice(&chunk);
                }
                Ok(buf.freeze())
            }
        }
    }
}

/// The result of [`Store::get`](super::Store::get): the object's metadata and its bytes as a stream.
pub struct GetResult {
    /// Metadata of the generation being read.
    pub meta: ObjectMeta,
    /// The byte range being returned (`0..size` for a whole read of stored bytes; for a gzip-decoded
    /// read, the range of the stored bytes that were decoded).
    pub range: std::ops::Range<u64>,
    /// The bytes.
    pub body: ByteStream,
}

impl std::fmt::Debug for GetResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetResult").field("meta", &self.meta).field("range", &self.range).finish()
    }
}

impl GetResult {
    /// Collect the body into memory.
    pub async fn bytes(self) -> Result<Bytes> {
        let mut buf = bytes::BytesMut::new();
        let mut body = self.body;
        while let Some(chunk) = body.try_next().await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}
