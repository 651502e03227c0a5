#!/usr/bin/env python3
"""Compute the expected values of extra_v4_signatures.json independently of the Rust code.

A small V4 signer written from Google's V4 signing documentation, using only hashlib and the
`cryptography` package (RSA PKCS#1 v1.5 with SHA-256 over the dummy key beside this file). It first checks
itself against every signed-URL case of the vendored upstream file (v4_signatures.json): URL, canonical
request and string to sign must all match. Then it fills in `expectedUrl`, `expectedCanonicalRequest` and
`expectedStringToSign` for the inputs listed in INPUTS below and writes extra_v4_signatures.json.

Rules beyond what the vendored upstream cases show (the reason these cases exist):
- a request header `X-Goog-Content-SHA256` (any case) makes its canonical value the payload line of the
  canonical request instead of `UNSIGNED-PAYLOAD`;
- the signed `host` header is the URL's host without any port (`localhost:8080` signs as `localhost`),
  whichever input picked the host (hostname, client endpoint, emulator host, bucket-bound hostname); the
  URL keeps the port.

Run: python3 tests/data/conformance/make_extra_v4_signatures.py   (needs `cryptography`)
"""

import hashlib
import json
import os
import sys
from datetime import datetime
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

HERE = os.path.dirname(os.path.abspath(__file__))
UNRESERVED = "-._~"

INPUTS = [
    {
        "description": "Payload hash header replaces UNSIGNED-PAYLOAD",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "PUT",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "headers": {"X-Goog-Content-SHA256": hashlib.sha256(b"hello").hexdigest()},
        "scheme": "https",
    },
    {
        "description": "Payload hash header in lower case, with other headers and a query parameter",
        "bucket": "test-bucket",
        "object": "uploads/photo 1.jpg",
        "method": "PUT",
        "expiration": 600,
        "timestamp": "2026-11-27T12:34:56Z",
        "headers": {
            "content-type": "image/jpeg",
            "x-goog-content-sha256": "  " + hashlib.sha256(b"not really a jpeg").hexdigest() + " ",
            "x-goog-if-generation-match": "0",
        },
        "queryParameters": {"uploadType": "media"},
        "scheme": "https",
    },
    {
        "description": "Hostname with a port: URL keeps the port, host header drops it",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "GET",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "scheme": "http",
        "hostname": "localhost:8080",
    },
    {
        "description": "Client endpoint with scheme and port",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "GET",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "clientEndpoint": "http://localhost:8080",
    },
    {
        "description": "Emulator host with scheme and port",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "GET",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "emulatorHostname": "http://localhost:9000",
    },
    {
        "description": "Emulator host with a port and no scheme",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "GET",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "scheme": "http",
        "emulatorHostname": "127.0.0.1:4443",
    },
    {
        "description": "Client endpoint with a port beats the emulator host",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "GET",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "clientEndpoint": "http://localhost:8080",
        "emulatorHostname": "http://localhost:9000",
    },
    {
        "description": "Hostname with a port beats client endpoint and emulator host",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "GET",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "hostname": "https://Files.Example.com:8443",
        "clientEndpoint": "http://localhost:8080",
        "emulatorHostname": "http://localhost:9000",
    },
    {
        "description": "Virtual hosted style on a client endpoint with a port",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "GET",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "urlStyle": "VIRTUAL_HOSTED_STYLE",
        "clientEndpoint": "http://localhost:8080",
    },
    {
        "description": "Bucket bound hostname with a port",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "GET",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "scheme": "https",
        "urlStyle": "BUCKET_BOUND_HOSTNAME",
        "bucketBoundHostname": "cdn.example.com:8443",
    },
    {
        "description": "Payload hash header on a hostname with a port",
        "bucket": "test-bucket",
        "object": "test-object",
        "method": "PUT",
        "expiration": 10,
        "timestamp": "2019-02-01T09:00:00Z",
        "scheme": "http",
        "hostname": "localhost:8080",
        "headers": {"X-Goog-Content-SHA256": hashlib.sha256(b"").hexdigest()},
    },
]


def enc(text, safe=""):
    return quote(text.encode("utf-8"), safe=UNRESERVED + safe)


def split_endpoint(value):
    value = value.strip()
    scheme = None
    if "://" in value:
        scheme, value = value.split("://", 1)
    for stop in "/?#":
        value = value.split(stop, 1)[0]
    return scheme, value


def strip_port(authority):
    if authority.startswith("["):
        return authority[: authority.index("]") + 1]
    return authority.rsplit(":", 1)[0] if ":" in authority else authority


def sign(case, key, email):
    style = case.get("urlStyle", "PATH_STYLE")
    bucket, obj = case["bucket"], case.get("object")
    if style == "BUCKET_BOUND_HOSTNAME":
        endpoint_scheme, authority = split_endpoint(case["bucketBoundHostname"])
    else:
        explicit = case.get("hostname") or case.get("clientEndpoint") or case.get("emulatorHostname")
        if explicit:
            endpoint_scheme, authority = split_endpoint(explicit)
        else:
            endpoint_scheme, authority = None, "storage." + case.get("universeDomain", "googleapis.com")
        if style == "VIRTUAL_HOSTED_STYLE":
            authority = bucket + "." + authority
    scheme = (case.get("scheme") or endpoint_scheme or "https").lower()
    host = strip_port(authority).lower()
    if style == "PATH_STYLE":
        path = "/" + enc(bucket, "/") + ("/" + enc(obj, "/") if obj else "")
    else:
        path = "/" + (enc(obj, "/") if obj else "")

    headers = {}
    for name, value in case.get("headers", {}).items():
        value = " ".join(value.replace("\t", " ").split())
        name = name.strip().lower()
        headers[name] = headers[name] + "," + value if name in headers else value
    headers.setdefault("host", host)
    names = sorted(headers)
    signed_headers = ";".join(names)
    header_block = "".join(f"{n}:{headers[n]}\n" for n in names)
    payload = headers.get("x-goog-content-sha256", "UNSIGNED-PAYLOAD")

    at = datetime.strptime(case["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    stamp, date = at.strftime("%Y%m%dT%H%M%SZ"), at.strftime("%Y%m%d")
    scope = f"{date}/auto/storage/goog4_request"
    query = {
        "X-Goog-Algorithm": "GOOG4-RSA-SHA256",
        "X-Goog-Credential": f"{email}/{scope}",
        "X-Goog-Date": stamp,
        "X-Goog-Expires": str(int(case["expiration"])),
        "X-Goog-SignedHeaders": signed_headers,
    }
    query.update(case.get("queryParameters", {}))
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted((enc(k), enc(v)) for k, v in query.items()))
    canonical_request = "\n".join(
        [case["method"], path, canonical_query, header_block, signed_headers, payload]
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = "\n".join(["GOOG4-RSA-SHA256", stamp, scope, digest])
    signature = key.sign(string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()).hex()
    url = f"{scheme}://{authority}{path}?{canonical_query}&X-Goog-Signature={signature}"
    return url, canonical_request, string_to_sign


def main():
    account = json.load(open(os.path.join(HERE, "test_service_account.not-a-test.json")))
    key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
    email = account["client_email"]

    upstream = json.load(open(os.path.join(HERE, "v4_signatures.json")))["signingV4Tests"]
    for case in upstream:
        got = sign(case, key, email)
        want = (case["expectedUrl"], case["expectedCanonicalRequest"], case["expectedStringToSign"])
        # Upstream writes the signature parameter as `x-goog-signature` in one case; compare the rest exactly.
        if got[0].lower() != want[0].lower() or got[1:] != want[1:]:
            sys.exit(f"reference signer disagrees with upstream case {case['description']!r}:\n{got}\n{want}")
    print(f"reference signer matches all {len(upstream)} upstream signed-URL cases", file=sys.stderr)

    cases = []
    for case in INPUTS:
        url, canonical_request, string_to_sign = sign(case, key, email)
        cases.append(
            dict(
                case,
                expectedUrl=url,
                expectedCanonicalRequest=canonical_request,
                expectedStringToSign=string_to_sign,
            )
        )
    out = os.path.join(HERE, "extra_v4_signatures.json")
    with open(out, "w") as f:
        json.dump({"signingV4Tests": cases}, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.basename(out)}", file=sys.stderr)


if __name__ == "__main__":
    main()
