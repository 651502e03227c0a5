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

/// The inputs that decide where a URL points (borrowed from a [`super::V4Request`] or
/// [`super::PostPolicyRequest`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// Bucket name.
    pub bucket: &'a str,
    /// Object name, if any.
    pub object: Option<&'a str>,
    /// URL style.
    pub url_style: UrlStyle,
    /// Explicit scheme.
    pub scheme: Option<&'a str>,
    /// Explicit hostname.
    pub hostname: Option<&'a str>,
    /// Client endpoint.
    pub client_endpoint: Option<&'a str>,
    /// Emulator host.
    pub emulator_host: Option<&'a str>,
    /// Universe domain.
    pub universe_domain: Option<&'a str>,
    /// Bucket-bound hostname.
    pub bucket_bound_hostname: Option<&'a str>,
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
    if target.bucket.is_empty() {
        return Err(Error::InvalidArgument("bucket name is empty: name the bucket to sign for".into()));
    }
    let (endpoint_scheme, authority) = match target.url_style {
        UrlStyle::BucketBoundHostname => {
            let host = non_empty(target.bucket_bound_hostname).ok_or_else(|| {
                Error::InvalidArgument(
                    "URL style bucket-bound-hostname needs a bucket-bound hostname (e.g. cdn.example.com)".into(),
                )
            })?;
            let (scheme, authority) = split_endpoint(host);
            (scheme, authority.to_string())
        }
        UrlStyle::Path | UrlStyle::VirtualHosted => {
            let explicit = non_empty(target.hostname)
                .or_else(|| non_empty(target.client_endpoint))
                .or_else(|| non_empty(target.emulator_host));
            let (scheme, authority) = match explicit {
                Some(endpoint) => {
                    let (scheme, authority) = split_endpoint(endpoint);
                    (scheme, authority.to_string())
                }
                None => {
                    let universe = non_empty(target.universe_domain).unwrap_or(DEFAULT_UNIVERSE_DOMAIN);
                    (None, format!("storage.{universe}"))
                }
            };
            if target.url_style == UrlStyle::VirtualHosted {
                (scheme, format!("{}.{authority}", target.bucket))
            } else {
                (scheme, authority)
            }
        }
    };
    if authority.is_empty() {
        return Err(Error::InvalidArgument("the URL host is empty: give a hostname such as example.com".into()));
    }
    let scheme = non_empty(target.scheme).or(endpoint_scheme).unwrap_or("https").to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(Error::InvalidArgument(format!("URL scheme `{scheme}` is not supported: use https or http")));
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let host_header = authority.strip_suffix(default_port).unwrap_or(&authority).to_ascii_lowercase();

    let object = target.object.filter(|o| !o.is_empty());
    let path = match (target.url_style, object, for_post_policy) {
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

    fn t<'a>() -> Target<'a> {
        Target { bucket: "b", object: Some("o/x y"), ..Target::default() }
    }

    #[test]
    fn precedence() {
        let r = resolve(&t(), false).unwrap();
        assert_eq!(r.base_url(), "https://storage.googleapis.com/b/o/x%20y");
        let r = resolve(&Target { universe_domain: Some("u.com"), ..t() }, false).unwrap();
        assert_eq!(r.authority, "storage.u.com");
        let r = resolve(
            &Target { universe_domain: Some("u.com"), emulator_host: Some("http://127.0.0.1:4443"), ..t() },
            false,
        )
        .unwrap();
        assert_eq!((r.scheme.as_str(), r.host_header.as_str()), ("http", "127.0.0.1:4443"));
        let r = resolve(
            &Target { emulator_host: Some("http://e:1"), client_endpoint: Some("https://c:443/"), ..t() },
            false,
        )
        .unwrap();
        assert_eq!((r.authority.as_str(), r.host_header.as_str()), ("c:443", "c"));
        let r = resolve(&Target { hostname: Some("h.example"), client_endpoint: Some("c"), ..t() }, false).unwrap();
        assert_eq!(r.authority, "h.example");
    }

    #[test]
    fn styles() {
        let r = resolve(&Target { url_style: UrlStyle::VirtualHosted, ..t() }, false).unwrap();
        assert_eq!(r.base_url(), "https://b.storage.googleapis.com/o/x%20y");
        let e = resolve(&Target { url_style: UrlStyle::BucketBoundHostname, ..t() }, false).unwrap_err();
        assert!(e.to_string().contains("bucket-bound hostname"), "{e}");
        let r = resolve(&Target { object: None, ..t() }, true).unwrap();
        assert_eq!(r.base_url(), "https://storage.googleapis.com/b/");
        let e = resolve(&Target { scheme: Some("ftp"), ..t() }, false).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)));
    }
}
