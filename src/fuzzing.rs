//! Entry points for the coverage-guided fuzz targets in `fuzz/` and for the test that replays their
//! corpora (`tests/fuzz_corpora.rs`). Not part of the API: the module exists with the `fuzzing` feature
//! only, and is hidden from the docs.
//!
//! Each function takes raw bytes from outside, feeds every parser that reads such bytes, and checks the
//! properties that must hold for any input: no panic, and where a value parses, that it round-trips or
//! keeps the invariants the rest of the crate relies on. A broken property panics, which the fuzzer
//! reports as a crash.
//!
//! Inputs that carry headers use a small HTTP-like layout: `name: value` lines, an empty line, then
//! the body. Lines that are not valid header names or values are skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every target, by name: what `fuzz/fuzz_targets/<name>.rs` runs and the corpus folder it reads.
pub const TARGETS: &[(&str, Target)] = &[
    ("media_type", media_type),
    ("pubsub_push", pubsub_push),
    ("cloud_event", cloud_event),
    ("jwt", jwt),
    ("local_url", local_url),
    ("range", range),
    ("v4_signing", v4_signing),
    ("settings", settings),
    ("trace_context", trace_context),
    ("upload_ticket", upload_ticket),
    ("upload_sniff", upload_sniff),
    ("blob_value", blob_value),
];

/// Headers and body from the HTTP-like layout.
fn split_http(data: &[u8]) -> (HeaderMap, &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii_start());
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    (headers, body)
}

/// RFC 9110 media types: a value that parses prints back to text that parses to the same value, and
/// the accept-list check agrees with the parser.
pub fn media_type(data: &[u8]) {
    use crate::storage::media_type::{MediaType, accepts};
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = MediaType::parse(text) {
        let printed = parsed.to_string();
        let again = MediaType::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not parse again: {e}"));
        assert_eq!(again, parsed, "{text:?} printed as {printed:?}");
        assert!(parsed.matches(&parsed.essence()), "{text:?} matches its own essence");
        assert!(accepts(&[parsed.essence()], text), "an accept list of {text:?}'s essence accepts it");
    } else {
        assert!(!accepts(&["*/*".to_string()], text), "an unparsable type is never accepted: {text:?}");
    }
}

/// Pub/Sub push bodies: the wrapped envelope and the `noWrapper` headers.
pub fn pubsub_push(data: &[u8]) {
    use crate::pubsub::PubSubMessage;
    let (headers, body) = split_http(data);
    let parsed = [
        PubSubMessage::from_push(&headers, body),
        PubSubMessage::from_push_envelope(body),
        PubSubMessage::from_unwrapped(&headers, body),
    ];
    for message in parsed.iter().flatten() {
        let _ = message.text();
        let _ = message.json::<serde_json::Value>();
    }
}

/// CloudEvents over HTTP, binary and structured mode.
pub fn cloud_event(data: &[u8]) {
    use crate::events::CloudEvent;
    let (headers, body) = split_http(data);
    let _ = CloudEvent::is_cloud_event(&headers);
    let _ = CloudEvent::from_http(&headers, body);
    let _ = CloudEvent::from_binary(&headers, body);
    let _ = CloudEvent::from_structured(body);
}

/// A JWT's header and claims, as read before (and after) the signature: the token as given, and the
/// input's two halves as header and claims JSON in a token whose signature part is empty.
pub fn jwt(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::auth::parse_unverified(text);
    let (header, claims) = text.split_once('\n').unwrap_or((text, "{}"));
    let token = format!("{}.{}.", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let _ = crate::auth::parse_unverified(&token);
}

/// Local-store URL queries: parameter checks, verification, and a signature made over any parameters
/// verifies (and a changed one does not).
pub fn local_url(data: &[u8]) {
    use crate::storage::local::signature::{UrlSigner, check_parameters};
    let (key, query) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"objects/a.txt"[..], data),
    };
    let key = String::from_utf8_lossy(key);
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query).into_owned().collect();
    let allowed = ["expires", "ct", "cd", "max", "create"];
    let signer = UrlSigner::new(b"fuzzing secret");
    let _ = check_parameters(&pairs, &allowed);
    let _ = signer.verify("GET", &key, &pairs, &allowed, 0);
    // Round trip: sign the allowed parameters it carries (with `expires` in the future), then verify.
    let mut params: BTreeMap<String, String> =
        pairs.iter().filter(|(k, _)| allowed.contains(&k.as_str()) && k != "expires").cloned().collect();
    params.insert("expires".into(), "4102444800".into());
    let signed = signer.sign("GET", &key, &params);
    let back: Vec<(String, String)> = url::form_urlencoded::parse(signed.as_bytes()).into_owned().collect();
    let verified = signer.verify("GET", &key, &back, &allowed, 0).expect("a URL we signed verifies");
    assert_eq!(verified, params);
    assert!(signer.verify("PUT", &key, &back, &allowed, 0).is_err(), "the method is signed");
}

/// `Range` and `Content-Range` headers: a range that parses is made of digits only, and resolving it
/// against any size gives a range inside the object.
pub fn range(data: &[u8]) {
    use crate::storage::ByteRange;
    use crate::upload::local::{ChunkRange, parse_content_range, parse_range};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (value, size) = text.rsplit_once('\n').map_or((text, 1000), |(v, s)| (v, s.parse().unwrap_or(1000)));
    if let Some(parsed) = parse_range(value) {
        let spec = value.trim().strip_prefix("bytes=").expect("a parsed range starts with bytes=");
        assert!(spec.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b' ' || b == b'\t'), "{value:?}");
        if let Some(r) = parsed.resolve(size) {
            assert!(r.start < r.end && r.end <= size, "{parsed:?} resolved against {size} to {r:?}");
        }
        if let ByteRange::Bounded { start, end } = parsed {
            assert!(start < end, "{value:?}");
        }
    }
    if let Some(ChunkRange::Chunk { start, end_inclusive, total }) = parse_content_range(value) {
        assert!(start <= end_inclusive && total.is_none_or(|t| end_inclusive < t), "{value:?}");
    }
}

/// V4 signing of arbitrary buckets, object names, headers and query parameters: signing never panics,
/// and a URL it signs parses, carries the signature last and keeps the caller's parameters.
pub fn v4_signing(data: &[u8]) {
    use crate::signing::{HmacSigner, V4Request, sign_url_blocking};
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let bucket = lines.next().unwrap_or_default().to_string();
    let object = lines.next().map(str::to_string);
    let mut request = V4Request { bucket, object, expiration: Duration::from_secs(600), ..Default::default() };
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            request.headers.insert(name.to_string(), value.to_string());
        } else if let Some((name, value)) = line.split_once('=') {
            request.query_params.insert(name.to_string(), value.to_string());
        }
    }
    let signer = HmacSigner::new("GOOG1FUZZ", "fuzzing secret").expect("a valid key");
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time");
    if let Ok(signed) = sign_url_blocking(&signer, &request, at) {
        let url = url::Url::parse(&signed.url).unwrap_or_else(|e| panic!("{:?} does not parse: {e}", signed.url));
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(query.last().map(|(k, _)| k.as_str()), Some("X-Goog-Signature"), "{}", signed.url);
        for (name, value) in &request.query_params {
            assert!(query.iter().any(|(k, v)| k == name && v == value), "{name}={value} kept in {}", signed.url);
        }
        let batch = crate::signing::sign_urls_parallel_with(&signer, std::slice::from_ref(&request), at, 1)
            .expect("the batch signs what one-by-one signs");
        assert_eq!(&batch[0], signed.url);
    }
}

/// Settings values: TOML files, `SEA_GCP__*` variables and durations.
pub fn settings(data: &[u8]) {
    use crate::Settings;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::config::parse_duration(text);
    let _ = crate::config::settings::parse_env_value(text);
    let _ = Settings::from_toml_and_env(text, std::iter::empty());
    let (var, value) = text.split_once('=').unwrap_or(("SEA_GCP__MEDIA__BUCKET_NAME", text));
    let env = [("SEA_GCP__MEDIA__BUCKET_NAME".to_string(), "b".to_string()), (var.to_string(), value.to_string())];
    let _ = Settings::from_env_vars(env);
}

/// `traceparent` and `X-Cloud-Trace-Context`: what parses is the W3C form (lowercase hex, no all-zero
/// ids) and Google's (a decimal span id of digits only).
pub fn trace_context(data: &[u8]) {
    use crate::logging::TraceContext;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lower_hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if let Some(t) = TraceContext::from_traceparent(text) {
        let parts: Vec<&str> = text.trim().split('-').collect();
        assert!(lower_hex(parts[1], 32) && parts[2].len() == 16 && lower_hex(parts[2], 16), "{text:?}");
        assert!(t.trace_id == parts[1], "{text:?}");
    }
    if let Some(t) = TraceContext::from_cloud_trace_context(text) {
        assert!(lower_hex(&t.trace_id, 32), "{text:?} gave trace id {:?}", t.trace_id);
        if let Some(span) = &t.span_id {
            assert!(lower_hex(span, 16), "{text:?} gave span {span:?}");
            let ids = text.trim().split(';').next().unwrap_or_default();
            let decimal = ids.split_once('/').map(|(_, s)| s).unwrap_or_default();
            assert!(decimal.bytes().all(|b| b.is_ascii_digit()), "{text:?}: the span id is digits only");
        }
    }
    let (headers, _) = split_http(data);
    let _ = TraceContext::from_headers(&headers);
}

/// Upload tickets: the string as posted, and the input sealed as a ticket's payload so that the claims
/// parser behind the signature check is reached.
pub fn upload_ticket(data: &[u8]) {
    use crate::upload::TicketSigner;
    let signer = TicketSigner::new(b"fuzzing secret");
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(signer.decode(text, "documents.file", 0).is_err() || text.contains('.'), "{text:?}");
    }
    let sealed = signer.seal(&URL_SAFE_NO_PAD.encode(data));
    if let Ok(claims) = signer.decode(&sealed, "documents.file", 0) {
        let reissued = signer.issue(&claims);
        let again = signer.decode(&reissued, "documents.file", 0).expect("a ticket we issued decodes");
        assert_eq!(again.nonce, claims.nonce);
    }
}

/// The type read from an upload's first bytes: the first line is the declared type, the rest the
/// file's start. Markup is never accepted under an image type, and a type the bytes are given is one
/// the field accepts.
pub fn upload_sniff(data: &[u8]) {
    use crate::field::sniff::{SNIFF_BYTES, check, sniff};
    let (declared, bytes) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (String::from_utf8_lossy(&data[..at]).into_owned(), &data[at + 1..]),
        None => ("application/octet-stream".to_string(), data),
    };
    let bytes = &bytes[..bytes.len().min(SNIFF_BYTES as usize)];
    let sniffed = sniff(bytes);
    let images_only = |t: &str| t.starts_with("image/");
    if sniffed.markup.is_some() {
        assert!(check("image/png", &sniffed, images_only).is_err(), "markup accepted as image/png");
    }
    if let Ok(Some(identified)) = check(&declared, &sniffed, images_only) {
        assert!(identified.starts_with("image/"), "{identified} given to an images-only field");
    }
    image_header(bytes);
}

/// Image analysis of the same bytes never panics, and what it accepts is within the pixel limit and
/// not empty.
#[cfg(feature = "images")]
fn image_header(bytes: &[u8]) {
    use crate::field::analyze::{Analysis, analyze};
    for complete in [false, true] {
        if let Ok(Analysis::Image(d)) = analyze(bytes, complete, 1_000_000) {
            assert!(d.width > 0 && d.height > 0 && u64::from(d.width) * u64::from(d.height) <= 1_000_000);
        }
    }
}

#[cfg(not(feature = "images"))]
fn image_header(_: &[u8]) {}

/// A blob column's text (the versioned JSON shape with its cached variants, or django-gcp's legacy
/// `{"path": ...}`): whatever parses is written back in the current shape and reads back as the same
/// value, and nothing panics.
pub fn blob_value(data: &[u8]) {
    use crate::field::BlobValue;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(value) = BlobValue::from_text(text) else { return };
    let written = value.to_json();
    let again =
        BlobValue::from_json(&written).unwrap_or_else(|e| panic!("a written value must read back: {e}: {written}"));
    assert_eq!(again.to_json(), written, "the written shape is stable");
    let mut current = value;
    current.legacy = false;
    assert_eq!(again, current, "a round trip keeps every field but the legacy flag");
}
