//! Finding the objects a batch names with listings, not one request per row.
//!
//! A batch's names share a longest common prefix; listing that prefix (1,000 objects per call) returns
//! every object the batch can name, with the generation, size, content type, CRC32C and MD5 the blob
//! value caches. Two modes, measured in BENCHMARKS.md ("Column migration"):
//!
//! * [`ListingMode::PerBatch`]: list each batch's common prefix, stopping once the listing passes the
//!   batch's last name. Ideal when rows in key order name objects in name order (uploads named by date
//!   or id): each batch lists little more than its own objects. Costly when they are scattered: every
//!   batch then lists the whole shared prefix again.
//! * [`ListingMode::Shared`] (the default): a prefix listed once is kept in memory and every later batch
//!   whose common prefix lies under it is answered from it. Scattered tables cost one listing of their
//!   prefix in total (memory: one small entry per object listed); clustered tables behave as `PerBatch`.
//!
//! A name absent from a listing is confirmed with one `head` before it is reported missing: a listing
//! can be older than an object the application created since, and a missing object should be rare.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use crate::storage::{GetOptions, ListOptions, ObjectMeta, Store, naming};
use crate::{Error, Result};

/// How batches find their objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListingMode {
    /// List each batch's common prefix (stopping after the batch's last name).
    PerBatch,
    /// Keep listings in memory and answer later batches under a listed prefix from them.
    #[default]
    Shared,
}

impl std::str::FromStr for ListingMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "per-batch" => Ok(ListingMode::PerBatch),
            "shared" => Ok(ListingMode::Shared),
            other => Err(format!("unknown listing mode {other:?}: use `shared` or `per-batch`")),
        }
    }
}

type Listing = Arc<HashMap<String, ObjectMeta>>;

/// Resolves object names to their metadata through listings. Shared by a run's concurrent batches.
#[derive(Debug)]
pub struct Resolver {
    store: Arc<dyn Store>,
    mode: ListingMode,
    cache: Mutex<Vec<(String, Arc<OnceCell<Listing>>)>>,
}

impl Resolver {
    /// A resolver over `store`.
    pub fn new(store: Arc<dyn Store>, mode: ListingMode) -> Self {
        Self { store, mode, cache: Mutex::new(Vec::new()) }
    }

    /// The metadata of each of `names` that exists (absent names are missing objects, confirmed with a
    /// `head` each). `names` are normalised object names.
    pub async fn resolve(&self, names: &[String]) -> Result<HashMap<String, ObjectMeta>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let prefix = common_prefix(names);
        let mut found: HashMap<String, ObjectMeta> = match self.mode {
            ListingMode::PerBatch => {
                let last = names.iter().max().expect("names is not empty");
                let listing = self.list(&prefix, Some(last)).await?;
                names.iter().filter_map(|n| listing.get(n).map(|m| (n.clone(), m.clone()))).collect()
            }
            ListingMode::Shared => {
                let listing = self.shared(&prefix).await?;
                names.iter().filter_map(|n| listing.get(n).map(|m| (n.clone(), m.clone()))).collect()
            }
        };
        let absent: Vec<String> = names.iter().filter(|n| !found.contains_key(*n)).cloned().collect();
        let heads = absent.into_iter().map(|name| {
            let store = self.store.clone();
            async move {
                match store.head(&name, GetOptions::default()).await {
                    Ok(meta) => Ok(Some(meta)),
                    Err(Error::NotFound { .. } | Error::InvalidName { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        });
        let confirmed: Vec<Option<ObjectMeta>> = futures::stream::iter(heads).buffer_unordered(8).try_collect().await?;
        for meta in confirmed.into_iter().flatten() {
            found.insert(meta.name.clone(), meta);
        }
        Ok(found)
    }

    /// The cached listing covering `prefix`, listing it first when none does.
    async fn shared(&self, prefix: &str) -> Result<Listing> {
        let cell = {
            let mut cache = self.cache.lock().expect("listing cache lock");
            match cache.iter().find(|(p, _)| prefix.starts_with(p.as_str())) {
                Some((_, cell)) => cell.clone(),
                None => {
                    let cell = Arc::new(OnceCell::new());
                    cache.push((prefix.to_string(), cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_try_init(|| self.list(prefix, None)).await.cloned()
    }

    /// Every object under `prefix`, page by page; with `until`, stop after the page that passes it.
    async fn list(&self, prefix: &str, until: Option<&String>) -> Result<Listing> {
        let mut map = HashMap::new();
        let mut opts = ListOptions::prefix(prefix);
        opts.max_results = Some(1000);
        loop {
            let page = self.store.list(opts.clone()).await?;
            let passed = until.is_some_and(|u| page.objects.last().is_some_and(|o| &o.name >= u));
            for meta in page.objects {
                map.insert(meta.name.clone(), meta);
            }
            match page.next_page_token {
                Some(token) if !passed => opts.page_token = Some(token),
                _ => break,
            }
        }
        Ok(Arc::new(map))
    }
}

/// The longest common prefix of `names` that is a valid listing prefix (cut back to the last `/` when
/// the raw common prefix would be normalised into something else, e.g. one ending in `..`).
pub fn common_prefix(names: &[String]) -> String {
    let (Some(min), Some(max)) = (names.iter().min(), names.iter().max()) else {
        return String::new();
    };
    // The common prefix of a set is the common prefix of its smallest and largest members.
    let mut end = min.bytes().zip(max.bytes()).take_while(|(a, b)| a == b).count();
    while !min.is_char_boundary(end) {
        end -= 1;
    }
    let raw = &min[..end];
    if naming::normalize_prefix(raw).is_ok_and(|p| p == raw) {
        return raw.to_string();
    }
    match raw.rfind('/') {
        Some(i) => raw[..=i].to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix(&names(&["media/a/1.txt", "media/a/2.txt", "media/b.txt"])), "media/");
        assert_eq!(common_prefix(&names(&["bench/0001.bin", "bench/0099.bin"])), "bench/00");
        assert_eq!(common_prefix(&names(&["x.txt", "y.txt"])), "");
        assert_eq!(common_prefix(&names(&["dir/..a", "dir/..b"])), "dir/");
        // Never cuts inside a UTF-8 sequence: "é" and "è" share their first byte.
        assert_eq!(common_prefix(&names(&["d/é", "d/è"])), "d/");
    }
}
