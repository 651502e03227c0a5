//! The GCS backend against fake-gcs-server, and the requests it sends.
//!
//! fake-gcs-server ignores `ifGenerationMatch` on copy and delete (and has no `moveTo`), so a passing
//! emulator run alone does not prove that our preconditions reach GCS. Every store here therefore sends
//! its requests through a recording `reqwest-middleware` layer, and the tests assert on the method,
//! path, query and headers sent, as well as on the emulator's answers.
//!
//! The retry tests need no emulator: a small axum server answers 503 a set number of times.

mod emulator_support;
mod field_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use sea_gcp::StoreConfig;
use sea_gcp::config::RetryConfig;
use sea_gcp::storage::GcsStore;
use sea_gcp::storage::{
    ByteRange, CopyOptions, DeleteOptions, GetOptions, ListOptions, MetadataPatch, ObjectParameters, Preconditions,
    PutOptions, PutPayload, SignedUploadOptions, Store, UrlOptions,
};

// ---------------------------------------------------------------------------------------------------
// Recording middleware

/// One request as the store sent it.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    /// The body, when it was in memory (JSON bodies; not multipart or streamed uploads).
    body: Option<Bytes>,
}

impl Recorded {
    fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    fn h(&self, key: &str) -> Option<&str> {
        self.headers.get(key).map(String::as_str)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(self.body.as_ref().expect("request had an in-memory body")).unwrap()
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The one request whose method is `method` and whose path contains `path_part`.
    fn only(&self, method: &str, path_part: &str) -> Recorded {
        let all = self.take();
        let found: Vec<&Recorded> = all.iter().filter(|r| r.method == method && r.path.contains(path_part)).collect();
        assert_eq!(found.len(), 1, "expected one {method} *{path_part}* request, got {all:#?}");
        found[0].clone()
    }
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Recorder {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let url = req.url();
        let recorded = Recorded {
            method: req.method().to_string(),
            path: url.path().to_string(),
            query: url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("<binary>").to_string()))
                .collect(),
            body: req.body().and_then(|b| b.as_bytes()).map(Bytes::copy_from_slice),
        };
        self.0.lock().unwrap().push(recorded);
        next.run(req, extensions).await
    }
}

fn recording_client(recorder: &Recorder) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(recorder.clone()).build()
}

// ---------------------------------------------------------------------------------------------------
// Emulator helpers

/// The emulator's address, or `None` (after saying so) when it is not running.
fn emulator() -> Option<String> {
    emulator_support::storage_emulator("GCS request tests")
}

async fn create_bucket(host: &str, versioning: bool) -> String {
    let bucket = format!("requests-{}", uuid::Uuid::new_v4().simple());
    sea_gcp::testing::conformance::create_emulator_bucket(host, &bucket, versioning).await;
    bucket
}

/// A store on a fresh emulator bucket under location `loc`, recording its requests.
async fn store_with(host: &str, edit: impl FnOnce(&mut StoreConfig)) -> (GcsStore, Recorder) {
    let mut config = StoreConfig::gcs(create_bucket(host, false).await);
    config.location = "loc".into();
    edit(&mut config);
    let recorder = Recorder::default();
    let store = GcsStore::with_http_client("media", config, recording_client(&recorder)).await.unwrap();
    (store, recorder)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn chunked(data: Vec<u8>, piece: usize) -> PutPayload {
    let pieces: Vec<std::io::Result<Bytes>> = data.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    PutPayload::stream(futures::stream::iter(pieces).boxed(), None)
}

// ---------------------------------------------------------------------------------------------------
// Against the emulator

#[tokio::test]
async fn put_head_get_range_with_metadata() {
    let Some(host) = emulator() else { return };
    let (store, rec) = store_with(&host, |c| {
        c.object_parameters.cache_control = Some("public, max-age=60".into());
        c.object_parameters.metadata.insert("store".into(), "media".into());
        c.default_acl = Some("projectPrivate".into());
    })
    .await;
    let mut params = ObjectParameters {
        content_disposition: Some("inline".into()),
        content_language: Some("en".into()),
        ..Default::default()
    };
    params.metadata.insert("call".into(), "yes".into());
    let meta = store
        .put("docs/a b.txt", PutPayload::from("hello world"), PutOptions::create_only().with_params(params))
        .await
        .unwrap();
    let upload = rec.only("POST", "/upload/storage/v1/b/");
    assert_eq!(upload.q("uploadType"), Some("multipart"));
    assert_eq!(upload.q("ifGenerationMatch"), Some("0"));
    assert_eq!(upload.q("predefinedAcl"), Some("projectPrivate"));
    assert!(upload.h("content-type").unwrap().starts_with("multipart/related; boundary="));
    let body = String::from_utf8_lossy(upload.body.as_ref().expect("multipart body in memory")).to_string();
    let json_start = body.find('{').unwrap();
    let json_end = body[json_start..].find("\r\n").unwrap() + json_start;
    let sent: serde_json::Value = serde_json::from_str(&body[json_start..json_end]).unwrap();
    assert_eq!(sent["name"], "loc/docs/a b.txt");
    assert_eq!(sent["contentType"], "text/plain");
    assert_eq!(sent["cacheControl"], "public, max-age=60");
    assert_eq!(sent["contentDisposition"], "inline");
    assert_eq!(sent["contentLanguage"], "en");
    // A guarded upload carries a per-request upload id: a retry that gets 412 recognises its own write.
    let upload_id = sent["metadata"]["sea-gcp-upload"].as_str().expect("upload id").to_string();
    assert_eq!(upload_id.len(), 32);
    assert_eq!(sent["metadata"], serde_json::json!({"store": "media", "call": "yes", "sea-gcp-upload": upload_id}));
    assert!(body.contains("Content-Type: text/plain\r\n\r\nhello world\r\n"));

    assert_eq!(meta.name, "docs/a b.txt", "names are relative to the location");
    assert_eq!(meta.size, 11);
    assert!(meta.generation > 0 && meta.metageneration == 1);
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
    assert_eq!(meta.cache_control.as_deref(), Some("public, max-age=60"));
    assert_eq!(meta.content_disposition.as_deref(), Some("inline"));
    assert_eq!(meta.content_language.as_deref(), Some("en"));
    assert_eq!(meta.metadata.get("store").map(String::as_str), Some("media"));
    assert_eq!(meta.metadata.get("call").map(String::as_str), Some("yes"));
    assert_eq!(meta.crc32c.as_deref(), Some("yZRlqg=="));

    let head = store.head("docs/a b.txt", GetOptions::default()).await.unwrap();
    assert_eq!(head.generation, meta.generation);
    let get = rec.only("GET", "/o/loc%2Fdocs%2Fa%20b.txt");
    assert!(get.q("alt").is_none());
    assert!(store.exists("docs/a b.txt").await.unwrap());
    assert!(!store.exists("docs/missing.txt").await.unwrap());
    rec.take();

    assert_eq!(store.get_bytes("docs/a b.txt").await.unwrap(), "hello world");
    let media = rec.take().into_iter().find(|r| r.q("alt") == Some("media")).expect("a media download");
    assert_eq!(media.h("accept-encoding"), Some("gzip"), "reads ask for the stored bytes");
    assert_eq!(media.q("generation"), Some(meta.generation.to_string().as_str()), "reads pin the generation read");

    let range = store.get("docs/a b.txt", GetOptions::default().with_range(6..11)).await.unwrap();
    assert_eq!(range.range, 6..11);
    assert_eq!(range.bytes().await.unwrap(), "world");
    let media = rec.take().into_iter().find(|r| r.q("alt") == Some("media")).unwrap();
    assert_eq!(media.h("range"), Some("bytes=6-10"));
    let suffix = store.get("docs/a b.txt", GetOptions::default().with_range(ByteRange::Suffix(5))).await.unwrap();
    assert_eq!(suffix.bytes().await.unwrap(), "world");
    let err = store.get("docs/a b.txt", GetOptions::default().with_range(ByteRange::From(11))).await.unwrap_err();
    assert!(matches!(err, sea_gcp::Error::InvalidRange { size: 11, .. }), "{err}");

    // Create-only refuses an existing name (the emulator enforces ifGenerationMatch on uploads).
    let err = store.put("docs/a b.txt", PutPayload::from("again"), PutOptions::create_only()).await.unwrap_err();
    assert!(err.is_precondition(), "{err}");
    let err = store.get("nope.txt", GetOptions::default()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn list_is_relative_to_the_location() {
    let Some(host) = emulator() else { return };
    let (store, rec) = store_with(&host, |_| {}).await;
    for name in ["a/1.txt", "a/2.txt", "a/sub/3.txt", "b.txt"] {
        store.put(name, PutPayload::from("x"), PutOptions::default()).await.unwrap();
    }
    rec.take();
    let page = store.list(ListOptions::prefix("a/").with_delimiter()).await.unwrap();
    let names: Vec<&str> = page.objects.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a/1.txt", "a/2.txt"]);
    assert_eq!(page.prefixes, ["a/sub/"]);
    let list = rec.only("GET", "/o");
    assert_eq!(list.q("prefix"), Some("loc/a/"));
    assert_eq!(list.q("delimiter"), Some("/"));

    let mut opts = ListOptions::default();
    opts.max_results = Some(2);
    let first = store.list(opts.clone()).await.unwrap();
    assert_eq!(first.objects.len(), 2);
    opts.page_token = Some(first.next_page_token.clone().expect("a second page"));
    let second = store.list(opts).await.unwrap();
    let mut all: Vec<String> = first.objects.iter().chain(&second.objects).map(|m| m.name.clone()).collect();
    all.sort();
    assert_eq!(all, ["a/1.txt", "a/2.txt", "a/sub/3.txt", "b.txt"]);
    let rest: Vec<_> = store.list_all(Some("a".into())).collect().await;
    assert_eq!(rest.len(), 3);
}

#[tokio::test]
async fn copy_sends_source_and_destination_preconditions() {
    let Some(host) = emulator() else { return };
    let (store, rec) = store_with(&host, |c| c.default_acl = Some("publicRead".into())).await;
    let mut params = ObjectParameters::default();
    params.metadata.insert("origin".into(), "upload".into());
    let src =
        store.put("tmp/in.txt", PutPayload::from("payload"), PutOptions::default().with_params(params)).await.unwrap();
    rec.take();

    let mut opts = CopyOptions::default();
    opts.if_source_generation_match = Some(src.generation);
    opts.destination = Preconditions::create_only();
    let copied = store.copy("tmp/in.txt", "final/out.txt", opts).await.unwrap();
    let sent = rec.only("POST", "/copyTo/");
    assert!(sent.path.contains("/o/loc%2Ftmp%2Fin.txt/copyTo/b/"), "{}", sent.path);
    assert!(sent.path.ends_with("/o/loc%2Ffinal%2Fout.txt"), "{}", sent.path);
    assert_eq!(sent.q("ifSourceGenerationMatch"), Some(src.generation.to_string().as_str()));
    assert_eq!(sent.q("ifGenerationMatch"), Some("0"));
    assert_eq!(sent.q("destinationPredefinedAcl"), Some("publicRead"));
    assert_eq!(copied.name, "final/out.txt");
    assert_ne!(copied.generation, src.generation);
    assert_eq!(copied.metadata.get("origin").map(String::as_str), Some("upload"));
    assert_eq!(store.get_bytes("final/out.txt").await.unwrap(), "payload");
    rec.take();

    // Destination metadata: laid over the source's, custom keys merged.
    let mut params = ObjectParameters { content_type: Some("application/x-report".into()), ..Default::default() };
    params.metadata.insert("intent".into(), "42".into());
    let mut opts = CopyOptions::default();
    opts.source_generation = Some(src.generation);
    opts.if_source_metageneration_match = Some(1);
    opts.params = Some(params);
    let tagged = store.copy("tmp/in.txt", "final/tagged.txt", opts).await.unwrap();
    let sent = rec.only("POST", "/copyTo/");
    assert_eq!(sent.q("sourceGeneration"), Some(src.generation.to_string().as_str()));
    assert_eq!(sent.q("ifSourceMetagenerationMatch"), Some("1"));
    let body = sent.json();
    assert_eq!(body["contentType"], "application/x-report");
    assert_eq!(body["metadata"]["origin"], "upload");
    assert_eq!(body["metadata"]["intent"], "42");
    assert_eq!(tagged.content_type.as_deref(), Some("application/x-report"));
    assert_eq!(tagged.metadata.get("origin").map(String::as_str), Some("upload"));
    assert_eq!(tagged.metadata.get("intent").map(String::as_str), Some("42"));

    let err = store.copy("tmp/missing.txt", "x.txt", CopyOptions::default()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn delete_and_patch_send_their_preconditions() {
    let Some(host) = emulator() else { return };
    let (store, rec) = store_with(&host, |_| {}).await;
    let mut params = ObjectParameters::default();
    params.metadata.insert("keep".into(), "1".into());
    params.metadata.insert("drop".into(), "2".into());
    let meta = store.put("p.txt", PutPayload::from("x"), PutOptions::default().with_params(params)).await.unwrap();
    rec.take();

    let mut patch = MetadataPatch::default();
    patch.cache_control = Some("no-store".into());
    patch.metadata.insert("drop".into(), None);
    patch.metadata.insert("new".into(), Some("3".into()));
    patch.preconditions.if_metageneration_match = Some(meta.metageneration);
    let patched = store.patch_metadata("p.txt", patch).await.unwrap();
    let sent = rec.only("PATCH", "/o/loc%2Fp.txt");
    assert_eq!(sent.q("ifMetagenerationMatch"), Some("1"));
    assert_eq!(sent.json()["metadata"], serde_json::json!({"drop": null, "new": "3"}));
    assert_eq!(patched.cache_control.as_deref(), Some("no-store"));
    assert_eq!(patched.metadata.get("new").map(String::as_str), Some("3"));
    assert_eq!(patched.metadata.get("keep").map(String::as_str), Some("1"));
    // Not checked against the emulator: fake-gcs-server neither bumps nor returns metageneration on
    // patch, ignores ifMetagenerationMatch there, and stores a `null` metadata value as "" instead of
    // removing the key. The request above is what GCS needs for all three.

    store.delete("p.txt", DeleteOptions::if_generation(meta.generation)).await.unwrap();
    let sent = rec.only("DELETE", "/o/loc%2Fp.txt");
    assert_eq!(sent.q("ifGenerationMatch"), Some(meta.generation.to_string().as_str()));
    assert!(!store.exists("p.txt").await.unwrap());
    let err = store.delete("p.txt", DeleteOptions::default()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn gzip_round_trip() {
    let Some(host) = emulator() else { return };
    let (store, rec) = store_with(&host, |c| c.gzip = true).await;
    let css = "body { color: red; }\n".repeat(500);
    let meta = store.put("site.css", PutPayload::from(css.clone()), PutOptions::default()).await.unwrap();
    assert_eq!(meta.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(meta.content_type.as_deref(), Some("text/css"));
    assert!(meta.size < css.len() as u64 / 10, "stored compressed: {} bytes", meta.size);
    rec.take();
    assert_eq!(store.get_bytes("site.css").await.unwrap(), css.as_bytes());
    let media = rec.take().into_iter().find(|r| r.q("alt") == Some("media")).unwrap();
    assert_eq!(media.h("accept-encoding"), Some("gzip"));
    let mut raw_read = GetOptions::default();
    raw_read.raw = true;
    let raw = store.get("site.css", raw_read).await.unwrap();
    let raw = raw.bytes().await.unwrap();
    assert_eq!(raw.len() as u64, meta.size);
    assert_eq!(&raw[..2], &[0x1f, 0x8b], "raw reads return the gzip stream");

    // Streams are gzipped chunk by chunk too.
    let js = "console.log('x');\n".repeat(4000).into_bytes();
    let meta = store.put("app.js", chunked(js.clone(), 1000), PutOptions::default()).await.unwrap();
    assert_eq!(meta.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(store.get_bytes("app.js").await.unwrap(), js);
}

#[tokio::test]
async fn resumable_multi_chunk_put_and_streamed_get() {
    let Some(host) = emulator() else { return };
    let chunk = 256 * 1024;
    let (store, rec) = store_with(&host, |c| c.blob_chunk_size = Some(chunk)).await;
    let data = pattern(2 * chunk as usize + 12_345);
    let meta = store.put("big/blob.bin", chunked(data.clone(), 10_000), PutOptions::create_only()).await.unwrap();
    assert_eq!(meta.size, data.len() as u64);
    let sent = rec.take();
    let session = sent.iter().find(|r| r.method == "POST").expect("a session start");
    assert_eq!(session.q("uploadType"), Some("resumable"));
    assert_eq!(session.q("ifGenerationMatch"), Some("0"));
    assert_eq!(session.json()["contentType"], "application/octet-stream");
    let puts: Vec<&Recorded> = sent.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 3, "three chunks: {puts:#?}");
    assert_eq!(puts[0].h("content-range"), Some("bytes 0-262143/*"));
    assert_eq!(puts[1].h("content-range"), Some("bytes 262144-524287/*"));
    assert_eq!(puts[2].h("content-range"), Some(format!("bytes 524288-{}/{}", data.len() - 1, data.len()).as_str()));
    for put in &puts {
        let len: u64 = put.h("content-length").unwrap().parse().unwrap();
        assert!(len <= chunk, "one chunk in flight at a time");
    }

    // Streamed read: several body pieces, nothing buffered whole.
    let got = store.get("big/blob.bin", GetOptions::default()).await.unwrap();
    assert_eq!(got.meta.generation, meta.generation);
    let mut body = got.body;
    let mut pieces = 0;
    let mut read = Vec::new();
    while let Some(piece) = body.next().await {
        read.extend_from_slice(&piece.unwrap());
        pieces += 1;
    }
    assert_eq!(read, data);
    assert!(pieces > 1, "the body arrives as a stream");

    // A size that is an exact multiple of the chunk finishes with an empty final chunk; a file of known
    // size sends its total up front.
    let even = pattern(2 * chunk as usize);
    store.put("big/even.bin", chunked(even.clone(), 65_536), PutOptions::default()).await.unwrap();
    assert_eq!(store.get_bytes("big/even.bin").await.unwrap(), even);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.bin");
    std::fs::write(&path, &data).unwrap();
    rec.take();
    store.put("big/file.bin", PutPayload::File(path), PutOptions::default()).await.unwrap();
    let puts: Vec<Recorded> = rec.take().into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts[0].h("content-range"), Some(format!("bytes 0-262143/{}", data.len()).as_str()));
    assert_eq!(store.get_bytes("big/file.bin").await.unwrap(), data);
}

#[tokio::test]
async fn versions_and_generations() {
    let Some(host) = emulator() else { return };
    let mut config = StoreConfig::gcs(create_bucket(&host, true).await);
    config.location = "v".into();
    let store = GcsStore::new("media", config).await.unwrap();
    assert!(store.versioning_enabled().await.unwrap());
    let first = store.put("doc.txt", PutPayload::from("one"), PutOptions::default()).await.unwrap();
    let second = store.put("doc.txt", PutPayload::from("two"), PutOptions::default()).await.unwrap();
    store.put("doc.txt.bak", PutPayload::from("other"), PutOptions::default()).await.unwrap();
    let generations = store.list_generations("doc.txt").await.unwrap();
    let gens: Vec<i64> = generations.iter().map(|m| m.generation).collect();
    assert_eq!(gens, [first.generation, second.generation]);
    let old = store.get("doc.txt", GetOptions::default().with_generation(first.generation)).await.unwrap();
    assert_eq!(old.bytes().await.unwrap(), "one");
    assert_eq!(store.get_bytes("doc.txt").await.unwrap(), "two");

    let (plain, _) = store_with(&host, |_| {}).await;
    assert!(!plain.versioning_enabled().await.unwrap());
}

#[tokio::test]
async fn urls_and_upload_sessions() {
    let Some(host) = emulator() else { return };
    let (store, rec) = store_with(&host, |c| c.querystring_auth = false).await;
    store.put("pub/a b.txt", PutPayload::from("public"), PutOptions::default()).await.unwrap();
    let url = store.url("pub/a b.txt", UrlOptions::default()).await.unwrap();
    assert_eq!(url, format!("{host}/{}/loc/pub/a%20b.txt", store.bucket()));
    // fake-gcs-server serves /bucket/object downloads only on its public host, which scripts/test.sh sets
    // to the emulator's own address (-public-host), as a browser would reach it.
    let fetched = reqwest::Client::new().get(&url).send().await.unwrap();
    assert!(fetched.status().is_success(), "{url}: {}", fetched.status());
    assert_eq!(fetched.text().await.unwrap(), "public");

    let mut custom = store.config().clone();
    custom.custom_endpoint = Some("https://cdn.example.com/".into());
    let cdn = GcsStore::new("media", custom).await.unwrap();
    // As django-gcp: a custom endpoint serves the bucket at its root, so the bucket is not repeated.
    assert_eq!(cdn.url("x/y.png", UrlOptions::default()).await.unwrap(), "https://cdn.example.com/loc/x/y.png");
    rec.take();

    // A resumable session started for a browser.
    let mut opts = SignedUploadOptions::default();
    opts.content_type = "image/png".into();
    opts.max_size = 1024;
    opts.resumable = true;
    opts.origin = Some("https://app.example.com".into());
    opts.size = Some(4);
    opts.metadata.insert("ticket".into(), "t1".into());
    let presigned = store.signed_upload("ingress/u.png", opts.clone()).await.unwrap();
    let sent = rec.only("POST", "/upload/storage/v1/b/");
    assert_eq!(sent.q("uploadType"), Some("resumable"));
    assert_eq!(sent.q("name"), Some("loc/ingress/u.png"));
    assert_eq!(sent.q("ifGenerationMatch"), Some("0"));
    assert_eq!(sent.h("origin"), Some("https://app.example.com"));
    assert_eq!(sent.h("x-upload-content-type"), Some("image/png"));
    assert_eq!(sent.h("x-upload-content-length"), Some("4"));
    assert_eq!(sent.json()["metadata"]["ticket"], "t1");
    assert_eq!(presigned.method, sea_gcp::http::Method::PUT);
    let put = reqwest::Client::new().put(&presigned.url).body("\u{89}PN").send().await.unwrap();
    assert!(put.status().is_success(), "session PUT: {}", put.status());
    let meta = store.head("ingress/u.png", GetOptions::default()).await.unwrap();
    assert_eq!(meta.content_type.as_deref(), Some("image/png"));
    assert_eq!(meta.metadata.get("ticket").map(String::as_str), Some("t1"));

    opts.size = Some(4096);
    let err = store.signed_upload("ingress/big.png", opts).await.unwrap_err();
    assert!(matches!(err, sea_gcp::Error::InvalidArgument(_)), "{err}");
}

// ---------------------------------------------------------------------------------------------------
// Retries, against a fake that fails on purpose

/// How many times each kind of request was seen, and how many 503s remain for each.
#[derive(Clone, Default)]
struct Flaky {
    failures_left: Arc<AtomicUsize>,
    gets: Arc<AtomicUsize>,
    uploads: Arc<AtomicUsize>,
}

fn object_json(name: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "storage#object", "id": format!("flaky/{name}/1"), "selfLink": "", "mediaLink": "",
        "name": name, "bucket": "flaky", "generation": "1", "metageneration": "1", "size": "1",
        "contentType": "text/plain", "crc32c": "AAAAAA==", "etag": "e"
    })
}

async fn flaky_server(fail_first: usize) -> (String, Flaky) {
    use axum::http::{Method, StatusCode};
    use axum::response::IntoResponse;
    let state = Flaky::default();
    state.failures_left.store(fail_first, Ordering::SeqCst);
    let shared = state.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: axum::http::Uri| {
        let state = shared.clone();
        async move {
            let path = uri.path().to_string();
            if method == Method::POST && path.starts_with("/upload/") {
                state.uploads.fetch_add(1, Ordering::SeqCst);
            } else if method == Method::GET {
                state.gets.fetch_add(1, Ordering::SeqCst);
            }
            let fail =
                state.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            if fail {
                let body = serde_json::json!({"error": {"code": 503, "message": "backend unavailable", "errors": []}});
                return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            }
            axum::Json(object_json("loc/a.txt")).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

async fn flaky_store(endpoint: &str) -> GcsStore {
    let mut config = StoreConfig::gcs("flaky");
    config.location = "loc".into();
    config.api_endpoint = Some(endpoint.to_string());
    config.retry = RetryConfig {
        max_retries: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2,
    };
    GcsStore::new("media", config).await.unwrap()
}

#[tokio::test]
async fn reads_are_retried_after_transient_errors() {
    let (endpoint, state) = flaky_server(2).await;
    let store = flaky_store(&endpoint).await;
    let meta = store.head("a.txt", GetOptions::default()).await.unwrap();
    assert_eq!(meta.name, "a.txt");
    assert_eq!(state.gets.load(Ordering::SeqCst), 3, "two 503s, then success");
}

#[tokio::test]
async fn unguarded_writes_are_not_retried() {
    let (endpoint, state) = flaky_server(1).await;
    let store = flaky_store(&endpoint).await;
    let err = store.put("a.txt", PutPayload::from("x"), PutOptions::default()).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, sea_gcp::Error::Backend { status: Some(503), .. }), "{err}");
    assert_eq!(state.uploads.load(Ordering::SeqCst), 1, "an unguarded put is sent once");
}

#[tokio::test]
async fn guarded_writes_are_retried() {
    let (endpoint, state) = flaky_server(2).await;
    let store = flaky_store(&endpoint).await;
    store.put("a.txt", PutPayload::from("x"), PutOptions::create_only()).await.unwrap();
    assert_eq!(state.uploads.load(Ordering::SeqCst), 3, "create-only is idempotent: retried");

    let (endpoint, state) = flaky_server(10).await;
    let store = flaky_store(&endpoint).await;
    let err = store.head("a.txt", GetOptions::default()).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(state.gets.load(Ordering::SeqCst), 4, "one attempt plus max_retries");
}

/// Peak resident memory of this process since the last reset, in bytes (Linux `VmHWM`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// The goal: a 1 GiB upload in 16 MiB chunks stays within 40 MiB of client memory. The client
/// holds one chunk whatever the total, so the suite uploads 128 MiB by default (fake-gcs-server needs
/// about 100 s for 1 GiB); `SEA_GCP_LARGE_UPLOAD_MIB=1024` runs the full size.
#[tokio::test]
async fn large_upload_holds_one_chunk_in_memory() {
    let Some(host) = emulator() else { return };
    const MIB: u64 = 1024 * 1024;
    let mib: u64 = std::env::var("SEA_GCP_LARGE_UPLOAD_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    let total = mib * MIB;
    let mut config = StoreConfig::gcs(create_bucket(&host, false).await);
    config.blob_chunk_size = Some(16 * MIB);
    let store = GcsStore::new("media", config).await.unwrap();
    // 64 KiB pieces generated on the fly: the source holds nothing.
    let piece = 64 * 1024;
    let stream =
        futures::stream::iter(0..total / piece).map(move |i| Ok(Bytes::from(vec![(i % 251) as u8; piece as usize])));
    // Reset the peak (Linux: writing 5 to clear_refs resets VmHWM to the current RSS).
    let resettable = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = peak_rss();
    let payload = PutPayload::stream(stream.boxed(), None);
    let meta = store.put("big/large.bin", payload, PutOptions::default()).await.unwrap();
    assert_eq!(meta.size, total);
    let peak = peak_rss();
    store.delete("big/large.bin", DeleteOptions::default()).await.unwrap();
    if let (true, Some(before), Some(after)) = (resettable, before, peak) {
        eprintln!("{mib} MiB upload in 16 MiB chunks: peak RSS {} MiB (at start {} MiB)", after / MIB, before / MIB);
        // The growth is what the upload costs: one 16 MiB chunk plus buffers. (The absolute peak, about
        // 31 MiB when this test runs alone, also counts the test harness and the tests running beside it.)
        let growth = after.saturating_sub(before);
        assert!(growth <= 24 * MIB, "the upload grew the client's RSS by {} MiB (one chunk is 16)", growth / MIB);
    }
}

/// Signed URLs and signed PUTs (HMAC signer: no network). fake-gcs-server does not check signatures and
/// serves path-style URLs only for its public host name, so the URLs' shape is what is checked here;
/// the signatures themselves are checked against Google's vectors in `tests/signing_conformance.rs`.
#[tokio::test]
async fn signed_urls_and_signed_puts() {
    let Some(host) = emulator() else { return };
    let (store, _) = store_with(&host, |c| {
        c.signing = sea_gcp::config::SigningConfig::Hmac {
            access_id: "GOOG1EXAMPLEACCESSID".into(),
            secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0".into(),
        };
    })
    .await;
    let mut opts = UrlOptions::default();
    opts.response_content_disposition = Some("attachment; filename=\"r.pdf\"".into());
    opts.generation = Some(42);
    let url = store.url("docs/r.pdf", opts).await.unwrap();
    let parsed = url::Url::parse(&url).unwrap();
    assert_eq!(format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap()), host.rsplit_once(':').unwrap().0);
    assert_eq!(parsed.path(), format!("/{}/loc/docs/r.pdf", store.bucket()));
    let query: BTreeMap<String, String> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["X-Goog-Algorithm"], "GOOG4-HMAC-SHA256");
    assert_eq!(query["response-content-disposition"], "attachment; filename=\"r.pdf\"");
    assert_eq!(query["generation"], "42");
    assert_eq!(query["X-Goog-Expires"], "86400", "the store's expiration by default");
    assert!(query.contains_key("X-Goog-Signature"));

    let mut upload = SignedUploadOptions::default();
    upload.content_type = "image/png".into();
    upload.max_size = 5_000_000;
    let presigned = store.signed_upload("ingress/a.png", upload).await.unwrap();
    assert_eq!(presigned.method, sea_gcp::http::Method::PUT);
    assert_eq!(presigned.headers["content-type"], "image/png");
    assert_eq!(presigned.headers["x-goog-content-length-range"], "0,5000000");
    assert_eq!(presigned.headers["x-goog-if-generation-match"], "0");
    let parsed = url::Url::parse(&presigned.url).unwrap();
    let query: BTreeMap<String, String> = parsed.query_pairs().into_owned().collect();
    let signed: Vec<&str> = query["X-Goog-SignedHeaders"].split(';').collect();
    for header in ["content-type", "host", "x-goog-content-length-range", "x-goog-if-generation-match"] {
        assert!(signed.contains(&header), "{header} is signed: {signed:?}");
    }
    assert_eq!(query["X-Goog-Expires"], "3600");
}

/// With `signing = auto` against an emulator, URLs are signed with a throwaway HMAC key (the metadata
/// server that `auto` would ask does not exist outside Google Cloud; emulators ignore signatures).
#[tokio::test]
async fn auto_signing_works_offline_against_the_emulator() {
    let Some(host) = emulator() else { return };
    if std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").is_some() {
        return; // a real key is used then
    }
    let (store, _) = store_with(&host, |_| {}).await;
    let url = store.url("a.txt", UrlOptions::default()).await.unwrap();
    assert!(url.contains("X-Goog-Algorithm=GOOG4-HMAC-SHA256"), "{url}");
    assert!(url.contains("sea-gcp-emulator"), "{url}");
}

/// A response without `metageneration` (fake-gcs-server's patch answer) means "unknown": the save's
/// promoting copy then carries no `ifSourceMetagenerationMatch` at all, never a made-up `0`.
#[tokio::test]
async fn a_save_never_sends_a_made_up_metageneration() {
    use field_support::{Tables, databases, saver, upload};
    use sea_gcp::field::BlobChanges;
    use sea_orm::ActiveValue::Set;

    let Some(host) = emulator() else { return };
    let (store, rec) = store_with(&host, |_| {}).await;
    let store: Arc<dyn Store> = Arc::new(store);
    let db = databases().await.into_iter().next().expect("SQLite is always available");
    let tables = Tables::create(&db.conn).await;
    let saver = saver(&db.conn, &tables, store.clone());
    let pending = upload(store.as_ref(), "a.txt", b"hello", "text/plain").await;
    rec.take();
    let model = field_support::docs::ActiveModel { title: Set("t".into()), ..Default::default() };
    let saved =
        saver.insert(model, BlobChanges::new().attach(field_support::docs::Column::File, pending)).await.unwrap();
    let sent = rec.take();
    let claim = sent.iter().find(|r| r.method == "PATCH").expect("the claim patch");
    assert!(claim.q("ifGenerationMatch").is_some(), "the claim is pinned to the upload's generation: {claim:?}");
    let copy = sent.iter().find(|r| r.path.contains("/copyTo/")).expect("the promoting copy");
    assert!(copy.q("ifSourceGenerationMatch").is_some(), "{copy:?}");
    assert_eq!(copy.q("ifGenerationMatch"), Some("0"), "create-only: {copy:?}");
    assert_ne!(copy.q("ifSourceMetagenerationMatch"), Some("0"), "a made-up metageneration was sent: {copy:?}");
    // fake-gcs-server's patch response has no metageneration, so no metageneration guard can be sent.
    assert_eq!(copy.q("ifSourceMetagenerationMatch"), None, "{copy:?}");
    let file = saved.model.file.expect("the file is attached");
    assert_ne!(file.metageneration, Some(0), "an unknown metageneration is not cached as 0");
    tables.drop(&db.conn).await;
}
