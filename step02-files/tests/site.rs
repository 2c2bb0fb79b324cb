//! The bundled site is whole: every link and asset of every page in `www/` is answered 200 at
//! once, with no redirect and no 404, so a mirroring tool (`wget -r`) saves it without an error.
//! The redirect and the 404 it demonstrates are named on the page, not linked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use regex::Regex;
use testkit::{Server, get};

const BIN: &str = env!("CARGO_BIN_EXE_step02-files");

/// `href` and `src` targets of `html`, a page served at `page` (a URL path), as URL paths.
fn targets(html: &str, page: &str) -> Vec<String> {
    let attribute = Regex::new(r#"(?:href|src)="([^"]*)""#).unwrap();
    let folder = &page[..=page.rfind('/').unwrap()];
    attribute
        .captures_iter(html)
        .map(|capture| capture[1].to_owned())
        .filter(|target| !target.contains(':') && !target.starts_with('#'))
        .map(|target| {
            if target.starts_with('/') {
                target
            } else {
                normalize(&format!("{folder}{target}"))
            }
        })
        .collect()
}

/// `/docs/../style.css` → `/style.css`, as a browser resolves a relative link.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/').skip(1) {
        match part {
            ".." => {
                parts.pop();
            }
            "." => {}
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[test]
fn every_link_of_the_bundled_site_is_served_at_once() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../www");
    let server = Server::start(BIN, &["--root", root.to_str().unwrap(), "--quiet"]);
    let pages = [
        ("index.html", "/"),
        ("docs/index.html", "/docs/"),
        ("café.html", "/caf%C3%A9.html"),
    ];
    let mut checked = 0;
    for (file, url) in pages {
        let html = fs::read_to_string(root.join(file)).unwrap();
        for target in targets(&html, url) {
            let response = get(server.addr(), &target);
            assert_eq!(response.status, 200, "{file} links {target}");
            checked += 1;
        }
    }
    // The start page's three links and four assets, at least, were followed.
    assert!(checked >= 7, "only {checked} links found");
}

#[test]
fn relative_links_resolve_as_a_browser_resolves_them() {
    assert_eq!(normalize("/docs/../style.css"), "/style.css");
    assert_eq!(targets(r#"<a href="x.html">"#, "/docs/"), ["/docs/x.html"]);
    assert!(targets(r#"<a href="http://e.example/">"#, "/").is_empty());
}
