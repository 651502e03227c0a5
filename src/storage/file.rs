//! A stored file opened for writing: django-gcp's `GoogleCloudFile` in write mode.
//!
//! [`FileWriter`] collects what is written in memory; past the store's `max_memory_size` (when it is
//! not 0) it spools to a temporary file on disk instead, so large files never sit whole in memory.
//! [`FileWriter::finish`] uploads it with [`Store::put`] — a spooled file is streamed from disk in
//! `blob_chunk_size` pieces (a resumable upload on GCS).

use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use super::{ObjectMeta, PutOptions, PutPayload, Store};
use crate::Result;

enum Spool {
    Memory(Vec<u8>),
    Disk { file: tokio::fs::File, path: std::path::PathBuf },
}

/// A file being written to a store. Created by [`FileWriter::new`]; nothing reaches the store until
/// [`FileWriter::finish`]. Dropping it without finishing discards the data.
pub struct FileWriter {
    store: Arc<dyn Store>,
    name: String,
    spool: Spool,
    written: u64,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("name", &self.name)
            .field("written", &self.written)
            .field("spooled", &matches!(self.spool, Spool::Disk { .. }))
            .finish()
    }
}

impl FileWriter {
    /// Start writing `name` on `store`.
    pub fn new(store: Arc<dyn Store>, name: impl Into<String>) -> Self {
        Self { store, name: name.into(), spool: Spool::Memory(Vec::new()), written: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// True once the data has been spooled to disk.
    #[cfg(test)]
    pub(crate) fn is_spooled(&self) -> bool {
        matches!(self.spool, Spool::Disk { .. })
    }

    /// Append bytes, spooling to disk once past `max_memory_size` (0: never spool).
    pub async fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let limit = self.store.config().max_memory_size;
        if let Spool::Memory(buf) = &mut self.spool
            && limit > 0
            && buf.len() as u64 + data.len() as u64 > limit
        {
            let path = std::env::temp_dir().join(format!("sea-gcp-spool-{}", uuid::Uuid::new_v4()));
            let mut file = tokio::fs::File::create(&path).await?;
            file.write_all(buf).await?;
            self.spool = Spool::Disk { file, path };
        }
        match &mut self.spool {
            Spool::Memory(buf) => buf.extend_from_slice(data),
            Spool::Disk { file, .. } => file.write_all(data).await?,
        }
        self.written += data.len() as u64;
        Ok(())
    }

    /// Upload what was written and return the object's metadata.
    pub async fn finish(self, opts: PutOptions) -> Result<ObjectMeta> {
        match self.spool {
            Spool::Memory(buf) => self.store.put(&self.name, PutPayload::from(buf), opts).await,
            Spool::Disk { mut file, path } => {
                file.flush().await?;
                drop(file);
                let result = self.store.put(&self.name, PutPayload::File(path.clone()), opts).await;
                let _ = tokio::fs::remove_file(&path).await;
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::storage::memory::MemoryStore;

    #[tokio::test]
    async fn spools_past_max_memory_size() {
        let mut config = StoreConfig::memory();
        config.max_memory_size = 1000;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new("media", config).unwrap());
        let mut w = FileWriter::new(store.clone(), "big.bin");
        w.write_all(&[1u8; 600]).await.unwrap();
        assert!(!w.is_spooled());
        w.write_all(&[2u8; 600]).await.unwrap();
        assert!(w.is_spooled(), "past 1000 bytes the writer spools to disk");
        let meta = w.finish(PutOptions::default()).await.unwrap();
        assert_eq!(meta.size, 1200);
        let bytes = store.get_bytes("big.bin").await.unwrap();
        assert_eq!((&bytes[..600], &bytes[600..]), (&[1u8; 600][..], &[2u8; 600][..]));

        let unlimited: Arc<dyn Store> = Arc::new(MemoryStore::default_for("media"));
        let mut w = FileWriter::new(unlimited, "small.bin");
        w.write_all(&[0u8; 5000]).await.unwrap();
        assert!(!w.is_spooled(), "max_memory_size = 0 never spools");
    }
}
