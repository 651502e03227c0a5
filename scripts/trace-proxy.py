#!/usr/bin/env python3
"""A logging HTTP/1.1 reverse proxy on loopback, for comparing what two clients send to the same server.

Each client connection gets its own upstream connection (so connection reuse shows as several requests on
one `conn`). For every request it writes one JSON line: connection id and its request number, method,
path (query shortened), the request headers that shape an upload (Content-Length, Content-Range,
Transfer-Encoding, Content-Type, Expect, X-Upload-Content-*), body bytes, and four times in milliseconds
from the first byte of the request: request body received, upstream response headers, response body
done, plus the gap since the previous response on the same connection (the client's think time).

Usage: scripts/trace-proxy.py --listen PORT --upstream HOST:PORT --log FILE
"""
import argparse
import json
import socket
import threading
import time

INTERESTING = ("content-length", "content-range", "transfer-encoding", "content-type", "expect",
               "x-upload-content-length", "x-upload-content-type", "connection")


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def headers_of(head):
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


def relay_body(src, dst, buf, fields, until_close=False):
    """Copy one message body from src to dst. Returns (bytes copied, leftover buffer)."""
    if "chunked" in fields.get("transfer-encoding", "").lower():
        total = 0
        while True:
            while b"\r\n" not in buf:
                data = src.recv(65536)
                if not data:
                    return total, b""
                buf += data
            line, buf = buf.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            dst.sendall(line + b"\r\n")
            need = size + 2
            while len(buf) < need:
                data = src.recv(max(65536, need - len(buf)))
                if not data:
                    return total, b""
                buf += data
            dst.sendall(buf[:need])
            buf = buf[need:]
            total += size
            if size == 0:
                return total, buf
    if "content-length" in fields:
        left = int(fields["content-length"])
        total = left
        if buf:
            take = buf[:left]
            dst.sendall(take)
            left -= len(take)
            buf = buf[len(take):]
        while left > 0:
            data = src.recv(min(1 << 20, left))
            if not data:
                break
            dst.sendall(data)
            left -= len(data)
        return total - left, buf
    if until_close:
        total = len(buf)
        if buf:
            dst.sendall(buf)
        while True:
            data = src.recv(1 << 20)
            if not data:
                return total, b""
            dst.sendall(data)
            total += len(data)
    return 0, buf


def serve(client, upstream, log, lock, conn_id):
    up = socket.create_connection(upstream)
    for s in (client, up):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cbuf, ubuf, n, last_done = b"", b"", 0, None
    try:
        while True:
            head, cbuf = read_head(client, cbuf)
            if head is None:
                return
            t0 = time.perf_counter()
            request_line, fields = headers_of(head)
            up.sendall(head)
            sent, cbuf = relay_body(client, up, cbuf, fields)
            t1 = time.perf_counter()
            rhead, ubuf = read_head(up, ubuf)
            if rhead is None:
                return
            t2 = time.perf_counter()
            status_line, rfields = headers_of(rhead)
            client.sendall(rhead)
            method = request_line.split(" ")[0]
            no_body = method == "HEAD" or status_line.split(" ")[1] in ("204", "304")
            got, ubuf = (0, ubuf) if no_body else relay_body(up, client, ubuf, rfields, until_close=True)
            t3 = time.perf_counter()
            path = request_line.split(" ")[1]
            if len(path) > 160:
                path = path[:160] + "..."
            entry = {
                "conn": conn_id, "n": n, "method": method, "path": path,
                "headers": {k: fields[k] for k in INTERESTING if k in fields},
                "request_bytes": sent, "status": status_line.split(" ")[1], "response_bytes": got,
                "response_headers": {k: rfields[k] for k in ("content-length", "range", "connection",
                                                             "transfer-encoding") if k in rfields},
                "ms_request_sent": round((t1 - t0) * 1000, 2), "ms_response_head": round((t2 - t0) * 1000, 2),
                "ms_done": round((t3 - t0) * 1000, 2),
                "ms_since_previous": None if last_done is None else round((t0 - last_done) * 1000, 2),
                "t": round(t0, 4),
            }
            last_done = t3
            n += 1
            with lock:
                log.write(json.dumps(entry) + "\n")
                log.flush()
    except (ConnectionError, OSError):
        return
    finally:
        client.close()
        up.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    upstream = (host, int(port))
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.listen))
    server.listen(64)
    lock = threading.Lock()
    with open(args.log, "a") as log:
        conn_id = 0
        while True:
            client, _ = server.accept()
            conn_id += 1
            threading.Thread(target=serve, args=(client, upstream, log, lock, conn_id), daemon=True).start()


if __name__ == "__main__":
    main()
