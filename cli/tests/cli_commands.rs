//! The `sea-gcp` subcommands end to end through the built binary, on local stores (and the emulator for
//! `doctor`).

use std::path::PathBuf;
use std::process::Command;

fn sea_gcp(args: &[&str], settings: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sea-gcp"))
        .args(args)
        .arg("--settings")
        .arg(settings)
        .env_remove("SEA_GCP_SETTINGS")
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `DIR/sea-gcp.toml` naming one local store `key`, rooted at `DIR/store`, with `extra` options: the
/// settings file and the store's root.
fn local_store_settings(dir: &std::path::Path, key: &str, extra: &str) -> (PathBuf, PathBuf) {
    let settings = dir.join("sea-gcp.toml");
    let root = dir.join("store");
    let text = format!("[stores.{key}]\nbackend = \"local\"\nroot = {:?}\n{extra}", root.display().to_string());
    std::fs::write(&settings, text).unwrap();
    (settings, root)
}

#[test]
fn sync_static_uploads_only_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("css/app.css"), "body{}".repeat(100)).unwrap();
    std::fs::write(site.join("app.js"), "let a = 1;").unwrap();
    let (settings, root) = local_store_settings(tmp.path(), "staticfiles", "gzip = true\n");
    let site_arg = site.to_str().unwrap();

    let (ok, out, err) = sea_gcp(&["sync-static", site_arg, "--store", "static", "--dry-run"], &settings);
    assert!(ok, "{err}");
    assert!(out.contains("upload  app.js (new") && out.contains("2 new, 0 changed"), "{out}");
    assert!(!root.join("objects/app.js.json").exists(), "a dry run changes nothing");

    let (ok, out, err) = sea_gcp(&["sync-static", site_arg, "--quiet"], &settings);
    assert!(ok, "{err}");
    assert!(out.contains("2 uploaded (2 new, 0 changed"), "{out}");
    let css_meta = std::fs::read_to_string(root.join("objects/css.d/app.css.json")).unwrap();
    assert!(css_meta.contains("\"content_encoding\":\"gzip\""), "{css_meta}");

    std::fs::write(site.join("app.js"), "let a = 2;").unwrap();
    std::fs::remove_file(site.join("css/app.css")).unwrap();
    let (ok, out, err) = sea_gcp(&["sync-static", site_arg, "--quiet", "--delete"], &settings);
    assert!(ok, "{err}");
    assert!(out.contains("1 uploaded (0 new, 1 changed") && out.contains("1 deleted"), "{out}");

    let (ok, _, err) = sea_gcp(&["sync-static", "/no/such/dir"], &settings);
    assert!(!ok && err.contains("is not a directory"), "{err}");
    let (ok, _, err) = sea_gcp(&["sync-static", site_arg, "--store", "nope"], &settings);
    assert!(!ok && err.contains("no such store"), "{err}");
}

#[test]
fn repair_replays_an_empty_outbox_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = tmp.path().join("sea-gcp.toml");
    std::fs::write(
        &settings,
        format!("[stores.media]\nbackend = \"local\"\nroot = {:?}\n", tmp.path().join("m").display().to_string()),
    )
    .unwrap();
    let db = format!("sqlite://{}?mode=rwc", tmp.path().join("app.db").display());
    // Create the outbox table the way an application's migration would.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = sea_orm::Database::connect(&db).await.unwrap();
        sea_gcp::promote::Outbox::default().create(&conn).await.unwrap();
    });
    let (ok, out, err) = sea_gcp(&["repair", "--database-url", &db, "--grace", "0s"], &settings);
    assert!(ok, "{err}");
    assert!(out.contains("repair: examined 0, finished 0, undone 0"), "{out}");
    let (ok, _, err) = sea_gcp(&["repair", "--database-url", &db, "--grace", "soon"], &settings);
    assert!(!ok && err.contains("duration \"soon\""), "{err}");
}

#[test]
fn doctor_reports_what_a_bucket_lacks() {
    let Ok(host) = std::env::var("STORAGE_EMULATOR_HOST") else {
        assert!(std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() != Ok("1"), "STORAGE_EMULATOR_HOST is required");
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: doctor CLI test — STORAGE_EMULATOR_HOST is not set");
        return;
    };
    let bucket = format!("doctor-{}", uuid::Uuid::new_v4().simple());
    let status = Command::new("curl")
        .args(["-sS", "--fail", "-X", "POST", "-H", "content-type: application/json"])
        .arg("--data")
        .arg(format!("{{\"name\":\"{bucket}\"}}"))
        .arg(format!("{host}/storage/v1/b?project=test"))
        .status()
        .unwrap();
    assert!(status.success());
    let tmp = tempfile::tempdir().unwrap();
    let settings = tmp.path().join("sea-gcp.toml");
    std::fs::write(&settings, format!("[stores.media]\nbucket_name = \"{bucket}\"\napi_endpoint = \"{host}\"\n"))
        .unwrap();
    let (ok, out, err) = sea_gcp(&["doctor", "--origin", "https://app.example.com"], &settings);
    // A fresh emulator bucket has no CORS configuration: direct uploads from a browser would fail.
    assert!(!ok, "{out}");
    assert!(out.contains("cors") && out.contains("error"), "{out}");
    assert!(err.contains("problem(s) that break direct uploads"), "{err}");
}

#[test]
fn download_writes_the_object_in_slices_and_checks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(site.join("big.bin"), &data).unwrap();
    let (settings, _) = local_store_settings(tmp.path(), "media", "");
    let (ok, _, err) = sea_gcp(&["sync-static", site.to_str().unwrap(), "--store", "media", "--quiet"], &settings);
    assert!(ok, "{err}");

    let file = tmp.path().join("out.bin");
    let file_arg = file.to_str().unwrap();
    let sliced = ["--sliced-threshold", "1", "--min-slice-size", "64K", "--max-slices", "3"];
    let (ok, out, err) = sea_gcp(&[&["download", "big.bin", file_arg][..], &sliced[..]].concat(), &settings);
    assert!(ok, "{err}");
    assert!(
        out.contains("(generation ") && out.contains("300000 bytes) to ") && out.contains("in 3 slice(s)"),
        "{out}"
    );
    assert!(out.contains("CRC32C checked"), "{out}");
    assert!(std::fs::read(&file).unwrap() == data);

    // Below the threshold: one stream; a directory gets the object's last segment as the file name.
    let dir = tmp.path().join("into");
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, out, err) = sea_gcp(&["download", "big.bin", dir.to_str().unwrap()], &settings);
    assert!(ok, "{err}");
    assert!(out.contains("in 1 slice(s)"), "{out}");
    assert!(std::fs::read(dir.join("big.bin")).unwrap() == data);

    // A missing object is an error and leaves the file already there as it was.
    std::fs::write(&file, b"kept").unwrap();
    let (ok, _, err) = sea_gcp(&["download", "absent.bin", file_arg], &settings);
    assert!(!ok, "a missing object fails the command");
    assert!(err.contains("object `absent.bin` not found in store `media`"), "{err:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"kept");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 5, "no temporary file left beside the destination");
    let (ok, _, err) = sea_gcp(&["download", "big.bin", file_arg, "--sliced-threshold", "1.5M"], &settings);
    assert!(!ok && err.contains("unknown size unit"), "{err}");

    // Into a folder that does not exist: the error names the file and the folder to create.
    let missing = tmp.path().join("no/such/folder/big.bin");
    let (ok, _, err) = sea_gcp(&["download", "big.bin", missing.to_str().unwrap()], &settings);
    assert!(!ok, "a missing folder fails the command");
    assert!(err.contains(&missing.display().to_string()) && err.contains("does not exist: create it first"), "{err}");
    assert!(!tmp.path().join("no").exists(), "nothing is created");
}

#[test]
fn commands_that_sign_nothing_do_not_warn_about_the_url_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("app.js"), "let a = 1;").unwrap();
    let (settings, _) = local_store_settings(tmp.path(), "static", "");
    let out = Command::new(env!("CARGO_BIN_EXE_sea-gcp"))
        .args(["sync-static", site.to_str().unwrap(), "--store", "static", "--settings"])
        .arg(&settings)
        .env_remove("SEA_GCP_SECRET_KEY")
        .env_remove("SEA_GCP_SETTINGS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("SEA_GCP_SECRET_KEY") && !err.contains("WARN"), "sync-static signs no URL: {err}");
}

#[test]
fn missing_credentials_fail_at_once_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = tmp.path().join("sea-gcp.toml");
    std::fs::write(&settings, "[stores.media]\nbucket_name = \"no-credentials-here\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sea-gcp"))
        .args(["download", "a.txt", tmp.path().join("a.txt").to_str().unwrap(), "--settings"])
        .arg(&settings)
        .env("HOME", tmp.path())
        .env("GCE_METADATA_HOST", "127.0.0.1:9") // nothing listens there: off Google Cloud
        .env_remove("CLOUDSDK_CONFIG")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("STORAGE_EMULATOR_HOST")
        .env_remove("SEA_GCP_SETTINGS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("retrying"), "no credentials is not a transient error: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no Google credentials found") && err.contains("gcloud auth application-default login"),
        "{err}"
    );
}

#[test]
fn settings_prints_every_value_with_its_origin_and_hides_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let (settings, _) = local_store_settings(tmp.path(), "media", "");
    std::fs::write(
        &settings,
        format!(
            "{}\n[uploads]\nsecret = \"0123456789abcdef0123456789abcdef-s3cr3t\"\n",
            std::fs::read_to_string(&settings).unwrap()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sea-gcp"))
        .args(["settings", "--settings"])
        .arg(&settings)
        .env("GCP_TASKS_DEFAULT_QUEUE_NAME", "primary")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("tasks.queue = \"primary\"  # env GCP_TASKS_DEFAULT_QUEUE_NAME"), "{stdout}");
    assert!(stdout.contains("stores.media.backend = \"local\"  # file"), "{stdout}");
    assert!(stdout.contains("uploads.secret = \"***\"") && !stdout.contains("s3cr3t"), "{stdout}");
    // A typo in the file is refused with the nearest name.
    std::fs::write(&settings, "[tasks]\nquue = \"q\"\n").unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_sea-gcp")).args(["settings", "--settings"]).arg(&settings).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("did you mean `queue`?"), "{stderr}");
}
