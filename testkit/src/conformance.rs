//! The contract every step's server meets, as a table of raw requests and expected answers.
//!
//! Each row of the HTTP contract (issue 2, appendix of the book) is one [`Case`] here or one
//! function below. One server serves the whole table, a fresh connection per row.

use std::net::SocketAddr;
use std::time::Duration;

use crate::http::{Conn, RawResponse, get_request as get};
use crate::site::{TestSite, fnv1a};
use crate::{PATIENCE, Target};

/// Whether the server must close the connection after answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closes {
    /// It must close, whatever the server's keep-alive policy (refused requests).
    Always,
    /// Up to the server: a keep-alive server keeps it, a step-2 server closes.
    Policy,
}

/// One row of the contract table.
struct Case {
    /// What the row checks, shown when it fails.
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    closes: Closes,
    /// Further checks on the response; they return what is wrong.
    check: Option<fn(&RawResponse) -> Option<String>>,
}

/// Rows of the table, one a line: `STATUS CLOSES "name", request [, check];`.
macro_rules! rows {
    (@check) => { None };
    (@check $check:expr) => { Some($check) };
    ($($status:literal $closes:ident $name:literal, $request:expr $(, $check:expr)?;)*) => {
        vec![$(Case {
            name: $name,
            request: $request.as_bytes().to_vec(),
            status: $status,
            closes: Closes::$closes,
            check: rows!(@check $($check)?),
        }),*]
    };
}

/// `GET /` with Host `x` and `headers` (each ending in CRLF), then `body`.
fn with_headers(headers: &str, body: &str) -> String {
    format!("GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n{body}")
}

/// `GET /index.html` with Host `x` and `headers` (each ending in CRLF).
fn index_with(headers: &str) -> String {
    format!("GET /index.html HTTP/1.1\r\nHost: x\r\n{headers}\r\n")
}

fn content_type_is(response: &RawResponse, expected: &str) -> Option<String> {
    let actual = response.header("content-type").unwrap_or("");
    (!actual.starts_with(expected))
        .then(|| format!("Content-Type {actual:?}, expected {expected:?}"))
}

fn header_is(response: &RawResponse, name: &str, expected: &str) -> Option<String> {
    let actual = response.header(name);
    (actual != Some(expected)).then(|| format!("{name} {actual:?}, expected {expected:?}"))
}

fn is_index_page(response: &RawResponse) -> Option<String> {
    content_type_is(response, "text/html; charset=utf-8").or_else(|| {
        (!response.text().contains("Progressive Servers")).then(|| "not the index page".into())
    })
}

fn is_not_found_page(response: &RawResponse) -> Option<String> {
    content_type_is(response, "text/html")
        .or_else(|| (!response.text().contains("404")).then(|| "page does not say 404".into()))
}

/// A HEAD of the index announces the length a GET of it sends.
fn announces_index_length(response: &RawResponse) -> Option<String> {
    header_is(response, "content-length", &index_bytes().len().to_string())
}

/// The table. Rows are grouped as in the contract.
fn cases() -> Vec<Case> {
    let long_target = get(&format!("/{}", "a".repeat(9 * 1024)));
    let filler = format!("X-Filler: {}\r\n", "b".repeat(1000));
    let big_head = with_headers(&filler.repeat(17), "");
    let many_headers: String = (0..101).map(|at| format!("X-{at}: v\r\n")).collect();
    let mut rows = rows! {
        // The request line.
        200 Policy "GET / serves index.html", get("/"), is_index_page;
        200 Policy "bare LF line endings are accepted", "GET / HTTP/1.1\nHost: localhost\n\n";
        200 Policy "empty lines before the request line are skipped", format!("\r\n{}", get("/"));
        200 Policy "HTTP/1.0 without Host is fine", "GET / HTTP/1.0\r\n\r\n";
        405 Always "POST is refused with 405 and closes",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            |r| header_is(r, "allow", "GET, HEAD");
        405 Always "DELETE is refused with 405", "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n";
        405 Always "OPTIONS * is well formed: 405 with Allow, like OPTIONS /",
            "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", |r| header_is(r, "allow", "GET, HEAD");
        400 Always "the asterisk form with another method is 400", "GET * HTTP/1.1\r\nHost: x\r\n\r\n";
        405 Always "a lower-case method is another method: 405",
            "get / HTTP/1.1\r\nHost: x\r\n\r\n";
        505 Always "HTTP/2.0 on an HTTP/1 connection is 505", "GET / HTTP/2.0\r\nHost: x\r\n\r\n";
        505 Always "HTTP/1.2 is 505", "GET / HTTP/1.2\r\nHost: x\r\n\r\n";
        400 Always "a garbage version is 400", "GET / HTTX/1.1\r\nHost: x\r\n\r\n";
        400 Always "a lower-case version is 400", "GET / http/1.1\r\nHost: x\r\n\r\n";
        400 Always "a version without minor is 400", "GET / HTTP/1\r\nHost: x\r\n\r\n";
        400 Always "a request line with no version is 400", "GET /\r\nHost: x\r\n\r\n";
        400 Always "two spaces in the request line are 400", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n";
        400 Always "binary garbage is 400", "\x01\x02\x03\x04\r\n\r\n";
        200 Policy "an absolute-form target is served as its path (RFC 9112 §3.2.2)",
            "GET http://x/index.html HTTP/1.1\r\nHost: x\r\n\r\n", announces_index_length;
        400 Always "an absolute-form target of another scheme is refused",
            "GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n";
        400 Always "a target without a leading slash is refused",
            "GET index.html HTTP/1.1\r\nHost: x\r\n\r\n";
        400 Always "a raw non-ASCII character in the target is 400",
            "GET /\u{85}index.html HTTP/1.1\r\nHost: x\r\n\r\n";
        // Limits.
        414 Always "a target over 8 KiB is 414", long_target;
        431 Always "a head over 16 KiB is 431", big_head;
        431 Always "more than 100 header lines is 431", with_headers(&many_headers, "");
        // Header syntax.
        400 Always "white space before the colon is 400", "GET / HTTP/1.1\r\nHost : x\r\n\r\n";
        400 Always "obsolete line folding is 400", with_headers("X-A: b\r\n c\r\n", "");
        400 Always "a control character in a value is 400", with_headers("X-A: b\x01c\r\n", "");
        400 Always "a bare CR inside a header line is 400", with_headers("X-A: b\rc\r\n", "");
        400 Always "a header line without a colon is 400", with_headers("NoColonHere\r\n", "");
        400 Always "an empty header name is 400", with_headers(": v\r\n", "");
        400 Always "HTTP/1.1 without Host is 400", "GET / HTTP/1.1\r\n\r\n";
        400 Always "two Host headers are 400", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
        // Framing.
        501 Always "Transfer-Encoding is 501",
            with_headers("Transfer-Encoding: chunked\r\n", "0\r\n\r\n");
        400 Always "Content-Length beside Transfer-Encoding is 400",
            with_headers("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "");
        400 Always "a non-numeric Content-Length is 400",
            with_headers("Content-Length: abc\r\n", "");
        400 Always "a negative Content-Length is 400", with_headers("Content-Length: -1\r\n", "");
        400 Always "a Content-Length with a sign is 400",
            with_headers("Content-Length: +3\r\n", "abc");
        400 Always "two different Content-Lengths are 400",
            with_headers("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd");
        200 Policy "a repeated, equal Content-Length is fine",
            with_headers("Content-Length: 3\r\nContent-Length: 3\r\n", "abc");
        200 Policy "a small body on GET is read and dropped",
            with_headers("Content-Length: 5\r\n", "hello");
        413 Always "a body over the limit is 413",
            with_headers("Content-Length: 100000000\r\n", "");
        // The target.
        200 Policy "%20 is decoded", get("/hello%20world.txt");
        200 Policy "UTF-8 escapes are decoded", get("/caf%C3%A9.html"),
            |r| (!r.text().contains("Café")).then(|| "not café.html".into());
        400 Policy "an invalid escape is 400", get("/%zz");
        400 Policy "a truncated escape is 400", get("/index.html%4");
        400 Policy "a decoded NUL is 400", get("/index.html%00.txt");
        400 Policy "escapes that are not UTF-8 are 400", get("/%ff%fe");
        200 Policy "the query is ignored for the lookup", get("/index.html?x=1&y=%zz");
        404 Policy "an encoded ? is part of the name", get("/index.html%3Fx=1");
        // The document root.
        200 Policy "/docs/ serves its index.html", get("/docs/");
        200 Policy "an encoded slash is a slash: /docs%2F serves /docs/", get("/docs%2F"),
            |r| (!r.text().contains("Docs: a page")).then(|| "not docs/index.html".into());
        301 Policy "/docs redirects to /docs/",
            get("/docs"), |r| header_is(r, "location", "/docs/");
        301 Policy "the redirect keeps the query", get("/docs?page=2"),
            |r| header_is(r, "location", "/docs/?page=2");
        301 Policy "a redirect never names another host: //docs goes to /docs/",
            get("//docs"), |r| header_is(r, "location", "/docs/");
        404 Policy "a folder without index.html is 404", get("/empty/");
        404 Policy "a dotfile is answered as missing", get("/.env");
        404 Policy "an encoded dotfile is answered as missing", get("/%2eenv");
        200 Policy "/.well-known/ is served (RFC 8615)", get("/.well-known/security.txt");
        404 Policy "a missing file is 404 with a small page",
            get("/no-such-file.html"), is_not_found_page;
        404 Policy "a file named as a folder is 404", get("/index.html/");
        200 Policy "a symlink that stays inside the root is served", get("/inside.html");
        200 Policy "a symlink whose .. stays inside the root is served", get("/docs/back.html");
        403 Policy "an absolute symlink is refused, even to a file inside", get("/absolute.html");
        403 Policy "a symlink that steps out of the root and back is refused",
            get("/out-and-back.html");
        200 Policy "HEAD sends the head without the body", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
            announces_index_length;
        // Content types.
        200 Policy "CSS is text/css", get("/style.css"), |r| content_type_is(r, "text/css");
        200 Policy "JavaScript is text/javascript",
            get("/app.js"), |r| content_type_is(r, "text/javascript");
        200 Policy "SVG is image/svg+xml",
            get("/img/logo.svg"), |r| content_type_is(r, "image/svg+xml");
        200 Policy "text is text/plain; charset=utf-8", get("/hello%20world.txt"),
            |r| content_type_is(r, "text/plain; charset=utf-8");
        200 Policy "an unknown extension is application/octet-stream", get("/data.unknownext"),
            |r| content_type_is(r, "application/octet-stream");
    };
    rows.extend(host_cases());
    rows.extend(validator_cases());
    rows.extend(precondition_cases());
    rows.extend(range_cases());
    rows
}

/// `Host` must be `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2).
fn host_cases() -> Vec<Case> {
    let host = |host: &str| format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    rows! {
        400 Always "a Host with a space inside is 400", host("exa mple.com");
        400 Always "a Host with a path is 400", host("localhost/index.html");
        400 Always "a Host with userinfo is 400", host("user@localhost");
        400 Always "a Host with a port that is not digits is 400", host("localhost:http");
        400 Always "a Host with two ports is 400", host("localhost:80:80");
        400 Always "a Host with an unclosed IPv6 literal is 400", host("[::1");
        400 Always "a Host with a bare IPv6 address is 400", host("::1");
        400 Always "a Host with a bad escape is 400", host("local%zzhost");
        400 Always "an HTTP/1.0 request with an invalid Host is 400",
            "GET / HTTP/1.0\r\nHost: a b\r\n\r\n";
        200 Policy "a Host with a port is fine", host("localhost:7080");
        200 Policy "an IPv4 Host with a port is fine", host("127.0.0.1:7080");
        200 Policy "an IPv6 literal Host is fine", host("[::1]");
        200 Policy "an IPv6 literal Host with a port is fine", host("[::1]:7080");
        200 Policy "an empty Host is fine", host("");
    }
}

/// Revalidation (RFC 9110 §13). `{etag}` and `{last-modified}` in a request are replaced by what
/// a plain GET of the same path answered a moment before, as a client's cache would send them.
fn validator_cases() -> Vec<Case> {
    let none_match = |tags: &str| index_with(&format!("If-None-Match: {tags}\r\n"));
    let since = |date: &str| index_with(&format!("If-Modified-Since: {date}\r\n"));
    let old_date = "Sat, 01 Jan 2000 00:00:00 GMT";
    rows! {
        200 Policy "a file has ETag, Last-Modified and Accept-Ranges",
            get("/index.html"), has_validators;
        304 Policy "If-None-Match with the current ETag is 304", none_match("{etag}"),
            |r| r.header("etag").is_none().then(|| "a 304 without its ETag".into());
        304 Policy "If-None-Match compares weakly: W/ matches", none_match("W/{etag}");
        304 Policy "If-None-Match finds the ETag in a list", none_match("\"other\", {etag}");
        304 Policy "If-None-Match: * is 304 for a file that exists", none_match("*");
        200 Policy "If-None-Match with another ETag is 200", none_match("\"other\"");
        304 Policy "If-Modified-Since the Last-Modified is 304", since("{last-modified}");
        200 Policy "If-Modified-Since an earlier date is 200", since(old_date);
        200 Policy "an unparsable If-Modified-Since is ignored", since("yesterday");
        200 Policy "If-None-Match wins over If-Modified-Since (no match: 200)",
            none_match("\"other\"\r\nIf-Modified-Since: {last-modified}");
        304 Policy "If-None-Match wins over If-Modified-Since (match: 304)",
            none_match(&format!("{{etag}}\r\nIf-Modified-Since: {old_date}"));
        304 Policy "HEAD with If-None-Match is 304 like GET",
            "HEAD /index.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n";
        404 Policy "a missing file with If-None-Match: * is 404",
            "GET /no-such-file HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n";
    }
}

/// Preconditions (RFC 9110 §13.1.1, §13.1.4, §13.2.2), with `{etag}` and `{last-modified}` as in
/// [`validator_cases`].
fn precondition_cases() -> Vec<Case> {
    let if_match = |tags: &str| index_with(&format!("If-Match: {tags}\r\n"));
    let unmodified = |date: &str| index_with(&format!("If-Unmodified-Since: {date}\r\n"));
    let (old_date, future_date) = (
        "Sat, 01 Jan 2000 00:00:00 GMT",
        "Fri, 01 Jan 2100 00:00:00 GMT",
    );
    rows! {
        412 Policy "If-Match with another ETag is 412", if_match("\"other\""), is_empty;
        200 Policy "If-Match with the current ETag is 200", if_match("{etag}"), is_whole_file;
        200 Policy "If-Match: * is 200 for a file that exists", if_match("*"), is_whole_file;
        200 Policy "If-Match finds the ETag in a list", if_match("\"other\", {etag}");
        412 Policy "If-Match compares strongly: W/ never matches", if_match("W/{etag}"), is_empty;
        412 Policy "If-Unmodified-Since a date before the file is 412", unmodified(old_date),
            is_empty;
        200 Policy "If-Unmodified-Since the Last-Modified is 200", unmodified("{last-modified}");
        200 Policy "If-Unmodified-Since a later date is 200", unmodified(future_date),
            is_whole_file;
        200 Policy "an unparsable If-Unmodified-Since is ignored", unmodified("yesterday");
        200 Policy "If-Match wins over If-Unmodified-Since",
            if_match(&format!("{{etag}}\r\nIf-Unmodified-Since: {old_date}"));
        412 Policy "a failed If-Match comes before If-None-Match",
            if_match("\"other\"\r\nIf-None-Match: {etag}"), is_empty;
        412 Policy "a failed precondition comes before Range",
            if_match("\"other\"\r\nRange: bytes=0-9"), is_empty;
        412 Policy "HEAD with a failed If-Match is 412 like GET",
            "HEAD /index.html HTTP/1.1\r\nHost: x\r\nIf-Match: \"other\"\r\n\r\n";
        404 Policy "a missing file with If-Match: * is 404",
            "GET /no-such-file HTTP/1.1\r\nHost: x\r\nIf-Match: *\r\n\r\n";
    }
}

/// A 412 has no content, and says so with `Content-Length: 0`.
fn is_empty(response: &RawResponse) -> Option<String> {
    header_is(response, "content-length", "0")
}

fn has_validators(response: &RawResponse) -> Option<String> {
    let etag = response.header("etag").unwrap_or("");
    let ok = etag.starts_with('"')
        && etag.ends_with('"')
        && response.header("last-modified").is_some()
        && response.header("accept-ranges") == Some("bytes");
    (!ok).then(|| format!("validators missing: {:?}", response.headers))
}

/// The bytes of `www/index.html`, which every test site copies.
fn index_bytes() -> Vec<u8> {
    std::fs::read(crate::www_root().join("index.html")).unwrap()
}

/// Checks a 206: its `Content-Range` and that the body is `expected` of the file.
fn is_part(response: &RawResponse, expected: std::ops::Range<usize>) -> Option<String> {
    let file = index_bytes();
    let (first, last, len) = (expected.start, expected.end - 1, file.len());
    let range = format!("bytes {first}-{last}/{len}");
    header_is(response, "content-range", &range).or_else(|| {
        (response.body != file[expected]).then(|| "the body is not those bytes of the file".into())
    })
}

/// Checks a 206 of the last `n` bytes, or of the whole file when it is shorter.
fn is_tail(response: &RawResponse, n: usize) -> Option<String> {
    let len = index_bytes().len();
    is_part(response, len - n.min(len)..len)
}

/// `bytes=0-0,1-1,…`: `n` one-byte ranges.
fn tiny_ranges(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|at| format!("{at}-{at}")).collect();
    format!("bytes={}", list.join(","))
}

/// Checks a multipart 206 of `file`: one part for each of `expected`, in order, each with the
/// file's media type, its `Content-Range` and exactly those bytes, and the closing delimiter.
fn multipart_failure(
    response: &RawResponse,
    file: &[u8],
    media_type: &str,
    expected: &[std::ops::Range<usize>],
) -> Option<String> {
    if response.header("content-range").is_some() {
        return Some("a multipart 206 with a Content-Range of its own".into());
    }
    let content_type = response.header("content-type").unwrap_or("");
    let Some(boundary) = crate::byteranges::boundary_of(content_type) else {
        return Some(format!(
            "Content-Type {content_type:?}, not multipart/byteranges"
        ));
    };
    let parts = match crate::byteranges::parse_byteranges(&response.body, boundary) {
        Ok(parts) => parts,
        Err(problem) => return Some(format!("multipart body: {problem}")),
    };
    if parts.len() != expected.len() {
        return Some(format!(
            "{} parts, expected {}",
            parts.len(),
            expected.len()
        ));
    }
    parts.iter().zip(expected).find_map(|(part, range)| {
        let place = (part.first, part.last, part.complete_len);
        let wanted = (range.start as u64, range.end as u64 - 1, file.len() as u64);
        if place != wanted {
            Some(format!("a part of {place:?}, expected {wanted:?}"))
        } else if !part.content_type.starts_with(media_type) {
            Some(format!("a part of type {:?}", part.content_type))
        } else {
            (part.bytes != file[range.clone()]).then(|| "a part is not those bytes".into())
        }
    })
}

/// [`multipart_failure`] of `/index.html`.
fn is_multipart(response: &RawResponse, expected: &[std::ops::Range<usize>]) -> Option<String> {
    multipart_failure(response, &index_bytes(), "text/html", expected)
}

fn is_whole_file(response: &RawResponse) -> Option<String> {
    if response.header("content-range").is_some() {
        return Some("a 200 with Content-Range".into());
    }
    (response.body != index_bytes()).then(|| "not the whole file".into())
}

/// Byte ranges (RFC 9110 §14), on `/index.html` (more than 100 bytes).
fn range_cases() -> Vec<Case> {
    let ranged = |range: &str| index_with(&format!("Range: {range}\r\n"));
    let if_range = |validator: &str| ranged(&format!("bytes=0-9\r\nIf-Range: {validator}"));
    rows! {
        206 Policy "Range a-b is 206", ranged("bytes=0-9"), |r| is_part(r, 0..10);
        206 Policy "Range a- is 206 to the end",
            ranged("bytes=10-"), |r| is_part(r, 10..index_bytes().len());
        206 Policy "Range -n is 206 with the last n", ranged("bytes=-7"), |r| is_tail(r, 7);
        206 Policy "an end past the file is clamped", ranged("bytes=5-999999999"),
            |r| is_part(r, 5..index_bytes().len());
        206 Policy "a suffix longer than the file is the whole file, as 206",
            ranged("bytes=-999999999"), |r| is_tail(r, usize::MAX);
        416 Policy "a range past the end is 416", ranged("bytes=999999999-"),
            |r| header_is(r, "content-range", &format!("bytes */{}", index_bytes().len()));
        206 Policy "several ranges are 206 multipart/byteranges, one part each",
            ranged("bytes=0-1,5-9"), |r| is_multipart(r, &[0..2, 5..10]);
        206 Policy "several ranges keep their order and may overlap a little",
            ranged("bytes=-3,0-4,2-6"), |r| {
                let len = index_bytes().len();
                is_multipart(r, &[len - 3..len, 0..5, 2..7])
            };
        206 Policy "unsatisfiable ranges in a list are skipped: one left is a plain 206",
            ranged("bytes=999999999-,0-9"), |r| is_part(r, 0..10);
        416 Policy "a list of ranges all past the end is 416", ranged("bytes=999999999-,-0"),
            |r| header_is(r, "content-range", &format!("bytes */{}", index_bytes().len()));
        206 Policy "32 ranges are answered in 32 parts", ranged(&tiny_ranges(32)),
            |r| is_multipart(r, &(0..32).map(|at| at..at + 1).collect::<Vec<_>>());
        200 Policy "more than 32 ranges get the whole file, 200", ranged(&tiny_ranges(33)),
            is_whole_file;
        200 Policy "ranges asking for more bytes than the file get it whole, 200",
            ranged("bytes=0-,0-"), is_whole_file;
        200 Policy "HEAD ignores several ranges",
            "HEAD /index.html HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,5-9\r\n\r\n",
            announces_index_length;
        200 Policy "a unit other than bytes is ignored", ranged("items=0-1"), is_whole_file;
        200 Policy "an invalid range is ignored", ranged("bytes=9-1"), is_whole_file;
        200 Policy "If-Range with a stale ETag gets the whole file",
            if_range("\"stale\""), is_whole_file;
        206 Policy "If-Range with the current ETag gets the range",
            if_range("{etag}"), |r| is_part(r, 0..10);
        200 Policy "HEAD ignores Range",
            "HEAD /index.html HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n",
            announces_index_length;
    }
}

/// Replaces `{etag}` and `{last-modified}` in `request` with what a GET of its target answered.
fn with_validators(request: &[u8], addr: SocketAddr) -> Vec<u8> {
    let text = String::from_utf8_lossy(request);
    if !text.contains("{etag}") && !text.contains("{last-modified}") {
        return request.to_vec();
    }
    let path = text.split(' ').nth(1).unwrap_or("/");
    let probe = crate::get(addr, path);
    let etag = probe.header("etag").unwrap_or("\"no-etag\"");
    let last_modified = probe.header("last-modified").unwrap_or("no date");
    text.replace("{etag}", etag)
        .replace("{last-modified}", last_modified)
        .into_bytes()
}

/// Checks every response must pass, whatever the row.
fn common_checks(response: &RawResponse, head_request: bool, must_close: bool) -> Vec<String> {
    let required: &[&str] = match response.status {
        304 => &["date", "server"],
        _ => &["date", "server", "content-length", "content-type"],
    };
    let mut problems: Vec<String> = required
        .iter()
        .filter(|name| response.header(name).is_none())
        .map(|name| format!("no {name} header"))
        .collect();
    // A 304 has no content, so nothing to describe it: it must not promise a body.
    if response.status == 304 && response.header("content-length").is_some() {
        problems.push("a 304 with Content-Length".into());
    }
    let length = response.header("content-length");
    if !head_request && response.status != 304 && length != Some(&response.body.len().to_string()) {
        problems.push(format!(
            "Content-Length {length:?} but {} body bytes",
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

/// Sends `row` on a connection of its own; says what is wrong with the answer, if anything.
fn row_failure(row: &Case, addr: SocketAddr, keep_alive: bool) -> Option<String> {
    let head_request = row.request.starts_with(b"HEAD ");
    let must_close = row.closes == Closes::Always || !keep_alive;
    // Probe before opening the row's connection: a one-at-a-time server (step 2) answers the
    // probe only once no other connection holds it.
    let request = with_validators(&row.request, addr);
    let mut conn = Conn::open(addr);
    conn.send(&request);
    let response = match conn.try_read_response(head_request) {
        Ok(response) => response,
        Err(error) => return Some(format!("- {}: no response ({error})", row.name)),
    };
    let mut problems = common_checks(&response, head_request, must_close);
    if response.status != row.status {
        let status = format!("status {} (expected {})", response.status, row.status);
        problems.insert(0, status);
    }
    problems.extend(row.check.and_then(|check| check(&response)));
    if must_close && !conn.is_closed_by_peer(PATIENCE) {
        problems.push("did not close the connection".into());
    }
    (!problems.is_empty()).then(|| format!("- {}: {}", row.name, problems.join("; ")))
}

/// Runs the whole table against one server; reports every failing row at once.
pub fn contract_table(target: &Target) {
    let site = TestSite::new();
    let server = target.start_on(&site.root(), &[]);
    let failures: Vec<String> = cases()
        .iter()
        .filter_map(|row| row_failure(row, server.addr(), target.keep_alive))
        .collect();
    let (bin, args, failures) = (target.bin, target.args, failures.join("\n"));
    assert!(
        failures.is_empty(),
        "contract rows failed for {bin} {args:?}:\n{failures}"
    );
}

/// A head that has not finished arriving is not an error: the server waits, then answers.
pub fn partial_head_is_not_an_error(target: &Target) {
    let server = target.start_on(&crate::www_root(), &["--idle-timeout", "5s"]);
    let mut conn = Conn::open(server.addr());
    for (piece, wait_ms) in [
        (&b"GET /index.html HTTP/1.1\r\nHo"[..], 300),
        (b"st: x\r\n", 200),
    ] {
        conn.send(piece);
        let closed = conn.is_closed_by_peer(Duration::from_millis(wait_ms));
        assert!(!closed, "closed on a partial head");
    }
    assert_eq!(conn.exchange(b"\r\n").status, 200);
}

/// A body the server does not read is never taken for the next request: after a refused POST
/// the connection closes, and the "request" hidden in its body is never served.
pub fn body_after_refused_request_is_never_parsed(target: &Target) {
    let server = target.start_on(&crate::www_root(), &[]);
    let smuggled = "GET /hello%20world.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let length = smuggled.len();
    let request =
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{smuggled}");
    let mut conn = Conn::open(server.addr());
    assert_eq!(conn.exchange(request.as_bytes()).status, 405);
    let closed = conn.is_closed_by_peer(PATIENCE);
    assert!(closed, "kept the connection after an unread body");
    assert!(server.wait_for_log(|line| line.contains("\"POST / HTTP/1.1\" 405"), PATIENCE));
    let lines = server.log_lines();
    let served = lines.iter().any(|line| line.contains("hello%20world"));
    assert!(!served, "the body was served as a request: {lines:?}");
}

/// A file far larger than any buffer arrives whole and unchanged.
pub fn streams_a_large_file_intact(target: &Target) {
    const LEN: usize = 8 * 1024 * 1024 + 123;
    let site = TestSite::new();
    let expected = site.add_file("large.bin", LEN);
    let server = target.start_on(&site.root(), &["--quiet"]);
    let response = crate::get(server.addr(), "/large.bin");
    assert_eq!((response.status, response.body.len()), (200, LEN));
    let intact = fnv1a(&response.body) == expected;
    assert!(intact, "the file arrived corrupted");
}

/// Several ranges of a file far larger than the socket buffers: every part streamed from the
/// file arrives exact under an exact `Content-Length`, twice on one connection (the multipart
/// body's framing holds for the next request), the second time in the cache if there is one.
pub fn streams_several_ranges_of_a_large_file(target: &Target) {
    const LEN: usize = 3 * 1024 * 1024 + 17;
    let site = TestSite::new();
    site.add_file("large.bin", LEN);
    let file = std::fs::read(site.root().join("large.bin")).unwrap();
    let server = target.start_on(&site.root(), &["--quiet"]);
    // Small and large parts, the first one small (inside the head's buffer on some paths).
    let expected = [
        0..10,
        100_000..1_300_000,
        LEN - 5..LEN,
        2_000_000..2_000_001,
    ];
    let request = "GET /large.bin HTTP/1.1\r\nHost: x\r\n\
                   Range: bytes=0-9,100000-1299999,-5,2000000-2000000\r\n\r\n";
    let mut conn = Conn::open(server.addr());
    for round in 0..2 {
        let response = conn.exchange(request.as_bytes());
        assert_eq!(response.status, 206, "round {round}");
        let length = response.body.len().to_string();
        assert_eq!(response.header("content-length"), Some(length.as_str()));
        let failure = multipart_failure(&response, &file, "application/octet-stream", &expected);
        assert_eq!(failure, None, "round {round}");
        if !target.keep_alive {
            return;
        }
    }
    let whole = conn.exchange(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((whole.status, fnv1a(&whole.body)), (200, fnv1a(&file)));
}

/// Every answered request, refused ones included, gives exactly one access-log line with the
/// method, the target, the status and the body bytes.
pub fn access_log_has_one_line_per_request(target: &Target) {
    let server = target.start_on(&crate::www_root(), &[]);
    let ok = crate::get(server.addr(), "/hello%20world.txt");
    let missing = crate::get(server.addr(), "/nope");
    let refused = crate::send_raw(server.addr(), b"GET / HTTP/9.9\r\nHost: x\r\n\r\n");
    assert_eq!((ok.status, missing.status, refused.status), (200, 404, 505));
    let logged = server.wait_for_log_count(3, PATIENCE);
    assert!(logged, "log: {:?}", server.log_lines());
    let lines = server.log_lines();
    let expected_ok = format!("\"GET /hello%20world.txt HTTP/1.1\" 200 {}", ok.body.len());
    for expected in [&expected_ok, "\"GET /nope HTTP/1.1\" 404", " 505 "] {
        let found = lines.iter().any(|line| line.contains(expected));
        assert!(found, "no {expected} in {lines:?}");
    }
    assert_eq!(lines.len(), 3, "one line per request: {lines:?}");
}

/// A request that starts and then stalls past the timeout gets 408 before the close.
pub fn request_cut_short_gets_408(target: &Target) {
    // The deadline runs from the accept; it must be long enough that this thread surely sends its
    // first bytes before it, even on a loaded machine, or the server rightly sees an idle client.
    let server = target.start_on(&crate::www_root(), &["--idle-timeout", "1500ms"]);
    let mut conn = Conn::open(server.addr());
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
    crate::keep_alive::answers_then_closes(&mut conn, 408);
}

/// 304, 412, 206 (one range and multipart) and 416 keep the framing exact on a keep-alive connection: pipelined between plain
/// GETs, every answer is read whole and in order, and the connection carries on.
pub fn conditional_answers_keep_framing(target: &Target) {
    let site = TestSite::new();
    let server = target.start_on(&site.root(), &["--quiet"]);
    let probe = crate::get(server.addr(), "/index.html");
    let etag = probe.header("etag").expect("a file response has an ETag");
    let file = std::fs::read(site.root().join("index.html")).unwrap();
    let requests = [
        index_with(&format!("If-None-Match: {etag}\r\n")),
        index_with("If-Match: \"other\"\r\n"),
        index_with("Range: bytes=0-9\r\n"),
        index_with("Range: bytes=999999-\r\n"),
        index_with("Range: bytes=0-1,5-9\r\n"),
        format!("HEAD /index.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n"),
        index_with(""),
        index_with("Range: bytes=-5\r\nConnection: close\r\n"),
    ];
    let mut conn = Conn::open(server.addr());
    conn.send(requests.concat().as_bytes());
    let mut statuses = Vec::new();
    for request in &requests {
        let response = conn.read_response(request.starts_with("HEAD "));
        let unsatisfiable = format!("bytes */{}", file.len());
        match response.status {
            304 | 412 => assert!(response.body.is_empty()),
            206 if request.contains("bytes=0-9") => assert_eq!(response.body, file[..10]),
            206 if request.contains(',') => {
                let failure = multipart_failure(&response, &file, "text/html", &[0..2, 5..10]);
                assert_eq!(failure, None);
            }
            206 => assert_eq!(response.body, file[file.len() - 5..]),
            200 => assert_eq!(response.body, file),
            416 => assert_eq!(
                response.header("content-range"),
                Some(unsatisfiable.as_str())
            ),
            _ => {}
        }
        statuses.push(response.status);
    }
    assert_eq!(statuses, [304, 412, 206, 416, 206, 304, 200, 206]);
    let closed = conn.is_closed_by_peer(PATIENCE);
    assert!(closed, "did not close after the last");
}

/// A failed precondition is an answer, not an error: after a 412 the connection stays open, and
/// the next request on it is served.
pub fn failed_precondition_keeps_the_connection(target: &Target) {
    let site = TestSite::new();
    let server = target.start_on(&site.root(), &["--quiet"]);
    let file = std::fs::read(site.root().join("index.html")).unwrap();
    let mut conn = Conn::open(server.addr());
    let failed = conn.exchange(index_with("If-Match: \"other\"\r\n").as_bytes());
    assert_eq!((failed.status, failed.body.len()), (412, 0));
    assert_eq!(failed.header("content-length"), Some("0"));
    assert!(!failed.says_close(), "a 412 need not close the connection");
    let next = conn.exchange(index_with("").as_bytes());
    assert_eq!(next.status, 200, "the connection should still serve");
    assert_eq!(next.body, file);
}

/// Runs curl with `args` in `dir`; returns its stdout, or `None` (reported) when curl is missing.
fn run_curl(test: &str, args: &[&str], dir: &std::path::Path) -> Option<String> {
    let curl = crate::clients::require_program(&["curl"], test)?;
    Some(crate::clients::run_curl(&curl, args, dir))
}

/// `curl -C -` resumes an interrupted download of a multi-MiB file, and the result is the file.
pub fn curl_resumes_a_download(target: &Target) {
    const LEN: usize = 5 * 1024 * 1024 + 321;
    let site = TestSite::new();
    site.add_file("big.bin", LEN);
    let whole = std::fs::read(site.root().join("big.bin")).unwrap();
    let server = target.start_on(&site.root(), &["--quiet"]);
    let scratch = tempfile::tempdir().unwrap();
    // What an interrupted download left behind: the first MiB and a bit.
    std::fs::write(scratch.path().join("big.bin"), &whole[..1024 * 1024 + 7]).unwrap();
    let url = server.url("/big.bin");
    let args = ["-C", "-", "-o", "big.bin", "-w", "%{http_code}", &url];
    let Some(status) = run_curl("curl_resumes_a_download", &args, scratch.path()) else {
        return;
    };
    assert_eq!(status, "206", "curl did not get a range");
    let resumed = std::fs::read(scratch.path().join("big.bin")).unwrap();
    assert_eq!(resumed.len(), LEN);
    assert_eq!(fnv1a(&resumed), fnv1a(&whole), "the resumed file differs");
}

/// curl revalidates its copy with the ETag it saved (`--etag-save`, then `--etag-compare`), and
/// with a date (`-z`): both get 304 and the copy stays as it was.
pub fn curl_revalidates_its_copy(target: &Target) {
    let site = TestSite::new();
    let server = target.start_on(&site.root(), &["--quiet"]);
    let scratch = tempfile::tempdir().unwrap();
    let url = server.url("/index.html");
    let file = std::fs::read(site.root().join("index.html")).unwrap();
    let copy = || std::fs::read(scratch.path().join("page.html")).unwrap();
    let fetch = |extra: &[&str]| {
        let args = [&["-o", "page.html", "-w", "%{http_code}"], extra].concat();
        run_curl("curl_revalidates_its_copy", &args, scratch.path())
    };
    let Some(first) = fetch(&["--etag-save", "etag.txt", &url]) else {
        return;
    };
    assert_eq!((first.as_str(), copy()), ("200", file.clone()));
    let by_etag = fetch(&["--etag-compare", "etag.txt", &url]);
    assert_eq!(by_etag.as_deref(), Some("304"), "revalidation by ETag");
    assert_eq!(copy(), file, "the copy changed after a 304");
    let probe = crate::get(server.addr(), "/index.html");
    let last_modified = probe
        .header("last-modified")
        .expect("a file has Last-Modified");
    let by_date = fetch(&["-z", last_modified, &url]);
    assert_eq!(by_date.as_deref(), Some("304"), "revalidation by date");
    assert_eq!(copy(), file, "the copy changed after a 304");
}

/// A file stamped in the future is sent with a `Last-Modified` no later than the `Date`
/// (RFC 9110 §8.8.2.1), and a revalidation with that date is still answered correctly.
pub fn future_file_is_not_modified_after_the_date(target: &Target) {
    let site = TestSite::new();
    let root = site.root();
    let path = root.join("future.txt");
    std::fs::write(&path, "from the future").unwrap();
    let in_a_year = std::time::SystemTime::now() + Duration::from_secs(365 * 24 * 60 * 60);
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(in_a_year).unwrap();
    let server = target.start_on(&root, &["--quiet"]);
    let response = crate::get(server.addr(), "/future.txt");
    assert_eq!(response.status, 200);
    let date_of = |name: &str| {
        let text = response.header(name).unwrap_or_else(|| panic!("no {name}"));
        httpdate::parse_http_date(text).unwrap_or_else(|_| panic!("{name}: {text:?}"))
    };
    let (date, last_modified) = (date_of("date"), date_of("last-modified"));
    assert!(
        last_modified <= date,
        "Last-Modified {last_modified:?} is later than Date {date:?}"
    );
}

/// The open-file cache never serves what resolving the path anew would not: a file rewritten is
/// served new at the next request, a symlink swapped to lead out of the root is refused, a
/// removed file is 404. With `--no-file-cache` every request sees the disk at once too.
pub fn file_cache_follows_the_disk(target: &Target) {
    let site = TestSite::new();
    let root = site.root();
    std::fs::write(root.join("page.txt"), "one").unwrap();
    let server = target.start_on(&root, &["--quiet"]);
    let get = |path: &str| crate::get(server.addr(), path);
    for _ in 0..2 {
        assert_eq!(get("/page.txt").text(), "one");
        assert_eq!(get("/inside.html").status, 200);
        assert_eq!(get("/hello%20world.txt").status, 200);
    }
    std::fs::write(root.join("page.txt"), "two!").unwrap();
    std::fs::remove_file(root.join("inside.html")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("inside.html")).unwrap();
    std::fs::remove_file(root.join("hello world.txt")).unwrap();
    assert_eq!(get("/page.txt").text(), "two!", "a stale file");
    let swapped = get("/inside.html");
    assert_eq!(
        swapped.status, 403,
        "a symlink now leading out must be refused"
    );
    assert!(!swapped.text().contains(site.secret()));
    assert_eq!(get("/hello%20world.txt").status, 404, "a removed file");

    let uncached = target.start_on(&root, &["--quiet", "--no-file-cache"]);
    assert_eq!(crate::get(uncached.addr(), "/page.txt").text(), "two!");
    std::fs::write(root.join("page.txt"), "three").unwrap();
    assert_eq!(crate::get(uncached.addr(), "/page.txt").text(), "three");
}

/// A file edited after a client cached it is never answered "not modified": asked at once with
/// the old version's `If-None-Match` or `If-Modified-Since`, the server sends the new version,
/// whole; a `Range` with the old version's `If-Range` gets the whole new file, never new bytes
/// stitched to old ones. With the default flags, so with the open-file cache holding the file.
pub fn an_edited_file_is_never_not_modified(target: &Target) {
    let site = TestSite::new();
    let path = site.root().join("edited.txt");
    std::fs::write(&path, "version one").unwrap();
    let server = target.start_on(&site.root(), &["--quiet"]);
    let conditional = |headers: &str| {
        let request =
            format!("GET /edited.txt HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n");
        crate::http::send_raw(server.addr(), request.as_bytes())
    };
    let validators_of = |response: &RawResponse| {
        let etag = response.header("etag").expect("an ETag").to_owned();
        let date = response
            .header("last-modified")
            .expect("a Last-Modified")
            .to_owned();
        (etag, date)
    };
    // Each version is dated later than the one before, by whole seconds, as `If-Modified-Since`
    // needs to tell them apart; the last is dated now.
    let dated = |path: &std::path::Path, ago: u64| {
        let file = std::fs::File::options().append(true).open(path).unwrap();
        file.set_modified(std::time::SystemTime::now() - Duration::from_secs(ago))
            .unwrap();
    };
    dated(&path, 300);
    let mut previous = validators_of(&crate::get(server.addr(), "/edited.txt"));
    type Change<'a> = &'a dyn Fn(&std::path::Path);
    let versions: [(&str, Change); 3] = [
        ("appended to and touched", &|path| {
            let mut file = std::fs::File::options().append(true).open(path).unwrap();
            std::io::Write::write_all(&mut file, b", and more").unwrap();
            dated(path, 200);
        }),
        ("rewritten in place, the same size", &|path| {
            let len = std::fs::metadata(path).unwrap().len() as usize;
            std::fs::write(path, "x".repeat(len)).unwrap();
            dated(path, 100);
        }),
        ("replaced by rename", &|path| {
            let new = path.with_extension("new");
            std::fs::write(&new, "version three").unwrap();
            std::fs::rename(&new, path).unwrap();
        }),
    ];
    for (change, make) in versions {
        hold_in_the_cache(&conditional, &previous.0);
        make(&path);
        let now_on_disk = std::fs::read(&path).unwrap();
        let (etag, date) = previous.clone();
        for headers in [
            String::new(),
            format!("If-None-Match: {etag}\r\n"),
            format!("If-Modified-Since: {date}\r\n"),
            format!("Range: bytes=0-3\r\nIf-Range: {etag}\r\n"),
        ] {
            let response = conditional(&headers);
            assert_eq!(
                (response.status, &response.body),
                (200, &now_on_disk),
                "{change}, then asked with {headers:?}"
            );
        }
        previous = validators_of(&crate::get(server.addr(), "/edited.txt"));
        assert_ne!(previous.0, etag, "{change}: the ETag must change");
    }
    // Rewritten with its modification time set back, as `touch -r` or `rsync -t` leave it: the
    // validators are the old ones, so a conditional request is rightly "not modified", but the
    // body of a plain request is the new one.
    hold_in_the_cache(&conditional, &previous.0);
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "version four!").unwrap();
    let file = std::fs::File::options().append(true).open(&path).unwrap();
    file.set_modified(modified).unwrap();
    assert_eq!(conditional("").text(), "version four!");
}

/// Asks twice with the version's own tag (304 each time), so that the open-file cache holds
/// it, then waits out a tick of the file clock, so that the change to come shows.
fn hold_in_the_cache(conditional: &dyn Fn(&str) -> RawResponse, etag: &str) {
    for _ in 0..2 {
        assert_eq!(
            conditional(&format!("If-None-Match: {etag}\r\n")).status,
            304
        );
    }
    std::thread::sleep(Duration::from_millis(30));
}

/// A root given as a symlink that a deploy points elsewhere (`ln -sfn release-2 current.tmp &&
/// mv -T current.tmp current`) is followed at the next request, cached files included.
pub fn a_root_symlink_swapped_by_a_deploy_is_followed(target: &Target) {
    let site = TestSite::new();
    let releases = site.root().join("releases");
    for release in ["1", "2"] {
        std::fs::create_dir_all(releases.join(release)).unwrap();
        std::fs::write(
            releases.join(release).join("index.html"),
            format!("release {release}"),
        )
        .unwrap();
    }
    let current = releases.join("current");
    std::os::unix::fs::symlink("1", &current).unwrap();
    let server = target.start_on(&current, &["--quiet"]);
    for _ in 0..2 {
        assert_eq!(crate::get(server.addr(), "/").text(), "release 1");
    }
    std::os::unix::fs::symlink("2", releases.join("current.tmp")).unwrap();
    std::fs::rename(releases.join("current.tmp"), &current).unwrap();
    assert_eq!(crate::get(server.addr(), "/").text(), "release 2");
    assert_eq!(crate::get(server.addr(), "/index.html").text(), "release 2");
}

/// A root folder of mode 711 (its files readable, its listing not, as a home's `public_html`
/// often is) is served: the server holds it open with `O_PATH`, which needs no read permission.
/// As root no permission stops anything, so the server then runs as `nobody`.
pub fn a_root_that_may_not_be_listed_is_served(target: &Target) {
    use std::os::unix::fs::PermissionsExt;
    let site = TestSite::new();
    let root = site.root();
    let bin = site.runnable_by_nobody(target.bin);
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711)).unwrap();
    let launch = crate::server::Launch {
        as_nobody: true,
        ..crate::server::Launch::default()
    };
    let bin = bin.to_str().expect("temp paths are UTF-8");
    let root_arg = root.to_str().expect("temp paths are UTF-8");
    let args = [target.args, &["--root", root_arg, "--quiet"]].concat();
    let server = crate::Server::launch(bin, &args, &launch);
    assert_eq!(crate::get(server.addr(), "/index.html").status, 200);
    assert_eq!(crate::get(server.addr(), "/").status, 200);
    assert_eq!(crate::get(server.addr(), "/docs/").status, 200);
}
