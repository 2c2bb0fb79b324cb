//! The path-traversal corpus: targets that try to read outside the document root.
//!
//! Each is sent raw (no client would normalise it away) to a server whose root has a secret file
//! just outside it and symlinks leading out. The server may answer 400, 403 or 404, never 200,
//! and no answer may contain the secret.

use std::fmt::Write as _;

use crate::Target;
use crate::http::Conn;
use crate::site::TestSite;

// ANCHOR: corpus
/// Request targets that must never reach the secret next to the root, or any system file.
pub const CORPUS: &[&str] = &[
    "/../secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/docs/../../secret.txt",
    "/docs/%2e%2e/%2e%2e/secret.txt",
    "/docs%2f..%2f..%2fsecret.txt",
    "//../secret.txt",
    "/./../secret.txt",
    "/docs/./../../secret.txt",
    "/..\\secret.txt",
    "/..%5csecret.txt",
    "/%5c..%5csecret.txt",
    "/%2e%2e%5csecret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/..%255csecret.txt",
    "/..%00/secret.txt",
    "/%00../secret.txt",
    "/secret.txt%00.html",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt",
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/..%c0%afsecret.txt",
    "/..;/secret.txt",
    "/....//secret.txt",
    "/escape.txt",
    "/up/secret.txt",
    "/up/www/../secret.txt",
    "/up/",
    "/../../../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%2fetc%2fpasswd",
    "/etc/passwd",
    "/proc/self/environ",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    // The absolute form is served as its path: the same rules hold for that path.
    "http://x/../secret.txt",
    "http://x/%2e%2e/secret.txt",
    "http://x/..%2fsecret.txt",
    // The test site's `.env` holds the secret too.
    "/.env",
    "/%2eenv",
];
// ANCHOR_END: corpus

/// Request lines whose target is not even in origin form.
const MALFORMED_TARGETS: &[&str] = &["../secret.txt", "secret.txt", "*"];

/// Sends every target in [`CORPUS`] and checks none leaks.
pub fn traversal_corpus(target: &Target) {
    let site = TestSite::new();
    let server = target.start_on(&site.root(), &["--quiet"]);
    let mut failures = String::new();
    for path in CORPUS.iter().chain(MALFORMED_TARGETS) {
        let mut conn = Conn::open(server.addr());
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let response = match conn.try_read_response(false) {
            Ok(response) => response,
            Err(error) => {
                let _ = writeln!(failures, "- {path}: no response ({error})");
                continue;
            }
        };
        if ![400, 403, 404].contains(&response.status) {
            let _ = writeln!(failures, "- {path}: status {}", response.status);
        }
        let text = response.text();
        if text.contains(site.secret()) || text.contains("root:x:0:0") {
            let _ = writeln!(failures, "- {path}: LEAKED a file outside the root");
        }
    }
    let (bin, args) = (target.bin, target.args);
    assert!(
        failures.is_empty(),
        "traversal corpus, {bin} {args:?}:\n{failures}"
    );
    // Side by side with the refusals, the legitimate look-alikes still work.
    assert_eq!(crate::get(server.addr(), "/inside.html").status, 200);
    let literal_dots = crate::get(server.addr(), "/docs/../index.html").status;
    assert_eq!(literal_dots, 400, "a literal .. is refused, not resolved");
}
