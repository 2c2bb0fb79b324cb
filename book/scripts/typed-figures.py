#!/usr/bin/env python3
"""The figure test: no measured figure is typed by hand into the book's prose or the README.

Usage: python3 book/scripts/typed-figures.py [--check] [FILE.md …]
       (default: every chapter under book/src/, and README.md)

A figure is a number with a unit of time, rate, size or a ratio: `636 µs`, `40,715 req/s`,
`1.9 MiB`, `0.97×`. One that came from a run is never typed: it is included from a committed
results file (`{{#include results/…/results.md:anchor}}`, as the tables are), or it stands beside
the command that produced it in a capture block. Prose that wants a figure points at the table and
its column instead ("the p99 column of the 64-connection row").

What is not prose, and so never checked:
  - fenced code blocks (``` or ~~~), which is where every capture block lives;
  - `{{#include …}}` lines and `code spans`;
  - HTML tags and comments, and the targets of Markdown links.

What is allowed in prose: the CONSTANTS below, written as the book writes them. They are the
project's limits and defaults and the sizes its tests and benchmarks choose, never a result.
A chapter that needs a new constant (a new limit, a new default) adds it here, with the setting it
names in the comment. A chapter that quotes a result moves the figure into a results file or a
capture block.

PENDING lists chapters another change is rewriting: their figures are printed, but do not fail the
check. Each entry says why; remove it when the chapter lands clean.

With --check it exits 1 when a figure is found outside PENDING. Every run first checks itself on a
sample (a typed figure is found, each exemption holds), so a broken pattern cannot pass silently.

For a new chapter: a limit or default it names goes in CONSTANTS; a result goes in a results file
(`book/src/results/NAME/NAME.md`, headed by its command, date and machine, the rows between
`<!-- ANCHOR: x -->` and `<!-- ANCHOR_END: x -->`, included with `{{#include results/NAME/NAME.md:x}}`)
or in the capture block of the command that printed it.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BOOK_SRC = os.path.join(HERE, "..", "src")
README = os.path.join(HERE, "..", "..", "README.md")

UNIT = (
    r"(?:ns|µs|us|ms|s|sec|seconds?|minutes?|min|hours?|h"
    r"|req/s|requests? (?:a|per) second|/s|MiB/s|GiB/s|Gbit/s"
    r"|B|bytes?|KiB|MiB|GiB|KB|MB|GB|kB|×)"
)
FIGURE = re.compile(
    r"(?<![\w.,])(\d[\d,]*(?:\.\d+)?)(?:\s|\u00a0)?(" + UNIT + r")(?![\w/])"
)

# Constants: the project's limits and defaults, and the sizes its tests and benchmarks choose.
# Each is written as the book writes it; a measured figure never belongs here.
CONSTANTS = {
    # --idle-timeout (5 s), the lingering close (2 s), EMFILE back-off, the file-cache validity,
    # step 6's nap (1 ms), deadlines and waits that tests and scripts choose
    "5 s", "5 seconds", "2 s", "2 seconds", "1 s", "1 second", "50 ms", "1 ms", "10 ms", "100 ms",
    "3 seconds", "3 s", "10 s", "30 s", "60 s", "60s", "20 s", "65 s", "0.3 s", "1 millisecond",
    "300 ms", "120 s", "10,000 µs", "40 seconds", "20 seconds", "5,000 ms", "5000 ms",
    "1.5 s", "10 seconds", "0.25 s",
    # sizes: the request-head limit (16 KiB), read buffers (64 KiB), body and header limits, the
    # open-file cache, thread stacks (8 MiB default, 2 MiB Rust's), the test files, the machine
    "64 KiB", "16 KiB", "16 MiB", "1 MiB", "8 MiB", "64 MiB", "200 MiB", "2 MiB", "8 KiB", "4 KiB",
    "8 bytes", "5 KB", "1,024 bytes", "4,096 bytes", "6 KiB", "100 MB", "1 KiB", "32 KiB", "24 GiB", "32 MiB",
    "5 MiB", "3 MiB", "128 MiB", "20 MiB", "256 KiB", "1,000 bytes", "20 bytes", "64 bytes",
    # arithmetic, not a measurement: Benchmarks' worked example of 2 s / R at 100,000 requests a second
    "20 µs", "50,000 requests a second",
    # C10K's configured load: 10,000 connections, one request each every 2 s
    "5,000 requests a second",
}

# Chapters being rewritten elsewhere: reported, not failed. Remove an entry when it lands clean.
PENDING = {}


def blank(match):
    """The matched text replaced by as many newlines, so that line numbers stay true."""
    return "\n" * match.group(0).count("\n")


def prose(markdown):
    """The Markdown without fenced blocks, code spans, includes, HTML and link targets."""
    markdown = re.sub(r"(?ms)^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$", blank, markdown)
    markdown = re.sub(r"(?s)<!--.*?-->", blank, markdown)
    markdown = re.sub(r"\{\{#[^}]*\}\}", "", markdown)
    markdown = re.sub(r"`[^`\n]*`", "", markdown)
    markdown = re.sub(r"<[^>\n]+>", "", markdown)
    return re.sub(r"\]\([^)]*\)", "]", markdown)


def typed_figures(path):
    """(line number, figure) for each figure typed in the file's prose."""
    with open(path, encoding="utf-8") as file:
        return figures_in(file.read())


def figures_in(markdown):
    """(line number, figure) for each figure in the prose of a Markdown text."""
    text = prose(markdown)
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in FIGURE.finditer(line):
            figure = f"{match.group(1)} {match.group(2)}"
            if figure not in CONSTANTS and match.group(0) not in CONSTANTS:
                found.append((number, figure))
    return found


def self_test():
    """The check itself can fail: a typed figure is found, and each exemption holds."""
    sample = (
        "The p99 was 1.85 ms at 16 connections and 40,715 req/s, 0.97× wrk.\n"
        "The idle timeout is 5 s; reads of 64 KiB; `636 µs` in a code span.\n"
        "{{#include results/compare/results.md:step01-small}}\n"
        "```console\n$ bench load\n9,770 ms\n```\n"
        "<!-- 12 MiB in a comment -->\n"
    )
    found = [figure for _, figure in figures_in(sample)]
    expected = ["1.85 ms", "40,715 req/s", "0.97 ×"]
    assert found == expected, f"self-test: found {found}, expected {expected}"
    assert figures_in("a\n```\n1 ms\n```\nb 7 ms\n") == [(5, "7 ms")], "line numbers drift"


def default_files():
    chapters = sorted(
        os.path.join(BOOK_SRC, name) for name in os.listdir(BOOK_SRC) if name.endswith(".md")
    )
    return chapters + [README]


def main():
    check = "--check" in sys.argv[1:]
    self_test()
    files = [a for a in sys.argv[1:] if a != "--check"] or default_files()
    failing = pending = 0
    for path in files:
        found = typed_figures(path)
        if not found:
            continue
        name = os.path.basename(path)
        reason = PENDING.get(name)
        if reason:
            pending += len(found)
        else:
            failing += len(found)
        label = f" (pending: {reason})" if reason else ""
        print(f"{name}: {len(found)}{label}")
        for number, figure in found:
            print(f"  {name}:{number}: {figure}")
    print(f"{failing} figure(s) typed by hand, {pending} more in pending chapters")
    if check and failing:
        print(
            "A figure from a run goes in a results file or a capture block; a limit or default "
            "goes in CONSTANTS (book/scripts/typed-figures.py).",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
