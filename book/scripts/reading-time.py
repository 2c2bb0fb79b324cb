#!/usr/bin/env python3
"""How long the book takes to read: each chapter of SUMMARY.md, and the main path.

Usage: python3 book/scripts/reading-time.py [--check] [--src BOOK_SRC]   (default: this book's src/)

The estimate is the project's rule: 200 words a minute of prose, 15 lines a minute of code, after
`{{#include}}` has put the code in. Code is what a reader must read line by line: fenced blocks of a
programming or configuration language (`rust`, `toml`, `sh`, `c`, `python`…). Console captures and
text diagrams (`console`, `text`, or no language) are read like prose, by their words. What sits in a
collapsed `<details>` block does not count: it is there for the reader who wants it, not in the way.

The main path is the Introduction, HTTP on one page, steps 1 to 7 and C10K. A step chapter is any
`stepNN-*.md` but the `-vs-` comparisons, later steps included. With `--check` it exits 1 when a step
chapter takes more than 25 minutes or the main path more than 3 hours.
"""

import os
import re
import sys

BOOK_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
PROSE_WORDS_PER_MINUTE = 200
CODE_LINES_PER_MINUTE = 15
STEP_CHAPTER_LIMIT = 25
MAIN_PATH_LIMIT = 180
# Fenced blocks read as prose: captures of a terminal, diagrams, plain text.
READ_AS_PROSE = {"", "console", "text", "txt", "plain", "output"}
MAIN_PATH_NAMED = ["introduction.md", "http.md", "c10k.md"]
MAIN_PATH_STEPS = re.compile(r"^step0[1-7]-")
STEP_CHAPTER = re.compile(r"^step\d\d-[a-z0-9-]+\.md$")

INCLUDE = re.compile(r"(?<!\\)\{\{#(?:include|rustdoc_include)\s+([^}\s]+)\s*\}\}")


def anchor_lines(lines, name):
    """The lines between ANCHOR: name and ANCHOR_END: name, without any marker line."""
    start = re.compile(r"ANCHOR:\s*" + re.escape(name) + r"\b")
    end = re.compile(r"ANCHOR_END:\s*" + re.escape(name) + r"\b")
    inside, found = False, []
    for line in lines:
        if not inside and start.search(line):
            inside = True
            continue
        if inside and end.search(line):
            break
        if inside and "ANCHOR" not in line:
            found.append(line)
    return found


def expand(path, depth=0):
    """The Markdown at `path` with every include replaced by what it includes."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    folder = os.path.dirname(path)

    def replace(match):
        target, _, selector = match.group(1).partition(":")
        included = os.path.normpath(os.path.join(folder, target))
        if not os.path.exists(included):
            return ""
        if included.endswith(".md") and depth < 5:
            body = expand(included, depth + 1)
        else:
            with open(included, encoding="utf-8") as file:
                body = file.read()
        lines = body.splitlines()
        if not selector:
            lines = [line for line in lines if "ANCHOR" not in line]
        elif re.fullmatch(r"\d*:?\d*", selector):
            first, _, last = selector.partition(":")
            begin = int(first) - 1 if first else 0
            lines = lines[begin : int(last)] if last else lines[begin:] if ":" in selector else lines[begin : begin + 1]
        else:
            lines = anchor_lines(lines, selector)
        return "\n".join(lines)

    return INCLUDE.sub(replace, text)


def without_details(text):
    """The text without its <details> … </details> blocks (nested ones included)."""
    out, depth, at = [], 0, 0
    for match in re.finditer(r"<details\b[^>]*>|</details>", text):
        if match.group(0).startswith("<details"):
            if depth == 0:
                out.append(text[at : match.start()])
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                at = match.end()
    if depth == 0:
        out.append(text[at:])
    return "".join(out)


def words(text):
    text = re.sub(r"<[^>]+>", " ", text)  # HTML tags
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    return len(re.findall(r"[^\s|#*`>\-]+", text))


def measure(text):
    """(prose words, code lines) of expanded Markdown."""
    prose, code = [], 0
    fence = None
    language = ""
    for line in text.splitlines():
        stripped = line.strip()
        opening = re.match(r"^(`{3,}|~{3,})\s*([A-Za-z0-9_+-]*)", stripped)
        if fence is None and opening:
            fence, language = opening.group(1), opening.group(2).lower()
            continue
        if fence is not None and stripped.startswith(fence) and stripped.strip(fence[0]) == "":
            fence = None
            continue
        if fence is not None and language not in READ_AS_PROSE:
            # Lines hidden from the rendered page (`# ` in Rust blocks) are still not read.
            if stripped and not (language.startswith("rust") and stripped.startswith("# ")):
                code += 1
        else:
            prose.append(line)
    return words("\n".join(prose)), code


def chapters():
    """(title, file) of each chapter in SUMMARY.md, in order."""
    with open(os.path.join(BOOK_SRC, "SUMMARY.md"), encoding="utf-8") as file:
        summary = file.read()
    return re.findall(r"\[([^\]]+)\]\(([^)]+\.md)\)", summary)


def minutes(prose_words, code_lines):
    return prose_words / PROSE_WORDS_PER_MINUTE + code_lines / CODE_LINES_PER_MINUTE


def on_main_path(file):
    return file in MAIN_PATH_NAMED or (is_step_chapter(file) and bool(MAIN_PATH_STEPS.match(file)))


def is_step_chapter(file):
    return bool(STEP_CHAPTER.match(file)) and "-vs-" not in file


def main():
    global BOOK_SRC
    arguments = sys.argv[1:]
    check = "--check" in arguments
    if "--src" in arguments:
        BOOK_SRC = arguments[arguments.index("--src") + 1]
    total, over = 0.0, []
    print(f"{'chapter':<48} {'words':>6} {'code':>5} {'min':>6}")
    for title, file in chapters():
        path = os.path.join(BOOK_SRC, file)
        if not os.path.exists(path):
            continue
        prose_words, code_lines = measure(without_details(expand(path)))
        spent = minutes(prose_words, code_lines)
        main_path = on_main_path(file)
        mark = "*" if main_path else " "
        if is_step_chapter(file) and spent > STEP_CHAPTER_LIMIT:
            over.append(f"{file}: {spent:.0f} min, over {STEP_CHAPTER_LIMIT}")
        if main_path:
            total += spent
        print(f"{mark} {title[:46]:<46} {prose_words:>6} {code_lines:>5} {spent:>6.1f}")
    hours, rest = divmod(round(total), 60)
    print(f"main path (*): {total:.0f} min ({hours} h {rest:02d} min)")
    if total > MAIN_PATH_LIMIT:
        over.append(f"main path: {total:.0f} min, over {MAIN_PATH_LIMIT}")
    for line in over:
        print(f"over: {line}")
    if check and over:
        sys.exit(1)


if __name__ == "__main__":
    main()
