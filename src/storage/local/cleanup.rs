//! [`LocalStore::remove_stale_temp_files`]: remove what abandoned writes left under `tmp/`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::LocalStore;
use crate::Result;

impl LocalStore {
    /// Remove the files under `tmp/` (interrupted writes, and the partial files of abandoned resumable
    /// sessions in `tmp/sessions/`) last modified more than `older_than` ago. With `dry_run` nothing is
    /// removed. Returns the files (relative to the store's root), sorted.
    ///
    /// Every chunk of a resumable session touches its file, so a session is only removed after
    /// `older_than` without a chunk; its upload URL then starts again from byte 0, as an expired GCS
    /// session would.
    pub(crate) async fn remove_stale_temp_files(&self, older_than: Duration, dry_run: bool) -> Result<Vec<PathBuf>> {
        let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        let tmp = self.root.join("tmp");
        let mut stale = Vec::new();
        let mut stack = vec![tmp];
        while let Some(dir) = stack.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(|e| self.io(e))? {
                let file_type = entry.file_type().await.map_err(|e| self.io(e))?;
                if file_type.is_dir() {
                    stack.push(entry.path());
                    continue;
                }
                // A file may vanish between the listing and this call (a write finishing): skip it.
                let Ok(metadata) = entry.metadata().await else { continue };
                if metadata.modified().map_err(|e| self.io(e))? > cutoff {
                    continue;
                }
                let path = entry.path();
                if !dry_run {
                    match tokio::fs::remove_file(&path).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(self.io(e)),
                    }
                }
                stale.push(path.strip_prefix(&self.root).map(PathBuf::from).unwrap_or(path));
            }
        }
        stale.sort();
        Ok(stale)
    }
}
