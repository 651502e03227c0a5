#!/usr/bin/env python3
"""Count the example server's blob-specific code: the lines that use sea-gcp and the crate's names they use.

A line counts when it names an item imported from `sea_gcp` (or written as `sea_gcp::...`), or calls the
registry (`blobs.` / `.blobs`), or reads the extractor's parts (`.changes`, `.refused(`, `.reject(`,
`.value(`, `.kept_from(`). `use` lines, comments and blank lines do not count. Names are the distinct
`sea_gcp` items, excluding `Result`/`Error` helpers that only carry errors and `Secret` and storage names
the example uses for its CSRF key and its store set-up (those are not blob plumbing)."""
import re
import sys
from pathlib import Path

FILES = [Path("examples/server.rs"), Path("examples/server/pages.rs")]
NOT_BLOB = {"Result", "Error", "Secret", "Settings", "Store", "StoreConfig", "BackendConfig", "SigningConfig",
            "LocalStore", "open", "SECRET_ENV"}
USE = re.compile(r"^\s*use\s+sea_gcp::(.*?);", re.S | re.M)
INLINE = re.compile(r"sea_gcp::(?:[a-z_]+::)*([A-Za-z_][A-Za-z0-9_]*)\b(?!::)")
CALLS = re.compile(r"\bblobs\.|\.blobs\b|\.changes\b|\.refused\(|\.reject\(|\.value\(|\.kept_from\(")


def imported(text):
    names = set()
    for body in USE.findall(text):
        body = re.sub(r"\s+", "", body)
        inner = re.search(r"\{(.*)\}", body)
        parts = inner.group(1).split(",") if inner else [body]
        for part in parts:
            if part:
                names.add(part.split("::")[-1])
    return names


def main():
    texts = [(p, p.read_text()) for p in FILES]
    names = set()
    for _, text in texts:
        names |= imported(text) | set(INLINE.findall(text))
    blob_names = sorted(n for n in names if n not in NOT_BLOB and n != "self")
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, blob_names)) + r")\b") if blob_names else None
    lines = 0
    for path, text in texts:
        in_use = False
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("use "):
                in_use = not s.endswith(";")
                continue
            if in_use:
                in_use = not s.endswith(";")
                continue
            if not s or s.startswith("//"):
                continue
            if (pattern and pattern.search(line)) or CALLS.search(line):
                lines += 1
                if "-v" in sys.argv:
                    print(f"{path}: {s}")
    print(f"RESULT example_blob_lines {lines}")
    print(f"RESULT example_blob_names {len(blob_names)} {' '.join(blob_names)}")


if __name__ == "__main__":
    main()
