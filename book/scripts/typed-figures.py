#!/usr/bin/env python3
"""Lists the figures typed by hand in the book's prose: a number with a unit of time, rate or size,
outside code blocks, code spans and includes, that is not on the short list of constants below
(limits, defaults, the sizes the tests and benchmarks choose).

Usage: python3 book/scripts/typed-figures.py [--check] [FILE.md …]   (default: every chapter)

A figure that came from a run belongs in a committed results file, included by anchor, or beside
the command that produced it in a capture block. With --check it exits 1 when it finds any.
"""

import os
import re
import sys

BOOK_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

UNIT = (
    r"(?:ns|µs|us|ms|s|sec|seconds?|minutes?|min|hours?|h"
    r"|req/s|requests? (?:a|per) second|/s|MiB/s|GiB/s|Gbit/s"
    r"|B|bytes?|KiB|MiB|GiB|KB|MB|GB|kB)"
)
FIGURE = re.compile(r"(?<![\w.,])(\d[\d,]*(?:\.\d+)?)(?:\s|\u00a0)?(" + UNIT + r")(?![\w/])")

# Constants: the project's limits and defaults, and the sizes its tests and benchmarks choose.
# Each is written as the book writes it; a measured figure never belongs here.
CONSTANTS = {
    # timeouts and pauses (--idle-timeout, the lingering close, EMFILE, --file-cache-valid, nap)
    "5 s", "5 seconds", "2 s", "2 seconds", "1 s", "1 second", "50 ms", "1 ms", "10 ms", "100 ms",
    "3 seconds", "3 s", "10 s", "30 s", "60 s", "60s", "20 s", "65 s", "0.3 s", "1 millisecond",
    # sizes (limits, the open-file cache, the lingering close, thread stacks, the test files)
    "64 KiB", "16 KiB", "16 MiB", "1 MiB", "8 MiB", "64 MiB", "200 MiB", "2 MiB", "8 KiB", "4 KiB",
    "1,024 bytes", "4,096 bytes", "6 KiB", "100 MB", "1 KiB", "32 KiB", "24 GiB",
}


def prose(markdown):
    """The Markdown without fenced blocks, code spans, includes, HTML tags and link targets."""
    markdown = re.sub(r"(?ms)^(`{3,}|~{3,}).*?^\1[ \t]*$", "", markdown)
    markdown = re.sub(r"\{\{#[^}]*\}\}", "", markdown)
    markdown = re.sub(r"`[^`\n]*`", "", markdown)
    markdown = re.sub(r"<[^>\n]+>", "", markdown)
    return re.sub(r"\]\([^)]*\)", "]", markdown)


def typed_figures(path):
    with open(path, encoding="utf-8") as file:
        text = prose(file.read())
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in FIGURE.finditer(line):
            figure = f"{match.group(1)} {match.group(2)}"
            if figure not in CONSTANTS and match.group(0) not in CONSTANTS:
                found.append(figure)
    return found


def main():
    arguments = [a for a in sys.argv[1:] if a != "--check"]
    files = arguments or sorted(
        os.path.join(BOOK_SRC, name) for name in os.listdir(BOOK_SRC) if name.endswith(".md")
    )
    total = 0
    for path in files:
        found = typed_figures(path)
        total += len(found)
        if found:
            print(f"{os.path.basename(path)}: {len(found)}: {', '.join(found)}")
    print(f"{total} figure(s) typed by hand")
    if "--check" in sys.argv[1:] and total:
        sys.exit(1)


if __name__ == "__main__":
    main()
