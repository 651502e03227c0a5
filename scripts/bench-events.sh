#!/usr/bin/env bash
# Events benchmark: ID-token verification rate vs `openssl speed rsa2048` (verify, one core), and
# router throughput with and without verification, in one run. Prints the figures and the ratios.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "openssl: $(openssl version)"
openssl_verify=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $NF}')
echo "openssl speed rsa2048 verify/s (one core): $openssl_verify"
out=$(cargo bench --features events,testing --bench events 2>/dev/null)
echo "$out"
ours=$(echo "$out" | awk '/verify_rs256_one_core/ {print $2}')
python3 -c "import sys; o, s = float(sys.argv[1]), float(sys.argv[2]); print(f'verification vs openssl: {o / s:.2f}x (goal >= 0.5x)')" "$ours" "$openssl_verify"
