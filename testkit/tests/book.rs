//! The book cannot silently drift from the code.
//!
//! `mdbook build` does not fail on a broken `{{#include}}`: a missing anchor becomes an empty snippet and
//! the chapter shows nothing where the code should be. Nor does it check relative links or images. This
//! test reads every Markdown file under `book/src` and fails if
//!
//! - an `{{#include path}}`, `{{#include path:anchor}}`, `{{#include path:N:M}}`, `{{#rustdoc_include …}}`
//!   or `{{#playground …}}` names a file that does not exist, an anchor that is missing, empty, unterminated
//!   or declared twice in its file, or a line range outside the file;
//! - a relative Markdown link or image (`[text](path)`, `![alt](path)`, `[label]: path`, or an HTML
//!   `src=`/`href=`) points at a file that does not exist.
//!
//! Paths resolve relative to the Markdown file, as mdBook resolves them. Links to `http:`, `https:` and
//! `mailto:` and pure `#fragment` links are not checked; a `#fragment` is stripped before the file is. Links
//! inside code blocks, code spans and HTML comments are not links and are skipped; includes are found
//! everywhere, because mdBook expands them everywhere (escape one as `\{{#include …}}` to show it).
//!
//! Run it alone with `cargo test -p testkit --test book`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Where the checks read files from: the real disk, or an in-memory sample in the unit tests below.
trait Files {
    /// The file's text, or `None` when it does not exist or is not a readable text file.
    fn read(&self, path: &Path) -> Option<String>;
    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;
}

/// The real file system.
struct Disk;

impl Files for Disk {
    fn read(&self, path: &Path) -> Option<String> {
        fs::read_to_string(path).ok()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// A handful of files held in memory, keyed by normalised path.
struct Memory(HashMap<PathBuf, String>);

impl Memory {
    fn new(files: &[(&str, &str)]) -> Memory {
        Memory(
            files
                .iter()
                .map(|(path, text)| (normalize(Path::new(path)), (*text).to_owned()))
                .collect(),
        )
    }
}

impl Files for Memory {
    fn read(&self, path: &Path) -> Option<String> {
        self.0.get(&normalize(path)).cloned()
    }

    fn exists(&self, path: &Path) -> bool {
        let path = normalize(path);
        // A directory exists when some file lives under it.
        self.0.keys().any(|file| file.starts_with(&path))
    }
}

/// Removes `.` and folds `..` lexically, so `src/../../a.rs` and `a.rs` compare equal in memory.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let ends_in_normal =
                    matches!(out.components().next_back(), Some(Component::Normal(_)));
                if ends_in_normal {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// What part of a file an include asks for.
#[derive(Debug, PartialEq, Eq)]
enum Selection {
    /// `{{#include path}}`: the whole file.
    Whole,
    /// `{{#include path:name}}`: the lines between `ANCHOR: name` and `ANCHOR_END: name`.
    Anchor(String),
    /// `{{#include path:start:end}}` and its short forms: 1-based, inclusive, either end open.
    Lines {
        start: Option<usize>,
        end: Option<usize>,
    },
}

/// One `{{#include …}}`-like directive found in a Markdown file.
#[derive(Debug, PartialEq, Eq)]
struct Include {
    /// 1-based line of the Markdown file the directive starts on.
    line_no: usize,
    /// The path as written, relative to the Markdown file.
    path: String,
    selection: Selection,
}

/// The directives mdBook's built-in `links` preprocessor expands.
const INCLUDE_KINDS: [&str; 3] = ["include", "rustdoc_include", "playground"];

/// Every include directive in `markdown`, in order; escaped ones (`\{{#include …}}`) are skipped.
fn find_includes(markdown: &str) -> Vec<Include> {
    let mut includes = Vec::new();
    let mut rest = markdown;
    let mut offset = 0;
    while let Some(found) = rest.find("{{") {
        let start = offset + found;
        let after_braces = &rest[found + 2..];
        let escaped = markdown[..start].ends_with('\\');
        let advance = found + 2;
        if !escaped {
            if let Some(include) = parse_directive(after_braces, line_of(markdown, start)) {
                includes.push(include);
            }
        }
        rest = &rest[advance..];
        offset += advance;
    }
    includes
}

/// Parses what follows `{{`: `#kind args}}`, with optional whitespace as mdBook allows.
fn parse_directive(text: &str, line_no: usize) -> Option<Include> {
    let body = &text[..text.find("}}")?];
    let body = body.trim_start().strip_prefix('#')?;
    let kind_len = body
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (kind, args) = body.split_at(kind_len);
    if !INCLUDE_KINDS.contains(&kind) {
        return None;
    }
    // `{{#playground file.rs editable}}` takes attributes after the path.
    let target = args.split_whitespace().next()?;
    let (path, selector) = match target.split_once(':') {
        Some((path, selector)) => (path, selector),
        None => (target, ""),
    };
    Some(Include {
        line_no,
        path: path.to_owned(),
        selection: parse_selection(selector),
    })
}

/// `""` → whole file; `"a"` → anchor; `"3"`, `"3:"`, `":9"`, `"3:9"` → lines.
fn parse_selection(selector: &str) -> Selection {
    if selector.is_empty() {
        return Selection::Whole;
    }
    let number = |text: &str| text.trim().parse::<usize>().ok();
    match selector.split_once(':') {
        Some((start, end)) => Selection::Lines {
            start: number(start),
            end: number(end),
        },
        None => match number(selector) {
            // A single number means that one line, as in mdBook.
            Some(line) => Selection::Lines {
                start: Some(line),
                end: Some(line),
            },
            None => Selection::Anchor(selector.trim().to_owned()),
        },
    }
}

/// 1-based line number of byte `index` in `text`.
fn line_of(text: &str, index: usize) -> usize {
    text[..index].matches('\n').count() + 1
}

/// The anchor name after `marker` on `line` (`ANCHOR: name`), if the line has one.
fn anchor_name<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let after = &line[line.find(marker)? + marker.len()..];
    let after = after.trim_start();
    let len = after
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(after.len());
    (len > 0).then(|| &after[..len])
}

/// The text of anchor `name` in `source`, without the marker lines, as mdBook would include it.
///
/// # Errors
/// When the anchor is missing, declared more than once, not closed, or holds only blank lines.
fn anchor_region(source: &str, name: &str) -> Result<String, String> {
    let starts = source
        .lines()
        .filter(|line| anchor_name(line, "ANCHOR:") == Some(name))
        .count();
    match starts {
        0 => return Err(format!("anchor `{name}` not found")),
        1 => {}
        n => {
            return Err(format!(
                "anchor `{name}` declared {n} times (mdBook stops at the first end)"
            ));
        }
    }
    let mut region = Vec::new();
    let mut inside = false;
    let mut closed = false;
    for line in source.lines() {
        if anchor_name(line, "ANCHOR_END:") == Some(name) {
            if inside {
                closed = true;
                break;
            }
            continue;
        }
        if anchor_name(line, "ANCHOR:") == Some(name) {
            inside = true;
            continue;
        }
        // mdBook drops every marker line of other anchors nested inside this one.
        let is_marker =
            anchor_name(line, "ANCHOR:").is_some() || anchor_name(line, "ANCHOR_END:").is_some();
        if inside && !is_marker {
            region.push(line);
        }
    }
    if !closed {
        return Err(format!(
            "anchor `{name}` has no `ANCHOR_END: {name}` after it"
        ));
    }
    if region.iter().all(|line| line.trim().is_empty()) {
        return Err(format!("anchor `{name}` is empty"));
    }
    Ok(region.join("\n"))
}

/// Checks one include of the Markdown file at `markdown_path`.
///
/// # Errors
/// A one-line reason when the file, anchor or line range cannot be included.
fn check_include(files: &dyn Files, markdown_path: &Path, include: &Include) -> Result<(), String> {
    let dir = markdown_path.parent().unwrap_or(Path::new(""));
    let target = dir.join(&include.path);
    let Some(source) = files.read(&target) else {
        return Err(format!(
            "`{}`: no such file ({})",
            include.path,
            target.display()
        ));
    };
    match &include.selection {
        Selection::Whole if source.trim().is_empty() => Err(format!("`{}` is empty", include.path)),
        Selection::Whole => Ok(()),
        Selection::Anchor(name) => anchor_region(&source, name)
            .map(|_| ())
            .map_err(|reason| format!("`{}`: {reason}", include.path)),
        Selection::Lines { start, end } => {
            let n_lines = source.lines().count();
            let first = start.unwrap_or(1);
            let last = end.unwrap_or(n_lines);
            if first == 0 || first > last || last > n_lines {
                Err(format!(
                    "`{}`: lines {first}..={last} are not within its {n_lines} lines",
                    include.path
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// One link or image target found in a Markdown file.
#[derive(Debug, PartialEq, Eq)]
struct Link {
    line_no: usize,
    target: String,
}

/// Blanks out what mdBook does not render as links: fenced code blocks, code spans and HTML comments.
///
/// Every other character, newlines included, stays where it was, so line numbers still match.
fn strip_non_links(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut fence: Option<String> = None;
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let marker: String = trimmed
            .chars()
            .take_while(|&c| c == '`' || c == '~')
            .collect();
        let is_fence_line = indent <= 3
            && marker.len() >= 3
            && marker
                .chars()
                .all(|c| c == marker.chars().next().unwrap_or('`'));
        match &fence {
            Some(open) if is_fence_line && marker.starts_with(open.as_str()) => {
                fence = None;
                out.push_str(&blank(line));
            }
            Some(_) => out.push_str(&blank(line)),
            None if is_fence_line => {
                fence = Some(marker);
                out.push_str(&blank(line));
            }
            None => out.push_str(&strip_code_spans(line)),
        }
    }
    strip_comments(&out)
}

/// Replaces every character but newlines with spaces.
fn blank(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect()
}

/// Blanks code spans: a run of N backticks up to the next run of exactly N.
fn strip_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open_at) = rest.find('`') {
        out.push_str(&rest[..open_at]);
        let after_open = &rest[open_at..];
        let run = after_open.len() - after_open.trim_start_matches('`').len();
        let ticks = &after_open[..run];
        let body = &after_open[run..];
        match find_closing_run(body, run) {
            Some(close_at) => {
                out.push_str(&blank(&after_open[..run + close_at + run]));
                rest = &body[close_at + run..];
            }
            None => {
                // An unmatched run is literal text.
                out.push_str(ticks);
                rest = body;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Byte offset in `text` of the next run of exactly `run` backticks.
fn find_closing_run(text: &str, run: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'`' {
            let start = i;
            while i < bytes.len() && bytes[i] == b'`' {
                i += 1;
            }
            if i - start == run {
                return Some(start);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Blanks `<!-- … -->` comments, which may span lines.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open_at) = rest.find("<!--") {
        out.push_str(&rest[..open_at]);
        let comment_len = rest[open_at..]
            .find("-->")
            .map_or(rest.len() - open_at, |end| end + 3);
        out.push_str(&blank(&rest[open_at..open_at + comment_len]));
        rest = &rest[open_at + comment_len..];
    }
    out.push_str(rest);
    out
}

/// Every link and image target in `markdown`: inline `](target)`, reference definitions `[label]: target`
/// and HTML `src="…"` / `href="…"`.
fn find_links(markdown: &str) -> Vec<Link> {
    let text = strip_non_links(markdown);
    let mut links = Vec::new();
    for (index, _) in text.match_indices("](") {
        if let Some(target) = inline_destination(&text[index + 2..]) {
            links.push(Link {
                line_no: line_of(&text, index),
                target,
            });
        }
    }
    for (line_index, line) in text.lines().enumerate() {
        if let Some(target) = reference_definition(line) {
            links.push(Link {
                line_no: line_index + 1,
                target,
            });
        }
    }
    for attribute in ["src=\"", "href=\""] {
        for (index, _) in text.match_indices(attribute) {
            let value = &text[index + attribute.len()..];
            if let Some(end) = value.find('"') {
                links.push(Link {
                    line_no: line_of(&text, index),
                    target: value[..end].to_owned(),
                });
            }
        }
    }
    links.sort_by_key(|link| link.line_no);
    links
}

/// The destination of an inline link, given the text after `](`: `<with spaces>` or up to whitespace or the
/// closing parenthesis (parentheses inside must balance), without an optional `"title"`.
fn inline_destination(after: &str) -> Option<String> {
    let after = after.trim_start();
    if let Some(bracketed) = after.strip_prefix('<') {
        return Some(bracketed[..bracketed.find('>')?].to_owned());
    }
    let mut depth = 0usize;
    for (index, c) in after.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(after[..index].to_owned()),
            ')' => depth -= 1,
            c if c.is_whitespace() => return Some(after[..index].to_owned()),
            _ => {}
        }
    }
    None
}

/// The destination of a reference definition line: up to three spaces, `[label]:`, the destination.
fn reference_definition(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 || !trimmed.starts_with('[') || trimmed.starts_with("[^") {
        return None;
    }
    let close = trimmed.find("]:")?;
    let destination = trimmed[close + 2..].split_whitespace().next()?;
    Some(
        destination
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned(),
    )
}

/// Checks that a relative link from the Markdown file at `markdown_path` reaches a file.
///
/// # Errors
/// A one-line reason when it does not.
fn check_link(
    files: &dyn Files,
    src_root: &Path,
    markdown_path: &Path,
    target: &str,
) -> Result<(), String> {
    const EXTERNAL: [&str; 3] = ["http://", "https://", "mailto:"];
    if target.starts_with('#') || EXTERNAL.iter().any(|scheme| target.starts_with(scheme)) {
        return Ok(());
    }
    if target.is_empty() {
        return Err("empty link target".to_owned());
    }
    let path = target.split(['#', '?']).next().unwrap_or_default();
    let path = percent_decode(path);
    let resolved = match path.strip_prefix('/') {
        // A site-absolute link: mdBook serves `src` at the root.
        Some(absolute) => src_root.join(absolute),
        None => markdown_path.parent().unwrap_or(Path::new("")).join(&path),
    };
    // mdBook renders `chapter.md` as `chapter.html`; a link may use either name.
    let as_markdown = resolved.with_extension("md");
    let is_html_of_chapter =
        resolved.extension().is_some_and(|ext| ext == "html") && files.exists(&as_markdown);
    if files.exists(&resolved) || is_html_of_chapter {
        Ok(())
    } else {
        Err(format!("`{target}`: no such file ({})", resolved.display()))
    }
}

/// Decodes `%XX` escapes (as in `my%20file.md`); anything malformed is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok());
        match (
            bytes[i],
            hex.and_then(|pair| u8::from_str_radix(pair, 16).ok()),
        ) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every problem in the given Markdown files, as `file:line: reason`.
fn check_book(files: &dyn Files, src_root: &Path, markdown_files: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for markdown_path in markdown_files {
        let Some(markdown) = files.read(markdown_path) else {
            problems.push(format!("{}: cannot read", markdown_path.display()));
            continue;
        };
        for include in find_includes(&markdown) {
            if let Err(reason) = check_include(files, markdown_path, &include) {
                problems.push(format!(
                    "{}:{}: include {reason}",
                    markdown_path.display(),
                    include.line_no
                ));
            }
        }
        for link in find_links(&markdown) {
            if let Err(reason) = check_link(files, src_root, markdown_path, &link.target) {
                problems.push(format!(
                    "{}:{}: link {reason}",
                    markdown_path.display(),
                    link.line_no
                ));
            }
        }
    }
    problems
}

/// Every `.md` file under `dir`, recursively, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("book/src is readable") {
            let path = entry.expect("directory entry is readable").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `book/src` beside the testkit crate, as a clean absolute path for readable messages.
fn book_src() -> PathBuf {
    normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src"))
}

#[test]
fn book_includes_and_links_resolve() {
    let src = book_src();
    let markdown = markdown_files(&src);
    // An empty list would make this test pass while checking nothing.
    assert!(
        markdown.iter().any(|path| path.ends_with("SUMMARY.md")),
        "no book/src/SUMMARY.md under {}",
        src.display()
    );
    let problems = check_book(&Disk, &src, &markdown);
    assert!(
        problems.is_empty(),
        "broken includes or links in the book:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_chapter_in_the_summary_exists() {
    let src = book_src();
    let summary = fs::read_to_string(src.join("SUMMARY.md")).expect("SUMMARY.md is readable");
    let chapters = find_links(&summary);
    assert!(
        chapters.len() >= 10,
        "SUMMARY.md lists only {} chapters",
        chapters.len()
    );
    let problems: Vec<_> = chapters
        .iter()
        .filter_map(|link| check_link(&Disk, &src, &src.join("SUMMARY.md"), &link.target).err())
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A small book on which every kind of mistake is made once, beside its correct twin.
fn sample() -> Memory {
    Memory::new(&[
        (
            "crate/src/lib.rs",
            "//! Sample.\n// ANCHOR: serve\nfn serve() {}\n// ANCHOR_END: serve\n\
             // ANCHOR: empty\n\n// ANCHOR_END: empty\n// ANCHOR: twice\nfn a() {}\n// ANCHOR_END: twice\n\
             // ANCHOR: twice\nfn b() {}\n// ANCHOR_END: twice\n// ANCHOR: open\nfn c() {}\n",
        ),
        ("book/src/img/model.svg", "<svg/>"),
        ("book/src/other.md", "# Other\n"),
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
             {{#include ../../crate/src/lib.rs:2:99}}\n\
             \\{{#include ../../crate/src/escaped.rs}}\n\
             ![model](img/model.svg) ![gone](img/gone.svg)\n\
             [ok](other.md#top) [ok](other.html) [bad](nowhere.md#top) [frag](#here)\n\
             [web](https://example.org/x) [mail](mailto:a@b.c)\n\
             `[not a link](code-span.md)`\n\
             ```text\n[not a link](fenced.md)\n```\n\
             <!-- [not a link](comment.md) -->\n\
             [ref]: ./missing-ref.md\n\
             <img src=\"img/missing.png\">\n",
        ),
    ])
}

#[test]
fn extractor_reports_each_broken_include_and_link_once() {
    let files = sample();
    let src = Path::new("book/src");
    let problems = check_book(&files, src, &[src.join("chapter.md")]);
    let expected = [
        ("chapter.md:3:", "anchor `missing` not found"),
        ("chapter.md:4:", "gone.rs`: no such file"),
        ("chapter.md:5:", "anchor `empty` is empty"),
        ("chapter.md:6:", "anchor `twice` declared 2 times"),
        ("chapter.md:7:", "anchor `open` has no `ANCHOR_END"),
        ("chapter.md:9:", "lines 2..=99 are not within its 15 lines"),
        ("chapter.md:11:", "img/gone.svg`: no such file"),
        ("chapter.md:12:", "nowhere.md#top`: no such file"),
        ("chapter.md:19:", "missing-ref.md`: no such file"),
        ("chapter.md:20:", "img/missing.png`: no such file"),
    ];
    for (location, reason) in expected {
        assert!(
            problems
                .iter()
                .any(|p| p.contains(location) && p.contains(reason)),
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
    let files = Memory::new(&[
        (
            "crate/src/lib.rs",
            "// ANCHOR: all\n// ANCHOR: inner\nfn f() {}\n// ANCHOR_END: inner\n// ANCHOR_END: all\n",
        ),
        ("book/src/img/a.svg", "<svg/>"),
        (
            "book/src/ok.md",
            "{{#include ../../crate/src/lib.rs:all}} {{#include ../../crate/src/lib.rs:inner}}\n\
             {{#include ../../crate/src/lib.rs}} {{#include ../../crate/src/lib.rs:3}}\n\
             ![a](img/a.svg \"title\") [self](ok.md) [top](/ok.md) [pct](img/%61.svg)\n",
        ),
    ]);
    let src = Path::new("book/src");
    assert_eq!(
        check_book(&files, src, &[src.join("ok.md")]),
        Vec::<String>::new()
    );
}

#[test]
fn anchor_region_drops_nested_markers_and_keeps_the_code() {
    let source = "// ANCHOR: outer\nlet a = 1;\n// ANCHOR: inner\nlet b = 2;\n// ANCHOR_END: inner\n// ANCHOR_END: outer\n";
    assert_eq!(
        anchor_region(source, "outer"),
        Ok("let a = 1;\nlet b = 2;".to_owned())
    );
    assert_eq!(anchor_region(source, "inner"), Ok("let b = 2;".to_owned()));
    // A name that is a prefix of another is not that other anchor.
    assert_eq!(
        anchor_region(source, "out"),
        Err("anchor `out` not found".to_owned())
    );
}

#[test]
fn selections_parse_as_mdbook_reads_them() {
    let parse = |text: &str| {
        find_includes(text)
            .pop()
            .map(|include| (include.path, include.selection))
    };
    let lines = |start, end| Selection::Lines { start, end };
    assert_eq!(
        parse("{{#include a.rs}}"),
        Some(("a.rs".to_owned(), Selection::Whole))
    );
    assert_eq!(
        parse("{{#include a.rs:x}}"),
        Some(("a.rs".to_owned(), Selection::Anchor("x".to_owned())))
    );
    assert_eq!(
        parse("{{#include a.rs:3}}"),
        Some(("a.rs".to_owned(), lines(Some(3), Some(3))))
    );
    assert_eq!(
        parse("{{#include a.rs:3:}}"),
        Some(("a.rs".to_owned(), lines(Some(3), None)))
    );
    assert_eq!(
        parse("{{#include a.rs::9}}"),
        Some(("a.rs".to_owned(), lines(None, Some(9))))
    );
    assert_eq!(
        parse("{{#playground a.rs editable}}"),
        Some(("a.rs".to_owned(), Selection::Whole))
    );
    assert_eq!(parse("\\{{#include a.rs}}"), None);
    assert_eq!(parse("{{#title Hello}}"), None);
}
