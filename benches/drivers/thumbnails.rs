//! Thumbnail driver for `scripts/bench-images.py`: makes `Variant::limit("thumb", 400, 400)` (JPEG,
//! quality 80) of every file given, one after the other on one thread, and writes each to OUT_DIR as
//! `<stem>.jpg`. Prints one line per file: name, width, height, bytes.
//!
//! `cargo run --release --example thumbnails --features images -- OUT_DIR FILE...`

use std::path::Path;

use sea_gcp::images::{Variant, render};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: thumbnails OUT_DIR FILE...");
        return;
    };
    let thumb = Variant::limit("thumb", 400, 400).quality(80);
    for file in args {
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let made = render(&bytes, &thumb, 200_000_000).unwrap_or_else(|e| panic!("{file}: {e}"));
        let stem = Path::new(&file).file_stem().unwrap().to_string_lossy().into_owned();
        std::fs::write(Path::new(&out).join(format!("{stem}.jpg")), &made.bytes).unwrap();
        println!("{stem} {} {} {}", made.width, made.height, made.bytes.len());
    }
}
