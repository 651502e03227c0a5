//! Attacks on the local store's routes, over real HTTP: forged URL signatures, unsigned overrides,
//! active content, hostile `Range` headers, and error bodies. Each sends the attack and checks that it
//! is refused and that nothing changed.

use std::sync::Arc;

use sea_gcp::StoreConfig;
use sea_gcp::storage::LocalStore;
use sea_gcp::storage::{ObjectParameters, PutOptions, SignedUploadOptions, Store, UrlOptions};
use sea_gcp::upload::{ActiveContent, LocalRoutesOptions, SANDBOX_CSP, local_store_routes_with};

struct App {
    origin: String,
    store: Arc<LocalStore>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn app_with(configure: impl FnOnce(&mut StoreConfig), options: LocalRoutesOptions) -> App {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let mut config = StoreConfig::local(dir.path());
    config.base_url = Some(format!("{origin}/storage/media"));
    configure(&mut config);
    let store = Arc::new(LocalStore::new("media", config).await.unwrap().with_url_secret("url-secret"));
    let routes: axum::Router = local_store_routes_with(store.clone(), options);
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    App { origin, store, http: reqwest::Client::new(), _dir: dir }
}

async fn app() -> App {
    app_with(|_| {}, LocalRoutesOptions::default()).await
}

fn split(url: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    (path.to_string(), url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
}

fn join(path: &str, pairs: &[(String, String)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    format!("{path}?{query}")
}

/// The previous MAC input (`name=value` lines) of a parameter list: a forgery keeps it unchanged.
fn legacy_canonical(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<_> = pairs.iter().filter(|(k, _)| k != "sig").cloned().collect();
    sorted.sort();
    sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
}

fn upload_options(content_type: &str, max_size: u64) -> SignedUploadOptions {
    let mut opts = SignedUploadOptions::default();
    opts.content_type = content_type.into();
    opts.max_size = max_size;
    opts.create_only = true;
    opts
}

fn nosniff(r: &reqwest::Response) -> bool {
    r.headers().get("x-content-type-options").is_some_and(|v| v == "nosniff")
}

async fn error_code(r: reqwest::Response) -> String {
    let body: serde_json::Value = r.json().await.unwrap();
    body["error"].as_str().unwrap_or_default().to_string()
}

const PAGE: &str = "<html><script>alert(document.cookie)</script></html>";

#[tokio::test]
async fn moving_equals_between_name_and_value_on_a_download_url_is_refused() {
    let app = app().await;
    let put = PutOptions::default().with_content_type("text/html");
    app.store.put("evil.html", PAGE.into(), put).await.unwrap();
    let mut opts = UrlOptions::default();
    opts.response_content_disposition = Some("attachment; filename=\"evil.html\"".into());
    let url = app.store.url("evil.html", opts).await.unwrap();
    let (path, pairs) = split(&url);
    // The application's URL downloads, as an attachment.
    let ok = app.http.get(url.clone()).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(nosniff(&ok));
    assert!(ok.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    // The attack: `response-content-disposition=attachment; filename="evil.html"` becomes a parameter
    // named `response-content-disposition=attachment; filename` whose value is `"evil.html"`. The old
    // `name=value` MAC input is the same, so the old routes served the page inline.
    let forged: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| match v.split_once('=') {
            Some((head, tail)) if k == "response-content-disposition" => (format!("{k}={head}"), tail.to_string()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    assert_eq!(legacy_canonical(&forged), legacy_canonical(&pairs), "the forgery keeps the old MAC input");
    let r = app.http.get(join(&path, &forged)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(nosniff(&r), "refusals are nosniff too");
    assert_eq!(error_code(r).await, "unknown_parameter");
    // An extra parameter on a valid URL is refused as well.
    let mut extra = pairs.clone();
    extra.insert(0, ("response-content-type".into(), "text/html".into()));
    let r = app.http.get(join(&path, &extra)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "bad_signature");
    // A repeated parameter (which a map would collapse) is refused.
    let mut repeated = pairs.clone();
    repeated.push(("expires".into(), "1".into()));
    let r = app.http.get(join(&path, &repeated)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "repeated_parameter");
}

#[tokio::test]
async fn moving_separators_on_an_upload_url_keeps_create_only_and_the_content_type() {
    let app = app().await;
    let original = app
        .store
        .put("doc.txt", "original".into(), PutOptions::default().with_content_type("text/plain"))
        .await
        .unwrap();
    let grant = app.store.signed_upload("doc.txt", upload_options("text/plain", 100)).await.unwrap();
    let (path, pairs) = split(&grant.url);
    assert!(pairs.iter().any(|(k, v)| k == "create" && v == "1"), "{}", grant.url);
    // The attack from the issue: `create=1&ct=text/plain` -> `create%3D1%0Act=text/plain`, which drops
    // both create-only and the content-type binding while the old MAC input stays the same.
    let ct = pairs.iter().find(|(k, _)| k == "ct").unwrap().1.clone();
    let mut forged: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != "create" && k != "ct").cloned().collect();
    forged.push(("create=1\nct".to_string(), ct));
    assert_eq!(legacy_canonical(&forged), legacy_canonical(&pairs), "the forgery keeps the old MAC input");
    let forged_url = join(&path, &forged);
    for content_type in ["application/octet-stream", "text/html", "text/plain"] {
        let r = app
            .http
            .put(&forged_url)
            .header("content-type", content_type)
            .body("overwritten <script>")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{content_type}");
        assert!(nosniff(&r));
        assert_eq!(error_code(r).await, "unknown_parameter");
    }
    // Nothing changed.
    let now = app.store.head("doc.txt", Default::default()).await.unwrap();
    assert_eq!((now.generation, now.content_type.as_deref()), (original.generation, Some("text/plain")));
    assert_eq!(app.store.get_bytes("doc.txt").await.unwrap(), "original");
    // The genuine URL is still create-only.
    let r = app.http.put(grant.url.clone()).header("content-type", "text/plain").body("x");
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(app.store.get_bytes("doc.txt").await.unwrap(), "original");
    // An unknown parameter appended to a genuine URL for a new name creates nothing.
    let grant = app.store.signed_upload("new.txt", upload_options("text/plain", 100)).await.unwrap();
    let r = app
        .http
        .put(format!("{}&x-goog-acl=public-read", grant.url))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!app.store.exists("new.txt").await.unwrap());
}

#[tokio::test]
async fn unsigned_overrides_are_not_honoured_on_public_stores() {
    for public in [(|c: &mut StoreConfig| c.querystring_auth = false) as fn(&mut StoreConfig), |c: &mut StoreConfig| {
        c.default_acl = Some("publicRead".into())
    }] {
        let app = app_with(public, LocalRoutesOptions::default()).await;
        assert!(app.store.config().public_urls());
        // An "image" whose bytes are a page.
        let put = PutOptions::default().with_content_type("image/png");
        app.store.put("cat.png", PAGE.into(), put).await.unwrap();
        let base = format!("{}/storage/media/cat.png", app.origin);
        for attack in [
            "response-content-type=text%2Fhtml",
            "response-content-type=text%2Fhtml&response-content-disposition=inline",
            "response-content-disposition=inline%3B%20filename%3D%22cat.html%22&response-content-type=text%2Fhtml",
        ] {
            let r = app.http.get(format!("{base}?{attack}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{attack}");
            assert_eq!(r.headers()["content-type"], "image/png", "{attack}");
            assert!(r.headers().get("content-disposition").is_none(), "{attack}");
            assert!(nosniff(&r), "{attack}");
        }
        // Asking the store for an override signs the URL, and then it counts.
        let mut opts = UrlOptions::default();
        opts.response_content_type = Some("image/x-icon".into());
        let url = app.store.url("cat.png", opts).await.unwrap();
        assert!(url.contains("sig="), "{url}");
        let r = app.http.get(url.clone()).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "image/x-icon");
        // A plain public URL still works.
        let url = app.store.url("cat.png", UrlOptions::default()).await.unwrap();
        assert!(!url.contains("sig="), "{url}");
        let r = app.http.get(url.clone()).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "image/png"));
    }
}

#[tokio::test]
async fn active_types_are_attachments_unless_the_app_opts_in() {
    let cases = [
        (LocalRoutesOptions::default(), Some("attachment"), Some("sandbox")),
        (LocalRoutesOptions::default().with_active_content(ActiveContent::Sandbox), None, Some(SANDBOX_CSP)),
        (LocalRoutesOptions::default().with_active_content(ActiveContent::Inline), None, None),
    ];
    for (options, disposition, csp) in cases {
        let mode = options.active_content;
        let app = app_with(|_| {}, options).await;
        for (name, ct) in [
            ("page.html", "text/html; charset=utf-8"),
            ("logo.svg", "image/svg+xml"),
            ("feed.xml", "application/atom+xml"),
            ("app.js", "text/javascript"),
            ("odd.png", "image/png, text/html"),
        ] {
            let params = ObjectParameters {
                content_disposition: Some(format!("inline; filename=\"{name}\"")),
                ..Default::default()
            };
            let put = PutOptions::default().with_params(params).with_content_type(ct);
            app.store.put(name, PAGE.into(), put).await.unwrap();
            let url = app.store.url(name, UrlOptions::default()).await.unwrap();
            let r = app.http.get(url.clone()).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(nosniff(&r));
            let got = r.headers().get("content-disposition").map(|v| v.to_str().unwrap().to_string());
            match disposition {
                Some(d) => assert_eq!(got, Some(format!("{d}; filename=\"{name}\"")), "{mode:?} {name}"),
                None => assert_eq!(got, Some(format!("inline; filename=\"{name}\"")), "{mode:?} {name}"),
            }
            let got_csp = r.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_string());
            assert_eq!(got_csp.as_deref(), csp, "{mode:?} {name}");
        }
        // A passive type is served inline, with no CSP, in every mode.
        app.store.put("photo.png", "png".into(), PutOptions::default().with_content_type("image/png")).await.unwrap();
        let url = app.store.url("photo.png", UrlOptions::default()).await.unwrap();
        let r = app.http.get(url.clone()).send().await.unwrap();
        assert!(
            r.headers().get("content-disposition").is_none() && r.headers().get("content-security-policy").is_none()
        );
        assert!(nosniff(&r));
    }
    // A signed override to an active type is an attachment too.
    let app = app().await;
    app.store.put("photo.png", PAGE.into(), PutOptions::default().with_content_type("image/png")).await.unwrap();
    let mut opts = UrlOptions::default();
    opts.response_content_type = Some("text/html".into());
    let url = app.store.url("photo.png", opts).await.unwrap();
    let r = app.http.get(url.clone()).send().await.unwrap();
    assert_eq!(r.headers()["content-disposition"], "attachment");
}

#[tokio::test]
async fn hostile_ranges_are_clamped_or_416_never_a_panic() {
    let app = app().await;
    let data = "0123456789";
    app.store.put("r.txt", data.into(), PutOptions::default()).await.unwrap();
    let url = app.store.url("r.txt", UrlOptions::default()).await.unwrap();
    let get = |range: &'static str| {
        let req = app.http.get(&url).header("range", range);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let content_range = r.headers().get("content-range").map(|v| v.to_str().unwrap().to_string());
            (status, content_range, r.text().await.unwrap())
        }
    };
    // A last byte past the end (even u64::MAX) is clamped (RFC 9110 §14.1.2).
    assert_eq!(get("bytes=0-18446744073709551615").await, (200, None, data.into()));
    assert_eq!(get("bytes=2-18446744073709551615").await, (206, Some("bytes 2-9/10".into()), "23456789".into()));
    assert_eq!(get("bytes=3-4").await, (206, Some("bytes 3-4/10".into()), "34".into()));
    assert_eq!(get("bytes=-18446744073709551615").await, (200, None, data.into()));
    // A first byte at or past the end is unsatisfiable.
    for range in
        ["bytes=10-", "bytes=18446744073709551615-18446744073709551615", "bytes=18446744073709551615-", "bytes=-0"]
    {
        let (status, content_range, _) = get(range).await;
        assert_eq!((status, content_range.as_deref()), (416, Some("bytes */10")), "{range}");
    }
    // Ranges that do not parse (too large for a number, reversed, several) are ignored: 200.
    for range in ["bytes=0-18446744073709551616", "bytes=5-2", "bytes=0-1,3-4", "items=0-1"] {
        assert_eq!(get(range).await, (200, None, data.into()), "{range}");
    }
    // The server is still up.
    assert_eq!(get("bytes=0-0").await.0, 206);
}

#[tokio::test]
async fn storage_errors_reach_clients_as_a_code_and_a_generic_message() {
    let app = app().await;
    app.store.put("gone.txt", "x".into(), PutOptions::default()).await.unwrap();
    let url = app.store.url("gone.txt", UrlOptions::default()).await.unwrap();
    // Break the store underneath: the blob file disappears, so reading fails with an I/O error whose
    // text names the store's directory.
    let root = app.store.config().root.clone().unwrap();
    for entry in std::fs::read_dir(root.join("blobs")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let r = app.http.get(url.clone()).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(nosniff(&r));
    let body = r.text().await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "storage_error");
    assert!(!body.contains(root.to_str().unwrap()) && !body.contains("No such file"), "{body}");
}
