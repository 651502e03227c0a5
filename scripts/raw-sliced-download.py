#!/usr/bin/env python3
"""The cheapest client there can be for a sliced download: the floor that scripts/bench-sliced-download.py
compares sea-gcp's download_to_file against.

No HTTP library and no checksum: SLICES plain sockets each send one ranged GET (`Connection: close`, so
the server's FIN ends each body), and one thread reads whatever socket is ready into a 4 MiB buffer and
writes it with `pwrite` at its offset into a file allocated up front (`posix_fallocate`). With --lowat N,
each socket only reports readable once N bytes are waiting (SO_RCVLOWAT), so the process wakes about
once per N bytes instead of once per arriving piece.

Usage: raw-sliced-download.py HOST:PORT PATH SIZE SLICES FILE [--lowat N]
PATH is the request target, e.g. /storage/v1/b/BUCKET/o/NAME?alt=media.
"""
import argparse
import os
import selectors
import socket


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("address")
    ap.add_argument("path")
    ap.add_argument("size", type=int)
    ap.add_argument("slices", type=int)
    ap.add_argument("file")
    ap.add_argument("--lowat", type=int, default=0)
    args = ap.parse_args()
    host, port = args.address.rsplit(":", 1)
    length = -(-args.size // args.slices)
    fd = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.posix_fallocate(fd, 0, args.size)
    sel = selectors.DefaultSelector()
    state = {}
    for i in range(args.slices):
        start, end = i * length, min(args.size, (i + 1) * length)
        s = socket.create_connection((host, int(port)))
        if args.lowat:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, args.lowat)
        s.sendall(f"GET {args.path} HTTP/1.1\r\nHost: {args.address}\r\nRange: bytes={start}-{end - 1}\r\n"
                  f"Connection: close\r\n\r\n".encode())
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        state[s] = {"offset": start, "end": end, "head": b""}
    buf = bytearray(4 * 1024 * 1024)
    view = memoryview(buf)
    total = 0
    while state:
        for key, _ in sel.select():
            s = key.fileobj
            st = state[s]
            try:
                n = s.recv_into(buf)
            except BlockingIOError:
                continue
            if n == 0:
                if st["offset"] != st["end"]:
                    raise SystemExit(f"connection closed at {st['offset']}, expected {st['end']}")
                sel.unregister(s)
                s.close()
                del state[s]
                continue
            body = view[:n]
            if st["head"] is not None:
                st["head"] += bytes(body)
                cut = st["head"].find(b"\r\n\r\n")
                if cut < 0:
                    continue
                status = st["head"].split(b" ", 2)[1]
                if status != b"206":
                    raise SystemExit(f"status {status.decode()}: {st['head'][:200]!r}")
                rest = st["head"][cut + 4:]
                st["head"] = None
                body = memoryview(rest)
            os.pwrite(fd, body, st["offset"])
            st["offset"] += len(body)
            total += len(body)
    os.close(fd)
    if total != args.size:
        raise SystemExit(f"wrote {total} bytes, expected {args.size}")


if __name__ == "__main__":
    main()
