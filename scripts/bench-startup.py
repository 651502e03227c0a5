#!/usr/bin/env python3
"""Exec to first 200, and resident memory after the first page: the complete example against a minimal
axum hello-world, release builds, measured in the same run with the two taking turns.

Each round starts a binary in a fresh empty directory (the example then creates its SQLite database,
its tables and its media folder, starts its local Cloud Tasks and Scheduler, and generates its local
signing key in the background), polls `GET /` on its port every millisecond from exec until the first
200, then reads the process's VmRSS and VmHWM from /proc and stops it. The example runs with
GCE_METADATA_HOST on a closed loopback port, so a call to the metadata server would fail loudly rather
than reach the network.

Usage: scripts/bench-startup.py [--rounds 20] [--debug]   (prints a Markdown section for BENCHMARKS.md)
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(debug):
    """Release (or debug) builds of both binaries; their paths."""
    def artifact(args, name):
        out = subprocess.run(
            ["cargo", *args, "--message-format=json"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        for line in out.splitlines():
            msg = json.loads(line)
            if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == name and msg.get("executable"):
                return msg["executable"]
        raise SystemExit(f"no executable for {name}")

    if debug:
        app = artifact(["build", "--example", "app"], "app")
        hello = artifact(["test", "--bench", "hello_axum", "--no-run"], "hello_axum")
    else:
        app = artifact(["build", "--release", "--example", "app"], "app")
        hello = artifact(["bench", "--bench", "hello_axum", "--no-run"], "hello_axum")
    return app, hello


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_200(port, deadline):
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(request)
                head = s.recv(64)
                if head.startswith(b"HTTP/1.1 200"):
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.001)
    raise SystemExit(f"no 200 on port {port}")


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def run_once(binary, args):
    work = tempfile.mkdtemp(prefix="sea-gcp-startup-")
    port = free_port()
    env = dict(os.environ, PORT=str(port), RUST_LOG="error", GCE_METADATA_HOST="127.0.0.1:9")
    env["DATABASE_URL"] = f"sqlite://{work}/app.db?mode=rwc"
    try:
        start = time.perf_counter()
        proc = subprocess.Popen([binary, *args], cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            answered = first_200(port, start + 30)
            rss, hwm = memory(proc.pid)
        finally:
            proc.kill()
            proc.wait()
        return (answered - start) * 1000, rss, hwm
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--debug", action="store_true", help="debug builds instead of release")
    args = parser.parse_args()
    app, hello = build(args.debug)
    results = {"app": [], "hello": []}
    for _ in range(args.rounds):
        for name, binary, extra in (("hello", hello, ["serve"]), ("app", app, [])):
            results[name].append(run_once(binary, extra))
    med = {name: [statistics.median(r[i] for r in rows) for i in range(3)] for name, rows in results.items()}
    low = {name: min(r[0] for r in rows) for name, rows in results.items()}
    high = {name: max(r[0] for r in rows) for name, rows in results.items()}
    profile = "debug" if args.debug else "release"
    print(f"{profile} builds, {args.rounds} rounds each, taking turns; median (lowest to highest) exec to first 200.\n")
    print("| binary | exec to first 200, ms | RSS after the first page, MiB | peak RSS, MiB |")
    print("|---|---:|---:|---:|")
    labels = {"hello": "axum hello-world (floor)", "app": "the complete example (`examples/app.rs`)"}
    for name in ("hello", "app"):
        t, rss, hwm = med[name]
        print(f"| {labels[name]} | {t:.1f} ({low[name]:.1f}–{high[name]:.1f}) | {rss:.1f} | {hwm:.1f} |")
    print(
        f"\nRatio to the floor: {med['app'][0] / med['hello'][0]:.2f}x the time, "
        f"{med['app'][1] / med['hello'][1]:.2f}x the memory."
    )


if __name__ == "__main__":
    main()
