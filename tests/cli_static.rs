//! `sea-gcp sync-static` end to end through the built binary, on a local store.

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

#[test]
fn sync_static_uploads_only_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("css/app.css"), "body{}".repeat(100)).unwrap();
    std::fs::write(site.join("app.js"), "let a = 1;").unwrap();
    let settings = tmp.path().join("sea-gcp.toml");
    let root = tmp.path().join("store");
    std::fs::write(
        &settings,
        format!("[stores.staticfiles]\nbackend = \"local\"\nroot = {:?}\ngzip = true\n", root.display().to_string()),
    )
    .unwrap();
    let site_arg = site.to_str().unwrap();

    let (ok, out, err) = sea_gcp(&["sync-static", site_arg, "--store", "static", "--dry-run"], &settings);
    assert!(ok, "{err}");
    assert!(out.contains("upload  app.js (new") && out.contains("2 new, 0 changed"), "{out}");
    assert!(!root.join("meta/app.js.json").exists(), "a dry run changes nothing");

    let (ok, out, err) = sea_gcp(&["sync-static", site_arg, "--quiet"], &settings);
    assert!(ok, "{err}");
    assert!(out.contains("2 uploaded (2 new, 0 changed"), "{out}");
    let css_meta = std::fs::read_to_string(root.join("meta/css/app.css.json")).unwrap();
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
