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
//! A shared listing of a wide prefix is not paged through one page at a time. Its first page is listed
//! alone; when more follow, the rest of the prefix is cut at names of the batch into up to
//! [`DEFAULT_RANGES`] name ranges (`startOffset`/`endOffset`) listed concurrently. The batch's names are a
//! sample of the prefix, so the ranges hold similar numbers of objects; each is listed under the longest
//! prefix its two ends share. 100,000 scattered objects are then 16 chains of about 6 pages instead of
//! one chain of 100, for a handful of extra calls.
//!
//! A name absent from a listing is confirmed with one `head` before it is reported missing: a listing
//! can be older than an object the application created since, and a missing object should be rare.
//! A name an earlier run already reported missing (for the same row and path) is not confirmed again
//! ([`Resolver::resolve_skipping`]), so a run that changes nothing costs no request per missing row;
//! the listing still finds it if it has appeared since.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, TryStreamExt};
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

/// By default, at most this many name ranges of one wide prefix are listed at once.
pub const DEFAULT_RANGES: usize = 16;

/// Objects per listing page (GCS's maximum).
const PAGE: u32 = 1000;

/// Resolves object names to their metadata through listings. Shared by a run's concurrent batches.
#[derive(Debug)]
pub(crate) struct Resolver {
    store: Arc<dyn Store>,
    mode: ListingMode,
    ranges: usize,
    cache: Mutex<Vec<(String, Arc<OnceCell<Listing>>)>>,
}

impl Resolver {
    /// A resolver over `store`.
    pub(crate) fn new(store: Arc<dyn Store>, mode: ListingMode) -> Self {
        Self { store, mode, ranges: DEFAULT_RANGES, cache: Mutex::new(Vec::new()) }
    }

    /// List a wide prefix in at most `ranges` concurrent name ranges (1: one chain of pages).
    pub(crate) fn with_ranges(mut self, ranges: usize) -> Self {
        self.ranges = ranges.max(1);
        self
    }

    /// The metadata of each of `names` that exists (absent names are missing objects, confirmed with a
    /// `head` each). `names` are normalised object names.
    #[cfg(test)]
    pub(crate) async fn resolve(&self, names: &[String]) -> Result<HashMap<String, ObjectMeta>> {
        self.resolve_skipping(names, &HashSet::new()).await
    }

    /// Like `resolve`, but names in `known_missing` (reported missing by an earlier run)
    /// that the listing does not hold are not confirmed with a `head`: they stay missing for free.
    pub(crate) async fn resolve_skipping(
        &self,
        names: &[String],
        known_missing: &HashSet<String>,
    ) -> Result<HashMap<String, ObjectMeta>> {
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
                let listing = self.shared(&prefix, names).await?;
                names.iter().filter_map(|n| listing.get(n).map(|m| (n.clone(), m.clone()))).collect()
            }
        };
        let absent: Vec<String> =
            names.iter().filter(|n| !found.contains_key(*n) && !known_missing.contains(*n)).cloned().collect();
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
        let confirmed: Vec<Option<ObjectMeta>> =
            futures_util::stream::iter(heads).buffer_unordered(8).try_collect().await?;
        for meta in confirmed.into_iter().flatten() {
            found.insert(meta.name.clone(), meta);
        }
        Ok(found)
    }

    /// The cached listing covering `prefix`, listing it first when none does (`names`: the batch, all
    /// under `prefix`).
    async fn shared(&self, prefix: &str, names: &[String]) -> Result<Listing> {
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
        cell.get_or_try_init(|| self.list_wide(prefix, names)).await.cloned()
    }

    /// Every object under `prefix`: the first page alone, then the rest in concurrent name ranges cut at
    /// names of `sample` (see the module docs).
    async fn list_wide(&self, prefix: &str, sample: &[String]) -> Result<Listing> {
        let mut opts = ListOptions::prefix(prefix);
        opts.max_results = Some(PAGE);
        let first = self.store.list(opts.clone()).await?;
        let last = first.objects.last().map(|o| o.name.clone());
        let mut map: HashMap<String, ObjectMeta> = first.objects.into_iter().map(|m| (m.name.clone(), m)).collect();
        let (Some(token), Some(last)) = (first.next_page_token, last) else {
            return Ok(Arc::new(map));
        };
        let ranges = split_ranges(prefix, &last, sample, self.ranges);
        let lists = ranges.into_iter().map(|(range_prefix, start, end)| {
            let mut opts = ListOptions::prefix(range_prefix);
            opts.max_results = Some(PAGE);
            opts.start_offset = Some(start);
            opts.end_offset = end;
            self.list_pages(opts)
        });
        // One range (the batch says the prefix is small) continues from the first page's token instead.
        let tails: Vec<Vec<ObjectMeta>> = if lists.len() == 1 {
            opts.page_token = Some(token);
            vec![self.list_pages(opts).await?]
        } else {
            futures_util::stream::iter(lists).buffer_unordered(self.ranges).try_collect().await?
        };
        for meta in tails.into_iter().flatten() {
            map.insert(meta.name.clone(), meta);
        }
        Ok(Arc::new(map))
    }

    /// Every object `opts` selects, following page tokens.
    async fn list_pages(&self, mut opts: ListOptions) -> Result<Vec<ObjectMeta>> {
        let mut all = Vec::new();
        loop {
            let page = self.store.list(opts.clone()).await?;
            all.extend(page.objects);
            match page.next_page_token {
                Some(token) => opts.page_token = Some(token),
                None => return Ok(all),
            }
        }
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

/// The ranges that cover the rest of `prefix` after a first page ending at `last`: `(listing prefix,
/// start offset, end offset)`, the first starting at `last` (listed again, harmlessly), the last open.
///
/// How many: the share of `sample` the first page already covered estimates how many pages the prefix
/// holds (a batch of 1,000 scattered names with 10 on the first page: about 100 pages), capped at
/// `max_ranges`; one range when the sample says the rest is about a page. The cut points are evenly
/// spaced names of `sample` beyond `last`. Every name in `[start, end)` starts with the longest common
/// prefix of `start` and `end`, so each bounded range is listed under that narrower prefix.
pub(crate) fn split_ranges(
    prefix: &str,
    last: &str,
    sample: &[String],
    max_ranges: usize,
) -> Vec<(String, String, Option<String>)> {
    let mut beyond: Vec<&String> = sample.iter().filter(|n| n.as_str() > last && n.starts_with(prefix)).collect();
    beyond.sort();
    beyond.dedup();
    let covered = sample.iter().filter(|n| n.as_str() <= last).count();
    let est_pages = sample.len() / covered.max(1);
    let count = est_pages.saturating_sub(1).clamp(1, max_ranges.max(1)).min(beyond.len().max(1));
    let mut cuts: Vec<String> = (1..count).map(|i| beyond[i * beyond.len() / count].clone()).collect();
    cuts.dedup();
    let mut ranges = Vec::with_capacity(cuts.len() + 1);
    let mut start = last.to_string();
    for cut in cuts {
        let range_prefix = common_prefix(&[start.clone(), cut.clone()]);
        ranges.push((range_prefix, std::mem::replace(&mut start, cut.clone()), Some(cut)));
    }
    ranges.push((prefix.to_string(), start, None));
    ranges
}

/// The longest common prefix of `names` that is a valid listing prefix (cut back to the last `/` when
/// the raw common prefix would be normalised into something else, e.g. one ending in `..`).
pub(crate) fn common_prefix(names: &[String]) -> String {
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

    #[test]
    fn ranges_follow_the_sample() {
        // A scattered batch: 10 of 1,000 names on the first page, so about 100 pages: 16 ranges.
        let sample: Vec<String> = (0..1000).map(|i| format!("s/{:06}", i * 100 + 7)).collect();
        let ranges = split_ranges("s/", "s/000999", &sample, DEFAULT_RANGES);
        assert_eq!(ranges.len(), DEFAULT_RANGES);
        assert_eq!(split_ranges("s/", "s/000999", &sample, 4).len(), 4);
        assert_eq!(split_ranges("s/", "s/000999", &sample, 1).len(), 1);
        assert_eq!(ranges[0].1, "s/000999");
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].2.as_deref(), Some(pair[1].1.as_str()), "ranges are contiguous");
        }
        for (prefix, start, end) in &ranges {
            assert!(start.starts_with(prefix.as_str()) && end.as_ref().is_none_or(|e| e.starts_with(prefix.as_str())));
        }
        assert_eq!(ranges[1].0, "s/0");
        assert_eq!(ranges.last().unwrap().0, "s/");
        assert_eq!(ranges.last().unwrap().2, None);
        // A batch mostly on the first page: the rest is one range (continued with the page token).
        let clustered: Vec<String> = (500..1500).map(|i| format!("s/{i:06}")).collect();
        assert_eq!(split_ranges("s/", "s/000999", &clustered, DEFAULT_RANGES).len(), 1);
        // Nothing of the batch beyond the first page: one open range.
        assert_eq!(split_ranges("s/", "s/zzz", &clustered, DEFAULT_RANGES), vec![("s/".into(), "s/zzz".into(), None)]);
    }

    #[tokio::test]
    async fn wide_listings_are_complete_in_few_calls() {
        use crate::storage::counting::{CountingStore, StoreOp};
        use crate::storage::memory::MemoryStore;
        use crate::storage::{PutOptions, PutPayload};

        let memory: Arc<dyn Store> = Arc::new(MemoryStore::new("m", crate::StoreConfig::memory()).unwrap());
        for i in 0..5000 {
            memory.put(&format!("w/{i:05}.bin"), PutPayload::from("x"), PutOptions::default()).await.unwrap();
        }
        let counting = Arc::new(CountingStore::new(memory));
        let resolver = Resolver::new(counting.clone(), ListingMode::Shared);
        // A scattered batch of 500: every 10th object.
        let batch: Vec<String> = (0..500).map(|i| format!("w/{:05}.bin", (i * 7_919) % 5000 / 10 * 10)).collect();
        let found = resolver.resolve(&batch).await.unwrap();
        assert!(batch.iter().all(|n| found.contains_key(n)), "every object of the batch is found");
        let calls = counting.counts().get(StoreOp::List);
        assert!((5..=5 + DEFAULT_RANGES as u64).contains(&calls), "5 pages' worth of objects in {calls} calls");
        // The listing is complete: any other batch under the prefix costs no call and finds everything.
        let other: Vec<String> = (0..1000).map(|i| format!("w/{:05}.bin", i * 5 + 3)).collect();
        let found = resolver.resolve(&other).await.unwrap();
        assert_eq!(found.len(), other.len());
        assert_eq!(counting.counts().get(StoreOp::List), calls);
        assert_eq!(counting.counts().get(StoreOp::Head), 0);
    }
}
