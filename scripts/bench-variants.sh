#!/usr/bin/env bash
# Variant throughput through the task path (benches/drivers/bench_variants.rs): the app handle in local
# mode saves every image of Debian's mate-backgrounds corpus (30 files, 16 JPEG photographs of 1.3 to 17.9
# megapixels and 14 PNG of about 2 megapixels) to a field with a 400 x 400 thumb, and the clock runs until
# the last thumb is recorded in its row; the floor, in the same run, renders the same thumbs in memory on
# every core. Installs mate-backgrounds and nasm with apt-get when missing and run as root; otherwise says
# what to install.
#
# Usage: scripts/bench-variants.sh [ROUNDS]   (default 3; prints every round's figures)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
corpus=/usr/share/backgrounds/mate
missing=()
[ -d "$corpus" ] || missing+=(mate-backgrounds)
command -v nasm >/dev/null || missing+=(nasm)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "install first: apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
mapfile -t files < <(find "$corpus" -type f \( -name '*.jpg' -o -name '*.png' \) | sort)
cargo build -q --release --example bench_variants --features images,tasks
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for round in $(seq "${1:-3}"); do
    echo "== round $round"
    GCE_METADATA_HOST=127.0.0.1:9 target/release/examples/bench_variants "${files[@]}"
done
