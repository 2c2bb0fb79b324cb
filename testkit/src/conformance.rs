//! The contract every step's server meets, as a table of raw requests and expected answers.
//!
//! Each row of the HTTP contract (issue 2, appendix of the book) is one [`Case`] here or one
//! function below. One server serves the whole table, a fresh connection per row.

use std::fmt::Write as _;
use std::time::Duration;

use crate::http::{Conn, RawResponse};
use crate::site::{TestSite, fnv1a};
use crate::{PATIENCE, Target};

/// Whether the server must close the connection after answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closes {
    /// It must close, whatever the server's keep-alive policy (refused requests).
    Always,
    /// Up to the server: a keep-alive server keeps it, a step-2 server closes.
    Policy,
}

/// One row of the contract table.
pub struct Case {
    /// What the row checks, shown when it fails.
    pub name: &'static str,
    /// The bytes sent.
    pub request: Vec<u8>,
    /// The status expected back.
    pub status: u16,
    /// Whether the server must close after answering.
    pub closes: Closes,
    /// Further checks on the response; return a description of what is wrong.
    pub check: Option<fn(&RawResponse) -> Option<String>>,
}

fn case(name: &'static str, request: &str, status: u16, closes: Closes) -> Case {
    Case {
        name,
        request: request.as_bytes().to_vec(),
        status,
        closes,
        check: None,
    }
}

fn checked(mut row: Case, check: fn(&RawResponse) -> Option<String>) -> Case {
    row.check = Some(check);
    row
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

fn content_type_is(response: &RawResponse, expected: &str) -> Option<String> {
    let actual = response.header("content-type").unwrap_or("");
    (!actual.starts_with(expected))
        .then(|| format!("Content-Type {actual:?}, expected {expected:?}"))
}

/// The table. Rows are grouped as in the contract.
pub fn cases() -> Vec<Case> {
    use Closes::{Always, Policy};
    let long_target = format!("/{}", "a".repeat(9 * 1024));
    let big_header = format!("X-Filler: {}\r\n", "b".repeat(1000));
    let many_headers: String = (0..101).map(|at| format!("X-{at}: v\r\n")).collect();
    vec![
        // The request line.
        checked(
            case("GET / serves index.html", &get("/"), 200, Policy),
            |response| {
                content_type_is(response, "text/html; charset=utf-8").or_else(|| {
                    (!response.text().contains("Progressive Servers"))
                        .then(|| "not the index page".into())
                })
            },
        ),
        case(
            "bare LF line endings are accepted",
            "GET / HTTP/1.1\nHost: localhost\n\n",
            200,
            Policy,
        ),
        case(
            "empty lines before the request line are skipped",
            &format!("\r\n{}", get("/")),
            200,
            Policy,
        ),
        case(
            "HTTP/1.0 without Host is fine",
            "GET / HTTP/1.0\r\n\r\n",
            200,
            Policy,
        ),
        checked(
            case(
                "POST is refused with 405 and closes",
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                405,
                Always,
            ),
            |response| {
                (response.header("allow") != Some("GET, HEAD"))
                    .then(|| format!("Allow: {:?}", response.header("allow")))
            },
        ),
        case(
            "DELETE is refused with 405",
            "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n",
            405,
            Always,
        ),
        case(
            "a lower-case method is another method: 405",
            "get / HTTP/1.1\r\nHost: x\r\n\r\n",
            405,
            Always,
        ),
        case(
            "HTTP/2.0 on an HTTP/1 connection is 505",
            "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
            505,
            Always,
        ),
        case(
            "HTTP/1.2 is 505",
            "GET / HTTP/1.2\r\nHost: x\r\n\r\n",
            505,
            Always,
        ),
        case(
            "a garbage version is 400",
            "GET / HTTX/1.1\r\nHost: x\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a lower-case version is 400",
            "GET / http/1.1\r\nHost: x\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a version without minor is 400",
            "GET / HTTP/1\r\nHost: x\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a request line with no version is 400",
            "GET /\r\nHost: x\r\n\r\n",
            400,
            Always,
        ),
        case(
            "two spaces in the request line are 400",
            "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            Always,
        ),
        case(
            "binary garbage is 400",
            "\x01\x02\x03\x04\r\n\r\n",
            400,
            Always,
        ),
        case(
            "an absolute-form target is refused",
            "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a target without a leading slash is refused",
            "GET index.html HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            Always,
        ),
        // Limits.
        case(
            "a target over 8 KiB is 414",
            &get(&long_target),
            414,
            Always,
        ),
        case(
            "a head over 16 KiB is 431",
            &format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", big_header.repeat(17)),
            431,
            Always,
        ),
        case(
            "more than 100 header lines is 431",
            &format!("GET / HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"),
            431,
            Always,
        ),
        // Header syntax.
        case(
            "white space before the colon is 400",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            400,
            Always,
        ),
        case(
            "obsolete line folding is 400",
            "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a control character in a value is 400",
            "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x01c\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a bare CR inside a header line is 400",
            "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a header line without a colon is 400",
            "GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
            400,
            Always,
        ),
        case(
            "an empty header name is 400",
            "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n",
            400,
            Always,
        ),
        case(
            "HTTP/1.1 without Host is 400",
            "GET / HTTP/1.1\r\n\r\n",
            400,
            Always,
        ),
        case(
            "two Host headers are 400",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
            Always,
        ),
        // Framing.
        case(
            "Transfer-Encoding is 501",
            "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
            Always,
        ),
        case(
            "Content-Length beside Transfer-Encoding is 400",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a non-numeric Content-Length is 400",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a negative Content-Length is 400",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            400,
            Always,
        ),
        case(
            "a Content-Length with a sign is 400",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
            400,
            Always,
        ),
        case(
            "two different Content-Lengths are 400",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
            Always,
        ),
        case(
            "a repeated, equal Content-Length is fine",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            200,
            Policy,
        ),
        case(
            "a small body on GET is read and dropped",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            200,
            Policy,
        ),
        case(
            "a body over the limit is 413",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n",
            413,
            Always,
        ),
        // The target.
        case("%20 is decoded", &get("/hello%20world.txt"), 200, Policy),
        checked(
            case(
                "UTF-8 escapes are decoded",
                &get("/caf%C3%A9.html"),
                200,
                Policy,
            ),
            |response| (!response.text().contains("Café")).then(|| "not café.html".into()),
        ),
        case("an invalid escape is 400", &get("/%zz"), 400, Policy),
        case(
            "a truncated escape is 400",
            &get("/index.html%4"),
            400,
            Policy,
        ),
        case(
            "a decoded NUL is 400",
            &get("/index.html%00.txt"),
            400,
            Policy,
        ),
        case(
            "escapes that are not UTF-8 are 400",
            &get("/%ff%fe"),
            400,
            Policy,
        ),
        case(
            "the query is ignored for the lookup",
            &get("/index.html?x=1&y=%zz"),
            200,
            Policy,
        ),
        case(
            "an encoded ? is part of the name",
            &get("/index.html%3Fx=1"),
            404,
            Policy,
        ),
        // The document root.
        case("/docs/ serves its index.html", &get("/docs/"), 200, Policy),
        checked(
            case("/docs redirects to /docs/", &get("/docs"), 301, Policy),
            |response| {
                (response.header("location") != Some("/docs/"))
                    .then(|| format!("Location {:?}", response.header("location")))
            },
        ),
        checked(
            case(
                "the redirect keeps the query",
                &get("/docs?page=2"),
                301,
                Policy,
            ),
            |response| {
                (response.header("location") != Some("/docs/?page=2"))
                    .then(|| format!("Location {:?}", response.header("location")))
            },
        ),
        case(
            "a folder without index.html is 404",
            &get("/empty/"),
            404,
            Policy,
        ),
        checked(
            case(
                "a missing file is 404 with a small page",
                &get("/no-such-file.html"),
                404,
                Policy,
            ),
            |response| {
                content_type_is(response, "text/html").or_else(|| {
                    (!response.text().contains("404")).then(|| "page does not say 404".into())
                })
            },
        ),
        case(
            "a file named as a folder is 404",
            &get("/index.html/"),
            404,
            Policy,
        ),
        case(
            "a symlink that stays inside the root is served",
            &get("/inside.html"),
            200,
            Policy,
        ),
        checked(
            case(
                "HEAD sends the head without the body",
                "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
                200,
                Policy,
            ),
            |response| {
                let index = crate::www_root().join("index.html");
                let get_length = std::fs::metadata(index).unwrap().len().to_string();
                let length = response.header("content-length").unwrap_or("");
                (length != get_length)
                    .then(|| format!("HEAD announced {length:?}; GET sends {get_length} bytes"))
            },
        ),
        // Content types.
        checked(
            case("CSS is text/css", &get("/style.css"), 200, Policy),
            |response| content_type_is(response, "text/css"),
        ),
        checked(
            case(
                "JavaScript is text/javascript",
                &get("/app.js"),
                200,
                Policy,
            ),
            |response| content_type_is(response, "text/javascript"),
        ),
        checked(
            case("SVG is image/svg+xml", &get("/img/logo.svg"), 200, Policy),
            |response| content_type_is(response, "image/svg+xml"),
        ),
        checked(
            case(
                "text is text/plain; charset=utf-8",
                &get("/hello%20world.txt"),
                200,
                Policy,
            ),
            |response| content_type_is(response, "text/plain; charset=utf-8"),
        ),
        checked(
            case(
                "an unknown extension is application/octet-stream",
                &get("/data.unknownext"),
                200,
                Policy,
            ),
            |response| content_type_is(response, "application/octet-stream"),
        ),
    ]
}

/// Checks every response must pass, whatever the row.
fn common_checks(response: &RawResponse, head_request: bool, must_close: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for name in ["date", "server", "content-length", "content-type"] {
        if response.header(name).is_none() {
            problems.push(format!("no {name} header"));
        }
    }
    if !head_request && response.header("content-length") != Some(&response.body.len().to_string())
    {
        problems.push(format!(
            "Content-Length {:?} but {} body bytes",
            response.header("content-length"),
            response.body.len()
        ));
    }
    let reason = response.status_line.splitn(3, ' ').nth(2).unwrap_or("");
    if !response.status_line.starts_with("HTTP/1.1 ") || reason.is_empty() {
        problems.push(format!("status line {:?}", response.status_line));
    }
    if must_close && !response.says_close() {
        problems.push("closes but does not say Connection: close".into());
    }
    problems
}

/// Runs the whole table against one server; reports every failing row at once.
pub fn contract_table(target: &Target) {
    let site = TestSite::new();
    let server = target.start_on(&site.root(), &[]);
    let mut failures = String::new();
    for row in cases() {
        let head_request = row.request.starts_with(b"HEAD ");
        let must_close = row.closes == Closes::Always || !target.keep_alive;
        let mut conn = Conn::open(server.addr());
        conn.send(&row.request);
        let response = match conn.try_read_response(head_request) {
            Ok(response) => response,
            Err(error) => {
                let _ = writeln!(failures, "- {}: no response ({error})", row.name);
                continue;
            }
        };
        let mut problems = common_checks(&response, head_request, must_close);
        if response.status != row.status {
            problems.insert(
                0,
                format!("status {} (expected {})", response.status, row.status),
            );
        }
        if let Some(problem) = row.check.and_then(|check| check(&response)) {
            problems.push(problem);
        }
        if must_close && !conn.is_closed_by_peer(PATIENCE) {
            problems.push("did not close the connection".into());
        }
        if !problems.is_empty() {
            let _ = writeln!(failures, "- {}: {}", row.name, problems.join("; "));
        }
    }
    assert!(
        failures.is_empty(),
        "contract rows failed for {} {:?}:\n{failures}",
        target.bin,
        target.args
    );
}

/// A head that has not finished arriving is not an error: the server waits, then answers.
pub fn partial_head_is_not_an_error(target: &Target) {
    let server = target.start_on(&crate::www_root(), &["--idle-timeout", "5s"]);
    let mut conn = Conn::open(server.addr());
    conn.send(b"GET /index.html HTTP/1.1\r\nHo");
    assert!(
        !conn.is_closed_by_peer(Duration::from_millis(300)),
        "closed on a partial head"
    );
    conn.send(b"st: x\r\n");
    assert!(
        !conn.is_closed_by_peer(Duration::from_millis(200)),
        "closed on a partial head"
    );
    conn.send(b"\r\n");
    assert_eq!(conn.read_response(false).status, 200);
}

/// A body the server does not read is never taken for the next request: after a refused POST
/// the connection closes, and the "request" hidden in its body is never served.
pub fn body_after_refused_request_is_never_parsed(target: &Target) {
    let server = target.start_on(&crate::www_root(), &[]);
    let smuggled = "GET /hello%20world.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let mut conn = Conn::open(server.addr());
    conn.send(request.as_bytes());
    assert_eq!(conn.read_response(false).status, 405);
    assert!(
        conn.is_closed_by_peer(PATIENCE),
        "kept the connection after an unread body"
    );
    assert!(server.wait_for_log(|line| line.contains("\"POST / HTTP/1.1\" 405"), PATIENCE));
    assert!(
        !server
            .log_lines()
            .iter()
            .any(|line| line.contains("hello%20world")),
        "the body was served as a request: {:?}",
        server.log_lines()
    );
}

/// A file far larger than any buffer arrives whole and unchanged.
pub fn streams_a_large_file_intact(target: &Target) {
    const LEN: usize = 8 * 1024 * 1024 + 123;
    let site = TestSite::new();
    let expected = site.add_file("large.bin", LEN);
    let server = target.start_on(&site.root(), &["--quiet"]);
    let response = crate::get(server.addr(), "/large.bin");
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), LEN);
    assert_eq!(
        fnv1a(&response.body),
        expected,
        "the file arrived corrupted"
    );
}

/// Every answered request, refused ones included, gives exactly one access-log line with the
/// method, the target, the status and the body bytes.
pub fn access_log_has_one_line_per_request(target: &Target) {
    let server = target.start_on(&crate::www_root(), &[]);
    let ok = crate::get(server.addr(), "/hello%20world.txt");
    let missing = crate::get(server.addr(), "/nope");
    let refused = crate::send_raw(server.addr(), b"GET / HTTP/9.9\r\nHost: x\r\n\r\n");
    assert_eq!((ok.status, missing.status, refused.status), (200, 404, 505));
    assert!(
        server.wait_for_log_count(3, PATIENCE),
        "log: {:?}",
        server.log_lines()
    );
    let lines = server.log_lines();
    let expected_ok = format!("\"GET /hello%20world.txt HTTP/1.1\" 200 {}", ok.body.len());
    assert!(
        lines.iter().any(|line| line.contains(&expected_ok)),
        "no {expected_ok} in {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("\"GET /nope HTTP/1.1\" 404")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|line| line.contains(" 505 ")), "{lines:?}");
    assert_eq!(lines.len(), 3, "one line per request: {lines:?}");
}

/// A request that starts and then stalls past the timeout gets 408 before the close.
pub fn request_cut_short_gets_408(target: &Target) {
    // The deadline runs from the accept; it must be long enough that this thread surely sends its
    // first bytes before it, even on a loaded machine, or the server rightly sees an idle client.
    let server = target.start_on(&crate::www_root(), &["--idle-timeout", "1500ms"]);
    let mut conn = Conn::open(server.addr());
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
    let response = conn.read_response(false);
    assert_eq!(response.status, 408);
    assert!(response.says_close());
    assert!(conn.is_closed_by_peer(PATIENCE));
}
