//! Listing for the emulated backends (local and memory): the JSON API's `objects.list` semantics
//! (prefix, start/end offsets, delimiter, versions and page tokens) over names already in order.

use super::{ListOptions, ListPage, ObjectMeta};

/// List over a sorted iterator of `(relative name, versions)`: prefix, offsets, delimiter, versions, paging.
pub(crate) fn list_sorted<'a>(
    items: impl Iterator<Item = (&'a str, Vec<ObjectMeta>)>,
    prefix: &str,
    opts: &ListOptions,
) -> ListPage {
    let max = opts.max_results.unwrap_or(1000).clamp(1, 1000) as usize;
    let after = opts.page_token.as_deref();
    let mut page = ListPage::default();
    let mut count = 0usize;
    let mut last_emitted: Option<String> = None;
    for (name, versions) in items {
        if !name.starts_with(prefix)
            || after.is_some_and(|a| name <= a)
            || opts.start_offset.as_deref().is_some_and(|s| name < s)
        {
            continue;
        }
        if opts.end_offset.as_deref().is_some_and(|e| name >= e) {
            break;
        }
        if let Some(delim) = opts.delimiter.as_deref().filter(|d| !d.is_empty())
            && let Some(i) = name[prefix.len()..].find(delim)
        {
            let dir = &name[..prefix.len() + i + delim.len()];
            if page.prefixes.last().map(String::as_str) != Some(dir) {
                if count == max {
                    page.next_page_token = last_emitted;
                    return page;
                }
                page.prefixes.push(dir.to_string());
                count += 1;
            }
            // Skip past every name in this "directory" on a later page too.
            last_emitted = Some(format!("{dir}\u{10FFFF}"));
            continue;
        }
        if versions.is_empty() {
            continue;
        }
        if count == max {
            page.next_page_token = last_emitted;
            return page;
        }
        page.objects.extend(versions);
        count += 1;
        last_emitted = Some(name.to_string());
    }
    page
}
