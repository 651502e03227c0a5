#!/usr/bin/env bash
# Count the library's public items: lines in src/ that declare a `pub` fn, struct, enum, trait, type,
# const, static, mod or use (not `pub(crate)` / `pub(super)`), outside the test-only `testing` module and
# the hidden `fuzzing` module. Prints the total and the count per top-level module.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pattern='^\s*pub\s+((async|unsafe|const|extern)\s+)*(fn|struct|enum|trait|type|const|static|mod|use)\b'
files=$(find src -name '*.rs' -not -path 'src/testing/*' -not -name 'fuzzing.rs' | sort)
total=0
for module in $(printf '%s\n' $files | sed -E 's#^src/([^/.]+)(/.*|\.rs)$#\1#' | sort -u); do
    n=$(printf '%s\n' $files | grep -E "^src/$module(/|\.rs$)" | { xargs grep -cE "$pattern" || true; } | awk -F: '{s += $NF} END {print s + 0}')
    printf '%-14s %5d\n' "$module" "$n"
    total=$((total + n))
done
printf '%-14s %5d\n' total "$total"
