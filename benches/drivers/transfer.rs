//! A minimal transfer client used by `scripts/bench-transfer.py` to measure sea-gcp against curl and
//! Python's google-cloud-storage on the emulator. Not an API example; see `examples/app.rs`.
//!
//! ```text
//! transfer up   BUCKET NAME FILE [CHUNK_BYTES]     # one object; resumable when CHUNK_BYTES is given
//! transfer down BUCKET NAME FILE                   # streamed to FILE
//! transfer download BUCKET NAME FILE [SLICES]      # download_to_file (default options; SLICES caps them,
//!                                                  #   1 = one stream, N > 1 = N slices at any size),
//!                                                  #   in a spawned task, as a request handler runs
//! transfer download-main BUCKET NAME FILE [SLICES] # the same, awaited by the main future (`block_on`)
//! transfer up-many   BUCKET PREFIX FILE COUNT      # COUNT objects PREFIX0..N from FILE
//! transfer down-many BUCKET PREFIX COUNT           # read them back, discarding the bytes
//! ```
//! The API endpoint comes from `STORAGE_EMULATOR_HOST`.

use std::sync::Arc;

use futures::TryStreamExt;
use sea_gcp::StoreConfig;
use sea_gcp::storage::{DownloadOptions, download_to_file};
use sea_gcp::storage::{GetOptions, PutOptions, PutPayload, Store, open};
use tokio::io::AsyncWriteExt;

async fn store(bucket: &str, chunk: Option<u64>) -> Arc<dyn Store> {
    let mut config = StoreConfig::gcs(bucket);
    config.blob_chunk_size = chunk;
    open("bench", config).await.expect("store")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| panic!("missing argument {i}; see the file's docs"));
    match arg(0).as_str() {
        "up" => {
            let chunk = args.get(4).map(|c| c.parse().expect("chunk bytes"));
            let s = store(&arg(1), chunk).await;
            s.put(&arg(2), PutPayload::File(arg(3).into()), PutOptions::default()).await.expect("put");
        }
        "down" => {
            let s = store(&arg(1), None).await;
            let got = s.get(&arg(2), GetOptions::default()).await.expect("get");
            let mut out =
                tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(arg(3)).await.expect("create"));
            let mut body = got.body;
            while let Some(chunk) = body.try_next().await.expect("read") {
                out.write_all(&chunk).await.expect("write");
            }
            out.flush().await.expect("flush");
        }
        "download" | "download-main" => {
            let s = store(&arg(1), None).await;
            let opts = match args.get(4).map(|n| n.parse::<usize>().expect("slices")) {
                None => DownloadOptions::default(),
                Some(1) => DownloadOptions::default().single_stream(),
                Some(n) => DownloadOptions::default().with_sliced_threshold(1).with_max_slices(n),
            };
            let (name, file) = (arg(2), arg(3));
            // A runtime worker polls a spawned task, as it does a request handler; the main future of
            // `#[tokio::main]` runs on the main thread instead, so every chunk there wakes another thread.
            let got = if arg(0) == "download" {
                tokio::spawn(async move { download_to_file(&*s, &name, file, &opts).await }).await.expect("task")
            } else {
                download_to_file(&*s, &name, file, &opts).await
            }
            .expect("download");
            eprintln!("{} bytes in {} slice(s), crc32c checked: {}", got.bytes, got.slices, got.crc32c_checked);
        }
        "up-many" => {
            let s = store(&arg(1), None).await;
            let data = bytes::Bytes::from(std::fs::read(arg(3)).expect("read file"));
            let count: usize = arg(4).parse().expect("count");
            for i in 0..count {
                s.put(&format!("{}{i}", arg(2)), PutPayload::Bytes(data.clone()), PutOptions::default())
                    .await
                    .expect("put");
            }
        }
        "down-many" => {
            let s = store(&arg(1), None).await;
            let count: usize = arg(3).parse().expect("count");
            for i in 0..count {
                let got = s.get(&format!("{}{i}", arg(2)), GetOptions::default()).await.expect("get");
                let mut body = got.body;
                while body.try_next().await.expect("read").is_some() {}
            }
        }
        other => panic!("unknown command {other}; see the file's docs"),
    }
}
