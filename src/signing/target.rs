//! Where a signed URL or POST policy points: scheme, host and resource path.
//!
//! Host precedence (as the conformance vectors state it): an explicit `hostname` beats the client
//! `endpoint`, which beats the emulator host (`STORAGE_EMULATOR_HOST`), which beats the universe domain
//! (`storage.<universe>`, default `storage.googleapis.com`). A bucket-bound hostname replaces all of them
//! for [`UrlStyle::BucketBoundHostname`]. The URL keeps the host as given (`storage.googleapis.com:443`);
//! the signed `host` header drops the scheme's default port.
//!
//! The scheme is the explicit `scheme` if set, else the scheme written in the winning endpoint, else
//! `https`.

use super::UrlStyle;
use super::canonical::encode_path;
use crate::{Error, Result};

/// The default universe domain.
pub const DEFAULT_UNIVERSE_DOMAIN: &str = "googleapis.com";

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
pub struct Target<'a> {
    /// Bucket name.
    pub bucket: &'a str,
    /// Object name, if any.
    pub object: Option<&'a str>,
    /// Host selection.
    pub endpoint: &'a Endpoint,
}

/// A resolved target: everything needed to write the URL and the `host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
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
    pub fn base_url(&self) -> String {
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

/// Resolve scheme, authority, `host` header and path. `object_path` decides the path shape for
/// objects; POST policies pass `None` and get the bucket root (`/bucket/` or `/`).
pub fn resolve(target: &Target<'_>, for_post_policy: bool) -> Result<Resolved> {
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
            (scheme, authority.to_string())
        }
        UrlStyle::Path | UrlStyle::VirtualHosted => {
            let explicit = non_empty(e.hostname.as_deref())
                .or_else(|| non_empty(e.client_endpoint.as_deref()))
                .or_else(|| non_empty(e.emulator_host.as_deref()));
            let (scheme, authority) = match explicit {
                Some(endpoint) => {
                    let (scheme, authority) = split_endpoint(endpoint);
                    (scheme, authority.to_string())
                }
                None => {
                    let universe = non_empty(e.universe_domain.as_deref()).unwrap_or(DEFAULT_UNIVERSE_DOMAIN);
                    (None, format!("storage.{universe}"))
                }
            };
            if e.url_style == UrlStyle::VirtualHosted {
                (scheme, format!("{}.{authority}", target.bucket))
            } else {
                (scheme, authority)
            }
        }
    };
    if authority.is_empty() {
        return Err(Error::InvalidArgument("the URL host is empty: give a hostname such as example.com".into()));
    }
    let scheme = non_empty(e.scheme.as_deref()).or(endpoint_scheme).unwrap_or("https").to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(Error::InvalidArgument(format!("URL scheme `{scheme}` is not supported: use https or http")));
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let host_header = authority.strip_suffix(default_port).unwrap_or(&authority).to_ascii_lowercase();

    let object = target.object.filter(|o| !o.is_empty());
    let path = match (e.url_style, object, for_post_policy) {
        (UrlStyle::Path, _, true) => format!("/{}/", encode_path(target.bucket)),
        (_, _, true) => "/".to_string(),
        (UrlStyle::Path, Some(object), false) => format!("/{}/{}", encode_path(target.bucket), encode_path(object)),
        (UrlStyle::Path, None, false) => format!("/{}", encode_path(target.bucket)),
        (_, Some(object), false) => format!("/{}", encode_path(object)),
        (_, None, false) => "/".to_string(),
    };
    Ok(Resolved { scheme, authority, host_header, path })
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
        assert_eq!((e.scheme.as_str(), e.host_header.as_str()), ("http", "127.0.0.1:4443"));
        let e =
            r(Endpoint { emulator_host: s("http://e:1"), client_endpoint: s("https://c:443/"), ..Endpoint::default() });
        assert_eq!((e.authority.as_str(), e.host_header.as_str()), ("c:443", "c"));
        let e = r(Endpoint { hostname: s("h.example"), client_endpoint: s("c"), ..Endpoint::default() });
        assert_eq!(e.authority, "h.example");
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
