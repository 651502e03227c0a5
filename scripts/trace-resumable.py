#!/usr/bin/env python3
"""Why are resumable uploads to fake-gcs-server slower from sea-gcp than from Python? Trace both.

One run: a fresh fake-gcs-server (memory backend) whose external URL is a logging proxy
(scripts/trace-proxy.py), so the session URIs it hands out point back through the proxy and every chunk
request is seen. The same SIZE MiB file is uploaded with CHUNK MiB chunks by sea-gcp
(benches/drivers/transfer.rs, release) and by Python google-cloud-storage, one after the other, ROUNDS times
each, alternating which goes first. For each client it prints the requests of one upload (headers that shape an upload,
timings) and totals: client wall time, the emulator's CPU seconds during the upload (from /proc), and
per-chunk times (request body sent, response headers received).

With `--server plain` the server is scripts/plain-resumable-server.py instead: it speaks the same
resumable protocol but feeds each byte once to an incremental CRC32C and keeps nothing, so the client's
own speed shows without the emulator's per-chunk reprocessing of the whole object.

Usage: scripts/trace-resumable.py [--mib 256] [--chunk-mib 16] [--rounds 2] [--server emulator|plain]
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_transfer", os.path.join(ROOT, "scripts", "bench-transfer.py"))
bt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bt)
MIB = bt.MIB


def cpu_seconds(pid):
    """User + system CPU seconds of a process and its waited-for children, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--chunk-mib", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--server", choices=("emulator", "plain"), default="emulator")
    args = ap.parse_args()
    os.makedirs(bt.WORK, exist_ok=True)
    py = bt.ensure_venv()
    binary = bt.fake_gcs_binary(py)
    bt.sh("cargo", "build", "--release", "--quiet", "--example", "transfer", cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ours = os.path.join(target, "release", "examples", "transfer")
    src = os.path.join(bt.WORK, f"trace-{args.mib}.bin")
    if not os.path.exists(src) or os.path.getsize(src) != args.mib * MIB:
        with open(src, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(MIB))

    emu_port, proxy_port = bt.free_port(), bt.free_port()
    emu_url, proxy_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{proxy_port}"
    log_path = os.path.join(bt.WORK, "trace.jsonl")
    if os.path.exists(log_path):
        os.remove(log_path)
    if args.server == "plain":
        server_cmd = [py, os.path.join(ROOT, "scripts", "plain-resumable-server.py"), "--port", str(emu_port),
                      "--external-url", proxy_url]
    else:
        server_cmd = [binary, "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port",
                      str(emu_port), "-external-url", proxy_url, "-log-level", "error"]
    emu = subprocess.Popen(server_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "trace-proxy.py"), "--listen",
                              str(proxy_port), "--upstream", f"127.0.0.1:{emu_port}", "--log", log_path])
    try:
        import urllib.request
        for _ in range(100):
            try:
                urllib.request.urlopen(proxy_url + "/storage/v1/b", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        req = urllib.request.Request(proxy_url + "/storage/v1/b?project=bench",
                                     data=json.dumps({"name": "bench"}).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
        urllib.request.urlopen(req)
        chunk = args.chunk_mib * MIB
        env = dict(os.environ, STORAGE_EMULATOR_HOST=proxy_url)
        runs = []
        for r in range(args.rounds):
            # Alternate who goes first: the emulator's cost depends on what it holds and collects.
            for client in ("sea-gcp", "python") if r % 2 == 0 else ("python", "sea-gcp"):
                name = f"trace-{client}-{r}"
                cmd = {"sea-gcp": [ours, "up", "bench", name, src, str(chunk)],
                       "python": [py, "-c", bt.PY_UP, proxy_url, "one", name, src, str(chunk)]}[client]
                lines_before = sum(1 for _ in open(log_path)) if os.path.exists(log_path) else 0
                emu_before = cpu_seconds(emu.pid)
                wall, user, system, _ = bt.measure(cmd, env)
                time.sleep(0.3)  # let the proxy flush the last line
                emu_cpu = cpu_seconds(emu.pid) - emu_before
                entries = [json.loads(line) for line in open(log_path)][lines_before:]
                runs.append((client, r, wall, user + system, emu_cpu, entries))
    finally:
        proxy.terminate()
        emu.terminate()
        proxy.wait()
        emu.wait()

    server = "fake-gcs-server" if args.server == "emulator" else "scripts/plain-resumable-server.py"
    print(f"## Resumable upload trace: {args.mib} MiB, {args.chunk_mib} MiB chunks, {server} via a "
          f"logging proxy\n")
    print("| client | round | wall s | MiB/s | client CPU s | server CPU s | requests | connections | "
          "sum ms body sent | sum ms to response head after body |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    totals = {}
    for client, r, wall, cpu, emu_cpu, entries in runs:
        t = totals.setdefault(client, [0.0, 0.0, 0.0])
        t[0] += wall
        t[1] += cpu
        t[2] += emu_cpu
        conns = len({e["conn"] for e in entries})
        sent = sum(e["ms_request_sent"] for e in entries)
        server = sum(e["ms_response_head"] - e["ms_request_sent"] for e in entries)
        print(f"| {client} | {r} | {wall:.2f} | {args.mib / wall:.1f} | {cpu:.2f} | {emu_cpu:.2f} | "
              f"{len(entries)} | {conns} | {sent:.0f} | {server:.0f} |")
    for client, (wall, cpu, emu_cpu) in totals.items():
        print(f"| {client} | all | {wall:.2f} | {args.mib * args.rounds / wall:.1f} | {cpu:.2f} | {emu_cpu:.2f} | | | | |")
    for client in ("sea-gcp", "python"):
        _, _, _, _, _, entries = next(run for run in runs if run[0] == client)
        print(f"\n### {client}: requests of one upload\n")
        print("| conn | n | method | path | headers | request bytes | status | ms body sent | ms response head | "
              "ms since previous |")
        print("|---:|---:|---|---|---|---:|---:|---:|---:|---:|")
        for e in entries:
            path = e["path"].split("?")[0][-40:] + ("?" + e["path"].split("?")[1][:50] if "?" in e["path"] else "")
            heads = "; ".join(f"{k}: {v}" for k, v in e["headers"].items())
            print(f"| {e['conn']} | {e['n']} | {e['method']} | `{path}` | {heads} | {e['request_bytes']} | "
                  f"{e['status']} | {e['ms_request_sent']} | {e['ms_response_head']} | {e['ms_since_previous']} |")


if __name__ == "__main__":
    main()
