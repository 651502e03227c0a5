//! The members of one JSON object, each key at most once.
//!
//! A line's objects (the line itself, `span`, `logging.googleapis.com/labels`, `fields`) get members from
//! several places: the event's fields, each span's fields, fields recorded again later. JSON parsers keep
//! the last (or first) of two equal keys silently, so a line holding one twice says two things at once.
//! [`Members`] keeps `,"key":value` fragments in one reused string with an index of their keys, and
//! refuses a second member with the same key: it replaces the first one or is dropped, as the caller asks.

use super::json::push_str;

/// `,"key":value` fragments with distinct keys.
#[derive(Default)]
pub(crate) struct Members {
    text: String,
    /// Per member: where its `,` is and where its quoted key ends.
    index: Vec<(usize, usize)>,
}

/// What to do with a member whose key is already there.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDuplicate {
    /// The new value replaces the old one (a field recorded again, an inner span's label).
    Replace,
    /// The old value stays.
    Keep,
}

impl Members {
    /// Remove every member, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.index.clear();
    }

    /// True when there is no member.
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The fragments: `,"a":1,"b":2` (empty when there is no member).
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The fragments without the leading comma, for the inside of an object: `"a":1,"b":2`.
    pub(crate) fn inner(&self) -> &str {
        self.text.get(1..).unwrap_or_default()
    }

    /// Add `key` (escaped here) with the value `value` writes as JSON.
    pub(crate) fn push(&mut self, key: &str, on_duplicate: OnDuplicate, value: impl FnOnce(&mut String)) {
        self.push_with(|out| push_str(out, key), on_duplicate, value);
    }

    /// Add every member of `other`, in order.
    pub(crate) fn extend(&mut self, other: &Members, on_duplicate: OnDuplicate) {
        for (i, &(start, key_end)) in other.index.iter().enumerate() {
            let end = other.index.get(i + 1).map_or(other.text.len(), |next| next.0);
            let key = &other.text[start + 1..key_end];
            let value = &other.text[key_end + 1..end];
            self.push_with(|out| out.push_str(key), on_duplicate, |out| out.push_str(value));
        }
    }

    fn push_with(&mut self, key: impl FnOnce(&mut String), on_duplicate: OnDuplicate, value: impl FnOnce(&mut String)) {
        let mut start = self.text.len();
        self.text.push(',');
        key(&mut self.text);
        let mut key_end = self.text.len();
        let existing = {
            let new_key = &self.text[start + 1..key_end];
            self.index.iter().position(|&(s, e)| &self.text[s + 1..e] == new_key)
        };
        if let Some(i) = existing {
            if on_duplicate == OnDuplicate::Keep {
                self.text.truncate(start);
                return;
            }
            let old_start = self.index[i].0;
            let old_end = self.index.get(i + 1).map_or(start, |next| next.0);
            let removed = old_end - old_start;
            self.text.replace_range(old_start..old_end, "");
            self.index.remove(i);
            for member in &mut self.index[i..] {
                member.0 -= removed;
                member.1 -= removed;
            }
            start -= removed;
            key_end -= removed;
        }
        self.text.push(':');
        value(&mut self.text);
        self.index.push((start, key_end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: u32) -> impl FnOnce(&mut String) {
        move |out: &mut String| out.push_str(&n.to_string())
    }

    #[test]
    fn a_key_is_held_once() {
        let mut m = Members::default();
        m.push("a", OnDuplicate::Replace, num(1));
        m.push("b", OnDuplicate::Replace, num(2));
        m.push("c", OnDuplicate::Replace, num(3));
        m.push("a", OnDuplicate::Replace, num(4));
        assert_eq!(m.as_str(), r#","b":2,"c":3,"a":4"#);
        m.push("c", OnDuplicate::Keep, num(5));
        m.push("d\"", OnDuplicate::Keep, num(6));
        assert_eq!(m.inner(), r#""b":2,"c":3,"a":4,"d\"":6"#);
        let mut all = Members::default();
        all.push("a", OnDuplicate::Replace, num(0));
        all.extend(&m, OnDuplicate::Keep);
        assert_eq!(all.as_str(), r#","a":0,"b":2,"c":3,"d\"":6"#);
        all.extend(&m, OnDuplicate::Replace);
        assert_eq!(all.as_str(), r#","b":2,"c":3,"a":4,"d\"":6"#);
        m.clear();
        assert!(m.is_empty() && m.inner().is_empty());
    }
}
