#!/usr/bin/env python3
"""Thumbnails of a corpus of real images: sea-gcp's variants against vipsthumbnail (libvips, what Rails'
image_processing uses) and Pillow (what Django apps use), side by side in one run.

Corpus: Debian's `mate-backgrounds` (30 files under /usr/share/backgrounds/mate: 16 JPEG photographs of 1.3
to 17.9 megapixels, 14 PNG of about 2 megapixels). The script installs it, `libvips-tools` and `nasm` (for
libjpeg-turbo's SIMD code in our build) with apt-get when they are missing and it runs as root; otherwise
it says what to install. Pillow is installed into a
virtualenv under .tmp/.

Every tool makes a thumbnail that fits 400 x 400 as JPEG quality 80, one process per tool and half
(JPEG, PNG), on one core (`taskset -c 0`; libvips with VIPS_CONCURRENCY=1). Figures: CPU seconds
(user + system, GNU time), peak RSS, output bytes, the largest difference in output size between tools,
and SSIM (luma, 7x7 Gaussian windows) of each thumbnail against a reference made by Pillow from the fully
decoded original with Lanczos. Each tool runs ROUNDS times, interleaved; the median CPU time is reported.

Usage: scripts/bench-images.py [--rounds N]   (prints a Markdown section for BENCHMARKS.md)
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".tmp"
CORPUS = Path("/usr/share/backgrounds/mate")
VENV = WORK / "bench-images-venv"

PILLOW_SCRIPT = r"""
import sys
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1])
for f in sys.argv[2:]:
    im = Image.open(f)
    im.draft("RGB", (400, 400))
    im.thumbnail((400, 400))
    if im.mode != "RGB":
        im = im.convert("RGB")
    im.save(out / (Path(f).stem + ".jpg"), "JPEG", quality=80)
"""

SSIM_SCRIPT = r"""
import sys, json
from pathlib import Path
import numpy as np
from PIL import Image

def gaussian(size=7, sigma=1.5):
    ax = np.arange(size) - size // 2
    g = np.exp(-(ax ** 2) / (2 * sigma ** 2))
    return g / g.sum()

def blur(a, g):
    from numpy.lib.stride_tricks import sliding_window_view
    k = len(g)
    a = sliding_window_view(a, k, axis=0) @ g
    return sliding_window_view(a, k, axis=1) @ g

def ssim(x, y):
    x = x.astype(np.float64); y = y.astype(np.float64)
    g = gaussian()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x, g), blur(y, g)
    sxx = blur(x * x, g) - mx * mx
    syy = blur(y * y, g) - my * my
    sxy = blur(x * y, g) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(m.mean())

originals = json.loads(sys.argv[1])
dirs = json.loads(sys.argv[2])
result = {}
for tool, d in dirs.items():
    scores = []
    for f in originals:
        stem = Path(f).stem
        thumb = Image.open(Path(d) / (stem + ".jpg")).convert("L")
        ref = Image.open(f)
        ref.load()
        ref = ref.convert("RGB").resize(thumb.size, Image.LANCZOS).convert("L")
        scores.append(ssim(np.asarray(ref), np.asarray(thumb)))
    result[tool] = sum(scores) / len(scores)
print(json.dumps(result))
"""


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ensure_corpus():
    missing = []
    if not CORPUS.is_dir():
        missing.append("mate-backgrounds")
    if not shutil.which("vipsthumbnail"):
        missing.append("libvips-tools")
    if not shutil.which("nasm"):
        missing.append("nasm")  # libjpeg-turbo's SIMD code, compiled into the mozjpeg crate
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            sh("apt-get", "install", "-y", "-q", *missing, stdout=subprocess.DEVNULL)
        else:
            sys.exit(f"install {' '.join(missing)} (Debian: apt-get install {' '.join(missing)}) and run again")


def ensure_pillow():
    python = VENV / "bin" / "python"
    if not python.exists():
        sh(sys.executable, "-m", "venv", str(VENV))
    probe = subprocess.run([str(python), "-c", "import PIL, numpy"], capture_output=True)
    if probe.returncode != 0:
        sh(str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "pillow", "numpy")
    version = subprocess.run([str(python), "-c", "import PIL; print(PIL.__version__)"], capture_output=True, text=True)
    return python, version.stdout.strip()


def build_ours():
    sh("cargo", "build", "--quiet", "--release", "--example", "thumbnails", "--features", "images", cwd=ROOT)
    return ROOT / "target" / "release" / "examples" / "thumbnails"


def timed(cmd, env=None):
    """Run cmd on core 0 under GNU time: (cpu seconds, peak RSS in MiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        full = ["/usr/bin/time", "-o", t.name, "-f", "%U %S %M", "taskset", "-c", "0", *cmd]
        subprocess.run(full, check=True, env=env, stdout=subprocess.DEVNULL)
        user, system, rss_kb = t.read().split()[-3:]
    return float(user) + float(system), int(rss_kb) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_corpus()
    python, pillow_version = ensure_pillow()
    ours = build_ours()
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    halves = {
        "JPEG": [str(p) for p in files if p.suffix.lower() in (".jpg", ".jpeg")],
        "PNG": [str(p) for p in files if p.suffix.lower() == ".png"],
    }
    vips_version = subprocess.run(["vipsthumbnail", "--vips-version"], capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="bench-images-", dir=WORK))
    pillow_script = work / "pillow_thumbs.py"
    pillow_script.write_text(PILLOW_SCRIPT)
    vips_env = dict(os.environ, VIPS_CONCURRENCY="1")

    def commands(out, names):
        return {
            "sea-gcp": ([str(ours), str(out["sea-gcp"]), *names], None),
            "vipsthumbnail": (
                ["vipsthumbnail", "--size", "400x400", "-o", f"{out['vipsthumbnail']}/%s.jpg[Q=80,strip]", *names],
                vips_env,
            ),
            "Pillow": ([str(python), str(pillow_script), str(out["Pillow"]), *names], None),
        }

    rows = []
    for half, names in halves.items():
        out = {tool: work / half / tool for tool in ("sea-gcp", "vipsthumbnail", "Pillow")}
        for d in out.values():
            d.mkdir(parents=True, exist_ok=True)
        cpu = {tool: [] for tool in out}
        rss = {tool: 0.0 for tool in out}
        for _ in range(args.rounds):
            for tool, (cmd, env) in commands(out, names).items():
                seconds, peak = timed(cmd, env)
                cpu[tool].append(seconds)
                rss[tool] = max(rss[tool], peak)
        sizes = {}
        size_bytes = {}
        for tool, d in out.items():
            size_bytes[tool] = sum(f.stat().st_size for f in d.iterdir())
            dims = subprocess.run(
                [str(python), "-c", "import sys; from PIL import Image\n"
                 "for f in sorted(sys.argv[1:]): print(Image.open(f).size)", *map(str, d.iterdir())],
                capture_output=True, text=True, check=True).stdout.split("\n")
            sizes[tool] = dims
        import json
        scores = json.loads(subprocess.run(
            [str(python), "-c", SSIM_SCRIPT, json.dumps(names), json.dumps({t: str(d) for t, d in out.items()})],
            capture_output=True, text=True, check=True).stdout)
        dim_diff = 0
        for tool in out:
            for a, b in zip(sizes[tool], sizes["sea-gcp"]):
                if a and b:
                    wa, ha = eval(a)
                    wb, hb = eval(b)
                    dim_diff = max(dim_diff, abs(wa - wb), abs(ha - hb))
        rows.append((half, len(names), {t: statistics.median(v) for t, v in cpu.items()}, rss, size_bytes, scores, dim_diff))

    nproc = os.cpu_count()
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    print("## Image variants: thumbnails of a real corpus\n")
    print(f"Machine: {nproc} cores, {model}. `scripts/bench-images.py --rounds {args.rounds}`; corpus Debian "
          f"`mate-backgrounds` ({sum(len(v) for v in halves.values())} files); libvips {vips_version.split()[-1] if vips_version else '?'} "
          f"(`vipsthumbnail --size 400x400`, `[Q=80,strip]`, VIPS_CONCURRENCY=1); Pillow {pillow_version} (`draft` + "
          "`thumbnail`, quality 80); sea-gcp `Variant::limit(\"thumb\", 400, 400)` (release build). One process per tool "
          "and half, pinned to one core; CPU seconds are the median of the rounds (user + system), interleaved.\n")
    print("| half | files | tool | CPU s | vs faster other | peak RSS | output | SSIM vs Lanczos reference |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for half, n, cpu, rss, size_bytes, scores, dim_diff in rows:
        faster = min(cpu["vipsthumbnail"], cpu["Pillow"])
        for tool in ("sea-gcp", "vipsthumbnail", "Pillow"):
            ratio = faster / cpu[tool] if tool == "sea-gcp" else cpu[tool] / faster
            print(f"| {half} | {n} | {tool} | {cpu[tool]:.2f} | {ratio:.2f}x | {rss[tool]:.0f} MiB | "
                  f"{size_bytes[tool] / 1024:.0f} KiB | {scores[tool]:.4f} |")
        print(f"| {half} | | largest size difference from sea-gcp's output | {dim_diff} px | | | | |")
    print()
    print("\"vs faster other\" for sea-gcp is the faster of vipsthumbnail and Pillow divided by sea-gcp's CPU time "
          "(above 1.0x: sea-gcp is faster); for the others, their CPU time over the faster of the two.")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
