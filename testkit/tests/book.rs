//! The book cannot silently drift from the code, nor from the machine it was written on.
//!
//! `mdbook build` does not fail on a broken `{{#include}}` (a missing anchor becomes an empty snippet),
//! nor on a broken relative link or image. This test reads every Markdown file under `book/src` and
//! fails if
//!
//! - an `{{#include path}}`, `{{#include path:anchor}}`, `{{#include path:N:M}}`, `{{#rustdoc_include …}}`
//!   or `{{#playground …}}` names a file that does not exist, an anchor that is missing, empty,
//!   unterminated or declared twice, or a line range outside the file; Rust code and a generated
//!   Markdown file (`results/…`) must be included by anchor, since an edit or a rerun moves lines;
//! - a relative link or image (Markdown, as `pulldown-cmark` reads it, or an HTML `src=`/`href=`)
//!   points at a file that does not exist;
//! - a page or a committed results file holds the absolute path of this checkout or of its parent
//!   directory (the book speaks of the project, not of the machine it was written on).
//!
//! Includes are found everywhere, as mdBook expands them everywhere (`\{{#include …}}` escapes one);
//! links are what the Markdown parser calls links, so code blocks and spans are not. Run it alone
//! with `cargo test -p testkit --test book`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use percent_encoding::percent_decode_str;
use pulldown_cmark::{Event, Parser, Tag};

/// The files the checks read: the disk, or a few in memory for the tests of the checks themselves.
type Files = BTreeMap<PathBuf, String>;

/// Removes `.` and folds `..` lexically, so `src/../../a.rs` and `a.rs` compare equal.
fn normalize(path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(clean.components().next_back(), Some(Component::Normal(_))) =>
            {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
}

/// 1-based line number of byte `index` in `text`.
fn line_of(text: &str, index: usize) -> usize {
    text[..index].matches('\n').count() + 1
}

/// Every `{{#include …}}`-like directive as `(line, path, selector)`; escaped ones are skipped.
fn includes(markdown: &str) -> Vec<(usize, String, String)> {
    let mut found = Vec::new();
    for (at, _) in markdown.match_indices("{{") {
        let directive = &markdown[at + 2..];
        let Some(end) = directive.find("}}") else {
            continue;
        };
        let mut words = directive[..end].split_whitespace();
        let kind = words.next().unwrap_or("");
        if markdown[..at].ends_with('\\')
            || !["#include", "#rustdoc_include", "#playground"].contains(&kind)
        {
            continue;
        }
        let argument = words.next().unwrap_or("");
        let (path, selector) = argument.split_once(':').unwrap_or((argument, ""));
        found.push((line_of(markdown, at), path.to_owned(), selector.to_owned()));
    }
    found
}

/// The text of anchor `name` in `source`, without marker lines, as mdBook includes it.
fn anchor_region(source: &str, name: &str) -> Result<String, String> {
    // Whether `line` is a `marker` of this anchor: the first word after the marker is its name.
    let marks = |line: &str, marker: &str| {
        let Some(at) = line.find(marker) else {
            return false;
        };
        line[at + marker.len()..]
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .find(|word| !word.is_empty())
            == Some(name)
    };
    let lines: Vec<&str> = source.lines().collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&at| marks(lines[at], "ANCHOR:"))
        .collect();
    let start = match starts[..] {
        [start] => start + 1,
        [] => return Err(format!("anchor `{name}` not found")),
        _ => return Err(format!("anchor `{name}` declared {} times", starts.len())),
    };
    let Some(length) = lines[start..]
        .iter()
        .position(|line| marks(line, "ANCHOR_END:"))
    else {
        return Err(format!("anchor `{name}` has no `ANCHOR_END: {name}`"));
    };
    let kept: Vec<&str> = lines[start..start + length]
        .iter()
        .copied()
        .filter(|line| !line.contains("ANCHOR"))
        .collect();
    if kept.iter().all(|line| line.trim().is_empty()) {
        return Err(format!("anchor `{name}` is empty"));
    }
    Ok(kept.join("\n"))
}

/// Checks one include of `page`; a one-line reason when it cannot be included.
fn check_include(files: &Files, page: &Path, path: &str, selector: &str) -> Result<(), String> {
    let target = normalize(&page.parent().unwrap_or(Path::new("")).join(path));
    let source = files
        .get(&target)
        .ok_or_else(|| format!("`{path}`: no such file"))?;
    if selector.is_empty() {
        return Ok(());
    }
    if !selector.starts_with(|c: char| c.is_ascii_digit() || c == ':') {
        return anchor_region(source, selector).map(drop);
    }
    if path.ends_with(".md") && path.contains("results/") {
        return Err(format!(
            "`{path}:{selector}`: include a generated table by anchor, not by lines"
        ));
    }
    if path.ends_with(".rs") {
        return Err(format!(
            "`{path}:{selector}`: include code by anchor, not by lines: an edit above it moves them"
        ));
    }
    let lines = source.lines().count();
    let (first, last) = selector.split_once(':').unwrap_or((selector, selector));
    let (first, last) = (first.parse().unwrap_or(1), last.parse().unwrap_or(lines));
    if first == 0 || first > last || last > lines {
        return Err(format!(
            "`{path}`: lines {first}..={last} are not within its {lines} lines"
        ));
    }
    Ok(())
}

/// Every link and image destination in `markdown` as `(line, destination)`.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (event, range) in Parser::new(markdown).into_offset_iter() {
        match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                found.push((line_of(markdown, range.start), dest_url.to_string()));
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                for attribute in ["src=\"", "href=\""] {
                    for (at, _) in html.match_indices(attribute) {
                        let value = &html[at + attribute.len()..];
                        let value = &value[..value.find('"').unwrap_or(value.len())];
                        found.push((
                            line_of(markdown, range.start) + line_of(&html, at) - 1,
                            value.to_owned(),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// Checks that a relative link from `page` reaches a file (`other.html` may stand for `other.md`).
fn check_link(files: &Files, src: &Path, page: &Path, destination: &str) -> Result<(), String> {
    if destination.contains("://")
        || destination.starts_with("mailto:")
        || destination.starts_with('#')
    {
        return Ok(());
    }
    // `%XX` escapes (as in `my%20file.md`) decoded; anything malformed is kept as written.
    let path = percent_decode_str(destination.split('#').next().unwrap_or("")).decode_utf8_lossy();
    let base = if path.starts_with('/') {
        src.to_path_buf()
    } else {
        page.parent().unwrap_or(src).to_path_buf()
    };
    let target = normalize(&base.join(path.trim_start_matches('/')));
    let as_page = target.with_extension("md");
    let exists =
        |path: &Path| files.contains_key(path) || files.keys().any(|file| file.starts_with(path));
    if exists(&target) || (target.extension().is_some_and(|e| e == "html") && exists(&as_page)) {
        Ok(())
    } else {
        Err(format!("`{destination}`: no such file"))
    }
}

/// Every broken include and link in the given pages, as `page:line: reason`.
fn check_book(files: &Files, src: &Path, pages: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for page in pages {
        let markdown = &files[page];
        let shown = page.strip_prefix(src).unwrap_or(page).display().to_string();
        let include_checks = includes(markdown)
            .into_iter()
            .map(|(line, path, selector)| (line, check_include(files, page, &path, &selector)));
        let link_checks = links(markdown)
            .into_iter()
            .map(|(line, destination)| (line, check_link(files, src, page, &destination)));
        for (line, check) in include_checks.chain(link_checks) {
            if let Err(reason) = check {
                problems.push(format!("{shown}:{line}: {reason}"));
            }
        }
    }
    problems
}

/// Where `text` names `path` as a path (followed by `/` or by a character no path name continues with).
fn mentions(text: &str, path: &str) -> bool {
    text.match_indices(path).any(|(at, _)| {
        let next = text[at + path.len()..].chars().next();
        !next.is_some_and(|c| c.is_alphanumeric() || "-_.".contains(c))
    })
}

/// The absolute paths no page may hold: the checkout's, and its parent's unless that is a directory
/// every machine has (`/`, `/tmp`, `/home`…), whose mention says nothing about this one.
fn machine_paths(checkout: &Path) -> Vec<String> {
    let shared = [
        "/", "/tmp", "/var/tmp", "/home", "/root", "/usr", "/opt", "/srv",
    ];
    let parent = checkout.parent().map(|parent| parent.display().to_string());
    let mut paths = vec![checkout.display().to_string()];
    paths.extend(parent.filter(|parent| !shared.contains(&parent.as_str())));
    paths
}

/// Every file under `dir`, recursively, by normalised path (binary files with empty text), leaving
/// out build outputs and fuzzing corpora.
fn read_tree(dir: &Path, files: &mut Files) {
    for entry in fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .flatten()
    {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if ![".git", "target", "corpus", "artifacts"].contains(&name.to_string_lossy().as_ref())
                && !path.ends_with("book/book")
            {
                read_tree(&path, files);
            }
        } else {
            files.insert(
                normalize(&path),
                fs::read_to_string(&path).unwrap_or_default(),
            );
        }
    }
}

/// The repository root, as a clean absolute path.
fn checkout() -> PathBuf {
    normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// `book/src`, its pages (in order), and every file of the repository a page may include or link to.
fn book() -> (PathBuf, Vec<PathBuf>, Files) {
    let src = checkout().join("book/src");
    let mut files = Files::new();
    read_tree(&checkout(), &mut files);
    let pages: Vec<PathBuf> = files
        .keys()
        .filter(|path| path.starts_with(&src) && path.extension().is_some_and(|e| e == "md"))
        .cloned()
        .collect();
    (src, pages, files)
}

#[test]
fn book_includes_and_links_resolve() {
    let (src, pages, files) = book();
    // An empty list would make this test pass while checking nothing.
    assert!(
        pages.contains(&src.join("SUMMARY.md")),
        "no book/src/SUMMARY.md under {}",
        src.display()
    );
    let chapters = links(&files[&src.join("SUMMARY.md")]);
    assert!(
        chapters.len() >= 10,
        "SUMMARY.md lists only {} chapters",
        chapters.len()
    );
    let problems = check_book(&files, &src, &pages);
    assert!(
        problems.is_empty(),
        "broken includes or links in the book:\n{}",
        problems.join("\n")
    );
}

#[test]
fn book_pages_hold_no_machine_paths() {
    let (src, _, files) = book();
    let forbidden = machine_paths(&checkout());
    let mut checked = 0;
    let mut problems = Vec::new();
    for (path, text) in &files {
        let committed_result = path.starts_with(src.join("results"));
        if !(path.starts_with(&src)
            && (committed_result || path.extension().is_some_and(|e| e == "md")))
        {
            continue;
        }
        checked += 1;
        for (number, line) in text.lines().enumerate() {
            if let Some(machine) = forbidden.iter().find(|machine| mentions(line, machine)) {
                let shown = path.strip_prefix(&src).unwrap_or(path).display();
                problems.push(format!(
                    "{shown}:{}: `{machine}` in {:?}",
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} pages and results files found under {}",
        src.display()
    );
    assert!(
        problems.is_empty(),
        "the book shows this machine's paths (use paths relative to the repository):\n{}",
        problems.join("\n")
    );
}

/// A few files in memory under `book/src` and `crate/src`.
fn memory(files: &[(&str, &str)]) -> Files {
    files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), (*text).to_owned()))
        .collect()
}

#[test]
fn each_broken_include_and_link_is_reported_once() {
    let files = memory(&[
        (
            "crate/src/lib.rs",
            "//! Sample.\n// ANCHOR: serve\nfn serve() {}\n// ANCHOR_END: serve\n\
             // ANCHOR: empty\n\n// ANCHOR_END: empty\n// ANCHOR: twice\nfn a() {}\n// ANCHOR_END: twice\n\
             // ANCHOR: twice\nfn b() {}\n// ANCHOR_END: twice\n// ANCHOR: open\nfn c() {}\n",
        ),
        (
            "crate/notes.txt",
            "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n",
        ),
        ("book/src/img/model.svg", "<svg/>"),
        ("book/src/other.md", "# Other\n"),
        (
            "book/src/results/r.md",
            "<!-- ANCHOR: t -->\n| a |\n<!-- ANCHOR_END: t -->\n",
        ),
        (
            "book/src/chapter.md",
            "# Chapter\n\
             {{#include ../../crate/src/lib.rs:serve}}\n\
             {{#include ../../crate/src/lib.rs:missing}}\n\
             {{#include ../../crate/src/gone.rs}}\n\
             {{#include ../../crate/src/lib.rs:empty}}\n\
             {{#rustdoc_include ../../crate/src/lib.rs:twice}}\n\
             {{ #include ../../crate/src/lib.rs:open }}\n\
             {{#include ../../crate/src/lib.rs:2:4}}\n\
             {{#include ../../crate/notes.txt:2:99}}\n\
             \\{{#include ../../crate/src/escaped.rs}}\n\
             ![model](img/model.svg) ![gone](img/gone.svg)\n\
             [ok](other.md#top) [ok](other.html) [bad](nowhere.md#top) [frag](#here)\n\
             [web](https://example.org/x) [mail](mailto:a@b.c)\n\
             `[not a link](code-span.md)`\n\
             ```text\n[not a link](fenced.md)\n```\n\
             {{#include results/r.md:t}} {{#include results/r.md:1:3}}\n\
             [ref][r]\n\n[r]: ./missing-ref.md\n\
             <img src=\"img/missing.png\">\n",
        ),
    ]);
    let src = Path::new("book/src");
    let problems = check_book(&files, src, &[src.join("chapter.md")]);
    let expected = [
        ("chapter.md:3:", "anchor `missing` not found"),
        ("chapter.md:4:", "gone.rs`: no such file"),
        ("chapter.md:5:", "anchor `empty` is empty"),
        ("chapter.md:6:", "anchor `twice` declared 2 times"),
        ("chapter.md:7:", "anchor `open` has no `ANCHOR_END"),
        ("chapter.md:8:", "include code by anchor, not by lines"),
        ("chapter.md:9:", "lines 2..=99 are not within its 15 lines"),
        ("chapter.md:11:", "img/gone.svg`: no such file"),
        ("chapter.md:12:", "nowhere.md#top`: no such file"),
        (
            "chapter.md:18:",
            "include a generated table by anchor, not by lines",
        ),
        ("chapter.md:19:", "missing-ref.md`: no such file"),
        ("chapter.md:22:", "img/missing.png`: no such file"),
    ];
    for (location, reason) in expected {
        let found = problems
            .iter()
            .any(|p| p.contains(location) && p.contains(reason));
        assert!(
            found,
            "expected `{location} … {reason}` in:\n{}",
            problems.join("\n")
        );
    }
    assert_eq!(
        problems.len(),
        expected.len(),
        "unexpected problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_correct_sample_has_no_problems() {
    let files = memory(&[
        (
            "crate/src/lib.rs",
            "// ANCHOR: all\n// ANCHOR: inner\nfn f() {}\n// ANCHOR_END: inner\n// ANCHOR_END: all\n",
        ),
        ("crate/notes.txt", "1\n2\n3\n"),
        ("book/src/img/a.svg", "<svg/>"),
        (
            "book/src/ok.md",
            "{{#include ../../crate/src/lib.rs:all}} {{#include ../../crate/src/lib.rs:inner}}\n\
             {{#include ../../crate/src/lib.rs}} {{#include ../../crate/notes.txt:3}}\n\
             ![a](img/a.svg \"title\") [self](ok.md) [top](/ok.md) [pct](img/%61.svg)\n",
        ),
    ]);
    let src = Path::new("book/src");
    assert_eq!(
        check_book(&files, src, &[src.join("ok.md")]),
        Vec::<String>::new()
    );
    let anchors = "// ANCHOR: outer\nlet a = 1;\n// ANCHOR: inner\nlet b = 2;\n// ANCHOR_END: inner\n// ANCHOR_END: outer\n";
    assert_eq!(
        anchor_region(anchors, "outer"),
        Ok("let a = 1;\nlet b = 2;".to_owned())
    );
    assert_eq!(
        anchor_region(anchors, "out"),
        Err("anchor `out` not found".to_owned()),
        "a prefix is not the anchor"
    );
}

#[test]
fn machine_paths_are_found_as_paths_only() {
    let paths = machine_paths(Path::new("/work/checkout"));
    assert_eq!(paths, ["/work/checkout", "/work"]);
    assert!(mentions("6 -> /work/main/www", "/work"));
    assert!(mentions("see /work/checkout", "/work/checkout"));
    assert!(mentions("cd /work", "/work"));
    assert!(!mentions("four /workers, /work-queue, /work.d", "/work"));
    assert_eq!(
        machine_paths(Path::new("/tmp/clone")),
        ["/tmp/clone"],
        "/tmp is every machine's"
    );
}
