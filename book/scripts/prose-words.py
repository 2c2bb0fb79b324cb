#!/usr/bin/env python3
"""Count the words of prose in book chapters: everything outside fenced code
blocks (``` or ~~~) and outside collapsed <details> … </details> blocks.

Issue 10 bounds a step chapter at 3,000 words of prose; this is the ruler.

    python3 book/scripts/prose-words.py book/src/step0*.md
"""
import re
import sys


def prose(text: str) -> str:
    kept = []
    fence = None
    details_depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence):
                fence = None
            continue
        match = re.match(r"(`{3,}|~{3,})", stripped)
        if match:
            fence = match.group(1)
            continue
        details_depth += len(re.findall(r"<details\b", line))
        closing = len(re.findall(r"</details>", line))
        if details_depth > 0:
            details_depth -= closing
            continue
        if stripped.startswith("{{#include"):
            continue
        kept.append(line)
    return "\n".join(kept)


def words(text: str) -> int:
    return len(re.findall(r"\S+", prose(text)))


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as chapter:
            print(f"{words(chapter.read()):6d}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
