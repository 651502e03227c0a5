#!/usr/bin/env bash
# Run every coverage-guided fuzz target (fuzz/, cargo-fuzz + libFuzzer on the nightly toolchain), each
# until it has executed RUNS inputs or SECONDS have passed, JOBS targets at a time; then minimise each
# corpus (cargo fuzz cmin) so that the committed corpora stay small, and print one line per target:
# executions, seconds, crashes (inputs saved under fuzz/artifacts/<target>/) and corpus size.
# `tests/fuzz_corpora.rs` replays the committed corpora in every test run.
#
# Usage: scripts/fuzz.sh [RUNS] [SECONDS] [TARGET...]    defaults: 10000000 600, every target
# Env:   JOBS (default 2): targets fuzzed at once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-10000000}"
seconds="${2:-600}"
shift $(( $# > 2 ? 2 : $# ))
jobs="${JOBS:-2}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || { echo "error: cargo fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^name = "\([a-z_0-9]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^sea-gcp-fuzz$')
cargo +nightly fuzz build -O "${targets[@]:0:1}" >/dev/null 2>&1 || cargo +nightly fuzz build -O
logs="$(mktemp -d)"
run_one() {
    local t="$1" start end status
    mkdir -p "fuzz/corpus/$t"
    start=$(date +%s)
    status=0
    cargo +nightly fuzz run -O "$t" -- -runs="$runs" -max_total_time="$seconds" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 >"$logs/$t.log" 2>&1 || status=$?
    end=$(date +%s)
    echo "$status $((end - start))" >"$logs/$t.status"
}
running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
printf '%-16s %14s %8s %8s %10s\n' target executions seconds crashes corpus
failed=0
for t in "${targets[@]}"; do
    read -r status secs <"$logs/$t.status"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
    crashes=$( { find "fuzz/artifacts/$t" -type f 2>/dev/null || true; } | wc -l)
    cargo +nightly fuzz cmin -O "$t" >/dev/null 2>&1 || true
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    printf '%-16s %14s %8s %8s %10s\n' "$t" "${execs:-?}" "$secs" "$crashes" "$corpus"
    if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        echo "  $t failed (exit $status); the log's last lines:" >&2
        tail -n 20 "$logs/$t.log" | sed 's/^/    /' >&2
    fi
done
exit "$failed"
