//! Decides the answer to a request: the file, a redirect, or an error page. No I/O but opening
//! the file under the document root.

use crate::http::docroot::{DocRoot, FoundFile, Resolved};
use crate::http::error::HttpError;
use crate::http::request::{Method, Request, Version};
use crate::http::response::{Body, ConnectionHeader, HeadBuilder, Persistence, Response};
use crate::http::status::StatusCode;

// ANCHOR: respond
/// The response to `request`, serving files from `root`.
///
/// The response keeps the connection only when the server's `persistence` allows it, the client
/// asked for it, and the request left no unread body behind.
pub fn respond(root: &DocRoot, request: &Request, persistence: Persistence) -> Response {
    let keep_alive = persistence == Persistence::KeepAlive
        && request.keep_alive
        && request.method.is_supported();
    let reply = Reply {
        keep_alive,
        http10: request.version == Version::Http10,
        head_only: request.method == Method::Head,
    };
    if !request.method.is_supported() {
        return reply.page(StatusCode::METHOD_NOT_ALLOWED, &[("Allow", "GET, HEAD")]);
    }
    match root.resolve(&request.path) {
        Resolved::File(found) => reply.file(found),
        Resolved::MissingSlash => {
            let location = with_trailing_slash(&request.target);
            reply.page(StatusCode::MOVED_PERMANENTLY, &[("Location", &location)])
        }
        Resolved::NotFound => reply.page(StatusCode::NOT_FOUND, &[]),
        Resolved::Forbidden => reply.page(StatusCode::FORBIDDEN, &[]),
        Resolved::BadPath => reply.page(StatusCode::BAD_REQUEST, &[]),
        // Closing gives a descriptor back, which is what the server is short of.
        Resolved::Unavailable => Reply {
            keep_alive: false,
            ..reply
        }
        .page(StatusCode::SERVICE_UNAVAILABLE, &[("Retry-After", "1")]),
    }
}
// ANCHOR_END: respond

/// The answer to a request the parser refused. It always closes the connection: after a framing
/// error the server cannot know where the next request would start.
pub fn error_response(error: HttpError) -> Response {
    status_page(error.status())
}

/// A small HTML page for `status` that closes the connection: the answer to a refused request,
/// a request cut short by the idle timeout (408), or a server-side failure (500).
pub fn status_page(status: StatusCode) -> Response {
    let reply = Reply {
        keep_alive: false,
        http10: false,
        head_only: false,
    };
    reply.page(status, &[])
}

/// How to answer one request, whatever the answer turns out to be.
struct Reply {
    keep_alive: bool,
    http10: bool,
    head_only: bool,
}

impl Reply {
    fn connection(&self) -> ConnectionHeader {
        ConnectionHeader::for_response(self.keep_alive, self.http10)
    }

    fn file(&self, found: FoundFile) -> Response {
        let head = HeadBuilder::new(StatusCode::OK).finish(
            found.content_type,
            found.len,
            self.connection(),
        );
        let (body, body_len) = if self.head_only {
            (Body::Empty, 0)
        } else {
            (Body::File(found.file), found.len)
        };
        Response {
            status: StatusCode::OK,
            head,
            body,
            body_len,
            keep_alive: self.keep_alive,
        }
    }

    fn page(&self, status: StatusCode, headers: &[(&str, &str)]) -> Response {
        let page = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{status}</title></head>\
             <body><h1>{status}</h1></body></html>\n"
        )
        .into_bytes();
        let mut builder = HeadBuilder::new(status);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let page_len = page.len() as u64;
        let head = builder.finish("text/html; charset=utf-8", page_len, self.connection());
        let (body, body_len) = if self.head_only {
            (Body::Empty, 0)
        } else {
            (Body::Bytes(page), page_len)
        };
        Response {
            status,
            head,
            body,
            body_len,
            keep_alive: self.keep_alive,
        }
    }
}

/// `/docs?x=1` becomes `/docs/?x=1`. The target is reused as sent (still percent-encoded), so
/// the redirect names exactly the folder the client asked for.
fn with_trailing_slash(target: &str) -> String {
    match target.split_once('?') {
        Some((path, query)) => format!("{path}/?{query}"),
        None => format!("{target}/"),
    }
}
