//! Expiring abandoned uploads: the library operation on a local store and on GCS (fake-gcs-server), the
//! local routes' timer (and that it stops with the router), and `sea-gcp cleanup` through the binary.

use std::path::Path;

mod cli_support;
mod emulator_support;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sea_gcp::StoreConfig;
use sea_gcp::storage::LocalStore;
use sea_gcp::storage::{PutOptions, Store, open};
use sea_gcp::testing::conformance;
use sea_gcp::upload::cleanup::{CleanupOptions, cleanup_local_store, cleanup_temp_objects};
use sea_gcp::upload::{LocalRoutesOptions, local_store_routes_with};

const HOUR: Duration = Duration::from_secs(3600);

/// Write `path` (relative to `root`) and set its modification time `age` in the past.
fn write_aged(root: &Path, path: &str, age: Duration) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"partial").unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

async fn local_store(root: &Path) -> Arc<LocalStore> {
    Arc::new(LocalStore::new("media", StoreConfig::local(root)).await.unwrap())
}

async fn names(store: &dyn Store) -> Vec<String> {
    use futures::TryStreamExt;
    let mut names: Vec<String> = store.list_all(None).map_ok(|m| m.name).try_collect().await.unwrap();
    names.sort();
    names
}

#[tokio::test]
async fn local_cleanup_expires_old_temp_objects_and_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path()).await;
    store.put("_tmp/0190/a.txt", "a".into(), PutOptions::default()).await.unwrap();
    store.put("docs/keep.txt", "k".into(), PutOptions::default()).await.unwrap();
    write_aged(dir.path(), "tmp/sessions/old.part", 2 * 86_400 * Duration::from_secs(1));
    write_aged(dir.path(), "tmp/0190-interrupted-write", 2 * 86_400 * Duration::from_secs(1));
    write_aged(dir.path(), "tmp/sessions/fresh.part", Duration::from_secs(5));

    // A dry run reports the stale files and removes nothing; the fresh temp object is not due.
    let dry = cleanup_local_store(&store, &CleanupOptions::default().with_dry_run(true)).await.unwrap();
    assert!(dry.dry_run && dry.objects.is_empty(), "{dry:?}");
    let files: Vec<String> = dry.files.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(files, ["tmp/0190-interrupted-write", "tmp/sessions/old.part"]);
    assert!(dir.path().join("tmp/sessions/old.part").exists(), "a dry run removes nothing");

    let report = cleanup_local_store(&store, &CleanupOptions::default()).await.unwrap();
    assert_eq!(report.files, dry.files);
    assert!(report.objects.is_empty());
    assert!(
        !dir.path().join("tmp/sessions/old.part").exists() && !dir.path().join("tmp/0190-interrupted-write").exists()
    );
    assert!(dir.path().join("tmp/sessions/fresh.part").exists(), "a session touched recently is kept");
    assert_eq!(names(store.as_ref()).await, ["_tmp/0190/a.txt", "docs/keep.txt"]);

    // Everything older than zero seconds: the temp object goes, the promoted one stays.
    let now = CleanupOptions::default().with_older_than(Duration::ZERO);
    let report = cleanup_local_store(&store, &now).await.unwrap();
    assert_eq!(report.objects, ["_tmp/0190/a.txt"]);
    assert_eq!(names(store.as_ref()).await, ["docs/keep.txt"]);
    assert!(store.get_bytes("docs/keep.txt").await.unwrap() == "k");
}

#[tokio::test]
async fn an_empty_prefix_is_refused_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path()).await;
    store.put("docs/keep.txt", "k".into(), PutOptions::default()).await.unwrap();
    for prefixes in [vec![""], vec![" "], vec![]] {
        let opts = CleanupOptions::default().with_older_than(Duration::ZERO).with_prefixes(prefixes.clone());
        let e = cleanup_temp_objects(store.as_ref(), &opts).await.unwrap_err();
        assert!(e.to_string().contains("prefix"), "{prefixes:?}: {e}");
    }
    assert_eq!(names(store.as_ref()).await, ["docs/keep.txt"]);
}

#[tokio::test]
async fn the_routes_timer_expires_abandoned_uploads_and_stops_with_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path()).await;
    let options = LocalRoutesOptions::default()
        .with_cleanup_every(Some(Duration::from_millis(20)))
        .with_cleanup(CleanupOptions::default().with_older_than(HOUR));
    let router: axum::Router = local_store_routes_with(store.clone(), options);
    store.put("_tmp/x/abandoned.txt", "x".into(), PutOptions::default()).await.unwrap();
    write_aged(dir.path(), "tmp/sessions/abandoned.part", 2 * HOUR);
    write_aged(dir.path(), "tmp/sessions/active.part", Duration::ZERO);
    let stale = dir.path().join("tmp/sessions/abandoned.part");
    for _ in 0..200 {
        if !stale.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!stale.exists(), "the timer removed the abandoned session's file");
    assert!(dir.path().join("tmp/sessions/active.part").exists());
    assert!(store.exists("_tmp/x/abandoned.txt").await.unwrap(), "a temp object younger than older_than stays");

    drop(router);
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_aged(dir.path(), "tmp/sessions/later.part", 2 * HOUR);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(dir.path().join("tmp/sessions/later.part").exists(), "the timer stopped when the router was dropped");
}

#[tokio::test]
async fn the_timer_expires_temp_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path()).await;
    store.put("_tmp/x/abandoned.txt", "x".into(), PutOptions::default()).await.unwrap();
    store.put("kept.txt", "k".into(), PutOptions::default()).await.unwrap();
    let options = LocalRoutesOptions::default()
        .with_cleanup_every(Some(Duration::from_millis(20)))
        .with_cleanup(CleanupOptions::default().with_older_than(Duration::ZERO));
    let _router: axum::Router = local_store_routes_with(store.clone(), options);
    for _ in 0..200 {
        if !store.exists("_tmp/x/abandoned.txt").await.unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(names(store.as_ref()).await, ["kept.txt"]);
}

/// The emulator's address, or `None` (after saying so loudly) when it is not running.
fn emulator() -> Option<String> {
    emulator_support::storage_emulator("GCS cleanup")
}

#[tokio::test]
async fn gcs_cleanup_expires_temp_objects_on_the_emulator() {
    let Some(host) = emulator() else { return };
    let bucket = format!("cleanup-{}", uuid::Uuid::new_v4().simple());
    conformance::create_emulator_bucket(&host, &bucket, false).await;
    let config = StoreConfig { api_endpoint: Some(host), ..StoreConfig::gcs(bucket) };
    let store = open("media", config).await.unwrap();
    store.put("_tmp/0190/a.txt", "a".into(), PutOptions::default()).await.unwrap();
    store.put("_tmp/0191/b.txt", "b".into(), PutOptions::default()).await.unwrap();
    store.put("docs/keep.txt", "k".into(), PutOptions::default()).await.unwrap();

    let young = cleanup_temp_objects(store.as_ref(), &CleanupOptions::default().with_older_than(HOUR)).await.unwrap();
    assert!(young.is_empty(), "{young:?}");
    let all = CleanupOptions::default().with_older_than(Duration::ZERO);
    let dry = cleanup_temp_objects(store.as_ref(), &all.clone().with_dry_run(true)).await.unwrap();
    assert_eq!(dry.objects, ["_tmp/0190/a.txt", "_tmp/0191/b.txt"]);
    assert_eq!(names(store.as_ref()).await.len(), 3, "a dry run removes nothing");
    let report = cleanup_temp_objects(store.as_ref(), &all).await.unwrap();
    assert_eq!((report.objects, report.failed.len()), (dry.objects, 0));
    assert_eq!(names(store.as_ref()).await, ["docs/keep.txt"]);
}

fn sea_gcp(args: &[&str]) -> Option<(bool, String, String)> {
    let out = std::process::Command::new(cli_support::cli_binary()?)
        .args(args)
        .env_remove("SEA_GCP_SETTINGS")
        .output()
        .expect("binary runs");
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn the_cleanup_command_dry_runs_then_removes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let settings = dir.path().join("sea-gcp.toml");
    std::fs::write(
        &settings,
        format!("[stores.media]\nbackend = \"local\"\nroot = {:?}\n", root.display().to_string()),
    )
    .unwrap();
    {
        let store = local_store(&root).await;
        store.put("_tmp/0190/a.txt", "a".into(), PutOptions::default()).await.unwrap();
        store.put("docs/keep.txt", "k".into(), PutOptions::default()).await.unwrap();
    }
    write_aged(&root, "tmp/sessions/old.part", 2 * 86_400 * Duration::from_secs(1));
    let settings = settings.to_str().unwrap();

    let Some((ok, out, err)) = sea_gcp(&["cleanup", "--settings", settings, "--older-than", "0s", "--dry-run"]) else {
        return;
    };
    assert!(ok, "{err}");
    assert!(out.contains("would remove 1 temp object(s) and 1 temp file(s)"), "{out}");
    assert!(out.contains("would remove object _tmp/0190/a.txt") && out.contains("tmp/sessions/old.part"), "{out}");
    assert!(root.join("tmp/sessions/old.part").exists());

    let (ok, out, err) = sea_gcp(&["cleanup", "--settings", settings, "--store", "media"]).expect("binary found above");
    assert!(ok, "{err}");
    assert!(out.contains("removed 0 temp object(s) and 1 temp file(s)"), "the default --older-than is 1d: {out}");

    let (ok, out, err) =
        sea_gcp(&["cleanup", "--settings", settings, "--older-than", "0s"]).expect("binary found above");
    assert!(ok, "{err}");
    assert!(out.contains("removed 1 temp object(s)"), "{out}");
    let store = local_store(&root).await;
    assert_eq!(names(store.as_ref()).await, ["docs/keep.txt"]);

    let (ok, _, err) =
        sea_gcp(&["cleanup", "--settings", settings, "--older-than", "soon"]).expect("binary found above");
    assert!(!ok && err.contains("not understood"), "{err}");
    let (ok, _, err) = sea_gcp(&["cleanup", "--settings", settings, "--store", "nope"]).expect("binary found above");
    assert!(!ok && err.contains("no such store"), "{err}");
}
