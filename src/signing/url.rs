//! V4 signed URLs: the query string GCS expects, the canonical request over it, and the signature.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use sha2::{Digest, Sha256};

use super::canonical;
use super::target::{self, Target};
use super::{SignedUrl, Signer, SigningAlgorithm, V4Request};
use crate::{Error, Result};

/// The longest lifetime GCS accepts for a V4 signature: 7 days.
pub(crate) const MAX_EXPIRATION: Duration = Duration::from_secs(7 * 86_400);

/// Query parameters the signature itself sets; a caller may not set them.
const RESERVED_QUERY: [&str; 6] = [
    "x-goog-algorithm",
    "x-goog-credential",
    "x-goog-date",
    "x-goog-expires",
    "x-goog-signedheaders",
    "x-goog-signature",
];

/// Check a signature lifetime: at least one second, at most 7 days.
pub fn check_expiration(expiration: Duration) -> Result<u64> {
    let secs = expiration.as_secs();
    if secs == 0 {
        return Err(Error::InvalidArgument(
            "expiration must be at least 1 second: pass a duration such as 10m or 1h".into(),
        ));
    }
    if expiration > MAX_EXPIRATION {
        return Err(Error::InvalidArgument(format!(
            "expiration of {secs}s is longer than the 7 days (604800s) GCS allows for V4 signatures: use at most 7d"
        )));
    }
    Ok(secs)
}

impl V4Request {
    pub(crate) fn target(&self) -> Target<'_> {
        Target { bucket: &self.bucket, object: self.object.as_deref(), endpoint: &self.endpoint }
    }
}

/// A signed URL minus its signature.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// `scheme://host/path?canonical-query`.
    pub url: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    /// Where `<date>/auto/storage/goog4_request` sits in `string_to_sign`.
    scope: Range<usize>,
}

impl Prepared {
    /// The credential scope, `<date>/auto/storage/goog4_request`.
    pub(super) fn scope(&self) -> &str {
        &self.string_to_sign[self.scope.clone()]
    }

    /// Append `X-Goog-Signature` (hex) and hand out the URL.
    pub(super) fn finish(self, signature: &[u8]) -> SignedUrl {
        let mut url = self.url;
        push_signature(&mut url, signature);
        SignedUrl { url, canonical_request: self.canonical_request, string_to_sign: self.string_to_sign }
    }
}

const SIGNATURE_PARAM: &str = "&X-Goog-Signature=";

/// Append `&X-Goog-Signature=<hex>` to a URL that [`prepare_into`] wrote.
pub(crate) fn push_signature(url: &mut String, signature: &[u8]) {
    url.reserve(SIGNATURE_PARAM.len() + signature.len() * 2);
    url.push_str(SIGNATURE_PARAM);
    push_hex(url, signature);
}

/// Append the lowercase hex of `bytes`.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 128];
    for chunk in bytes.chunks(64) {
        let hex = &mut buf[..chunk.len() * 2];
        hex::encode_to_slice(chunk, hex).expect("the buffer holds twice the chunk");
        out.push_str(std::str::from_utf8(hex).expect("hex is ASCII"));
    }
}

/// Append `n` in decimal.
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[at..]).expect("digits are ASCII"));
}

/// `20190201T090000Z` without allocating (the date is its first 8 bytes).
fn timestamp_bytes(at: &DateTime<Utc>) -> [u8; 16] {
    let mut out = *b"00000000T000000Z";
    let mut put = |range: Range<usize>, mut v: u32| {
        for i in range.rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0..4, at.year().clamp(0, 9999) as u32);
    put(4..6, at.month());
    put(6..8, at.day());
    put(9..11, at.hour());
    put(11..13, at.minute());
    put(13..15, at.second());
    out
}

/// The signed headers in canonical order, without `host` (added while writing).
enum Headers<'a> {
    /// Every name is already lowercase and trimmed: the map's order is the canonical order and values
    /// are canonicalised while they are written.
    Map(&'a BTreeMap<String, String>),
    /// Names lowercased, merged and sorted; values canonical.
    Lines(Vec<(String, String)>),
}

impl<'a> Headers<'a> {
    fn new(map: &'a BTreeMap<String, String>) -> Self {
        let canonical_names = map.keys().all(|name| {
            !name.bytes().any(|b| b.is_ascii_uppercase()) && name.trim().len() == name.len() && !name.is_empty()
        });
        if canonical_names { Headers::Map(map) } else { Headers::Lines(canonical::canonical_header_lines(map)) }
    }

    /// Visit each signed header in order; `None` is the computed `host` (a caller-given `host` wins).
    fn each(&self, mut f: impl FnMut(&str, Option<&str>)) {
        let mut host_done = false;
        let mut visit = |name: &str, value: &str| {
            if !host_done && name >= "host" {
                if name != "host" {
                    f("host", None);
                }
                host_done = true;
            }
            f(name, Some(value));
        };
        match self {
            Headers::Map(map) => map.iter().for_each(|(n, v)| visit(n, v)),
            Headers::Lines(lines) => lines.iter().for_each(|(n, v)| visit(n, v)),
        }
        if !host_done {
            f("host", None);
        }
    }

    /// The signed payload hash (`x-goog-content-sha256`), if any.
    fn payload_hash(&self) -> Option<&str> {
        let value = match self {
            Headers::Map(map) => map.get(canonical::CONTENT_SHA256_HEADER).map(String::as_str),
            Headers::Lines(lines) => {
                lines.iter().find(|(n, _)| n == canonical::CONTENT_SHA256_HEADER).map(|(_, v)| v.as_str())
            }
        };
        value.filter(|v| !v.trim_matches([' ', '\t']).is_empty())
    }

    fn len_hint(&self) -> usize {
        match self {
            Headers::Map(map) => map.iter().map(|(n, v)| n.len() + v.len() + 2).sum(),
            Headers::Lines(lines) => lines.iter().map(|(n, v)| n.len() + v.len() + 2).sum(),
        }
    }
}

/// The five `X-Goog-*` parameters every signed URL carries, in canonical (sorted) order.
const FIXED_QUERY: [&str; 5] =
    ["X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires", "X-Goog-SignedHeaders"];

/// Everything but the signature: validation, host, canonical request, string to sign.
///
/// Three allocations in the common case (names already lowercase, no query parameters that need
/// sorting): the canonical request, the string to sign and the URL, each sized up front.
pub(crate) fn prepare(
    req: &V4Request,
    algorithm: SigningAlgorithm,
    credential_id: &str,
    now: DateTime<Utc>,
) -> Result<Prepared> {
    let (mut canonical_request, mut string_to_sign, mut url) = (String::new(), String::new(), String::new());
    let scope =
        prepare_into(req, algorithm, credential_id, now, &mut canonical_request, &mut string_to_sign, &mut url)?;
    Ok(Prepared { url, canonical_request, string_to_sign, scope })
}

/// [`prepare`] into the caller's buffers: `cr` and `string_to_sign` are cleared and refilled (a batch
/// reuses them for every URL), the URL without its signature is appended to `url` (a batch writes many
/// URLs into one buffer). Returns where the credential scope sits in `string_to_sign`. On error `url` is
/// left as it was: it is written last.
pub(crate) fn prepare_into(
    req: &V4Request,
    algorithm: SigningAlgorithm,
    credential_id: &str,
    now: DateTime<Utc>,
    cr: &mut String,
    string_to_sign: &mut String,
    url: &mut String,
) -> Result<Range<usize>> {
    let expires = check_expiration(req.expiration)?;
    if let Some(reserved) = req.query_params.keys().find(|k| RESERVED_QUERY.iter().any(|r| r.eq_ignore_ascii_case(k))) {
        return Err(Error::InvalidArgument(format!(
            "query parameter `{reserved}` is set by the signature itself: remove it from the request"
        )));
    }
    let target = target::resolve_borrowed(&req.target())?;
    let stamp = timestamp_bytes(&req.timestamp.unwrap_or(now));
    let datetime = std::str::from_utf8(&stamp).expect("timestamp is ASCII");
    let date = &datetime[..8];
    let headers = Headers::new(&req.headers);

    let path_hint = 3 * (req.bucket.len() + req.object.as_deref().map_or(0, str::len)) + 2;
    let query_hint = 220
        + 3 * credential_id.len()
        + 2 * headers.len_hint()
        + req.query_params.iter().map(|(k, v)| 3 * (k.len() + v.len()) + 2).sum::<usize>();
    cr.clear();
    cr.reserve(req.method.as_str().len() + path_hint + query_hint + 2 * headers.len_hint() + target.len_hint() + 100);
    cr.push_str(req.method.as_str());
    cr.push('\n');
    let path_start = cr.len();
    target.push_path(cr);
    let path_end = cr.len();
    cr.push('\n');

    // Canonical query: the fixed parameters merged with the caller's, sorted by encoded key and value.
    let query_start = cr.len();
    let write_fixed = |out: &mut String, i: usize| {
        out.push_str(FIXED_QUERY[i]);
        out.push('=');
        match i {
            0 => out.push_str(algorithm.as_str()),
            1 => {
                out.extend(canonical::encode_query_iter(credential_id));
                out.push_str("%2F");
                out.push_str(date);
                out.push_str("%2F");
                out.push_str(canonical::REGION);
                out.push_str("%2F");
                out.push_str(canonical::SERVICE);
                out.push_str("%2F");
                out.push_str(canonical::REQUEST_TYPE);
            }
            2 => out.push_str(datetime),
            3 => push_u64(out, expires),
            _ => {
                let mut first = true;
                headers.each(|name, _| {
                    if !first {
                        out.push_str("%3B");
                    }
                    first = false;
                    out.extend(canonical::encode_query_iter(name));
                });
            }
        }
    };
    if req.query_params.is_empty() {
        for i in 0..FIXED_QUERY.len() {
            if i > 0 {
                cr.push('&');
            }
            write_fixed(cr, i);
        }
    } else {
        let mut extra: Vec<(Cow<'_, str>, Cow<'_, str>)> = req
            .query_params
            .iter()
            .map(|(k, v)| (canonical::encode_query_iter(k).into(), canonical::encode_query_iter(v).into()))
            .collect();
        extra.sort_unstable();
        let mut fixed = 0;
        let mut extra = extra.iter().peekable();
        let mut first = true;
        loop {
            let take_fixed = match (fixed < FIXED_QUERY.len(), extra.peek()) {
                (false, None) => break,
                (true, None) => true,
                (false, Some(_)) => false,
                (true, Some((k, _))) => FIXED_QUERY[fixed] < k.as_ref(),
            };
            if !first {
                cr.push('&');
            }
            first = false;
            if take_fixed {
                write_fixed(cr, fixed);
                fixed += 1;
            } else if let Some((k, v)) = extra.next() {
                cr.push_str(k);
                cr.push('=');
                cr.push_str(v);
            }
        }
    }
    let query_end = cr.len();
    cr.push('\n');

    headers.each(|name, value| {
        cr.push_str(name);
        cr.push(':');
        match value {
            Some(value) => canonical::push_header_value(cr, value),
            None => target.push_host(cr),
        }
        cr.push('\n');
    });
    cr.push('\n');
    let mut first = true;
    headers.each(|name, _| {
        if !first {
            cr.push(';');
        }
        first = false;
        cr.push_str(name);
    });
    cr.push('\n');
    match headers.payload_hash() {
        Some(hash) => canonical::push_header_value(cr, hash),
        None => cr.push_str(canonical::UNSIGNED_PAYLOAD),
    }

    let digest = Sha256::digest(cr.as_bytes());
    string_to_sign.clear();
    string_to_sign.reserve(algorithm.as_str().len() + 16 + 40 + 64 + 3);
    string_to_sign.push_str(algorithm.as_str());
    string_to_sign.push('\n');
    string_to_sign.push_str(datetime);
    string_to_sign.push('\n');
    let scope_start = string_to_sign.len();
    for (i, part) in [date, canonical::REGION, canonical::SERVICE, canonical::REQUEST_TYPE].into_iter().enumerate() {
        if i > 0 {
            string_to_sign.push('/');
        }
        string_to_sign.push_str(part);
    }
    let scope = scope_start..string_to_sign.len();
    string_to_sign.push('\n');
    push_hex(string_to_sign, &digest);

    let signature_hint = match algorithm {
        SigningAlgorithm::Rsa => 512,
        SigningAlgorithm::Hmac => 64,
    };
    url.reserve(
        target.len_hint()
            + (path_end - path_start)
            + 1
            + (query_end - query_start)
            + SIGNATURE_PARAM.len()
            + signature_hint,
    );
    url.push_str(target.scheme);
    url.push_str("://");
    target.push_authority(url);
    url.push_str(&cr[path_start..path_end]);
    url.push('?');
    url.push_str(&cr[query_start..query_end]);
    Ok(scope)
}

/// Sign a URL (any signer; IAM signBlob makes one HTTP call).
pub async fn sign_url(signer: &dyn Signer, req: &V4Request) -> Result<SignedUrl> {
    let credential_id = signer.credential_id().await?;
    let prepared = prepare(req, signer.algorithm(), &credential_id, Utc::now())?;
    let signature = signer.sign_scoped(prepared.scope(), prepared.string_to_sign.as_bytes()).await?;
    Ok(prepared.finish(&signature))
}

/// Sign a URL without awaiting: for signers that hold their key in memory (service-account key, HMAC).
/// `now` is the signing time for requests without a `timestamp`.
///
/// Fails with [`Error::Signing`] for a signer that needs the network (IAM signBlob): use [`sign_url`].
pub fn sign_url_blocking(signer: &dyn Signer, req: &V4Request, now: DateTime<Utc>) -> Result<SignedUrl> {
    let credential_id = signer.local_credential_id().ok_or_else(|| not_local(signer))?;
    let prepared = prepare(req, signer.algorithm(), credential_id, now)?;
    let signature =
        signer.sign_local(prepared.scope(), prepared.string_to_sign.as_bytes()).ok_or_else(|| not_local(signer))??;
    Ok(prepared.finish(&signature))
}

fn not_local(signer: &dyn Signer) -> Error {
    Error::signing(format!(
        "{signer:?} signs over the network and cannot sign synchronously: call the async sign_url instead"
    ))
}
