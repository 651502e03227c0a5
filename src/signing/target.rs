//! Where a signed URL or POST policy points: scheme, host and resource path.
//!
//! Host precedence (as the conformance vectors state it): an explicit `hostname` beats the client
//! `endpoint`, which beats the emulator host (`STORAGE_EMULATOR_HOST`), which beats the universe domain
//! (`storage.<universe>`, default `storage.googleapis.com`). A bucket-bound hostname replaces all of them
//! for [`UrlStyle::BucketBoundHostname`]. The URL keeps the host as given (`storage.googleapis.com:443`,
//! `localhost:8080`); the signed `host` header is the host without any port, lowercased (`localhost`), as
//! Google's conformance vectors and the Go client sign it: GCS rejects V4 signatures whose canonical host
//! carries the port. An IPv6 literal keeps its brackets (`[::1]:8080` signs as `[::1]`).
//!
//! The scheme is the explicit `scheme` if set, else the scheme written in the winning endpoint, else
//! `https`.

use super::UrlStyle;
use super::canonical::{encode_path, encode_path_iter};
use crate::{Error, Result};

/// The default universe domain.
pub(crate) const DEFAULT_UNIVERSE_DOMAIN: &str = "googleapis.com";

/// Where a signed URL or POST policy points: the host-selection inputs shared by
/// [`super::V4Request`] and [`super::PostPolicyRequest`] (precedence in the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// URL style.
    pub url_style: UrlStyle,
    /// Scheme (None: the winning endpoint's scheme, else `https`).
    pub scheme: Option<String>,
    /// Explicit hostname (wins over everything).
    pub hostname: Option<String>,
    /// Client endpoint URL (e.g. a custom endpoint).
    pub client_endpoint: Option<String>,
    /// Emulator host (`STORAGE_EMULATOR_HOST`).
    pub emulator_host: Option<String>,
    /// Universe domain (default `googleapis.com`).
    pub universe_domain: Option<String>,
    /// Bucket-bound hostname (for [`UrlStyle::BucketBoundHostname`]).
    pub bucket_bound_hostname: Option<String>,
}

/// The inputs that decide where a URL points (borrowed from a [`super::V4Request`] or
/// [`super::PostPolicyRequest`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    /// Bucket name.
    pub bucket: &'a str,
    /// Object name, if any.
    pub object: Option<&'a str>,
    /// Host selection.
    pub endpoint: &'a Endpoint,
}

/// A resolved target: everything needed to write the URL and the `host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// `http` or `https`.
    pub scheme: String,
    /// Host and optional port, as the URL shows it.
    pub authority: String,
    /// The signed `host` header value (authority minus the scheme's default port).
    pub host_header: String,
    /// The encoded resource path, starting with `/`.
    pub path: String,
}

impl Resolved {
    /// `scheme://authority/path`.
    pub(crate) fn base_url(&self) -> String {
        let mut out = String::with_capacity(self.scheme.len() + self.authority.len() + self.path.len() + 3);
        out.push_str(&self.scheme);
        out.push_str("://");
        out.push_str(&self.authority);
        out.push_str(&self.path);
        out
    }
}

/// Split `https://host:port/ignored` into (`Some("https")`, `host:port`).
fn split_endpoint(endpoint: &str) -> (Option<&str>, &str) {
    let endpoint = endpoint.trim();
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((s, rest)) => (Some(s), rest),
        None => (None, endpoint),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    (scheme, authority)
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// `host` without its `:port` (an IPv6 literal keeps its brackets).
pub(crate) fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// A resolved target, borrowed from its request: the URL authority is the concatenation of `authority`
/// (a virtual-hosted bucket prefix, `storage.` before a universe domain, then the host as given).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Borrowed<'a> {
    pub scheme: &'static str,
    pub authority: [&'a str; 4],
    pub path_style: bool,
    pub bucket: &'a str,
    pub object: Option<&'a str>,
}

impl Borrowed<'_> {
    /// Append the authority as the URL shows it.
    pub(crate) fn push_authority(&self, out: &mut String) {
        for part in self.authority {
            out.push_str(part);
        }
    }

    /// Append the signed `host` value: the authority without its port, lowercased.
    pub(crate) fn push_host(&self, out: &mut String) {
        let [a, b, c, last] = self.authority;
        for part in [a, b, c, strip_port(last)] {
            if part.bytes().any(|b| b.is_ascii_uppercase()) {
                out.extend(part.chars().map(|c| c.to_ascii_lowercase()));
            } else {
                out.push_str(part);
            }
        }
    }

    /// Append the encoded resource path of a signed URL (starts with `/`).
    pub(crate) fn push_path(&self, out: &mut String) {
        out.push('/');
        if self.path_style {
            out.extend(encode_path_iter(self.bucket));
            if let Some(object) = self.object {
                out.push('/');
                out.extend(encode_path_iter(object));
            }
        } else if let Some(object) = self.object {
            out.extend(encode_path_iter(object));
        }
    }

    /// An upper bound of the pieces' lengths (for buffer sizes).
    pub(crate) fn len_hint(&self) -> usize {
        self.scheme.len() + 3 + self.authority.iter().map(|p| p.len()).sum::<usize>()
    }
}

/// Pick scheme and authority (precedence in the module docs) without allocating.
pub(crate) fn resolve_borrowed<'a>(target: &Target<'a>) -> Result<Borrowed<'a>> {
    let e = target.endpoint;
    if target.bucket.is_empty() {
        return Err(Error::InvalidArgument("bucket name is empty: name the bucket to sign for".into()));
    }
    let (endpoint_scheme, authority) = match e.url_style {
        UrlStyle::BucketBoundHostname => {
            let host = non_empty(e.bucket_bound_hostname.as_deref()).ok_or_else(|| {
                Error::InvalidArgument(
                    "URL style bucket-bound-hostname needs a bucket-bound hostname (e.g. cdn.example.com)".into(),
                )
            })?;
            let (scheme, authority) = split_endpoint(host);
            (scheme, ["", "", "", authority])
        }
        UrlStyle::Path | UrlStyle::VirtualHosted => {
            let explicit = non_empty(e.hostname.as_deref())
                .or_else(|| non_empty(e.client_endpoint.as_deref()))
                .or_else(|| non_empty(e.emulator_host.as_deref()));
            let (scheme, prefix, host) = match explicit {
                Some(endpoint) => {
                    let (scheme, authority) = split_endpoint(endpoint);
                    (scheme, "", authority)
                }
                None => {
                    let universe = non_empty(e.universe_domain.as_deref()).unwrap_or(DEFAULT_UNIVERSE_DOMAIN);
                    (None, "storage.", universe)
                }
            };
            if e.url_style == UrlStyle::VirtualHosted {
                (scheme, [target.bucket, ".", prefix, host])
            } else {
                (scheme, ["", "", prefix, host])
            }
        }
    };
    if authority[3].is_empty() {
        return Err(Error::InvalidArgument("the URL host is empty: give a hostname such as example.com".into()));
    }
    let scheme = match non_empty(e.scheme.as_deref()).or(endpoint_scheme).unwrap_or("https") {
        s if s.eq_ignore_ascii_case("https") => "https",
        s if s.eq_ignore_ascii_case("http") => "http",
        other => {
            return Err(Error::InvalidArgument(format!(
                "URL scheme `{}` is not supported: use https or http",
                other.to_ascii_lowercase()
            )));
        }
    };
    Ok(Borrowed {
        scheme,
        authority,
        path_style: e.url_style == UrlStyle::Path,
        bucket: target.bucket,
        object: target.object.filter(|o| !o.is_empty()),
    })
}

/// Resolve scheme, authority, `host` header and path. Signed URLs get the object's path; POST policies
/// (`for_post_policy`) get the bucket root (`/bucket/` or `/`).
pub(crate) fn resolve(target: &Target<'_>, for_post_policy: bool) -> Result<Resolved> {
    let b = resolve_borrowed(target)?;
    let mut authority = String::with_capacity(b.len_hint());
    b.push_authority(&mut authority);
    let mut host_header = String::with_capacity(authority.len());
    b.push_host(&mut host_header);
    let path = match (b.path_style, for_post_policy) {
        (true, true) => format!("/{}/", encode_path(target.bucket)),
        (false, true) => "/".to_string(),
        (_, false) => {
            let mut path = String::new();
            b.push_path(&mut path);
            path
        }
    };
    Ok(Resolved { scheme: b.scheme.to_string(), authority, host_header, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(endpoint: Endpoint, object: Option<&str>, post: bool) -> Result<Resolved> {
        resolve(&Target { bucket: "b", object, endpoint: &endpoint }, post)
    }

    fn r(endpoint: Endpoint) -> Resolved {
        at(endpoint, Some("o/x y"), false).unwrap()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn precedence() {
        assert_eq!(r(Endpoint::default()).base_url(), "https://storage.googleapis.com/b/o/x%20y");
        assert_eq!(r(Endpoint { universe_domain: s("u.com"), ..Endpoint::default() }).authority, "storage.u.com");
        let e = r(Endpoint {
            universe_domain: s("u.com"),
            emulator_host: s("http://127.0.0.1:4443"),
            ..Endpoint::default()
        });
        assert_eq!((e.scheme.as_str(), e.host_header.as_str()), ("http", "127.0.0.1"));
        assert_eq!(e.authority, "127.0.0.1:4443");
        let e =
            r(Endpoint { emulator_host: s("http://e:1"), client_endpoint: s("https://c:443/"), ..Endpoint::default() });
        assert_eq!((e.authority.as_str(), e.host_header.as_str()), ("c:443", "c"));
        let e = r(Endpoint { hostname: s("h.example"), client_endpoint: s("c"), ..Endpoint::default() });
        assert_eq!(e.authority, "h.example");
        let e = r(Endpoint { hostname: s("http://Local.Host:8080"), ..Endpoint::default() });
        assert_eq!((e.base_url().as_str(), e.host_header.as_str()), ("http://Local.Host:8080/b/o/x%20y", "local.host"));
    }

    #[test]
    fn ports_are_stripped_from_the_host_header_only() {
        assert_eq!(strip_port("localhost:8080"), "localhost");
        assert_eq!(strip_port("storage.googleapis.com:443"), "storage.googleapis.com");
        assert_eq!(strip_port("storage.googleapis.com"), "storage.googleapis.com");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        let v = r(Endpoint {
            url_style: UrlStyle::VirtualHosted,
            client_endpoint: s("http://localhost:8080"),
            ..Endpoint::default()
        });
        assert_eq!((v.authority.as_str(), v.host_header.as_str()), ("b.localhost:8080", "b.localhost"));
    }

    #[test]
    fn styles() {
        let v = r(Endpoint { url_style: UrlStyle::VirtualHosted, ..Endpoint::default() });
        assert_eq!(v.base_url(), "https://b.storage.googleapis.com/o/x%20y");
        let e = at(Endpoint { url_style: UrlStyle::BucketBoundHostname, ..Endpoint::default() }, Some("o"), false)
            .unwrap_err();
        assert!(e.to_string().contains("bucket-bound hostname"), "{e}");
        assert_eq!(at(Endpoint::default(), None, true).unwrap().base_url(), "https://storage.googleapis.com/b/");
        let e = at(Endpoint { scheme: s("ftp"), ..Endpoint::default() }, Some("o"), false).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)));
    }
}
