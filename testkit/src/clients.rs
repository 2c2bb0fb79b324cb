//! Real clients against the real server: curl, a Rust HTTP client (ureq), and headless Chromium.
//!
//! curl and Chromium are external programs. Under `CI=true` a missing one fails the test (CI
//! installs them); elsewhere the test says plainly that it skipped.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::site::TestSite;
use crate::{PATIENCE, Target};

/// What the bundled index page loads besides itself.
const SUBRESOURCES: [&str; 4] = ["/style.css", "/app.js", "/img/logo.svg", "/favicon.ico"];

/// The first of `names` found on PATH, or `None` after reporting the skip; under `CI=true` (or `1`)
/// a missing program fails the test instead.
pub fn require_program(names: &[&str], test: &str) -> Option<String> {
    let found = names.iter().find(|name| {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    });
    let in_ci = std::env::var("CI").is_ok_and(|value| value == "true" || value == "1");
    match found {
        Some(name) => Some((*name).to_owned()),
        None if in_ci => panic!(
            "{test}: none of {names:?} is installed, and CI must have it (.ci/run installs it)"
        ),
        None => {
            eprintln!("SKIPPED {test}: none of {names:?} is installed (.ci/run installs it)");
            None
        }
    }
}

/// Runs `curl -sS --max-time 20 ARGS` in `dir` and returns its stdout; panics when it fails.
pub(crate) fn run_curl(curl: &str, args: &[&str], dir: &Path) -> String {
    let output = Command::new(curl)
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// curl fetches the index page, a file with a space, and a missing one, as a user would; on a
/// keep-alive server it reuses one connection for two URLs.
pub fn curl_fetches_site(target: &Target) {
    let Some(curl) = require_program(&["curl"], "curl_fetches_site") else {
        return;
    };
    let server = target.start_on(&crate::www_root(), &[]);
    let run = |args: &[&str]| run_curl(&curl, args, Path::new("."));
    // What curl saw (`-w FORMAT`), each body going to /dev/null.
    let write_out = |options: &[&str], paths: &[&str]| {
        let urls: Vec<String> = paths.iter().map(|path| server.url(path)).collect();
        let mut args = options.to_vec();
        for url in &urls {
            args.extend(["-o", "/dev/null", url]);
        }
        run(&args)
    };
    let page = run(&[&server.url("/")]);
    assert!(page.contains("Progressive Servers"), "curl got: {page}");
    let spaced = run(&[&server.url("/hello%20world.txt")]);
    assert!(spaced.contains("space"));
    assert_eq!(write_out(&["-w", "%{http_code}"], &["/missing"]), "404");
    let redirect = write_out(&["-L", "-w", "%{http_code} %{num_redirects}"], &["/docs"]);
    assert_eq!(redirect, "200 1");
    if target.keep_alive {
        let connects = write_out(&["-w", "%{num_connects}\n"], &["/", "/style.css"]);
        assert_eq!(
            connects.lines().collect::<Vec<_>>(),
            ["1", "0"],
            "curl could not reuse the connection"
        );
    }
}

/// ureq, a well-known Rust HTTP client, gets a page, follows a redirect and sees a 404.
pub fn ureq_fetches_site(target: &Target) {
    let server = target.start_on(&crate::www_root(), &[]);
    let mut page = ureq::get(&server.url("/caf%C3%A9.html")).call().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.body_mut().read_to_string().unwrap().contains("Café"));
    let mut redirected = ureq::get(&server.url("/docs")).call().unwrap();
    let folder_page = redirected.body_mut().read_to_string().unwrap();
    assert!(folder_page.contains("subfolder"));
    match ureq::get(&server.url("/missing")).call() {
        Err(ureq::Error::StatusCode(404)) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    // Several requests through one agent: a keep-alive server serves them on pooled connections.
    let agent = ureq::Agent::new_with_defaults();
    for path in std::iter::once("/").chain(SUBRESOURCES) {
        let response = agent.get(&server.url(path)).call().unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

/// Headless Chromium loads the bundled site; the page's own script records that the stylesheet,
/// the script, the image and the favicon all arrived, and `--dump-dom` shows the record.
pub fn chromium_loads_site(target: &Target) {
    let Some(browser) = require_program(
        &["chromium", "chromium-browser", "google-chrome"],
        "chromium_loads_site",
    ) else {
        return;
    };
    let site = TestSite::new();
    let server = target.start_on(&site.root(), &[]);
    let dom = dump_dom(&browser, &server.url("/"), site.outside());
    let loaded = attribute(&dom, "data-loaded")
        .unwrap_or_else(|| panic!("the page's script did not run; DOM:\n{dom}"));
    assert_eq!(loaded, "css:ok js:ok img:ok favicon:ok", "DOM:\n{dom}");
    for path in SUBRESOURCES {
        assert!(
            server.wait_for_log(
                |line| line.contains(&format!("\"GET {path} HTTP/1.1\" 200")),
                PATIENCE
            ),
            "the server never served {path}: {:?}",
            server.log_lines()
        );
    }
}

/// Runs headless Chromium on `url` (for at most 60 s) and returns the DOM after the page's
/// scripts ran.
fn dump_dom(browser: &str, url: &str, scratch: &Path) -> String {
    let profile = scratch.join("chromium-profile");
    let output = Command::new("timeout")
        .args(["60", browser])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    // `timeout` exits 124 when it had to stop the browser.
    assert_ne!(
        output.status.code(),
        Some(124),
        "Chromium did not finish loading {url} within 60 s"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of the first `name="…"` attribute in `html`.
fn attribute(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("{name}=\""))? + name.len() + 2;
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}
