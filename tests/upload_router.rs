//! The direct-upload routes on a local store, over real HTTP: tickets, refusals, resumable sessions,
//! downloads and 100 concurrent uploads.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_gcp::StoreConfig;
use sea_gcp::storage::LocalStore;
use sea_gcp::storage::{GetOptions, ListOptions, Store, UrlOptions};
use sea_gcp::testing::looks_like_code;
use sea_gcp::upload::{
    AuthenticateFn, AuthorizeFn, Grant, Refusal, TicketClaims, TicketProblem, TicketResponse, TicketSigner,
    UploadField, UploadFields, UploadRouter, UploadVerifier, UsedTickets, local_store_routes,
};
use serde_json::{Value, json};

const MAX: u64 = 1000;
const THRESHOLD: u64 = 600;

struct App {
    base: String,
    store: Arc<LocalStore>,
    verifier: UploadVerifier,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = StoreConfig::local(dir.path());
    config.base_url = Some(format!("{base}/storage/media"));
    let store = Arc::new(LocalStore::new("media", config).await.unwrap().with_url_secret("url-secret"));
    let dyn_store: Arc<dyn Store> = store.clone();
    let fields = UploadFields::new()
        .register(
            UploadField::new("doc.file", dyn_store.clone())
                .max_size(MAX)
                .accept(["text/plain", "image/*"])
                .resumable_threshold(THRESHOLD),
        )
        .unwrap()
        .register(UploadField::new("doc.cover", dyn_store.clone()).max_size(MAX))
        .unwrap();
    let router = UploadRouter::new(fields, TicketSigner::new("ticket-secret")).authorize(AuthorizeFn(
        |parts: &axum::http::request::Parts, _field: &UploadField| match parts
            .headers
            .get("x-user")
            .and_then(|u| u.to_str().ok())
        {
            Some("mallory") => Err(Refusal::forbidden("mallory may not upload")),
            Some(user) => Ok(Grant::for_subject(user)),
            None => Ok(Grant::unbound()),
        },
    ));
    let verifier = router.verifier();
    let routes = router.router().merge(local_store_routes(store.clone()));
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    App { base, store, verifier, http: reqwest::Client::new(), _dir: dir }
}

impl App {
    async fn ticket(&self, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}/uploads", self.base)).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn grant(&self, field: &str, filename: &str, bytes: &[u8], ct: &str) -> TicketResponse {
        let (status, body) =
            self.ticket(json!({"field": field, "filename": filename, "size": bytes.len(), "content_type": ct})).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    async fn put(&self, grant: &TicketResponse, bytes: Vec<u8>) -> reqwest::Response {
        let mut req = self.http.put(&grant.url).body(bytes);
        for (k, v) in &grant.headers {
            req = req.header(k, v);
        }
        req.send().await.unwrap()
    }

    async fn object_names(&self) -> Vec<String> {
        self.store.list(ListOptions::default()).await.unwrap().objects.into_iter().map(|o| o.name).collect()
    }
}

fn claims_of(ticket: &str) -> TicketClaims {
    let payload = ticket.split_once('.').unwrap().0;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn upload_verify_and_promote_once() {
    let app = app().await;
    let grant = app.grant("doc.file", "notes.txt", b"hello", "text/plain").await;
    assert!(!grant.resumable);
    assert_eq!(grant.headers.get("x-goog-if-generation-match").map(String::as_str), Some("0"));
    assert_eq!(
        grant.headers.get("x-goog-content-length-range").map(String::as_str),
        Some("0,5"),
        "bound to the declared size"
    );
    assert_eq!(app.put(&grant, b"hello".to_vec()).await.status(), 200);
    let ledger = UsedTickets::new();
    let pending = app.verifier.verify_and_claim("doc.file", &grant.ticket, &ledger).await.unwrap();
    assert_eq!(
        (pending.size, pending.content_type.as_str(), pending.original_name.as_str()),
        (5, "text/plain", "notes.txt")
    );
    assert!(pending.temp_name.starts_with("_tmp/") && pending.temp_name.ends_with("/notes.txt"));
    assert_eq!(app.store.get_bytes(&pending.temp_name).await.unwrap().as_ref(), b"hello");
    let replay = app.verifier.verify_and_claim("doc.file", &grant.ticket, &ledger).await.unwrap_err();
    assert_eq!(replay.problem, TicketProblem::Replayed);
    assert_eq!(ledger.len(), 1);
    // The URL is create-only: a second PUT to it cannot overwrite the upload.
    let again = app.put(&grant, b"HELLO".to_vec()).await;
    assert_eq!(again.status(), 412);
    assert_eq!(app.store.get_bytes(&pending.temp_name).await.unwrap().as_ref(), b"hello");
}

#[tokio::test]
async fn bad_tickets_are_refused_and_nothing_is_promoted_or_deleted() {
    let app = app().await;
    let grant = app.grant("doc.file", "a.txt", b"abc", "text/plain").await;
    assert_eq!(app.put(&grant, b"abc".to_vec()).await.status(), 200);
    let name = claims_of(&grant.ticket).name;
    let ledger = UsedTickets::new();
    let refuse = |ticket: String, field: &'static str| {
        let v = app.verifier.clone();
        let ledger = &ledger;
        async move { v.verify_and_claim(field, &ticket, ledger).await.unwrap_err() }
    };

    // Forged: same claims, signed with another secret.
    let forged = TicketSigner::new("not-the-server").issue(&claims_of(&grant.ticket));
    let r = refuse(forged, "doc.file").await;
    assert_eq!((r.problem, r.problem.status()), (TicketProblem::BadSignature, 403));
    // Tampered: another object name under the original signature.
    let mut claims = claims_of(&grant.ticket);
    claims.name = "reports/secret.pdf".into();
    let sig = grant.ticket.split_once('.').unwrap().1;
    let tampered = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()));
    assert_eq!(refuse(tampered, "doc.file").await.problem, TicketProblem::BadSignature);
    // Wrong field.
    let r = refuse(grant.ticket.clone(), "doc.cover").await;
    assert_eq!(r.problem, TicketProblem::WrongField);
    assert!(r.detail.contains("doc.file"), "{}", r.detail);
    assert!(!sea_gcp::testing::looks_like_code(&r.message), "{}", r.message);
    // A raw path posted instead of a ticket, and garbage.
    for raw in [name.clone(), "../../etc/passwd".into(), "ingress/x/a.txt".into(), "a.b.c".into(), String::new()] {
        let r = refuse(raw.clone(), "doc.file").await;
        assert_eq!(r.problem, TicketProblem::Malformed, "{raw:?}: {r:?}");
        assert_eq!(r.problem.status(), 400);
    }
    // Expired.
    let later = chrono::Utc::now().timestamp() + 2 * 3600;
    let r = app.verifier.verify_at("doc.file", &grant.ticket, None, later).await.unwrap_err();
    assert_eq!((r.problem, r.problem.status()), (TicketProblem::Expired, 410));
    // Nothing promoted, nothing deleted.
    assert!(ledger.is_empty());
    assert_eq!(app.object_names().await, vec![name.clone()]);
    // The genuine ticket still works once.
    assert!(app.verifier.verify_and_claim("doc.file", &grant.ticket, &ledger).await.is_ok());
}

#[tokio::test]
async fn ticket_requests_are_checked() {
    let app = app().await;
    let cases = [
        (
            json!({"field": "doc.file", "filename": "a.txt", "size": 1, "path": "reports/x.txt"}),
            400,
            "raw_path_refused",
        ),
        (json!({"field": "doc.file", "filename": "a.txt", "size": 1, "name": "ingress/x"}), 400, "raw_path_refused"),
        (json!({"field": "ingress/../doc", "filename": "a.txt", "size": 1}), 404, "unknown_field"),
        (
            json!({"field": "doc.file", "filename": "a.txt", "size": MAX + 1, "content_type": "text/plain"}),
            413,
            "too_large",
        ),
        (
            json!({"field": "doc.file", "filename": "a.exe", "size": 10, "content_type": "application/x-msdownload"}),
            415,
            "content_type_refused",
        ),
        (json!({"field": "doc.file", "filename": "a.bin", "size": 10}), 415, "content_type_refused"),
        (
            json!({"field": "doc.file", "filename": "a.txt", "size": 10, "content_type": "text/plain\r\nx: y"}),
            400,
            "invalid_content_type",
        ),
        (json!({"field": "doc.file", "size": 10}), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = app.ticket(body.clone()).await;
        assert_eq!((got, answer["error"].as_str().unwrap()), (status, code), "{body}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(!message.is_empty() && !looks_like_code(message), "{body}: {message}");
    }
    let r = app
        .http
        .post(format!("{}/uploads", app.base))
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .http
        .post(format!("{}/uploads", app.base))
        .header("x-user", "mallory")
        .json(&json!({"field": "doc.file", "filename": "a.txt", "size": 1, "content_type": "text/plain"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "forbidden");
    // Content type guessed from the name when the browser sends none; wildcard accepted.
    let grant = app.grant("doc.file", "cat.png", b"png", "").await;
    assert_eq!(grant.content_type, "image/png");
    assert!(app.object_names().await.is_empty(), "a refused request stored nothing");
}

#[tokio::test]
async fn hostile_filenames_stay_inside_the_ingress_prefix() {
    let app = app().await;
    let long = "x".repeat(2000) + ".txt";
    type Expect = Box<dyn Fn(&str) -> bool>;
    let cases: Vec<(&str, Expect)> = vec![
        ("../../etc/passwd.txt", Box::new(|n| n == "passwd.txt")),
        ("a/b/../c.txt", Box::new(|n| n == "c.txt")),
        (r"..\..\win.txt", Box::new(|n| n == "win.txt")),
        ("nul\0byte.txt", Box::new(|n| n == "nulbyte.txt")),
        ("..", Box::new(|n| n == "file")),
        (&long, Box::new(|n| n.ends_with(".txt") && n.len() <= sea_gcp::upload::MAX_FILENAME_BYTES)),
        ("🐈‍⬛ café ünïcode.txt", Box::new(|n| n == "🐈‍⬛ café ünïcode.txt")),
    ];
    let mut names = Vec::new();
    for (filename, expect) in &cases {
        let grant = app.grant("doc.file", filename, b"data", "text/plain").await;
        let claims = claims_of(&grant.ticket);
        let (dir, leaf) = claims.name.rsplit_once('/').unwrap();
        assert!(dir.starts_with("_tmp/") && !dir["_tmp/".len()..].contains('/'), "{}", claims.name);
        assert!(expect(leaf), "{filename:?} -> {leaf:?}");
        assert!(!claims.name.contains("..") && !claims.name.contains('\0') && claims.name.len() <= 1024);
        assert_eq!(app.put(&grant, b"data".to_vec()).await.status(), 200, "{filename:?}");
        names.push(claims.name);
    }
    let mut stored = app.object_names().await;
    stored.sort();
    names.sort();
    assert_eq!(stored, names, "every upload landed exactly at its temp name");
}

#[tokio::test]
async fn signed_put_limits_are_enforced() {
    let app = app().await;
    let grant = app.grant("doc.file", "a.txt", b"small", "text/plain").await;
    // Wrong content type on the PUT.
    let mut req = app.http.put(&grant.url).body("small");
    req = req.header("content-type", "text/html");
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "content_type_mismatch");
    // More bytes than the signed length range: by Content-Length ...
    let r = app.put(&grant, vec![b'x'; MAX as usize + 1]).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "too_large");
    // ... and streamed without a Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..20).map(|_| Ok(vec![b'y'; 100])).collect();
    let mut req = app.http.put(&grant.url).body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
    for (k, v) in &grant.headers {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 413);
    // Tampered URL (a larger max).
    assert!(grant.url.contains("max=5"), "the local URL binds the declared size: {}", grant.url);
    let r = app
        .http
        .put(grant.url.replace("max=5", "max=100000"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(app.object_names().await.is_empty(), "nothing stored by refused uploads");
    assert_eq!(
        app.verifier.verify("doc.file", &grant.ticket).await.unwrap_err().problem,
        TicketProblem::BadUpload,
        "a ticket whose upload failed does not verify"
    );
}

#[tokio::test]
async fn resumable_sessions_resume_like_gcs() {
    let app = app().await;
    let data: Vec<u8> = (0..900u32).map(|i| (i % 251) as u8).collect();
    let grant = app.grant("doc.file", "big.txt", &data, "text/plain").await;
    assert!(grant.resumable, "above the threshold a resumable session is issued");
    let send = |range: String, body: Vec<u8>| {
        let mut req = app.http.put(&grant.url).header("content-range", range).body(body);
        for (k, v) in &grant.headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let r = send("bytes */900".into(), vec![]).await.unwrap();
    assert_eq!(r.status(), 308);
    assert!(r.headers().get("range").is_none(), "nothing received yet");
    let r = send("bytes 0-299/900".into(), data[..300].to_vec()).await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["range"], "bytes=0-299");
    // A client that lost the answer asks, then continues from there.
    let r = send("bytes */900".into(), vec![]).await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["range"].to_str().unwrap()), (308, "bytes=0-299"));
    // Re-sending an overlapping chunk is harmless.
    let r = send("bytes 200-599/900".into(), data[200..600].to_vec()).await.unwrap();
    assert_eq!(r.headers()["range"], "bytes=0-599");
    let r = send("bytes 600-899/900".into(), data[600..].to_vec()).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = send("bytes */900".into(), vec![]).await.unwrap();
    assert_eq!(r.status(), 200, "a finished session says so");
    let pending = app.verifier.verify("doc.file", &grant.ticket).await.unwrap();
    assert_eq!(app.store.get_bytes(&pending.temp_name).await.unwrap().as_ref(), &data[..]);

    // A session cannot grow past the signed maximum.
    let grant2 = app.grant("doc.file", "big2.txt", &data, "text/plain").await;
    let mut req =
        app.http.put(&grant2.url).header("content-range", format!("bytes 0-1000/{}", MAX + 1)).body(vec![0u8; 1001]);
    for (k, v) in &grant2.headers {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 413);
    let mut req = app.http.put(&grant2.url).header("content-range", "bytes 0-9/*").body(vec![0u8; 50]);
    for (k, v) in &grant2.headers {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 400, "a body longer than its range is refused");
    assert_eq!(app.object_names().await, vec![pending.temp_name]);
}

#[tokio::test]
async fn downloads_check_signatures_and_serve_ranges() {
    let app = app().await;
    let grant = app.grant("doc.file", "r.txt", b"0123456789", "text/plain").await;
    assert_eq!(app.put(&grant, b"0123456789".to_vec()).await.status(), 200);
    let name = claims_of(&grant.ticket).name;
    let mut opts = UrlOptions::default();
    opts.response_content_disposition = Some("attachment; filename=\"r.txt\"".into());
    let url = app.store.url(&name, opts).await.unwrap();
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"r.txt\"");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"0123456789");
    let r = app.http.get(&url).header("range", "bytes=2-4").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 2-4/10");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"234");
    let r = app.http.get(&url).header("range", "bytes=50-").send().await.unwrap();
    assert_eq!(r.status(), 416);
    let r = app.http.get(url.replace("r.txt%22", "evil.html%22")).send().await.unwrap();
    assert_eq!(r.status(), 403, "a changed parameter breaks the signature");
    let unsigned = url.split('?').next().unwrap().to_string();
    assert_eq!(app.http.get(&unsigned).send().await.unwrap().status(), 403);
    // An upload URL is not a download URL.
    assert_eq!(app.http.get(&grant.url).send().await.unwrap().status(), 403);
    // The widget is served.
    let js = app.http.get(format!("{}/uploads/widget.js", app.base)).send().await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(js.text().await.unwrap().contains("data-sea-gcp-field"));
    let css = app.http.get(format!("{}/uploads/widget.css", app.base)).send().await.unwrap();
    assert!(css.text().await.unwrap().contains(".sea-gcp-upload"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_uploads_do_not_cross() {
    let app = Arc::new(app().await);
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("upload number {i} ").repeat((i as usize % 7) + 1).into_bytes();
            let grant = app.grant("doc.file", "same-name.txt", &body, "text/plain").await;
            let r = app.put(&grant, body.clone()).await;
            assert_eq!(r.status(), 200, "upload {i}");
            (grant.ticket, body)
        }));
    }
    let mut seen = std::collections::HashSet::new();
    let ledger = UsedTickets::new();
    for task in tasks {
        let (ticket, body) = tokio::time::timeout(Duration::from_secs(60), task).await.unwrap().unwrap();
        let pending = app.verifier.verify_and_claim("doc.file", &ticket, &ledger).await.unwrap();
        assert!(seen.insert(pending.temp_name.clone()), "temp names are distinct");
        let stored = app.store.get(&pending.temp_name, GetOptions::default()).await.unwrap().bytes().await.unwrap();
        assert_eq!(stored.as_ref(), &body[..], "no cross-talk for {}", pending.temp_name);
    }
    assert_eq!(ledger.len(), 100);
    assert_eq!(app.object_names().await.len(), 100);
}

#[tokio::test]
async fn declared_size_binds_the_upload() {
    let app = app().await;
    // A ticket for 10 bytes: the field would take 1,000, the upload may take 10.
    let grant = app.grant("doc.file", "ten.txt", b"0123456789", "text/plain").await;
    assert_eq!(grant.headers.get("x-goog-content-length-range").map(String::as_str), Some("0,10"));
    let big = vec![b'x'; 5 * 1024 * 1024];
    let r = app.put(&grant, big.clone()).await;
    assert_eq!(r.status(), 413, "a 5 MiB body under a 10-byte ticket is refused");
    let r = app.put(&grant, vec![b'x'; 11]).await;
    assert_eq!(r.status(), 413, "one byte over the declared size is refused");
    assert!(app.object_names().await.is_empty(), "nothing stored");
    // Written around the URL (a server-side bug, another client of the bucket): verification refuses it.
    let name = claims_of(&grant.ticket).name;
    app.store
        .put(
            &name,
            sea_gcp::storage::PutPayload::Bytes(vec![b'x'; 500].into()),
            sea_gcp::storage::PutOptions::create_only().with_content_type("text/plain"),
        )
        .await
        .unwrap();
    let r = app.verifier.verify("doc.file", &grant.ticket).await.unwrap_err();
    assert_eq!(r.problem, TicketProblem::BadUpload);
    assert!(r.detail.contains("declared"), "{}", r.detail);
    assert!(r.message.contains("larger than announced"), "{}", r.message);
}

#[tokio::test]
async fn declared_size_binds_memory_and_emulator_uploads() {
    use sea_gcp::storage::MemoryStore;
    use sea_gcp::storage::{PutOptions, PutPayload};
    // Memory (no signed uploads: the bytes land by other means): verification refuses more than declared.
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::default_for("media"));
    let fields = UploadFields::new().register(UploadField::new("doc.file", memory.clone()).max_size(10 << 20)).unwrap();
    let signer = TicketSigner::new("k");
    let name = "_tmp/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/a.bin".to_string();
    let ticket = signer.issue(&TicketClaims {
        v: sea_gcp::upload::TICKET_VERSION,
        store: "media".into(),
        field: "doc.file".into(),
        name: name.clone(),
        original_name: "a.bin".into(),
        max_size: 10 << 20,
        size: 10,
        content_type: "application/octet-stream".into(),
        expires: chrono::Utc::now().timestamp() + 600,
        nonce: "n".into(),
        sub: None,
    });
    let router = UploadRouter::new(fields, signer).allow_all();
    let (parts, _) = json_request(None).into_parts();
    let body =
        json!({"field": "doc.file", "filename": "a.bin", "size": 10, "content_type": "application/octet-stream"});
    memory
        .put(
            &name,
            PutPayload::Bytes(vec![0u8; 5 << 20].into()),
            PutOptions::create_only().with_content_type("application/octet-stream"),
        )
        .await
        .unwrap();
    let r = router.verifier().verify("doc.file", &ticket).await.unwrap_err();
    assert_eq!(r.problem, TicketProblem::BadUpload, "{r:?}");
    assert!(r.detail.contains("declared"), "{}", r.detail);
    assert!(r.message.contains("larger than announced"), "{}", r.message);

    // GCS (emulator): the signed PUT carries and signs `x-goog-content-length-range: 0,10`.
    let Ok(host) = std::env::var("STORAGE_EMULATOR_HOST") else {
        if std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("STORAGE_EMULATOR_HOST is required (SEA_GCP_REQUIRE_ALL=1)");
        }
        eprintln!(
            "SKIPPED: the emulator half of declared_size_binds_memory_and_emulator_uploads (no STORAGE_EMULATOR_HOST)"
        );
        return;
    };
    let bucket = format!("size-{}", uuid::Uuid::new_v4().simple());
    sea_gcp::testing::conformance::create_emulator_bucket(&host, &bucket, false).await;
    let config = StoreConfig { bucket_name: bucket, api_endpoint: Some(host.clone()), ..StoreConfig::gcs("x") };
    let gcs = sea_gcp::storage::open("media", config).await.unwrap();
    let fields = UploadFields::new().register(UploadField::new("doc.file", gcs).max_size(10 << 20)).unwrap();
    let router = UploadRouter::new(fields, TicketSigner::new("k")).allow_all();
    let grant = router.issue(&parts, body.to_string().as_bytes()).await.unwrap();
    assert_eq!(grant.headers.get("x-goog-content-length-range").map(String::as_str), Some("0,10"));
    let url = url::Url::parse(&grant.url).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let signed: Vec<&str> = query["X-Goog-SignedHeaders"].split(';').collect();
    assert!(signed.contains(&"x-goog-content-length-range"), "the range is signed: {signed:?}");
}

fn json_request(user: Option<&str>) -> axum::http::Request<()> {
    let mut b = axum::http::Request::post("/uploads").header("content-type", "application/json");
    if let Some(u) = user {
        b = b.header("x-user", u);
    }
    b.body(()).unwrap()
}

#[tokio::test]
async fn content_type_lists_cannot_bypass_the_accept_list() {
    let app = app().await;
    for ct in [
        "image/png; a=b, text/html",
        "image/png, text/html",
        "image/png;a=b,text/html",
        "image/png; a=\"b\", text/html",
        "text/plain text/html",
        "image /png",
    ] {
        let (status, body) =
            app.ticket(json!({"field": "doc.file", "filename": "x.png", "size": 3, "content_type": ct})).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_content_type")), "{ct:?}: {body}");
    }
    // A well-formed type outside the list is refused as before; parameters are dropped from the binding.
    let (status, body) =
        app.ticket(json!({"field": "doc.file", "filename": "x.html", "size": 3, "content_type": "text/html"})).await;
    assert_eq!((status, body["error"].as_str()), (415, Some("content_type_refused")), "{body}");
    let grant = app.grant("doc.file", "x.png", b"png", "IMAGE/PNG; a=b").await;
    assert_eq!(grant.content_type, "image/png");
    assert_eq!(grant.headers.get("content-type").map(String::as_str), Some("image/png"));
    assert_eq!(app.object_names().await, Vec::<String>::new(), "no refused request stored anything");
}

#[tokio::test]
async fn ticket_requests_must_be_json() {
    let app = app().await;
    let body = json!({"field": "doc.file", "filename": "a.txt", "size": 1, "content_type": "text/plain"}).to_string();
    // What a cross-site form can send without a preflight: text/plain, urlencoded, multipart; and none.
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
        Some("application/json, text/plain"),
    ] {
        let mut req =
            app.http.post(format!("{}/uploads", app.base)).header("origin", "https://evil.example").body(body.clone());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 415, "{ct:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "json_required");
        assert!(v.get("ticket").is_none());
    }
    let r = app
        .http
        .post(format!("{}/uploads", app.base))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn tickets_bound_to_a_subject_verify_only_for_it() {
    let app = app().await;
    let body = json!({"field": "doc.file", "filename": "a.txt", "size": 3, "content_type": "text/plain"});
    let r = app.http.post(format!("{}/uploads", app.base)).header("x-user", "alice").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let grant: TicketResponse = r.json().await.unwrap();
    assert_eq!(claims_of(&grant.ticket).sub.as_deref(), Some("alice"));
    assert_eq!(app.put(&grant, b"abc".to_vec()).await.status(), 200);
    let name = claims_of(&grant.ticket).name;
    for subject in [Some("bob"), None, Some("alice ")] {
        let r = app.verifier.verify_for("doc.file", &grant.ticket, subject).await.unwrap_err();
        assert_eq!((r.problem, r.problem.status()), (TicketProblem::WrongSubject, 403), "{subject:?}");
    }
    assert_eq!(app.object_names().await, vec![name.clone()], "nothing changed by the refusals");
    let ok = app.verifier.verify_for("doc.file", &grant.ticket, Some("alice")).await.unwrap();
    assert_eq!(ok.temp_name, name);
    // An unbound ticket (no user) verifies for anyone.
    let unbound = app.grant("doc.file", "b.txt", b"xyz", "text/plain").await;
    assert!(claims_of(&unbound.ticket).sub.is_none());
    assert_eq!(app.put(&unbound, b"xyz".to_vec()).await.status(), 200);
    assert!(app.verifier.verify_for("doc.file", &unbound.ticket, Some("bob")).await.is_ok());
}

#[test]
#[should_panic(expected = "choose who may upload")]
fn a_router_without_an_authorisation_choice_does_not_serve() {
    let store: Arc<dyn Store> = Arc::new(sea_gcp::storage::MemoryStore::default_for("media"));
    let fields = UploadFields::new().register(UploadField::new("doc.file", store)).unwrap();
    let _: axum::Router = UploadRouter::new(fields, TicketSigner::new("k")).router();
}

#[tokio::test]
async fn storage_errors_are_not_echoed() {
    // A store whose signing fails with an internal detail: the client sees a stable code only.
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        bucket_name: "b".into(),
        api_endpoint: Some("http://127.0.0.1:9".into()),
        signing: sea_gcp::config::SigningConfig::ServiceAccountKey { path: dir.path().join("internal-key-path.json") },
        ..StoreConfig::gcs("x")
    };
    let gcs = sea_gcp::storage::open("media", config).await.unwrap();
    let fields = UploadFields::new().register(UploadField::new("doc.file", gcs)).unwrap();
    let router = UploadRouter::new(fields, TicketSigner::new("k")).allow_all();
    let (parts, _) = json_request(None).into_parts();
    let body = json!({"field": "doc.file", "filename": "a.txt", "size": 3, "content_type": "text/plain"});
    let r = router.issue(&parts, body.to_string().as_bytes()).await.unwrap_err();
    assert_eq!(r.error, "storage_unavailable");
    assert!(!r.message.contains("internal-key-path") && !r.message.contains("127.0.0.1"), "{}", r.message);
}

/// The hook runs before the body is read: an anonymous caller gets the same 401 for a registered
/// field, an unknown one and a malformed body, so it cannot learn which field names exist; a signed-in
/// caller gets the usual answers.
#[tokio::test]
async fn anonymous_callers_learn_no_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(LocalStore::new("media", StoreConfig::local(dir.path())).await.unwrap().with_url_secret("url-secret"));
    let fields = UploadFields::new().register(UploadField::new("doc.file", store.clone()).max_size(MAX)).unwrap();
    let router = UploadRouter::new(fields, TicketSigner::new("ticket-secret")).authorize(AuthenticateFn(
        |parts: &axum::http::request::Parts| match parts.headers.get("x-user").and_then(|u| u.to_str().ok()) {
            Some(user) => Ok(Grant::for_subject(user)),
            None => Err(Refusal::unauthenticated("Sign in to upload files.")),
        },
    ));
    let request = |user: Option<&str>| {
        let mut r = axum::http::Request::post("/uploads").header("content-type", "application/json");
        if let Some(u) = user {
            r = r.header("x-user", u);
        }
        r.body(()).unwrap().into_parts().0
    };
    let known = json!({"field": "doc.file", "filename": "a.txt", "size": 1, "content_type": "text/plain"});
    let unknown = json!({"field": "doc.secret_field", "filename": "a.txt", "size": 1});
    let mut answers = Vec::new();
    for body in [known.to_string(), unknown.to_string(), "not json".to_string()] {
        let refusal = router.issue(&request(None), body.as_bytes()).await.unwrap_err();
        answers.push((refusal.status.as_u16(), refusal.error, refusal.message));
    }
    assert_eq!(answers[0], (401, "unauthenticated".to_string(), "Sign in to upload files.".to_string()));
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    // Signed in: the unknown field is named as such, in plain words.
    let refusal = router.issue(&request(Some("alice")), unknown.to_string().as_bytes()).await.unwrap_err();
    assert_eq!((refusal.status.as_u16(), refusal.error.as_str()), (404, "unknown_field"));
    assert!(!looks_like_code(&refusal.message), "{}", refusal.message);
    let granted = router.issue(&request(Some("alice")), known.to_string().as_bytes()).await.unwrap();
    assert!(!granted.ticket.is_empty());
}
