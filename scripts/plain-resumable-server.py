#!/usr/bin/env python3
"""A minimal server for the GCS JSON API's resumable uploads that keeps nothing and hashes each byte once.

It answers what an upload client needs, on loopback: `GET /storage/v1/b/BUCKET`, `POST /storage/v1/b`
(create a bucket), `POST /upload/storage/v1/b/BUCKET/o?uploadType=resumable` (open a session: 200 with a
`Location`), and `PUT` of the session URI with `Content-Range: bytes A-B/TOTAL` or `bytes */TOTAL` (308
with `Range` until the last byte, then 200 with the object's JSON, CRC32C included). Chunks must arrive in
order; their bytes are counted and fed once to an incremental CRC32C, then dropped. Used by
`scripts/trace-resumable.py --server plain` to compare upload clients without the emulator's per-chunk
reprocessing of the whole object.

Usage: scripts/plain-resumable-server.py --port PORT --external-url URL
"""
import argparse
import base64
import datetime
import http.server
import json
import threading
import urllib.parse
import uuid

import google_crc32c

SESSIONS = {}
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    external = ""

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=()):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path.startswith("/storage/v1/b/") and "/o" not in path:
            return self.reply(200, {"kind": "storage#bucket", "name": path.rsplit("/", 1)[1], "id": path.rsplit("/", 1)[1]})
        self.reply(404, {"error": {"code": 404, "message": "not found"}})

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        raw = self.body()
        if url.path == "/storage/v1/b":
            return self.reply(200, {"kind": "storage#bucket", "name": json.loads(raw)["name"]})
        if url.path.startswith("/upload/storage/v1/b/") and query.get("uploadType") == ["resumable"]:
            bucket = url.path.split("/")[5]
            meta = json.loads(raw) if raw else {}
            name = query.get("name", [meta.get("name", "")])[0]
            upload_id = uuid.uuid4().hex
            with LOCK:
                SESSIONS[upload_id] = {"bucket": bucket, "name": name, "meta": meta, "size": 0,
                                       "crc": google_crc32c.Checksum()}
            location = f"{self.external}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id={upload_id}"
            return self.reply(200, {}, [("Location", location)])
        self.reply(400, {"error": {"code": 400, "message": f"unsupported: POST {self.path}"}})

    def do_PUT(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        session = SESSIONS.get(query.get("upload_id", [""])[0])
        if session is None:
            self.body()
            return self.reply(404, {"error": {"code": 404, "message": "no such session"}})
        span, total = self.headers.get("Content-Range", "bytes */*").split(" ", 1)[1].split("/")
        left = int(self.headers.get("Content-Length", "0") or 0)
        if span != "*" and int(span.split("-")[0]) != session["size"]:
            self.rfile.read(left)
            return self.reply(400, {"error": {"code": 400, "message": "chunks must arrive in order"}})
        while left:
            piece = self.rfile.read(min(left, 1 << 20))
            if not piece:
                break
            session["crc"].update(piece)
            session["size"] += len(piece)
            left -= len(piece)
        if total != "*" and session["size"] == int(total):
            now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
            crc = base64.b64encode(session["crc"].digest()).decode()
            meta = session["meta"]
            link = f"{self.external}/storage/v1/b/{session['bucket']}/o/{urllib.parse.quote(session['name'], safe='')}"
            body = {"kind": "storage#object", "id": f"{session['bucket']}/{session['name']}/1", "name": session["name"],
                    "selfLink": link, "mediaLink": link + "?alt=media",
                    "bucket": session["bucket"], "generation": "1", "metageneration": "1",
                    "contentType": meta.get("contentType", "application/octet-stream"),
                    "size": str(session["size"]), "crc32c": crc, "timeCreated": now, "updated": now,
                    "storageClass": "STANDARD", "etag": "CAE=", "metadata": meta.get("metadata", {})}
            return self.reply(200, body)
        headers = [("Range", f"bytes=0-{session['size'] - 1}")] if session["size"] else []
        self.reply(308, None, headers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--external-url", required=True)
    args = ap.parse_args()
    Handler.external = args.external_url
    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
