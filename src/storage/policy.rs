//! Store-wide write and read policies shared by every backend, so that gzip, object parameters and
//! content-type guessing behave identically on GCS, the local store and the memory store.

use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures_util::StreamExt;
use md5::Digest;

use super::{ByteStream, CopyOptions, ObjectMeta, ObjectParameters, Preconditions, PutOptions};
use crate::config::StoreConfig;

/// The parameters a write actually carries after merging the store's settings with the call's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteParams {
    /// Merged object parameters; `content_type` is always set, `content_encoding` is `gzip` when
    /// [`WriteParams::gzip`] is true.
    pub params: ObjectParameters,
    /// Whether the payload must be gzip-compressed before sending.
    pub gzip: bool,
}

/// Guess a content type from a name (`application/octet-stream` when unknown).
pub(crate) fn guess_content_type(name: &str) -> String {
    mime_guess::from_path(name).first_raw().unwrap_or("application/octet-stream").to_string()
}

/// Merge the store's `object_parameters` and `default_acl` with the call's, guess the content type,
/// and decide gzip (django-gcp: only when `gzip` is on and the content type is in
/// `gzip_content_types`, and never over an explicit different `content_encoding`).
pub(crate) fn prepare_write(config: &StoreConfig, name: &str, opts: &PutOptions) -> WriteParams {
    let mut params = config.object_parameters.merged_with(&opts.params);
    if params.acl.is_none() {
        params.acl = config.default_acl.clone();
    }
    let content_type = params.content_type.clone().unwrap_or_else(|| guess_content_type(name));
    params.content_type = Some(content_type.clone());
    let base_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let wants_gzip = opts.gzip.unwrap_or(config.gzip)
        && config.gzip_content_types.iter().any(|t| t.eq_ignore_ascii_case(&base_type))
        && params.content_encoding.as_deref().is_none_or(|e| e.eq_ignore_ascii_case("gzip"));
    if wants_gzip {
        params.content_encoding = Some("gzip".into());
    }
    WriteParams { params, gzip: wants_gzip }
}

/// Gzip a stream chunk by chunk (bounded memory).
pub(crate) fn gzip_stream(input: ByteStream) -> ByteStream {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    futures_util::stream::unfold((input, Some(encoder)), |(mut input, encoder)| async move {
        let mut encoder = encoder?;
        loop {
            match input.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = encoder.write_all(&chunk) {
                        return Some((Err(e), (input, None)));
                    }
                    let out = std::mem::take(encoder.get_mut());
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), (input, Some(encoder))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), (input, None))),
                None => {
                    return match encoder.finish() {
                        Ok(out) => Some((Ok(Bytes::from(out)), (input, None))),
                        Err(e) => Some((Err(e), (input, None))),
                    };
                }
            }
        }
    })
    .boxed()
}

/// Undo gzip on a stream chunk by chunk.
pub(crate) fn gunzip_stream(input: ByteStream) -> ByteStream {
    let decoder = flate2::write::GzDecoder::new(Vec::new());
    futures_util::stream::unfold((input, Some(decoder)), |(mut input, decoder)| async move {
        let mut decoder = decoder?;
        loop {
            match input.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = decoder.write_all(&chunk) {
                        return Some((Err(e), (input, None)));
                    }
                    let out = std::mem::take(decoder.get_mut());
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), (input, Some(decoder))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), (input, None))),
                None => {
                    return match decoder.finish() {
                        Ok(out) if out.is_empty() => None,
                        Ok(out) => Some((Ok(Bytes::from(out)), (input, None))),
                        Err(e) => Some((Err(e), (input, None))),
                    };
                }
            }
        }
    })
    .boxed()
}

/// True when a read of an object with this encoding should be gunzipped for the caller.
pub(crate) fn should_gunzip(content_encoding: Option<&str>, raw: bool, ranged: bool) -> bool {
    !raw && !ranged && content_encoding.is_some_and(|e| e.eq_ignore_ascii_case("gzip"))
}

/// Incremental CRC32C + MD5, formatted like GCS (base64; CRC32C big-endian).
#[derive(Default, Clone)]
pub(crate) struct Checksums {
    crc: u32,
    md5: md5::Md5,
    len: u64,
}

impl Checksums {
    /// Feed bytes.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.crc = crc32c::crc32c_append(self.crc, data);
        self.md5.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes fed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// `(crc32c, md5)` in GCS's base64 form.
    pub(crate) fn finish(self) -> (String, String) {
        (B64.encode(self.crc.to_be_bytes()), B64.encode(self.md5.finalize()))
    }

    /// Checksums of a buffer.
    pub(crate) fn of(data: &[u8]) -> (String, String) {
        let mut c = Checksums::default();
        c.update(data);
        c.finish()
    }
}

static LAST_GENERATION: AtomicI64 = AtomicI64::new(0);

/// A new generation number for emulated stores: microseconds since the epoch like GCS, strictly
/// increasing within the process.
pub(crate) fn next_generation() -> i64 {
    let now = chrono::Utc::now().timestamp_micros();
    let mut last = LAST_GENERATION.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_GENERATION.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Check a copy's source conditions (`ifSourceGenerationMatch`, `ifSourceMetagenerationMatch`) against
/// the source's live `(generation, metageneration)`; the message names the source parameters.
pub(crate) fn check_copy_source(opts: &CopyOptions, live: Option<(i64, i64)>) -> Result<(), String> {
    let conditions = Preconditions {
        if_generation_match: opts.if_source_generation_match,
        if_metageneration_match: opts.if_source_metageneration_match,
        ..Default::default()
    };
    conditions.check(live).map_err(|m| format!("source: {}", m.replace("ifG", "ifSourceG").replace("ifM", "ifSourceM")))
}

/// The metadata of a fresh copy of `source` named `name`, as GCS makes it: a new generation,
/// metageneration 1, new times, and `params` (when given) replacing the fields it sets with custom
/// metadata merged key by key over the source's.
pub(crate) fn copied_meta(source: &ObjectMeta, name: String, params: Option<&ObjectParameters>) -> ObjectMeta {
    let mut meta = source.clone();
    if let Some(params) = params {
        meta.metadata.extend(params.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        macro_rules! over {
            ($($f:ident),*) => { $( if params.$f.is_some() { meta.$f = params.$f.clone(); } )* };
        }
        over!(content_type, content_encoding, content_language, cache_control, content_disposition, storage_class);
        if params.custom_time.is_some() {
            meta.custom_time = params.custom_time;
        }
    }
    let now = chrono::Utc::now();
    meta.name = name;
    meta.generation = next_generation();
    meta.metageneration = 1;
    meta.created = Some(now);
    meta.updated = Some(now);
    meta
}

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt;

    use super::*;

    #[test]
    fn merges_and_guesses() {
        let mut config = StoreConfig::memory();
        config.gzip = true;
        config.default_acl = Some("projectPrivate".into());
        config.object_parameters.metadata.insert("store".into(), "1".into());
        config.object_parameters.cache_control = Some("public".into());
        let mut opts = PutOptions::default();
        opts.params.metadata.insert("call".into(), "2".into());
        let w = prepare_write(&config, "site.css", &opts);
        assert!(w.gzip);
        assert_eq!(w.params.content_type.as_deref(), Some("text/css"));
        assert_eq!(w.params.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(w.params.acl.as_deref(), Some("projectPrivate"));
        assert_eq!(w.params.cache_control.as_deref(), Some("public"));
        assert_eq!(w.params.metadata.len(), 2, "store-level metadata is kept");
        let w = prepare_write(&config, "photo.png", &opts);
        assert!(!w.gzip);
        assert_eq!(w.params.content_type.as_deref(), Some("image/png"));
        let w = prepare_write(&config, "noext", &PutOptions::default());
        assert_eq!(w.params.content_type.as_deref(), Some("application/octet-stream"));
    }

    #[tokio::test]
    async fn gzip_round_trip() {
        let chunks: Vec<std::io::Result<Bytes>> =
            (0..50).map(|i| Ok(Bytes::from(format!("line {i} body {{ color: red }}\n").repeat(100)))).collect();
        let original: Vec<u8> = chunks.iter().flat_map(|c| c.as_ref().unwrap().to_vec()).collect();
        let zipped: Vec<Bytes> = gzip_stream(futures_util::stream::iter(chunks).boxed()).try_collect().await.unwrap();
        let zipped_len: usize = zipped.iter().map(|b| b.len()).sum();
        assert!(zipped_len < original.len() / 10);
        let back: Vec<Bytes> =
            gunzip_stream(futures_util::stream::iter(zipped.into_iter().map(Ok)).boxed()).try_collect().await.unwrap();
        assert_eq!(back.concat(), original);
    }

    #[test]
    fn checksums_match_gcs_format() {
        // Values GCS reports for "hello world".
        let (crc, md5) = Checksums::of(b"hello world");
        assert_eq!(crc, "yZRlqg==");
        assert_eq!(md5, "XrY7u+Ae7tCTyyK7j1rNww==");
        assert!(next_generation() < next_generation());
    }
}
