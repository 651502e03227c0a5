//! Where a local store keeps an object's sidecar, and the one-time move from the previous layout.
//!
//! The sidecar of `a/b/c` is `objects/a.d/b.d/c.json`: every directory segment ends in `.d` and every
//! sidecar file in `.json`, so a directory and a file never share a path, and any two GCS-valid names
//! coexist (`x` and `x.json/y`, `dir/` and `dir/.json`, `a` and `a/b`). The placeholder `dir/` (an
//! empty last segment) is `objects/dir.d/.json`.
//!
//! Stores written before this layout kept `meta/<name>.json`, where `x` and `x.json/y` collided.
//! [`migrate_legacy`] moves such sidecars into `objects/` when the store opens (each move is one
//! rename, so an interrupted migration resumes on the next open) and removes `meta/`.

use std::path::{Path, PathBuf};

/// The directory holding sidecars.
pub(crate) const OBJECTS_DIR: &str = "objects";

/// The previous layout's sidecar directory.
pub(crate) const LEGACY_META_DIR: &str = "meta";

const DIR_SUFFIX: &str = ".d";
const FILE_SUFFIX: &str = ".json";

/// The sidecar path of `key` under `objects`.
pub(crate) fn sidecar_path(objects: &Path, key: &str) -> PathBuf {
    let mut path = objects.to_path_buf();
    let mut segments = key.split('/').peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_some() {
            path.push(format!("{segment}{DIR_SUFFIX}"));
        } else {
            path.push(format!("{segment}{FILE_SUFFIX}"));
        }
    }
    path
}

/// The directory under `objects` holding the sidecars of names that start with `dir/` (`dir` is a
/// `/`-separated key prefix without a trailing `/`; empty for the root).
pub(crate) fn directory_path(objects: &Path, dir: &str) -> PathBuf {
    let mut path = objects.to_path_buf();
    if !dir.is_empty() {
        for segment in dir.split('/') {
            path.push(format!("{segment}{DIR_SUFFIX}"));
        }
    }
    path
}

/// The name segment a directory entry stands for, or `None` for entries that are not part of the
/// layout.
pub(crate) fn directory_segment(file_name: &str) -> Option<&str> {
    file_name.strip_suffix(DIR_SUFFIX)
}

/// The last name segment a sidecar file stands for (`""` for a `dir/` placeholder).
pub(crate) fn file_segment(file_name: &str) -> Option<&str> {
    file_name.strip_suffix(FILE_SUFFIX)
}

/// Move every sidecar of the previous layout (`root/meta/<key>.json`, `root/meta/<dir>/.json` for a
/// placeholder) into `objects`, then remove `root/meta`. Returns how many sidecars moved.
pub(crate) async fn migrate_legacy(root: &Path, objects: &Path) -> std::io::Result<usize> {
    let legacy = root.join(LEGACY_META_DIR);
    if !tokio::fs::try_exists(&legacy).await? {
        return Ok(0);
    }
    let mut moved = 0;
    let mut stack = vec![(legacy.clone(), String::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let joined = if rel_dir.is_empty() { file_name.clone() } else { format!("{rel_dir}/{file_name}") };
            if entry.file_type().await?.is_dir() {
                stack.push((entry.path(), joined));
                continue;
            }
            let Some(stem) = joined.strip_suffix(FILE_SUFFIX) else { continue };
            // The old layout stored the placeholder `dir/` as `dir/.json`.
            let key = if file_name == FILE_SUFFIX { format!("{rel_dir}/") } else { stem.to_string() };
            let target = sidecar_path(objects, &key);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::rename(entry.path(), &target).await?;
            moved += 1;
        }
    }
    tokio::fs::remove_dir_all(&legacy).await?;
    if moved > 0 {
        tracing::info!(moved, "moved local-store sidecars from meta/ to objects/ (the collision-free layout)");
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_collided_get_distinct_paths() {
        let root = Path::new("/o");
        let pairs = [("x", "x.json/y"), ("dir/", "dir/.json"), ("a", "a/b"), ("a.d", "a/b"), ("x.json", "x/y")];
        for (a, b) in pairs {
            let (pa, pb) = (sidecar_path(root, a), sidecar_path(root, b));
            assert_ne!(pa, pb, "{a} / {b}");
            assert!(!pb.starts_with(&pa) && !pa.starts_with(&pb), "{a} ({pa:?}) / {b} ({pb:?})");
        }
        assert_eq!(sidecar_path(root, "a/b/c"), Path::new("/o/a.d/b.d/c.json"));
        assert_eq!(sidecar_path(root, "dir/"), Path::new("/o/dir.d/.json"));
        assert_eq!(directory_path(root, "a/b"), Path::new("/o/a.d/b.d"));
        assert_eq!(directory_path(root, ""), Path::new("/o"));
    }
}
