//! Defines [`Response`]: a status, a serialized head and a body to send, and the head's rules.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::SystemTime;

use crate::http::status::StatusCode;

/// The value of the `Server` header.
pub const SERVER_NAME: &str = concat!("progressive-servers/", env!("CARGO_PKG_VERSION"));

/// Whether a server keeps connections open between requests at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Close after every response, as steps 1 and 2 do: one request per connection.
    CloseAfterEach,
    /// Keep the connection for the next request when the client wants that too (steps 3–7).
    KeepAlive,
}

/// What follows the head.
#[derive(Debug)]
pub enum Body {
    /// Nothing: a HEAD answer, or a redirect.
    Empty,
    /// A small page built in memory (error pages).
    Bytes(Vec<u8>),
    /// A file to stream in bounded chunks; exactly [`Response::body_len`] bytes of it are sent.
    File(File),
}

/// A response ready to send: the head as bytes, then `body_len` bytes of `body`.
#[derive(Debug)]
pub struct Response {
    /// The status, kept apart from the head bytes for logs and tests.
    pub status: StatusCode,
    /// The status line and headers, blank line included.
    pub head: Vec<u8>,
    /// What follows the head.
    pub body: Body,
    /// How many body bytes follow the head (0 for HEAD, even though `Content-Length` is not 0).
    pub body_len: u64,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Bodies up to this size are read into the same buffer as the head and sent in one `write`.
pub const SMALL_BODY: u64 = 16 * 1024;

/// A response laid out for the wire: the bytes to send first, then what is left of a large file.
#[derive(Debug)]
pub struct Wire {
    /// The head, with the body appended when it is small ([`SMALL_BODY`]) or built in memory.
    pub first: Vec<u8>,
    /// The part of a large file to stream after `first`.
    pub rest: Option<FileRange>,
}

/// `len` bytes of `file` from byte `offset` on.
///
/// The file may be shared (an open-file cache hands the same descriptor to many connections), so
/// whoever sends it reads at explicit offsets (`pread`, `sendfile` with an offset) and never moves
/// or relies on the descriptor's own file position.
#[derive(Debug, Clone)]
pub struct FileRange {
    /// The open file.
    pub file: Arc<File>,
    /// Where the bytes to send start.
    pub offset: u64,
    /// How many bytes to send.
    pub len: u64,
}

impl Response {
    // ANCHOR: into_wire
    /// Lays the response out for sending. A small body joins the head, so both leave in one
    /// `write` (one system call, usually one TCP segment); a small file is read with one `read`
    /// into exactly the room made for it. A large file is left to be streamed in bounded chunks.
    ///
    /// # Errors
    ///
    /// Fails when a small file cannot be read whole: it shrank since it was opened.
    pub fn into_wire(self) -> io::Result<Wire> {
        let Response {
            mut head,
            body,
            body_len,
            ..
        } = self;
        let rest = match body {
            Body::Empty => None,
            Body::Bytes(bytes) => {
                head.extend_from_slice(
                    &bytes[..bytes
                        .len()
                        .min(usize::try_from(body_len).unwrap_or(usize::MAX))],
                );
                None
            }
            Body::File(mut file) if body_len <= SMALL_BODY => {
                let head_len = head.len();
                // body_len <= SMALL_BODY, so it fits a usize.
                head.resize(head_len + body_len as usize, 0);
                file.read_exact(&mut head[head_len..])
                    .map_err(|_| file_shrank())?;
                None
            }
            Body::File(file) => Some(FileRange {
                file: Arc::new(file),
                offset: 0,
                len: body_len,
            }),
        };
        Ok(Wire { first: head, rest })
    }
    // ANCHOR_END: into_wire
}

/// The error for a file that ended before the length its response head promised.
pub fn file_shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shrank while it was being sent",
    )
}

/// Builds a response head (RFC 9112 §4, RFC 9110 §6.6).
///
/// Every head has `Date`, `Server`, `Content-Type`, `Content-Length` and, when the server will
/// close, `Connection: close`, so the client never has to guess where the body ends.
#[derive(Debug)]
pub struct HeadBuilder {
    head: Vec<u8>,
}

impl HeadBuilder {
    /// Starts a head with its status line and the headers every response carries.
    pub fn new(status: StatusCode) -> Self {
        let mut head = Vec::with_capacity(256);
        // Writing into a Vec cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: {}\r\n",
            status.as_u16(),
            status.reason(),
            httpdate::fmt_http_date(SystemTime::now()),
            SERVER_NAME,
        );
        HeadBuilder { head }
    }

    /// Adds one header line. Names and values come from the server, never from the client.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let _ = write!(self.head, "{name}: {value}\r\n");
        self
    }

    /// Adds `Content-Type` and `Content-Length`, the connection's fate, and the blank line.
    ///
    /// `http10_keep_alive` adds `Connection: keep-alive`, which an HTTP/1.0 client needs to hear
    /// back before it reuses the connection.
    pub fn finish(
        mut self,
        content_type: &str,
        content_length: u64,
        connection: ConnectionHeader,
    ) -> Vec<u8> {
        let _ = write!(
            self.head,
            "Content-Type: {content_type}\r\nContent-Length: {content_length}\r\n"
        );
        match connection {
            ConnectionHeader::Close => self.head.extend_from_slice(b"Connection: close\r\n"),
            ConnectionHeader::KeepAlive => {
                self.head.extend_from_slice(b"Connection: keep-alive\r\n")
            }
            ConnectionHeader::Omit => {}
        }
        self.head.extend_from_slice(b"\r\n");
        self.head
    }
}

/// What the head says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// `Connection: close`: the server closes after this response.
    Close,
    /// `Connection: keep-alive`: an HTTP/1.0 client may send another request.
    KeepAlive,
    /// Nothing: HTTP/1.1 keeps the connection by default.
    Omit,
}

impl ConnectionHeader {
    /// The header for a response that keeps or ends the connection, given the request's version.
    pub fn for_response(keep_alive: bool, http10: bool) -> Self {
        match (keep_alive, http10) {
            (false, _) => ConnectionHeader::Close,
            (true, true) => ConnectionHeader::KeepAlive,
            (true, false) => ConnectionHeader::Omit,
        }
    }
}
