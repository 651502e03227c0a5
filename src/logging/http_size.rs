//! `httpRequest.requestSize` and `responseSize`: the message's size, head (start line and headers) and
//! body, as the LogEntry reference defines them. The head is counted as HTTP/1.1 writes it
//! (`Name: value\r\n` per header); HTTP/2 compresses headers, so there it is an upper bound.

use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::Body;

/// `Name: value\r\n` per header, and the blank line ending the head.
fn headers_size(headers: &HeaderMap) -> u64 {
    let fields: usize = headers.iter().map(|(name, value)| name.as_str().len() + 2 + value.len() + 2).sum();
    fields as u64 + 2
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The request's size: `METHOD target HTTP/1.1\r\n`, its headers, and its body's `Content-Length` (a
/// request without `Content-Length` or `Transfer-Encoding` over HTTP/1 has no body). `None` when the body's
/// length is unknown (chunked, or HTTP/2 without `Content-Length`).
pub(crate) fn request_size<B>(request: &Request<B>) -> Option<u64> {
    let headers = request.headers();
    let body = match content_length(headers) {
        Some(n) => n,
        None if !headers.contains_key(http::header::TRANSFER_ENCODING) && request.version() <= Version::HTTP_11 => 0,
        None => return None,
    };
    let target = request.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let line = request.method().as_str().len() + 1 + target + 1 + "HTTP/1.1\r\n".len();
    Some(line as u64 + headers_size(headers) + body)
}

/// True when a response to `method` with `status` carries no body, whatever the handler returned: HEAD
/// requests, 1xx, 204 and 304 (RFC 9110).
fn bodiless(method: &str, status: StatusCode) -> bool {
    method == Method::HEAD.as_str()
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// The response's size: `HTTP/1.1 200 OK\r\n`, its headers (with the `Content-Length` the server adds for a
/// body of known size), and the body bytes sent. `None` when the body's length is unknown (streamed).
pub(crate) fn response_size<B: Body>(method: &str, response: &Response<B>) -> Option<u64> {
    let status = response.status();
    let headers = response.headers();
    let line = "HTTP/1.1 200 \r\n".len() + status.canonical_reason().map_or(0, str::len);
    let mut head = line as u64 + headers_size(headers);
    if bodiless(method, status) {
        return Some(head);
    }
    let body = match content_length(headers) {
        Some(n) => n,
        None => {
            let n = response.body().size_hint().exact()?;
            head += ("content-length: \r\n".len() + n.to_string().len()) as u64;
            n
        }
    };
    Some(head + body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_the_head_and_the_body_sent() {
        let request = Request::post("/a?b=1").header("host", "x").header("content-length", "5").body(()).unwrap();
        // "POST /a?b=1 HTTP/1.1\r\n" 22 + "host: x\r\n" 9 + "content-length: 5\r\n" 19 + "\r\n" 2 + 5
        assert_eq!(request_size(&request), Some(22 + 9 + 19 + 2 + 5));
        let get = Request::get("/").body(()).unwrap();
        assert_eq!(request_size(&get), Some("GET / HTTP/1.1\r\n\r\n".len() as u64));
        let chunked = Request::post("/").header("transfer-encoding", "chunked").body(()).unwrap();
        assert_eq!(request_size(&chunked), None);

        let ok = Response::builder().header("content-type", "text/plain").body(String::from("hello")).unwrap();
        // "HTTP/1.1 200 OK\r\n" 17 + "content-type: text/plain\r\n" 26 + "content-length: 5\r\n" 19 + "\r\n" 2 + 5
        assert_eq!(response_size("GET", &ok), Some(17 + 26 + 19 + 2 + 5));
        // HEAD and 204: the head only, whatever the body says.
        assert_eq!(response_size("HEAD", &ok), Some(17 + 26 + 2));
        let empty = Response::builder().status(204).body(String::from("ignored")).unwrap();
        assert_eq!(response_size("GET", &empty), Some("HTTP/1.1 204 No Content\r\n\r\n".len() as u64));
    }
}
