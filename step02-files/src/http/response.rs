//! Defines [`Response`]: a status, a serialized head and a body, built so that they cannot
//! disagree, and [`Wire`]: the response laid out for sending.
//!
//! The head is written by [`ResponseBuilder::finish`] from the same [`Body`] that is sent, so
//! `Content-Length` is the body's own length; whether the body leaves at all (HEAD) is a property
//! of how the response is sent ([`Sending`]), not a second length; and the `Connection` header is
//! written from the same [`Connection`] the shell later asks about.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::http::date::Now;
use crate::http::request::Version;
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

/// What happens to the connection after this response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// It may carry another request.
    KeepAlive,
    /// The server closes it after the response.
    Close,
}

/// Whether the body follows the head on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    /// Head, then body: the answer to GET.
    HeadAndBody,
    /// The head alone, announcing the body GET would get: the answer to HEAD (RFC 9110 §9.3.2).
    HeadOnly,
}

/// How a response is framed on its connection: decided once per request, whatever the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// What happens to the connection afterwards.
    pub connection: Connection,
    /// The request's version: an HTTP/1.0 client must hear `Connection: keep-alive` to reuse it.
    pub version: Version,
    /// Whether the body is sent.
    pub sending: Sending,
}

impl Framing {
    /// The framing of an answer to a refused request: close, send the page.
    pub const CLOSE: Framing = Framing {
        connection: Connection::Close,
        version: Version::Http11,
        sending: Sending::HeadAndBody,
    };
}

/// Bytes held in memory and shared: a small file kept by the open-file cache.
#[derive(Debug, Clone)]
pub struct SharedBytes {
    /// The whole file.
    pub bytes: Arc<[u8]>,
    /// The part to send.
    pub range: Range<usize>,
}

/// What follows the head. Each kind knows its own length.
#[derive(Debug)]
pub enum Body {
    /// No content at all, and no `Content-Length` or `Content-Type`: a 304.
    None,
    /// A small page built in memory (error pages, redirects).
    Bytes(Vec<u8>),
    /// Part of a small file the open-file cache holds in memory.
    Shared(SharedBytes),
    /// Part of an open file.
    File(FileRange),
    /// A `multipart/byteranges` body (RFC 9110 §14.6): pieces in memory (each part's boundary
    /// and headers, the closing boundary) between the parts of one file, sent in order.
    Parts(Vec<Body>),
}

impl Body {
    /// The content's length, the `Content-Length` of the head.
    pub fn len(&self) -> u64 {
        match self {
            Body::None => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Shared(shared) => shared.range.len() as u64,
            Body::File(range) => range.len,
            Body::Parts(pieces) => pieces.iter().map(Body::len).sum(),
        }
    }

    /// Whether the content is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

impl FileRange {
    /// Reads the range's bytes that follow its first `skip`, at most `max` of them, into the front
    /// of `buf` (grown as needed), at an explicit offset; returns how many, 0 when the file ended
    /// early. The copying path of every sender where `sendfile` is not available.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read.
    pub fn read_chunk(&self, skip: u64, max: usize, buf: &mut Vec<u8>) -> io::Result<usize> {
        let wanted = usize::try_from(self.len.saturating_sub(skip))
            .unwrap_or(usize::MAX)
            .min(max);
        if buf.len() < wanted {
            buf.resize(wanted, 0);
        }
        loop {
            match self.file.read_at(&mut buf[..wanted], self.offset + skip) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                read => return read,
            }
        }
    }
}

/// A response ready to send: its head, and a body that agrees with it by construction.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    head: Vec<u8>,
    body: Body,
    framing: Framing,
}

/// Bodies up to this size are read into the same buffer as the head and sent in one `write`.
pub const SMALL_BODY: u64 = 16 * 1024;

/// A response laid out for the wire: the bytes to send first, then what is left of a large file,
/// then (for a `multipart/byteranges` body of a large file only) the segments that follow it.
#[derive(Debug)]
pub struct Wire {
    /// The head, with the body appended when it is small ([`SMALL_BODY`]) or held in memory.
    pub first: Vec<u8>,
    /// The part of a large file to stream after `first`.
    pub rest: Option<FileRange>,
    /// What follows `rest`, in order. Empty for every response but a multipart one whose body
    /// is larger than [`SMALL_BODY`] and comes from an open file: then it alternates bytes (the
    /// next part's boundary and headers; last, the closing boundary) and file parts, each sent
    /// as `rest` is. A sender that ignores it sends a body shorter than its `Content-Length`.
    pub then: Vec<Segment>,
}

/// One piece of a [`Wire`] after its `rest`.
#[derive(Debug)]
pub enum Segment {
    /// Bytes in memory, written as they are.
    Bytes(Vec<u8>),
    /// A part of the file, streamed as [`Wire::rest`] is (`sendfile`).
    File(FileRange),
}

impl Wire {
    /// Whether anything follows `first`: a sender then marks it "more follows" (`MSG_MORE`).
    pub fn more_follows_first(&self) -> bool {
        self.rest.as_ref().is_some_and(|range| range.len > 0) || !self.then.is_empty()
    }

    /// Appends `bytes` to whatever is sent last so far.
    fn push_bytes(&mut self, bytes: &[u8]) {
        match (&self.rest, self.then.last_mut()) {
            (None, _) => self.first.extend_from_slice(bytes),
            (Some(_), Some(Segment::Bytes(last))) => last.extend_from_slice(bytes),
            (Some(_), _) => self.then.push(Segment::Bytes(bytes.to_vec())),
        }
    }

    /// Appends a file part to be streamed.
    fn push_file(&mut self, range: FileRange) {
        if self.rest.is_none() {
            self.rest = Some(range);
        } else {
            self.then.push(Segment::File(range));
        }
    }

    /// Appends `body`: in memory where it is, a file part read in (`inline`) or left to stream.
    fn push_body(&mut self, body: Body, inline: bool) -> io::Result<()> {
        match body {
            Body::None => {}
            Body::Bytes(bytes) => {
                if self.rest.is_none() {
                    self.first.reserve_exact(bytes.len());
                }
                self.push_bytes(&bytes);
            }
            Body::Shared(shared) => {
                if self.rest.is_none() {
                    self.first.reserve_exact(shared.range.len());
                }
                self.push_bytes(&shared.bytes[shared.range]);
            }
            // Only a small body is inlined, and only into `first`: it fits a usize.
            Body::File(range) if inline && self.rest.is_none() => {
                let start = self.first.len();
                self.first.reserve_exact(range.len as usize);
                self.first.resize(start + range.len as usize, 0);
                range
                    .file
                    .read_exact_at(&mut self.first[start..], range.offset)
                    .map_err(|_| file_shrank())?;
            }
            Body::File(range) => self.push_file(range),
            Body::Parts(pieces) => {
                for piece in pieces {
                    self.push_body(piece, inline)?;
                }
            }
        }
        Ok(())
    }
}

impl Response {
    /// Starts a response with its status line and the headers every response carries.
    pub fn build(status: StatusCode, now: &Now, framing: Framing) -> ResponseBuilder {
        ResponseBuilder::new(status, now, framing, 0)
    }

    /// As [`Response::build`], for a body of `body_len` bytes that [`Response::into_wire`] will
    /// append to the head (one in memory, or a file part up to [`SMALL_BODY`]): the head is
    /// allocated once, with room for it, instead of grown to fit it.
    pub fn build_for_body(
        status: StatusCode,
        now: &Now,
        framing: Framing,
        body_len: u64,
    ) -> ResponseBuilder {
        let room = match framing.sending {
            Sending::HeadAndBody => usize::try_from(body_len).unwrap_or(0),
            Sending::HeadOnly => 0,
        };
        ResponseBuilder::new(status, now, framing, room)
    }

    /// The status, for logs and tests.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The status line and headers, blank line included.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Whether the connection may carry another request after this response.
    pub fn keep_alive(&self) -> bool {
        self.framing.connection == Connection::KeepAlive
    }

    /// How many body bytes follow the head on the wire: 0 for HEAD and 304, even when the head
    /// announces a length.
    pub fn body_len(&self) -> u64 {
        match self.framing.sending {
            Sending::HeadAndBody => self.body.len(),
            Sending::HeadOnly => 0,
        }
    }

    // ANCHOR: into_wire
    /// Lays the response out for sending. A small body joins the head, so both leave in one
    /// `write` (one system call, usually one TCP segment); a small part of a file is read with one
    /// `pread` into exactly the room made for it. A large part of a file is left to be streamed.
    ///
    /// # Errors
    ///
    /// Fails when a small part of a file cannot be read whole: the file shrank since it was opened.
    pub fn into_wire(self) -> io::Result<Wire> {
        let Response {
            head,
            body,
            framing,
            ..
        } = self;
        let mut wire = Wire {
            first: head,
            rest: None,
            then: Vec::new(),
        };
        if framing.sending == Sending::HeadAndBody {
            // A multipart body is inlined whole or not at all: its small parts are then sent
            // as its large ones are, and memory stays bounded by SMALL_BODY per response.
            let inline = body.len() <= SMALL_BODY;
            wire.push_body(body, inline)?;
        }
        Ok(wire)
    }
    // ANCHOR_END: into_wire
}

/// Hands the buffer of a response that has been sent ([`Wire::first`]) back to this thread's
/// response builder, which writes the next head into it instead of allocating one. Optional:
/// dropping the buffer frees it.
pub fn recycle_buffer(buf: Vec<u8>) {
    // A buffer grown for a large chunk of a file is not worth keeping.
    if buf.capacity() <= HEAD_ROOM + SMALL_BODY as usize {
        // During thread exit the slot may be gone: the buffer is then simply freed.
        let _ = SPARE_BUFFER.try_with(|slot| slot.set(buf));
    }
}

thread_local! {
    /// The buffer of the last response sent on this thread, if its shell recycled it.
    static SPARE_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The room a head is given: a file's head is about 260 bytes (more with `Content-Range` or
/// `Connection`).
const HEAD_ROOM: usize = 384;

/// The error for a file that ended before the length its response head promised.
pub fn file_shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shrank while it was being sent",
    )
}

/// Builds a response head (RFC 9112 §4, RFC 9110 §6.6), then the response.
///
/// Every head has `Date`, `Server`, `Content-Type` and `Content-Length` (but a 304's, which has no
/// content) and, when the server will close, `Connection: close`, so the client never has to
/// guess where the body ends.
#[derive(Debug)]
pub struct ResponseBuilder {
    status: StatusCode,
    head: Vec<u8>,
    framing: Framing,
}

impl ResponseBuilder {
    fn new(status: StatusCode, now: &Now, framing: Framing, body_room: usize) -> Self {
        // A larger body is streamed after the head, not copied into it.
        let body_room = if body_room as u64 <= SMALL_BODY {
            body_room
        } else {
            0
        };
        let mut head = SPARE_BUFFER.try_with(Cell::take).unwrap_or_default();
        head.clear();
        head.reserve_exact(HEAD_ROOM + body_room);
        // Writing into a Vec cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: {}\r\n",
            status.as_u16(),
            status.reason(),
            now.date,
            SERVER_NAME,
        );
        ResponseBuilder {
            status,
            head,
            framing,
        }
    }

    /// Adds one header line. Names and values come from the server, never from the client.
    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.head, "{name}: {value}\r\n");
        self
    }

    /// Ends the head and attaches `body`, of media type `content_type`: `Content-Length` is the
    /// body's own length. [`Body::None`] writes neither header (a 304 has no content).
    pub fn finish(mut self, content_type: &str, body: Body) -> Response {
        if !matches!(body, Body::None) {
            let _ = write!(
                self.head,
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            );
        }
        match (self.framing.connection, self.framing.version) {
            (Connection::Close, _) => self.head.extend_from_slice(b"Connection: close\r\n"),
            (Connection::KeepAlive, Version::Http10) => {
                self.head.extend_from_slice(b"Connection: keep-alive\r\n");
            }
            // HTTP/1.1 keeps the connection by default.
            (Connection::KeepAlive, Version::Http11) => {}
        }
        self.head.extend_from_slice(b"\r\n");
        Response {
            status: self.status,
            head: self.head,
            body,
            framing: self.framing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Instant, SystemTime};

    fn now() -> Now {
        Now::at(SystemTime::UNIX_EPOCH, Instant::now())
    }

    fn head_text(response: &Response) -> String {
        String::from_utf8_lossy(response.head()).into_owned()
    }

    #[test]
    fn the_head_announces_the_body_it_carries() {
        let framing = Framing {
            connection: Connection::KeepAlive,
            version: Version::Http11,
            sending: Sending::HeadAndBody,
        };
        let response = Response::build(StatusCode::OK, &now(), framing)
            .finish("text/plain", Body::Bytes(b"hello".to_vec()));
        assert!(head_text(&response).contains("Content-Length: 5\r\n"));
        assert!(!head_text(&response).contains("Connection"));
        assert_eq!(response.body_len(), 5);
        let wire = response.into_wire().unwrap();
        assert!(wire.first.ends_with(b"\r\n\r\nhello"));
    }

    #[test]
    fn head_only_announces_the_length_and_sends_nothing() {
        let framing = Framing {
            connection: Connection::KeepAlive,
            version: Version::Http10,
            sending: Sending::HeadOnly,
        };
        let response = Response::build(StatusCode::OK, &now(), framing)
            .finish("text/plain", Body::Bytes(b"hello".to_vec()));
        assert!(head_text(&response).contains("Content-Length: 5\r\n"));
        assert!(head_text(&response).contains("Connection: keep-alive\r\n"));
        assert_eq!(response.body_len(), 0);
        let wire = response.into_wire().unwrap();
        assert!(wire.first.ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn no_content_has_no_length_or_type() {
        let response = Response::build(StatusCode::NOT_MODIFIED, &now(), Framing::CLOSE)
            .finish("text/plain", Body::None);
        let head = head_text(&response);
        assert!(!head.contains("Content-Length") && !head.contains("Content-Type"));
        assert!(head.contains("Connection: close\r\n"));
        assert!(!response.keep_alive());
    }

    /// A multipart body of a large file: the first part head joins the response head, the
    /// first part is `rest`, and then come bytes and file parts in turn, the closing boundary
    /// last. A small one is read whole into `first`.
    #[test]
    fn a_multipart_body_is_laid_out_in_order() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 100_000]).unwrap();
        let file = Arc::new(file);
        let part = |offset, len| {
            Body::File(FileRange {
                file: Arc::clone(&file),
                offset,
                len,
            })
        };
        let bytes = |text: &str| Body::Bytes(text.as_bytes().to_vec());
        let large = Body::Parts(vec![
            bytes("<a>"),
            part(0, 30_000),
            bytes("<b>"),
            part(50_000, 5),
            bytes("<end>"),
        ]);
        let response = Response::build(StatusCode::PARTIAL_CONTENT, &now(), Framing::CLOSE)
            .finish("multipart/byteranges; boundary=x", large);
        assert!(head_text(&response).contains("Content-Length: 30016\r\n"));
        let wire = response.into_wire().unwrap();
        assert!(wire.first.ends_with(b"\r\n\r\n<a>") && wire.more_follows_first());
        assert_eq!(wire.rest.as_ref().map(|range| range.len), Some(30_000));
        let then: Vec<String> = wire
            .then
            .iter()
            .map(|segment| match segment {
                Segment::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Segment::File(range) => format!("{}+{}", range.offset, range.len),
            })
            .collect();
        assert_eq!(then, ["<b>", "50000+5", "<end>"]);

        let small = Body::Parts(vec![bytes("<a>"), part(10, 2), bytes("<end>")]);
        let response = Response::build(StatusCode::PARTIAL_CONTENT, &now(), Framing::CLOSE)
            .finish("multipart/byteranges; boundary=x", small);
        let wire = response.into_wire().unwrap();
        assert!(wire.first.ends_with(b"<a>\x07\x07<end>"));
        assert!(wire.rest.is_none() && wire.then.is_empty() && !wire.more_follows_first());
    }

    #[test]
    fn a_small_file_range_is_read_at_its_offset() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        let range = FileRange {
            file: Arc::new(file),
            offset: 3,
            len: 4,
        };
        let response = Response::build(StatusCode::PARTIAL_CONTENT, &now(), Framing::CLOSE)
            .finish("text/plain", Body::File(range));
        let wire = response.into_wire().unwrap();
        assert!(wire.first.ends_with(b"\r\n\r\n3456"));
        assert!(wire.rest.is_none());
    }
}
