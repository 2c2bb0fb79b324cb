//! Decides the answer to a request: the file (whole, in part, or "not modified"), a failed
//! precondition, a redirect, or an error page. No I/O but what the document root does to find
//! the file; the time comes in as an argument.

use std::borrow::Cow;
use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

use crate::http::date::{ImfDate, Now, whole_seconds};
use crate::http::docroot::{DocRoot, FileContent, FoundFile, Resolved};
use crate::http::error::HttpError;
use crate::http::range::{ByteRange, RangeChoice, choose_range};
use crate::http::request::{Method, Request};
use crate::http::response::{
    Body, Connection, FileRange, Framing, Persistence, Response, Sending, SharedBytes,
};
use crate::http::status::StatusCode;
use crate::http::validators::{Conditions, Verdict, evaluate, if_range_holds};

// ANCHOR: respond
/// The response to `request`, serving files from `root`, made at `now`.
///
/// The response keeps the connection only when the server's `persistence` allows it, the client
/// asked for it, and the request left no unread body behind.
pub fn respond(root: &DocRoot, request: &Request, persistence: Persistence, now: &Now) -> Response {
    let keep_alive = persistence == Persistence::KeepAlive
        && request.keep_alive
        && request.method.is_supported();
    let reply = Reply {
        now,
        framing: Framing {
            connection: if keep_alive {
                Connection::KeepAlive
            } else {
                Connection::Close
            },
            version: request.version,
            sending: match request.method {
                Method::Head => Sending::HeadOnly,
                _ => Sending::HeadAndBody,
            },
        },
    };
    if !request.method.is_supported() {
        return reply.page(StatusCode::METHOD_NOT_ALLOWED, &[("Allow", "GET, HEAD")]);
    }
    match root.lookup(&request.path, now.wall) {
        Resolved::File(found) => reply.file(request, dated_no_later_than(found, now)),
        Resolved::MissingSlash => {
            let location = with_trailing_slash(&request.target);
            reply.page(StatusCode::MOVED_PERMANENTLY, &[("Location", &location)])
        }
        Resolved::NotFound => reply.page(StatusCode::NOT_FOUND, &[]),
        Resolved::Forbidden => reply.page(StatusCode::FORBIDDEN, &[]),
        Resolved::BadPath => reply.page(StatusCode::BAD_REQUEST, &[]),
        // Closing gives a descriptor back, which is what the server is short of.
        Resolved::Unavailable => reply
            .closing()
            .page(StatusCode::SERVICE_UNAVAILABLE, &[("Retry-After", "1")]),
    }
}
// ANCHOR_END: respond

/// The answer to a request the parser refused. It always closes the connection: after a framing
/// error the server cannot know where the next request would start.
pub fn error_response(error: HttpError, now: &Now) -> Response {
    status_page(error.status(), now)
}

/// A small HTML page for `status` that closes the connection: the answer to a refused request,
/// a request cut short by the idle timeout (408), or a server-side failure (500).
pub fn status_page(status: StatusCode, now: &Now) -> Response {
    let reply = Reply {
        now,
        framing: Framing::CLOSE,
    };
    reply.page(status, &[])
}

/// `found` with a `Last-Modified` no later than the response's `Date`: a file stamped in the
/// future (a clock set wrong, an archive unpacked from elsewhere) is said to have changed now, as
/// RFC 9110 §8.8.2.1 requires. The `ETag` still names the real modification time.
fn dated_no_later_than(mut found: FoundFile, now: &Now) -> FoundFile {
    let validators = &mut found.validators;
    if validators.last_modified > now.wall {
        validators.last_modified = whole_seconds(now.wall);
        validators.last_modified_text = ImfDate::of(validators.last_modified);
    }
    found
}

/// How to answer one request, whatever the answer turns out to be.
struct Reply<'a> {
    now: &'a Now,
    framing: Framing,
}

impl Reply<'_> {
    fn closing(self) -> Self {
        Reply {
            framing: Framing {
                connection: Connection::Close,
                ..self.framing
            },
            ..self
        }
    }

    // ANCHOR: file
    /// A file, after the conditions of RFC 9110 §13.2.2: `If-Match` (or, without it,
    /// `If-Unmodified-Since`) may make it a 412; then `If-None-Match` (or, without it,
    /// `If-Modified-Since`) a 304; then, for GET, `Range` (unless `If-Range` no longer holds) may
    /// make it a part (206) or an impossible part (416).
    fn file(&self, request: &Request, found: FoundFile) -> Response {
        let validators = found.validators;
        let if_match = joined(request, "if-match");
        let if_none_match = joined(request, "if-none-match");
        let conditions = Conditions {
            if_match: if_match.as_deref(),
            if_unmodified_since: request.header("if-unmodified-since"),
            if_none_match: if_none_match.as_deref(),
            if_modified_since: request.header("if-modified-since"),
        };
        match evaluate(&conditions, &validators, self.now.wall) {
            Verdict::PreconditionFailed => return self.precondition_failed(),
            Verdict::NotModified => return self.not_modified(&found),
            Verdict::Proceed => {}
        }
        let part = if request.method != Method::Get {
            // Range applies to GET only (RFC 9110 §14.2); HEAD describes the whole file.
            RangeChoice::Whole
        } else {
            match request.header("range") {
                Some(range)
                    if request
                        .header("if-range")
                        .is_none_or(|value| if_range_holds(value, &validators)) =>
                {
                    choose_range(range, found.len)
                }
                _ => RangeChoice::Whole,
            }
        };
        match part {
            RangeChoice::Whole => self.file_part(StatusCode::OK, found, 0, None),
            RangeChoice::Part { start, len } => {
                self.file_part(StatusCode::PARTIAL_CONTENT, found, start, Some(len))
            }
            RangeChoice::Parts(parts) => self.file_parts(found, &parts),
            RangeChoice::Unsatisfiable => {
                let content_range = format!("bytes */{}", found.len);
                self.page(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &[("Content-Range", &content_range)],
                )
            }
        }
    }
    // ANCHOR_END: file

    /// `len` bytes of `found` from `start` (the whole file when `len` is `None`).
    fn file_part(
        &self,
        status: StatusCode,
        found: FoundFile,
        start: u64,
        len: Option<u64>,
    ) -> Response {
        let len_sent = len.unwrap_or(found.len);
        let mut builder = Response::build_for_body(status, self.now, self.framing, len_sent)
            .header("Last-Modified", found.validators.last_modified_text)
            .header("ETag", found.validators.etag)
            .header("Accept-Ranges", "bytes");
        if len.is_some() {
            builder = builder.header(
                "Content-Range",
                format_args!(
                    "bytes {start}-{}/{}",
                    start + len_sent.saturating_sub(1),
                    found.len
                ),
            );
        }
        let body = content_between(found.content, start, len_sent);
        builder.finish(found.content_type, body)
    }

    // ANCHOR: file_parts
    /// Several parts of `found`: a 206 `multipart/byteranges` body (RFC 9110 §14.6), laid out
    /// as nginx lays it out. Each part is its boundary line, its own `Content-Type` and
    /// `Content-Range`, a blank line and the bytes; the closing boundary ends the body. The
    /// parts' bytes stay in the file (or the cache's memory) until they are sent: only the part
    /// heads are built here, so `Content-Length` is exact before a byte is read.
    fn file_parts(&self, found: FoundFile, parts: &[ByteRange]) -> Response {
        let boundary = boundary_for(&found);
        let mut pieces = Vec::with_capacity(2 * parts.len() + 1);
        for part in parts {
            let part_head = format!(
                "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
                found.content_type,
                part.start,
                part.start + part.len - 1,
                found.len
            );
            pieces.push(Body::Bytes(part_head.into_bytes()));
            pieces.push(content_between(found.content.clone(), part.start, part.len));
        }
        pieces.push(Body::Bytes(format!("\r\n--{boundary}--\r\n").into_bytes()));
        let body = Body::Parts(pieces);
        let content_type = format!("multipart/byteranges; boundary={boundary}");
        Response::build_for_body(
            StatusCode::PARTIAL_CONTENT,
            self.now,
            self.framing,
            body.len(),
        )
        .header("Last-Modified", found.validators.last_modified_text)
        .header("ETag", found.validators.etag)
        .header("Accept-Ranges", "bytes")
        .finish(&content_type, body)
    }
    // ANCHOR_END: file_parts

    /// 304: the head a 200 would have, without content (RFC 9110 §15.4.5).
    fn not_modified(&self, found: &FoundFile) -> Response {
        Response::build(StatusCode::NOT_MODIFIED, self.now, self.framing)
            .header("Last-Modified", found.validators.last_modified_text)
            .header("ETag", found.validators.etag)
            .finish(found.content_type, Body::None)
    }

    /// 412: a precondition failed (RFC 9110 §15.5.13). No content, but a `Content-Length: 0`
    /// that frames it exactly, so a keep-alive connection carries on: the request itself was
    /// well formed, only the version it asked for is gone.
    fn precondition_failed(&self) -> Response {
        Response::build(StatusCode::PRECONDITION_FAILED, self.now, self.framing)
            .finish("text/plain; charset=utf-8", Body::Bytes(Vec::new()))
    }

    fn page(&self, status: StatusCode, headers: &[(&str, &str)]) -> Response {
        let page = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{status}</title></head>\
             <body><h1>{status}</h1></body></html>\n"
        )
        .into_bytes();
        let mut builder =
            Response::build_for_body(status, self.now, self.framing, page.len() as u64);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        builder.finish("text/html; charset=utf-8", Body::Bytes(page))
    }
}

/// `len` bytes of `content` from `start`, which lie within the file: a part of the open file, or
/// a slice of the bytes the cache holds (never a copy).
fn content_between(content: FileContent, start: u64, len: u64) -> Body {
    match content {
        FileContent::Open(file) => Body::File(FileRange {
            file,
            offset: start,
            len,
        }),
        FileContent::InMemory(bytes) => {
            // Within the file, which is in memory: the numbers fit a usize.
            let range = start as usize..(start + len) as usize;
            Body::Shared(SharedBytes { bytes, range })
        }
    }
}

/// A multipart boundary for a response from `found`. It must not occur inside the parts
/// (RFC 2046 §5.1.1); no string is certain not to in an arbitrary file, so it is 64 bits no one
/// outside can predict: the file's `ETag` hashed with this thread's random SipHash keys and a
/// counter (nginx uses a counter alone). No state is shared between threads.
fn boundary_for(found: &FoundFile) -> String {
    thread_local! {
        static KEYS: RandomState = RandomState::new();
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }
    // During thread exit the slots may be gone: the boundary is then less unpredictable, not wrong.
    let count = COUNT
        .try_with(|count| {
            count.set(count.get().wrapping_add(1));
            count.get()
        })
        .unwrap_or(0);
    let etag = found.validators.etag.to_string();
    let hash = KEYS
        .try_with(|keys| keys.hash_one((etag, count)))
        .unwrap_or(count);
    format!("{hash:016x}")
}

/// Every line of header `name`, joined by commas as RFC 9110 §5.3 allows; no copy for one line.
fn joined<'a>(request: &'a Request, name: &'a str) -> Option<Cow<'a, str>> {
    let mut values = request.header_values(name);
    let first = values.next()?;
    match values.next() {
        None => Some(Cow::Borrowed(first)),
        Some(second) => {
            let mut all = format!("{first}, {second}");
            for value in values {
                all.push_str(", ");
                all.push_str(value);
            }
            Some(Cow::Owned(all))
        }
    }
}

/// `/docs?x=1` becomes `/docs/?x=1`. The target is reused as sent (still percent-encoded), so
/// the redirect names exactly the folder the client asked for.
fn with_trailing_slash(target: &str) -> String {
    // `//host/…` in a Location is a network-path reference: a browser would leave for `host`.
    // Browsers read `\` as `/` in http URLs, so a run of either at the start becomes one slash.
    let target = format!("/{}", target.trim_start_matches(['/', '\\']));
    match target.split_once('?') {
        Some((path, query)) => format!("{path}/?{query}"),
        None => format!("{target}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_trailing_slash;

    #[test]
    fn redirects_stay_on_this_host() {
        assert_eq!(with_trailing_slash("/docs"), "/docs/");
        assert_eq!(with_trailing_slash("/docs?page=2"), "/docs/?page=2");
        for target in [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\/evil.example",
        ] {
            assert_eq!(with_trailing_slash(target), "/evil.example/", "{target}");
        }
        assert_eq!(with_trailing_slash("//a?b=//c"), "/a/?b=//c");
    }
}
