#!/usr/bin/env python3
"""Count the wiring lines and sea_gcp names of the goals in examples/wiring/.

A line counts when it is outside every `// app {` ... `// }` block (the application's own code: task
bodies, handler shells, the server), is not blank, not a comment, and is not a `use` of another crate.
A name counts when it is imported from sea_gcp (or written `sea_gcp::Name`) and appears on a counted line
other than its `use`. Usage: scripts/count-wiring.py [--markdown]
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOALS = [
    ("tasks.rs", "On-demand task in a request's transaction + a periodic task", 15, 6),
    ("upload.rs", "Blob field saved from a browser upload", 12, 6),
    ("events.rs", "Authenticated Pub/Sub push handler", 6, 3),
]


def count(path):
    lines, uses, depth = [], [], 0
    for raw in path.read_text().splitlines():
        text = raw.strip()
        if text.startswith("// app {"):
            depth += 1
            continue
        if text == "// }":
            depth -= 1
            continue
        if depth or not text or text.startswith("//"):
            continue
        if text.startswith("use "):
            if text.startswith("use sea_gcp"):
                uses.append(text)
                lines.append(text)
            continue
        lines.append(text)
    imported = set()
    for use in uses:
        body = use[len("use "):].rstrip(";")
        inner = body[body.index("{") + 1 : body.rindex("}")] if "{" in body else body.rsplit("::", 1)[-1]
        imported.update(n.strip().split(" as ")[-1] for n in inner.split(",") if n.strip())
    code = [line for line in lines if not line.startswith("use ")]
    names = {n for n in imported if any(re.search(rf"\b{re.escape(n)}\b", line) for line in code)}
    for line in code:
        names.update(re.findall(r"sea_gcp::(?:\w+::)*(\w+)", line))
    return lines, sorted(names)


def main():
    markdown = "--markdown" in sys.argv
    if markdown:
        print("| goal | lines (goal) | sea_gcp names (goal) | names |")
        print("|---|---:|---:|---|")
    ok = True
    for file, goal, max_lines, max_names in GOALS:
        lines, names = count(ROOT / "examples" / "wiring" / file)
        ok &= len(lines) <= max_lines and len(names) <= max_names
        if markdown:
            print(f"| {goal} | {len(lines)} ({max_lines}) | {len(names)} ({max_names}) | {', '.join(names)} |")
        else:
            print(f"{goal}: {len(lines)} lines (goal {max_lines}), {len(names)} names (goal {max_names}): {', '.join(names)}")
            for line in lines:
                print(f"    {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
