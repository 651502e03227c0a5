#!/usr/bin/env python3
"""Sliced parallel downloads (storage::download::download_to_file) against fake-gcs-server.

One run, all figures side by side: a SIZE MiB object preloaded into a fresh emulator (-data), then
1. behind benches/drivers/throttle_proxy.rs (loopback, each connection capped at RATE MiB/s, standing in for
   one connection's throughput to GCS over the internet): one stream, 4 slices, and curl (one stream);
2. straight to the emulator (loopback, CPU-bound): the plain streamed GET written to a file (the path
   before sliced downloads), download_to_file with default options (sliced above 150 MiB), one stream;
3. dd writing as many zeros to a new file at full speed, with no network: how much, and how unevenly,
   this machine charges for writing a new file.
Through the proxy, scripts/raw-sliced-download.py (plain sockets, no HTTP library, no checksum) gives the
floor: what any client's CPU cannot go below on this machine, with and without SO_RCVLOWAT.
Every download writes a new file (removed after each run). On a virtual machine that hands freed memory
back to its host at once (free page reporting), writing a new file's pages into memory the host must back
again costs guest CPU that varies from run to run, and is charged to whichever client is writing: hence
several rounds, the clients taking turns, and the lowest and highest CPU next to the median. As root,
--hold-freed-memory keeps freed memory in the guest for 60 s while the bench runs (and touches and frees
twice the object's size before each run), which measures the clients without that cost. Client wall time,
CPU (user+sys) and peak RSS come from GNU time, as in scripts/bench-transfer.py. Prints a Markdown section
for BENCHMARKS.md.

Every client runs --rounds times, the clients taking turns; the table has each one's median wall time and
CPU, its lowest and highest CPU, and its largest RSS.

Usage: scripts/bench-sliced-download.py [--mib 1024] [--rate 50] [--slices 4] [--rounds 3] [--hold-freed-memory] [--before BINARY]
Build with the shared target directory (CARGO_TARGET_DIR) of the machine.
"""
import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_transfer", os.path.join(ROOT, "scripts", "bench-transfer.py"))
bt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bt)
MIB = bt.MIB


def wait_http(url):
    import urllib.request
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/storage/v1/b", timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"emulator at {url} did not answer")


REPORTING = "/sys/module/page_reporting/parameters/min_free_ms"


def warm_memory(mib):
    """Touch MIB MiB of anonymous memory and free it: the next run's new pages come from memory the host
    still backs (while --hold-freed-memory keeps it from being handed back)."""
    block = bytearray(mib * MIB)
    for i in range(0, len(block), 4096):
        block[i] = 1
    del block


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--slices", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3, help="runs of every client, one after the other; medians")
    ap.add_argument("--hold-freed-memory", action="store_true",
                    help=f"root only: keep freed memory for 60 s before it goes back to the host ({REPORTING}), "
                    "and touch and free twice the object's size before each run; the old value is restored")
    ap.add_argument("--before", help="a transfer binary built from an earlier commit: adds its rows (awaited by the "
                    "main future, the only way it ran)")
    args = ap.parse_args()
    work = os.path.join(bt.WORK, "sliced")
    data = os.path.join(work, "data", "bench")
    os.makedirs(data, exist_ok=True)
    py = bt.ensure_venv()
    binary = bt.fake_gcs_binary(py)
    bt.sh("cargo", "build", "--release", "--quiet", "--example", "transfer", "--example", "throttle_proxy", cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    transfer = os.path.join(target, "release", "examples", "transfer")
    proxy_bin = os.path.join(target, "release", "examples", "throttle_proxy")
    src = os.path.join(data, "big.bin")
    if not os.path.exists(src) or os.path.getsize(src) != args.mib * MIB:
        with open(src, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(MIB))
    load_before = open("/proc/loadavg").read().split()[0]
    port = bt.free_port()
    emu_url = f"http://127.0.0.1:{port}"
    emu = subprocess.Popen([binary, "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port),
                            "-external-url", emu_url, "-data", os.path.join(work, "data"), "-log-level", "error"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen([proxy_bin, str(port), str(args.rate)], stdout=subprocess.PIPE, text=True)
    proxy_url = f"http://127.0.0.1:{proxy.stdout.readline().strip()}"
    rows = []
    held = None
    try:
        if args.hold_freed_memory:
            with open(REPORTING) as f:
                old = f.read().strip()
            with open(REPORTING, "w") as f:
                f.write("60000")
            held = old
        wait_http(emu_url)
        out = os.path.join(work, "out.bin")
        raw = [sys.executable, os.path.join(ROOT, "scripts", "raw-sliced-download.py"), proxy_url.removeprefix("http://"),
               "/storage/v1/b/bench/o/big.bin?alt=media", str(args.mib * MIB), str(args.slices), out]
        runs = [
            ("proxy", "sea-gcp download_to_file, 1 stream", proxy_url, [transfer, "download", "bench", "big.bin", out, "1"]),
            ("proxy", f"sea-gcp download_to_file, {args.slices} slices", proxy_url,
             [transfer, "download", "bench", "big.bin", out, str(args.slices)]),
            ("proxy", f"sea-gcp download_to_file, {args.slices} slices, awaited by the main future", proxy_url,
             [transfer, "download-main", "bench", "big.bin", out, str(args.slices)]),
            *([("proxy", f"before: download_to_file, {args.slices} slices, awaited by the main future", proxy_url,
                [args.before, "download", "bench", "big.bin", out, str(args.slices)])] if args.before else []),
            ("proxy", f"floor: raw sockets, {args.slices} slices", proxy_url, raw),
            ("proxy", f"floor: raw sockets, {args.slices} slices, SO_RCVLOWAT 1 MiB", proxy_url,
             raw + ["--lowat", str(MIB)]),
            ("proxy", "curl, 1 stream", proxy_url,
             ["curl", "-sS", "--fail", "-o", out, f"{proxy_url}/storage/v1/b/bench/o/big.bin?alt=media"]),
            ("direct", "sea-gcp streamed GET to a file (before)", emu_url, [transfer, "down", "bench", "big.bin", out]),
            ("direct", "sea-gcp download_to_file, default options (after)", emu_url,
             [transfer, "download", "bench", "big.bin", out]),
            *([("direct", "before: download_to_file, default options", emu_url,
                [args.before, "download", "bench", "big.bin", out])] if args.before else []),
            ("direct", "sea-gcp download_to_file, 1 stream", emu_url, [transfer, "download", "bench", "big.bin", out, "1"]),
            ("direct", "curl, 1 stream", emu_url,
             ["curl", "-sS", "--fail", "-o", out, f"{emu_url}/storage/v1/b/bench/o/big.bin?alt=media"]),
            ("file", f"dd: {args.mib} MiB of zeros to a new file, no network", emu_url,
             ["dd", "if=/dev/zero", f"of={out}", "bs=1M", f"count={args.mib}", "status=none"]),
        ]
        samples = {}
        for round_ in range(args.rounds):
            for path, label, url, cmd in runs:
                env = dict(os.environ, STORAGE_EMULATOR_HOST=url)
                os.sync()  # no earlier run's writeback overlaps this one
                if held is not None:
                    warm_memory(2 * args.mib)
                wall, user, system, rss = bt.measure(cmd, env)
                if os.path.getsize(out) != args.mib * MIB:
                    raise SystemExit(f"{label}: wrote {os.path.getsize(out)} bytes")
                os.remove(out)
                samples.setdefault((path, label), []).append((wall, user + system, rss))
                print(f"{round_ + 1} {path:>6} {label:<60} {args.mib / wall:8.1f} MiB/s cpu {user + system:.2f}s "
                      f"rss {rss:.1f} MiB", file=sys.stderr)
        for (path, label), got in samples.items():
            wall, cpu = statistics.median(g[0] for g in got), statistics.median(g[1] for g in got)
            rss = max(g[2] for g in got)
            spread = (min(g[1] for g in got) * 1024 / args.mib, max(g[1] for g in got) * 1024 / args.mib)
            rows.append((path, label, wall, args.mib / wall, cpu, cpu * 1024 / args.mib, rss, spread))
    finally:
        if held is not None:
            with open(REPORTING, "w") as f:
                f.write(held)
        proxy.terminate()
        emu.terminate()
        proxy.wait()
        emu.wait()
    load_after = open("/proc/loadavg").read().split()[0]

    def rate(path, label_start):
        return next(r[3] for r in rows if r[0] == path and r[1].startswith(label_start))

    single = rate("proxy", "sea-gcp download_to_file, 1 stream")
    sliced = rate("proxy", f"sea-gcp download_to_file, {args.slices} slices")
    before = rate("direct", "sea-gcp streamed GET")
    after = rate("direct", "sea-gcp download_to_file, default")
    def cpu(label):
        return next(r[5] for r in rows if r[0] == "proxy" and r[1] == label)

    def lowest(label):
        return next(r[7][0] for r in rows if r[0] == "proxy" and r[1] == label)

    cpu_sliced = cpu(f"sea-gcp download_to_file, {args.slices} slices")
    floor = cpu(f"floor: raw sockets, {args.slices} slices")
    floor_lowat = cpu(f"floor: raw sockets, {args.slices} slices, SO_RCVLOWAT 1 MiB")
    lines = [f"`scripts/bench-sliced-download.py --mib {args.mib} --rate {args.rate:g} --slices {args.slices} "
             f"--rounds {args.rounds}{' --hold-freed-memory' if held is not None else ''}` "
             f"(medians of {args.rounds} rounds) "
             f"({time.strftime('%Y-%m-%d')}): one {args.mib} MiB object preloaded into fake-gcs-server (memory backend); "
             f"every client writes it to a file. Load average (1 min) {load_before} before, {load_after} after."
             + (" Freed memory held in the guest (--hold-freed-memory)." if held is not None else ""), "",
             "| path | client | seconds | MiB/s | client CPU s | CPU s/GiB | lowest–highest CPU s/GiB | peak RSS MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for path, label, wall, mibs, cpu, per_gib, rss, (low, high) in rows:
        where = {"proxy": f"proxy, {args.rate:g} MiB/s per connection", "direct": "direct (loopback)"}.get(path, "no network")
        lines.append(f"| {where} | {label} | {wall:.2f} | {mibs:.1f} | {cpu:.2f} | {per_gib:.2f} | {low:.2f}–{high:.2f} "
                     f"| {rss:.1f} |")
    lines += ["",
              f"- {args.slices} slices vs one stream through the proxy: **{sliced / single:.2f}x** (goal >= 3x: "
              f"{'met' if sliced >= 3 * single else 'missed'}); client CPU {cpu_sliced:.2f} s/GiB (goal <= 0.6: "
              f"{'met' if cpu_sliced <= 0.6 else 'missed'}); {cpu_sliced / floor:.2f}x the raw-socket floor "
              f"({floor:.2f} s/GiB), {cpu_sliced / floor_lowat:.2f}x the floor with SO_RCVLOWAT ({floor_lowat:.2f} s/GiB). "
              f"Lowest runs: {lowest(f'sea-gcp download_to_file, {args.slices} slices'):.2f} s/GiB against the floor's "
              f"{lowest(f'floor: raw sockets, {args.slices} slices'):.2f} and "
              f"{lowest(f'floor: raw sockets, {args.slices} slices, SO_RCVLOWAT 1 MiB'):.2f} with SO_RCVLOWAT.",
              f"- Without the proxy, default options (sliced) vs the streamed GET before: **{after / before:.2f}x** "
              f"(goal: no regression, >= 1.0x: {'met' if after >= before else 'missed'})."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
