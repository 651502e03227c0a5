//! `sea-gcp download NAME FILE --store media`: one object to a file, in parallel slices when it is large
//! (`gcloud storage cp gs://BUCKET/NAME FILE`). The work is
//! [`sea_gcp::storage::download_to_file`]'s.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::args::load_settings;
use sea_gcp::storage::{DownloadOptions, download_to_file};
use sea_gcp::{Error, Result};

/// Download an object to FILE (or into FILE if it is a directory). The file appears only once every byte
/// arrived and the object's CRC32C matched; a failed download leaves what was at FILE as it was.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The object's name in the store.
    pub name: String,
    /// The file to write (created or replaced), or a directory to write NAME's last segment into.
    pub file: PathBuf,
    /// The store to read from (as named in the settings).
    #[arg(long, default_value = "media")]
    pub store: String,
    /// Settings file naming the stores (see sync-static --help).
    #[arg(long, env = "SEA_GCP_SETTINGS")]
    pub settings: Option<PathBuf>,
    /// Download objects of at least this size in slices (bytes, or with K, M, G: binary units).
    #[arg(long, value_name = "SIZE", default_value = "150M", value_parser = parse_size)]
    pub sliced_threshold: u64,
    /// Most slices downloaded at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub max_slices: usize,
    /// Smallest slice (fewer slices for smaller objects).
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    pub min_slice_size: u64,
    /// Download this generation instead of the live one.
    #[arg(long)]
    pub generation: Option<i64>,
}

/// `1048576`, `512K`, `150M`, `2G` (also `KiB`, `MiB`, `GiB`): bytes, in binary units as `gcloud storage`.
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a size: give bytes, or e.g. 150M"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => return Err(format!("unknown size unit `{other}`: use K, M or G")),
    };
    number.checked_mul(1u64 << shift).ok_or_else(|| format!("`{text}` is too large"))
}

impl DownloadArgs {
    /// Run the download and print what was written.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let settings = load_settings(self.settings.as_ref())?;
        let store = settings.open(&self.store).await?;
        let path = if self.file.is_dir() {
            let leaf = self.name.rsplit('/').next().filter(|l| !l.is_empty()).ok_or_else(|| {
                Error::InvalidArgument(format!("`{}` has no file name to write into a directory", self.name))
            })?;
            self.file.join(leaf)
        } else {
            self.file.clone()
        };
        let mut opts = DownloadOptions::default()
            .with_sliced_threshold(self.sliced_threshold)
            .with_max_slices(self.max_slices)
            .with_min_slice_size(self.min_slice_size);
        if let Some(generation) = self.generation {
            opts = opts.with_generation(generation);
        }
        let name = self.name.clone();
        let target = path.clone();
        // In a task, a runtime worker polls the download next to its connections; awaited here, on the
        // main thread, every chunk received would also wake this thread.
        let got = tokio::spawn(async move { download_to_file(&*store, &name, &target, &opts).await })
            .await
            .map_err(|e| Error::Io(std::io::Error::other(format!("the download task failed: {e}"))))??;
        let check = if got.crc32c_checked { "CRC32C checked" } else { "no CRC32C to check" };
        writeln!(
            out,
            "downloaded {} (generation {}, {} bytes) to {} in {} slice(s), {check}",
            self.name,
            got.meta.generation,
            got.bytes,
            path.display(),
            got.slices
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_are_read_in_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("150M"), Ok(150 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("1.5M").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("M").unwrap_err().contains("not a size"));
        assert!(parse_size("99999999999999G").unwrap_err().contains("too large"));
    }
}
