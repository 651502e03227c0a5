//! The local store's sidecar layout: stores written with the previous `meta/` layout open and read as
//! before (their sidecars move to `objects/`), and names that collided there coexist.

use sea_gcp::StoreConfig;
use sea_gcp::storage::{ListOptions, PutOptions, open};

/// Rewrite the store at `root` into the previous layout: `meta/<name>.json`, `meta/<dir>/.json`.
fn to_legacy_layout(root: &std::path::Path, names: &[&str]) {
    for name in names {
        let segments: Vec<&str> = name.split('/').collect();
        let (leaf, dirs) = segments.split_last().unwrap();
        let mut new = root.join("objects");
        let mut old = root.join("meta");
        for d in dirs {
            new.push(format!("{d}.d"));
            old.push(d);
        }
        new.push(format!("{leaf}.json"));
        old.push(format!("{leaf}.json"));
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::rename(&new, &old).unwrap_or_else(|e| panic!("{}: {e}", new.display()));
    }
    std::fs::remove_dir_all(root.join("objects")).unwrap();
}

#[tokio::test]
async fn stores_in_the_previous_layout_are_moved_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["top.txt", "a/b/c.txt", "dir/", "x.json"];
    {
        let store = open("media", StoreConfig::local(dir.path())).await.unwrap();
        for name in names {
            store.put(name, format!("bytes of {name}").into(), PutOptions::default()).await.unwrap();
        }
    }
    to_legacy_layout(dir.path(), &names);
    assert!(dir.path().join("meta/a/b/c.txt.json").is_file() && dir.path().join("meta/dir/.json").is_file());

    let store = open("media", StoreConfig::local(dir.path())).await.unwrap();
    assert!(!dir.path().join("meta").exists(), "the old sidecar directory is gone");
    for name in names {
        assert_eq!(store.get_bytes(name).await.unwrap(), format!("bytes of {name}").as_bytes(), "{name}");
    }
    let listed: Vec<String> =
        store.list(ListOptions::default()).await.unwrap().objects.into_iter().map(|m| m.name).collect();
    assert_eq!(listed, ["a/b/c.txt", "dir/", "top.txt", "x.json"]);
    // And the name that used to collide with `x.json` now fits next to it.
    store.put("x.json/y", "y".into(), PutOptions::default()).await.unwrap();
    assert_eq!(store.get_bytes("x.json").await.unwrap(), "bytes of x.json");
    assert_eq!(store.get_bytes("x.json/y").await.unwrap(), "y");
}

#[tokio::test]
async fn a_final_json_segment_is_no_longer_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open("media", StoreConfig::local(dir.path())).await.unwrap();
    store.put("dir/", "".into(), PutOptions::default()).await.unwrap();
    store.put("dir/.json", "j".into(), PutOptions::default()).await.unwrap();
    assert_eq!(store.get_bytes("dir/.json").await.unwrap(), "j");
    assert!(store.exists("dir/").await.unwrap());
}
