//! The behaviour every [`Store`] must show, as reusable async checks (Shrine's storage linter,
//! object_store's `integration.rs`).
//!
//! `tests/store_behaviour.rs` runs [`run_all`] against the memory store, the local store and GCS (the
//! emulator, on a bucket from [`create_emulator_bucket`]). A third-party `Store` can run it on itself too:
//!
//! ```no_run
//! # async fn demo() {
//! use sea_gcp::storage::open;
//! use sea_gcp::testing::conformance;
//! use sea_gcp::StoreConfig;
//! conformance::run_all(|config: StoreConfig| async move { open("media", config).await.unwrap() }).await;
//! # }
//! ```
//!
//! The checks panic (with a message naming the check) on the first deviation: they are meant for tests.
//! Each check asks the factory for a fresh store built from a template [`StoreConfig`] holding the
//! options under test (gzip, location, file_overwrite...); the factory fills in the backend's own fields
//! and must isolate stores from each other (a fresh directory, or a unique location prefix on a shared
//! bucket — prepend it to the template's `location`).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use crate::Error;
use crate::config::StoreConfig;
use crate::storage::policy::Checksums;
use crate::storage::{
    ByteRange, CopyOptions, DeleteOptions, GetOptions, ListOptions, MetadataPatch, ObjectParameters, Preconditions,
    PutOptions, PutPayload, Store,
};

fn template() -> StoreConfig {
    StoreConfig::default()
}

/// What a backend under test enforces. Real GCS, the memory store and the local store enforce
/// everything (`Capabilities::FULL`); an emulator may not, and then the checks it cannot pass are
/// skipped — each skip names the gap — while the request our client sends for them is checked elsewhere
/// (`tests/gcs_requests.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `ifGenerationNotMatch` and `ifMetageneration(Not)Match` are enforced on uploads
    /// (`ifGenerationMatch`, including create-only, always must be).
    pub upload_preconditions_beyond_generation: bool,
    /// Preconditions are enforced on delete and on copy (source and destination).
    pub delete_and_copy_preconditions: bool,
    /// Patches honour `ifMetagenerationMatch`, bump the metageneration and remove keys set to null.
    pub faithful_patch: bool,
}

impl Capabilities {
    /// Everything GCS enforces.
    pub(crate) const FULL: Capabilities = Capabilities {
        upload_preconditions_beyond_generation: true,
        delete_and_copy_preconditions: true,
        faithful_patch: true,
    };

    /// fake-gcs-server 1.x (the emulator in `scripts/test.sh`): it ignores `ifGenerationNotMatch` and
    /// metageneration preconditions on uploads, every precondition on delete and copy, and patches
    /// neither check nor bump the metageneration and store a null metadata value as "".
    pub const FAKE_GCS_SERVER: Capabilities = Capabilities {
        upload_preconditions_beyond_generation: false,
        delete_and_copy_preconditions: false,
        faithful_patch: false,
    };
}

fn skipped(check: &str, gap: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED (backend gap): {check}: {gap}");
}

/// Run every check, each on a fresh store from `factory`, for a backend that enforces everything.
pub async fn run_all<F, Fut>(factory: F)
where
    F: Fn(StoreConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    run_all_with(Capabilities::FULL, factory).await
}

/// Run every check, skipping the parts `caps` says the backend cannot pass.
pub async fn run_all_with<F, Fut>(caps: Capabilities, factory: F)
where
    F: Fn(StoreConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    put_get_head(factory(template()).await).await;
    payload_kinds(factory(template()).await).await;
    ranges(factory(template()).await).await;
    preconditions_on_put(factory(template()).await, caps).await;
    delete_semantics(factory(template()).await, caps).await;
    copy_semantics(factory(template()).await, caps).await;
    list_semantics(factory(template()).await).await;
    patch_semantics(factory(template()).await, caps).await;
    invalid_names(factory(template()).await).await;
    unusual_names(factory(template()).await).await;
    coexisting_names(factory(template()).await).await;
    generations(factory(template()).await).await;
    let mut gz = template();
    gz.gzip = true;
    gzip(factory(gz).await).await;
    let mut params = template();
    params.object_parameters.cache_control = Some("public, max-age=60".into());
    params.object_parameters.metadata.insert("from-store".into(), "yes".into());
    object_parameters(factory(params).await).await;
    let mut located = template();
    located.location = "nested/location".into();
    location(factory(located).await).await;
    let mut no_overwrite = template();
    no_overwrite.file_overwrite = false;
    save_without_overwrite(factory(no_overwrite).await).await;
    let mut chunked = template();
    chunked.blob_chunk_size = Some(256 * 1024);
    large_streams(factory(chunked).await).await;
    downloads_to_file(factory(template()).await).await;
}

/// Create `bucket` on a GCS emulator at `host` (`http://127.0.0.1:PORT`; JSON API `buckets.insert`),
/// with object versioning on or off, for running these checks (or any test) against it. Panics, naming
/// the bucket and the emulator's answer, when the emulator refuses or cannot be reached.
pub async fn create_emulator_bucket(host: &str, bucket: &str, versioning: bool) {
    let url = format!("{}/storage/v1/b?project=test", host.trim_end_matches('/'));
    let body = serde_json::json!({ "name": bucket, "versioning": { "enabled": versioning } });
    let resp = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating bucket {bucket}: the emulator at {host} is unreachable: {e}"));
    let status = resp.status();
    assert!(
        status.is_success(),
        "creating bucket {bucket} on {host}: {status} {}",
        resp.text().await.unwrap_or_default()
    );
}

fn chunks(data: &[u8], size: usize) -> crate::storage::ByteStream {
    let parts: Vec<std::io::Result<Bytes>> = data.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures_util::stream::iter(parts).boxed()
}

/// put → head → get agree; metadata is GCS-shaped; NotFound for a missing object.
pub(crate) async fn put_get_head(store: Arc<dyn Store>) {
    let data = b"hello world";
    let meta = store.put("greeting.txt", PutPayload::from(&data[..]), PutOptions::default()).await.unwrap();
    let (crc, md5) = Checksums::of(data);
    assert_eq!(meta.name, "greeting.txt");
    assert_eq!(meta.size, 11);
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"), "content type guessed from the name");
    assert_eq!(meta.crc32c.as_deref(), Some(crc.as_str()));
    assert_eq!(meta.md5.as_deref(), Some(md5.as_str()));
    assert!(meta.generation > 0, "generation set");
    assert_eq!(meta.metageneration, 1);
    assert!(meta.created.is_some() && meta.updated.is_some());
    let head = store.head("greeting.txt", GetOptions::default()).await.unwrap();
    assert_eq!((head.generation, head.size, head.crc32c.clone()), (meta.generation, 11, meta.crc32c.clone()));
    let got = store.get("greeting.txt", GetOptions::default()).await.unwrap();
    assert_eq!(got.meta.generation, meta.generation);
    assert_eq!(got.bytes().await.unwrap(), &data[..]);
    assert!(store.exists("greeting.txt").await.unwrap());
    assert!(!store.exists("missing.txt").await.unwrap());
    assert!(store.head("missing.txt", GetOptions::default()).await.unwrap_err().is_not_found());
    assert!(store.get("missing.txt", GetOptions::default()).await.unwrap_err().is_not_found());
    // Reading a generation that is not the live one (no versioning): NotFound.
    let stale = store.get("greeting.txt", GetOptions::default().with_generation(meta.generation - 1)).await;
    assert!(stale.unwrap_err().is_not_found(), "a stale generation is not found");
    let pinned = store.get("greeting.txt", GetOptions::default().with_generation(meta.generation)).await.unwrap();
    assert_eq!(pinned.bytes().await.unwrap(), &data[..]);
    // Overwrite: new generation.
    let again = store.put("greeting.txt", PutPayload::from("bye"), PutOptions::default()).await.unwrap();
    assert!(again.generation > meta.generation);
    assert_eq!(store.get_bytes("greeting.txt").await.unwrap(), "bye");
    // Explicit content type wins; empty objects work.
    let empty = store
        .put("empty.bin", PutPayload::from(Vec::new()), PutOptions::default().with_content_type("application/x-empty"))
        .await
        .unwrap();
    assert_eq!((empty.size, empty.content_type.as_deref()), (0, Some("application/x-empty")));
    assert!(store.get_bytes("empty.bin").await.unwrap().is_empty());
}

/// Bytes, streams (known and unknown size) and files all store the same bytes.
pub(crate) async fn payload_kinds(store: Arc<dyn Store>) {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let dir = std::env::temp_dir().join(format!("sea-gcp-conformance-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("payload.bin");
    std::fs::write(&file, &data).unwrap();
    let payloads = [
        ("bytes.bin", PutPayload::from(data.clone())),
        ("stream-known.bin", PutPayload::stream(chunks(&data, 7_000), Some(data.len() as u64))),
        ("stream-unknown.bin", PutPayload::stream(chunks(&data, 65_536), None)),
        ("file.bin", PutPayload::File(file.clone())),
    ];
    let (crc, _) = Checksums::of(&data);
    for (name, payload) in payloads {
        let meta = store.put(name, payload, PutOptions::default()).await.unwrap();
        assert_eq!(meta.size, data.len() as u64, "{name}: size");
        assert_eq!(meta.crc32c.as_deref(), Some(crc.as_str()), "{name}: crc32c");
        assert_eq!(store.get_bytes(name).await.unwrap(), &data[..], "{name}: bytes");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Bounded, open-ended and suffix ranges; unsatisfiable ranges are an error.
pub async fn ranges(store: Arc<dyn Store>) {
    store.put("digits.txt", PutPayload::from("0123456789"), PutOptions::default()).await.unwrap();
    for (range, want) in [
        (ByteRange::Bounded { start: 2, end: 5 }, "234"),
        (ByteRange::Bounded { start: 8, end: 100 }, "89"),
        (ByteRange::From(7), "789"),
        (ByteRange::Suffix(3), "789"),
        (ByteRange::Suffix(30), "0123456789"),
    ] {
        let got = store.get("digits.txt", GetOptions::default().with_range(range)).await.unwrap();
        assert_eq!(got.bytes().await.unwrap(), want, "range {range}");
    }
    let err = store.get("digits.txt", GetOptions::default().with_range(ByteRange::From(10))).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRange { .. }), "range past the end: {err}");
}

/// ifGenerationMatch (incl. 0 = create-only), ifGenerationNotMatch and ifMetagenerationMatch on writes.
pub(crate) async fn preconditions_on_put(store: Arc<dyn Store>, caps: Capabilities) {
    let first = store.put("p.txt", PutPayload::from("one"), PutOptions::create_only()).await.unwrap();
    let err = store.put("p.txt", PutPayload::from("two"), PutOptions::create_only()).await.unwrap_err();
    assert!(err.is_precondition(), "create-only over an existing object: {err}");
    assert_eq!(store.get_bytes("p.txt").await.unwrap(), "one", "a failed create-only write changes nothing");
    let wrong = PutOptions::default().with_preconditions(Preconditions::generation(first.generation + 1));
    assert!(store.put("p.txt", PutPayload::from("two"), wrong).await.unwrap_err().is_precondition());
    let right = PutOptions::default().with_preconditions(Preconditions::generation(first.generation));
    let second = store.put("p.txt", PutPayload::from("two"), right).await.unwrap();
    assert!(second.generation > first.generation);
    let stale = PutOptions::default().with_preconditions(Preconditions::generation(first.generation));
    assert!(store.put("p.txt", PutPayload::from("three"), stale).await.unwrap_err().is_precondition());
    if caps.upload_preconditions_beyond_generation {
        let not = Preconditions { if_generation_not_match: Some(second.generation), ..Default::default() };
        assert!(
            store
                .put("p.txt", PutPayload::from("x"), PutOptions::default().with_preconditions(not))
                .await
                .unwrap_err()
                .is_precondition()
        );
        let meta_wrong = Preconditions { if_metageneration_match: Some(2), ..Default::default() };
        assert!(
            store
                .put("p.txt", PutPayload::from("x"), PutOptions::default().with_preconditions(meta_wrong))
                .await
                .unwrap_err()
                .is_precondition()
        );
    } else {
        skipped("preconditions_on_put", "ifGenerationNotMatch / ifMetagenerationMatch on uploads are not enforced");
    }
    // Updating a missing object with ifGenerationMatch != 0 fails too.
    let missing = PutOptions::default().with_preconditions(Preconditions::generation(12345));
    assert!(store.put("nope.txt", PutPayload::from("x"), missing).await.unwrap_err().is_precondition());
    assert!(!store.exists("nope.txt").await.unwrap());
    assert_eq!(store.get_bytes("p.txt").await.unwrap(), "two");
}

/// Delete with and without a generation precondition; NotFound when missing.
pub(crate) async fn delete_semantics(store: Arc<dyn Store>, caps: Capabilities) {
    let meta = store.put("d.txt", PutPayload::from("x"), PutOptions::default()).await.unwrap();
    if caps.delete_and_copy_preconditions {
        let err = store.delete("d.txt", DeleteOptions::if_generation(meta.generation + 1)).await.unwrap_err();
        assert!(err.is_precondition(), "delete with a stale generation: {err}");
        assert!(store.exists("d.txt").await.unwrap(), "a refused delete keeps the object");
    } else {
        skipped("delete_semantics", "ifGenerationMatch on delete is not enforced");
    }
    store.delete("d.txt", DeleteOptions::if_generation(meta.generation)).await.unwrap();
    assert!(!store.exists("d.txt").await.unwrap());
    assert!(store.delete("d.txt", DeleteOptions::default()).await.unwrap_err().is_not_found());
    store.put("e.txt", PutPayload::from("x"), PutOptions::default()).await.unwrap();
    store.delete("e.txt", DeleteOptions::default()).await.unwrap();
    assert!(!store.exists("e.txt").await.unwrap());
}

/// Copy: source generation guard, destination create-only guard, metadata kept or replaced.
pub(crate) async fn copy_semantics(store: Arc<dyn Store>, caps: Capabilities) {
    let mut opts = PutOptions::default().with_content_type("text/plain");
    opts.params.metadata.insert("a".into(), "1".into());
    let src = store.put("src.txt", PutPayload::from("payload"), opts).await.unwrap();
    if caps.delete_and_copy_preconditions {
        let stale = CopyOptions { if_source_generation_match: Some(src.generation + 1), ..Default::default() };
        assert!(store.copy("src.txt", "dst.txt", stale).await.unwrap_err().is_precondition());
        assert!(!store.exists("dst.txt").await.unwrap(), "a refused copy creates nothing");
    }
    let guarded = CopyOptions {
        if_source_generation_match: Some(src.generation),
        destination: Preconditions::create_only(),
        ..Default::default()
    };
    let dst = store.copy("src.txt", "dst.txt", guarded.clone()).await.unwrap();
    assert_eq!(dst.name, "dst.txt");
    assert_eq!((dst.size, dst.crc32c.clone(), dst.md5.clone()), (src.size, src.crc32c.clone(), src.md5.clone()));
    assert_ne!(dst.generation, src.generation);
    assert_eq!(dst.metageneration, 1);
    assert_eq!(dst.metadata.get("a").map(String::as_str), Some("1"), "metadata copied");
    assert_eq!(store.get_bytes("dst.txt").await.unwrap(), "payload");
    if caps.delete_and_copy_preconditions {
        let again = store.copy("src.txt", "dst.txt", guarded).await.unwrap_err();
        assert!(again.is_precondition(), "create-only copy over an existing destination: {again}");
        assert_eq!(store.head("dst.txt", GetOptions::default()).await.unwrap().generation, dst.generation);
    } else {
        skipped("copy_semantics", "ifSourceGenerationMatch / destination ifGenerationMatch on copy are not enforced");
    }
    let mut params = ObjectParameters { content_type: Some("application/pdf".into()), ..Default::default() };
    params.metadata.insert("b".into(), "2".into());
    let rewritten =
        store.copy("src.txt", "dst2.txt", CopyOptions { params: Some(params), ..Default::default() }).await.unwrap();
    assert_eq!(rewritten.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(rewritten.metadata.get("b").map(String::as_str), Some("2"));
    let head = store.head("dst2.txt", GetOptions::default()).await.unwrap();
    assert_eq!(head.content_type.as_deref(), Some("application/pdf"), "copy response matches a later head");
    assert!(store.copy("missing.txt", "x.txt", CopyOptions::default()).await.unwrap_err().is_not_found());
}

/// Prefix, delimiter and pagination.
pub(crate) async fn list_semantics(store: Arc<dyn Store>) {
    for name in ["a/1.txt", "a/2.txt", "a/b/3.txt", "a/b/4.txt", "c.txt", "d/5.txt"] {
        store.put(name, PutPayload::from("x"), PutOptions::default()).await.unwrap();
    }
    let names = |page: &crate::storage::ListPage| page.objects.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    let all = store.list(ListOptions::default()).await.unwrap();
    assert_eq!(names(&all), ["a/1.txt", "a/2.txt", "a/b/3.txt", "a/b/4.txt", "c.txt", "d/5.txt"]);
    let under_a = store.list(ListOptions::prefix("a/")).await.unwrap();
    assert_eq!(names(&under_a).len(), 4);
    let dirs = store.list(ListOptions::prefix("a/").with_delimiter()).await.unwrap();
    assert_eq!(names(&dirs), ["a/1.txt", "a/2.txt"]);
    assert_eq!(dirs.prefixes, ["a/b/"]);
    let top = store.list(ListOptions::default().with_delimiter()).await.unwrap();
    assert_eq!(names(&top), ["c.txt"]);
    assert_eq!(top.prefixes, ["a/", "d/"]);
    // Pages of two, following tokens, visit everything once in order.
    let mut seen = Vec::new();
    let mut opts = ListOptions { max_results: Some(2), ..Default::default() };
    loop {
        let page = store.list(opts.clone()).await.unwrap();
        assert!(page.objects.len() <= 2);
        seen.extend(names(&page));
        match page.next_page_token {
            Some(t) => opts.page_token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, names(&all));
    let streamed: Vec<_> = store.list_all(Some("a/b/".into())).try_collect().await.unwrap();
    assert_eq!(streamed.len(), 2);
    assert!(store.list(ListOptions::prefix("zzz/")).await.unwrap().objects.is_empty());
    // Offsets: start inclusive, end exclusive, combined with a prefix and with paging.
    let range = |start: Option<&str>, end: Option<&str>| ListOptions {
        start_offset: start.map(String::from),
        end_offset: end.map(String::from),
        ..Default::default()
    };
    let page = store.list(range(Some("a/2.txt"), Some("c.txt"))).await.unwrap();
    assert_eq!(names(&page), ["a/2.txt", "a/b/3.txt", "a/b/4.txt"]);
    let page = store.list(range(Some("a/b/"), None)).await.unwrap();
    assert_eq!(names(&page), ["a/b/3.txt", "a/b/4.txt", "c.txt", "d/5.txt"]);
    let page = store.list(range(None, Some("a/b"))).await.unwrap();
    assert_eq!(names(&page), ["a/1.txt", "a/2.txt"]);
    let page = store.list(ListOptions { prefix: Some("a/".into()), ..range(Some("a/1.txt~"), None) }).await.unwrap();
    assert_eq!(names(&page), ["a/2.txt", "a/b/3.txt", "a/b/4.txt"]);
    let mut seen = Vec::new();
    let mut opts = ListOptions { max_results: Some(1), ..range(Some("a/2.txt"), Some("d/")) };
    loop {
        let page = store.list(opts.clone()).await.unwrap();
        seen.extend(names(&page));
        match page.next_page_token {
            Some(t) => opts.page_token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, ["a/2.txt", "a/b/3.txt", "a/b/4.txt", "c.txt"]);
}

/// Metadata patches bump the metageneration and honour ifMetagenerationMatch.
pub(crate) async fn patch_semantics(store: Arc<dyn Store>, caps: Capabilities) {
    let mut opts = PutOptions::default();
    opts.params.metadata.insert("keep".into(), "1".into());
    opts.params.metadata.insert("drop".into(), "1".into());
    let meta = store.put("m.txt", PutPayload::from("x"), opts).await.unwrap();
    let mut patch = MetadataPatch { cache_control: Some("no-store".into()), ..Default::default() };
    patch.metadata.insert("drop".into(), None);
    patch.metadata.insert("new".into(), Some("2".into()));
    patch.preconditions.if_metageneration_match = Some(1);
    let patched = store.patch_metadata("m.txt", patch.clone()).await.unwrap();
    assert_eq!(patched.generation, meta.generation, "a patch keeps the generation");
    assert_eq!(patched.cache_control.as_deref(), Some("no-store"));
    assert_eq!(patched.metadata.get("new").map(String::as_str), Some("2"));
    assert_eq!(patched.metadata.get("keep").map(String::as_str), Some("1"));
    if caps.faithful_patch {
        assert_eq!(patched.metageneration, 2);
        assert_eq!(patched.metadata.keys().collect::<Vec<_>>(), ["keep", "new"], "null removes a key");
        assert!(store.patch_metadata("m.txt", patch).await.unwrap_err().is_precondition(), "stale metageneration");
        let head = store.head("m.txt", GetOptions::default()).await.unwrap();
        assert_eq!(head.metageneration, 2);
    } else {
        skipped("patch_semantics", "metageneration is not bumped or checked; null metadata values are kept as \"\"");
    }
    assert!(store.patch_metadata("missing.txt", MetadataPatch::default()).await.unwrap_err().is_not_found());
}

/// Invalid names fail before any request, on every operation.
pub(crate) async fn invalid_names(store: Arc<dyn Store>) {
    for bad in ["", "/abs.txt", "../escape.txt", "a/../../b", "nul\0byte", "line\nbreak"] {
        let is_invalid = |e: Error| matches!(e, Error::InvalidName { .. });
        assert!(
            is_invalid(store.put(bad, PutPayload::from("x"), PutOptions::default()).await.unwrap_err()),
            "put {bad:?}"
        );
        assert!(is_invalid(store.get(bad, GetOptions::default()).await.unwrap_err()), "get {bad:?}");
        assert!(is_invalid(store.head(bad, GetOptions::default()).await.unwrap_err()), "head {bad:?}");
        assert!(is_invalid(store.delete(bad, DeleteOptions::default()).await.unwrap_err()), "delete {bad:?}");
        assert!(is_invalid(store.copy(bad, "ok.txt", CopyOptions::default()).await.unwrap_err()), "copy {bad:?}");
        assert!(is_invalid(store.url(bad, Default::default()).await.unwrap_err()), "url {bad:?}");
    }
    let long = "x".repeat(1025);
    assert!(matches!(
        store.put(&long, PutPayload::from("x"), PutOptions::default()).await.unwrap_err(),
        Error::InvalidName { .. }
    ));
}

/// Unicode, spaces, `#?&`, backslashes and `.` segments.
pub(crate) async fn unusual_names(store: Arc<dyn Store>) {
    for name in ["with space.txt", "ünïcødé/日本語.txt", "odd #?&=+%.txt", "emoji 🎉.png", "a/b c/d.txt"] {
        store.put(name, PutPayload::from(name.to_string()), PutOptions::default()).await.unwrap();
        assert_eq!(store.get_bytes(name).await.unwrap(), name.as_bytes(), "{name}");
        let listed = store.list(ListOptions::prefix(name)).await.unwrap();
        assert_eq!(listed.objects.first().map(|m| m.name.as_str()), Some(name), "{name} listed under its own name");
    }
    let meta = store.put(r"back\slash\./x.txt", PutPayload::from("x"), PutOptions::default()).await.unwrap();
    assert_eq!(meta.name, "back/slash/x.txt");
    assert!(store.exists("back/slash/x.txt").await.unwrap());
}

/// Names that a filesystem-backed layout could map onto one path coexist, as on GCS: an object and a
/// "directory" named like its metadata file (`x`, `x.json/y`), a placeholder and a `.json` member
/// (`dir/`, `dir/.json`), a name and names under it (`a`, `a/b`, `a.d/b`). Each keeps its own bytes,
/// all are listed, and deleting one leaves the others.
pub async fn coexisting_names(store: Arc<dyn Store>) {
    let names = [
        "x",
        "x.json/y",
        "x.json",
        "x/y",
        "dir/",
        "dir/.json",
        "dir/.json.json",
        "a",
        "a/b",
        "a.d",
        "a.d/b",
        "f.d.json",
    ];
    for name in names {
        store
            .put(name, PutPayload::from(format!("bytes of {name}")), PutOptions::default())
            .await
            .unwrap_or_else(|e| panic!("coexisting_names: put {name:?} next to the others failed: {e}"));
    }
    for name in names {
        assert_eq!(
            store.get_bytes(name).await.unwrap(),
            format!("bytes of {name}").as_bytes(),
            "coexisting_names: {name}"
        );
    }
    let mut listed: Vec<String> = store.list_all(None).map_ok(|m| m.name).try_collect().await.unwrap();
    listed.sort();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected, "coexisting_names: every name is listed once");
    let under_x: Vec<String> = store.list_all(Some("x.json/".into())).map_ok(|m| m.name).try_collect().await.unwrap();
    assert_eq!(under_x, ["x.json/y"], "coexisting_names: the listing under x.json/");
    for (i, name) in names.iter().enumerate() {
        store.delete(name, DeleteOptions::default()).await.unwrap();
        assert!(!store.exists(name).await.unwrap(), "coexisting_names: {name} deleted");
        for other in &names[i + 1..] {
            assert_eq!(
                store.get_bytes(other).await.unwrap(),
                format!("bytes of {other}").as_bytes(),
                "coexisting_names: {other} survives deleting {name}"
            );
        }
    }
}

/// list_generations returns at least the live generation; versioning is reported.
pub async fn generations(store: Arc<dyn Store>) {
    let meta = store.put("g.txt", PutPayload::from("1"), PutOptions::default()).await.unwrap();
    let gens = store.list_generations("g.txt").await.unwrap();
    assert_eq!(gens.last().map(|m| m.generation), Some(meta.generation));
    let versioned = store.versioning_enabled().await.unwrap();
    let second = store.put("g.txt", PutPayload::from("2"), PutOptions::default()).await.unwrap();
    let gens = store.list_generations("g.txt").await.unwrap();
    assert_eq!(gens.len(), if versioned { 2 } else { 1 });
    assert_eq!(gens.last().map(|m| m.generation), Some(second.generation));
    assert!(store.list_generations("never.txt").await.unwrap().is_empty());
}

/// gzip: CSS is stored compressed with Content-Encoding gzip; reads give the original back.
pub async fn gzip(store: Arc<dyn Store>) {
    let css = "body { color: red; }\n".repeat(500);
    let meta = store.put("site.css", PutPayload::from(css.clone()), PutOptions::default()).await.unwrap();
    assert_eq!(meta.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(meta.content_type.as_deref(), Some("text/css"));
    assert!(meta.size < css.len() as u64 / 5, "stored compressed ({} bytes)", meta.size);
    assert_eq!(store.get_bytes("site.css").await.unwrap(), css.as_bytes(), "reads give back the original bytes");
    let raw =
        store.get("site.css", GetOptions { raw: true, ..Default::default() }).await.unwrap().bytes().await.unwrap();
    assert_eq!(&raw[..2], &[0x1f, 0x8b], "raw reads give the gzip stream");
    let png = store.put("image.png", PutPayload::from("not css"), PutOptions::default()).await.unwrap();
    assert_eq!(png.content_encoding, None, "types outside gzip_content_types are not compressed");
    let off = store
        .put("plain.css", PutPayload::from("a{}"), PutOptions { gzip: Some(false), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(off.content_encoding, None, "per-call override");
}

/// Store-level object parameters merge with per-call ones (metadata key by key).
pub async fn object_parameters(store: Arc<dyn Store>) {
    let mut opts = PutOptions::default();
    opts.params.metadata.insert("from-call".into(), "yes".into());
    opts.params.content_disposition = Some("attachment".into());
    let meta = store.put("params.txt", PutPayload::from("x"), opts).await.unwrap();
    assert_eq!(meta.cache_control.as_deref(), Some("public, max-age=60"));
    assert_eq!(meta.content_disposition.as_deref(), Some("attachment"));
    assert_eq!(meta.metadata.get("from-store").map(String::as_str), Some("yes"), "store metadata kept");
    assert_eq!(meta.metadata.get("from-call").map(String::as_str), Some("yes"));
    let head = store.head("params.txt", GetOptions::default()).await.unwrap();
    assert_eq!(head.metadata, meta.metadata);
    let mut over = PutOptions::default();
    over.params.cache_control = Some("no-cache".into());
    let meta = store.put("params2.txt", PutPayload::from("x"), over).await.unwrap();
    assert_eq!(meta.cache_control.as_deref(), Some("no-cache"), "per-call value wins");
}

/// Names are relative to `location`, in results and listings.
pub async fn location(store: Arc<dyn Store>) {
    let meta = store.put("inside.txt", PutPayload::from("x"), PutOptions::default()).await.unwrap();
    assert_eq!(meta.name, "inside.txt");
    let page = store.list(ListOptions::default()).await.unwrap();
    assert_eq!(page.objects.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["inside.txt"]);
    // Offsets are relative to the location too.
    store.put("later.txt", PutPayload::from("x"), PutOptions::default()).await.unwrap();
    let opts = ListOptions { start_offset: Some("j".into()), end_offset: Some("m".into()), ..Default::default() };
    let page = store.list(opts).await.unwrap();
    assert_eq!(page.objects.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["later.txt"]);
    let url = store.url("inside.txt", Default::default()).await.unwrap();
    assert!(url.contains("location/inside.txt"), "URL carries the full key: {url}");
}

/// file_overwrite = false: `save` finds a free name with create-only writes; nothing is overwritten.
pub(crate) async fn save_without_overwrite(store: Arc<dyn Store>) {
    let first = store.save("report.pdf", PutPayload::from("one"), PutOptions::default()).await.unwrap();
    assert_eq!(first.name, "report.pdf");
    let second = store.save("report.pdf", PutPayload::from("two"), PutOptions::default()).await.unwrap();
    assert_ne!(second.name, "report.pdf");
    assert!(second.name.starts_with("report_") && second.name.ends_with(".pdf"), "{}", second.name);
    assert_eq!(store.get_bytes("report.pdf").await.unwrap(), "one");
    assert_eq!(store.get_bytes(&second.name).await.unwrap(), "two");
}

/// Multi-chunk streamed writes and streamed reads.
pub(crate) async fn large_streams(store: Arc<dyn Store>) {
    let data: Vec<u8> =
        (0..(3 * 1024 * 1024 + 12_345u32)).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let meta = store
        .put("big.bin", PutPayload::stream(chunks(&data, 100_000), Some(data.len() as u64)), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    let unknown =
        store.put("big2.bin", PutPayload::stream(chunks(&data, 300_000), None), PutOptions::default()).await.unwrap();
    assert_eq!(unknown.crc32c, meta.crc32c);
    let got = store.get("big.bin", GetOptions::default()).await.unwrap();
    let mut total = Vec::with_capacity(data.len());
    let mut body = got.body;
    while let Some(chunk) = body.try_next().await.unwrap() {
        total.extend_from_slice(&chunk);
    }
    assert!(total == data, "streamed read returns the same bytes");
}

/// [`download_to_file`](crate::storage::download_to_file): sliced and single-stream downloads give
/// the stored bytes with the CRC32C checked, a pinned generation is honoured, and a failed download
/// leaves no file behind.
pub async fn downloads_to_file(store: Arc<dyn Store>) {
    use crate::storage::{DownloadOptions, download_to_file};
    let data: Vec<u8> = (0..(1024 * 1024 + 777u32)).map(|i| (i.wrapping_mul(2_246_822_519) >> 23) as u8).collect();
    let first = store.put("dl.bin", PutPayload::from(data.clone()), PutOptions::default()).await.unwrap();
    let root = std::env::temp_dir().join(format!("sea-gcp-download-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&root).unwrap();
    let dir = root.as_path();
    let sliced = DownloadOptions::default().with_sliced_threshold(1).with_min_slice_size(200_000).with_max_slices(4);
    for (opts, slices) in [(sliced.clone(), 4), (DownloadOptions::default(), 1)] {
        let path = dir.join(format!("out-{slices}.bin"));
        let got = download_to_file(&*store, "dl.bin", &path, &opts).await.unwrap();
        assert_eq!((got.slices, got.bytes, got.meta.generation), (slices, data.len() as u64, first.generation));
        assert_eq!(got.crc32c_checked, first.crc32c.is_some(), "the CRC32C is checked whenever the store has one");
        assert!(std::fs::read(&path).unwrap() == data, "{slices} slice(s): the file holds the object's bytes");
    }
    // After an overwrite the new live generation is what is downloaded.
    let second = store.put("dl.bin", PutPayload::from("short"), PutOptions::default()).await.unwrap();
    let path = dir.join("second.bin");
    let got = download_to_file(&*store, "dl.bin", &path, &sliced).await.unwrap();
    assert_eq!((got.meta.generation, got.slices), (second.generation, 1));
    assert_eq!(std::fs::read(&path).unwrap(), b"short");
    // An empty object gives an empty file; a missing one an error and no file.
    store.put("empty.bin", PutPayload::from(""), PutOptions::default()).await.unwrap();
    let path = dir.join("empty.bin");
    assert_eq!(download_to_file(&*store, "empty.bin", &path, &sliced).await.unwrap().bytes, 0);
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    let missing = dir.join("missing.bin");
    let err = download_to_file(&*store, "absent.bin", &missing, &sliced).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!missing.exists() && left.len() == 4, "no partial files left: {left:?}");
    // Bytes corrupted in transit (one slice's, then a single stream's) are refused by the CRC32C check
    // when the store has one, and the file already at the destination is left as it was.
    if first.crc32c.is_some() {
        store.put("dl.bin", PutPayload::from(data.clone()), PutOptions::default()).await.unwrap();
        let faulty = Arc::new(super::fault::FaultStore::new(store.clone()));
        let path = dir.join("kept.bin");
        for (opts, nth) in [(sliced.clone(), 3), (DownloadOptions::default(), 1)] {
            std::fs::write(&path, b"previous contents").unwrap();
            faulty.clear();
            faulty.corrupt_get(nth);
            let err = download_to_file(&*faulty, "dl.bin", &path, &opts).await.unwrap_err();
            assert!(matches!(err, Error::Backend { retryable: true, .. }), "a retryable error: {err}");
            assert!(err.to_string().contains("CRC32C"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), b"previous contents", "a refused download changes nothing");
        }
        let left: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 5, "no temporary files left: {left:?}");
    }
    std::fs::remove_dir_all(&root).ok();
}
