#!/usr/bin/env python3
"""Checks every link of the built book: each relative href and src names a file that exists, and
each #fragment names an id (or a name) in the page it points at.

Usage: python3 book/scripts/check-links.py [BOOK_DIR]   (default: book/book, after `mdbook build book`)

Prints one line per broken link (page, link, what is wrong) and exits 1 if there is any. Links to
other sites (http:, https:, mailto:) are not followed: the check needs no network. mdBook's own
404.html is skipped, since its links are made for whatever path the server failed to find.
"""

import html.parser
import os
import sys
import urllib.parse

EXTERNAL = ("http:", "https:", "mailto:", "javascript:", "data:")


class Page(html.parser.HTMLParser):
    """The links and the ids of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            elif name == "href" and tag in ("a", "link") or name == "src" and tag in ("img", "script"):
                self.links.append(value)


def read_page(path, cache):
    if path not in cache:
        page = Page()
        with open(path, encoding="utf-8") as text:
            page.feed(text.read())
        cache[path] = page
    return cache[path]


def broken_links(book):
    cache = {}
    problems = []
    for folder, _, names in os.walk(book):
        for name in sorted(names):
            if not name.endswith(".html") or name == "404.html":
                continue
            source = os.path.join(folder, name)
            for link in read_page(source, cache).links:
                problem = check(book, source, link, cache)
                if problem:
                    problems.append(f"{os.path.relpath(source, book)}: {link}: {problem}")
    return problems


def check(book, source, link, cache):
    if link.lower().startswith(EXTERNAL) or link.startswith("//"):
        return None
    target, _, fragment = link.partition("#")
    target = urllib.parse.unquote(target.split("?", 1)[0])
    if target.startswith("/"):
        path = os.path.join(book, target.lstrip("/"))
    elif target:
        path = os.path.join(os.path.dirname(source), target)
    else:
        path = source
    path = os.path.normpath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "index.html")
    if not os.path.exists(path):
        return "no such file"
    if fragment and path.endswith(".html"):
        if urllib.parse.unquote(fragment) not in read_page(path, cache).ids:
            return f"no id {fragment!r} in {os.path.relpath(path, book)}"
    return None


def main():
    book = sys.argv[1] if len(sys.argv) > 1 else "book/book"
    if not os.path.isdir(book):
        sys.exit(f"{book}: no built book here; run `mdbook build book` first")
    problems = broken_links(book)
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(f"{len(problems)} broken link(s)")
    print("every link and fragment resolves")


if __name__ == "__main__":
    main()
