//! A raw HTTP/1.1 client for tests: bytes in, a parsed [`RawResponse`] out.
//!
//! It shares no code with the servers' parser on purpose: an oracle that reused the code under test
//! would agree with its bugs.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::PATIENCE;

/// A response as it came off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The status line, verbatim.
    pub status_line: String,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (empty for HEAD).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header called `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the server announced it will close (`Connection: close`).
    pub fn says_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"))
    }
}

/// One client connection that can carry several requests.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr`, with reads bounded by [`PATIENCE`].
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, PATIENCE)
            .unwrap_or_else(|error| panic!("connect {addr}: {error}"));
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// The socket, for tests that need to do something unusual with it.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends bytes, all at once.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|error| panic!("send: {error}"));
    }

    /// Sends one request and reads its response (bodiless when the request is a HEAD).
    pub fn exchange(&mut self, request: &[u8]) -> RawResponse {
        self.send(request);
        self.read_response(request.starts_with(b"HEAD "))
    }

    /// Tries to send bytes; the server may already have closed.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one response; `head_request` says the request was HEAD, so no body follows.
    ///
    /// # Panics
    ///
    /// Panics when no whole response arrives within [`PATIENCE`].
    pub fn read_response(&mut self, head_request: bool) -> RawResponse {
        self.try_read_response(head_request)
            .unwrap_or_else(|error| {
                panic!(
                    "reading a response: {error}; got so far: {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            })
    }

    /// Reads one response, or says why none came.
    pub fn try_read_response(&mut self, head_request: bool) -> io::Result<RawResponse> {
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|four| four == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill_or_eof("closed before a whole head")?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok());
        let status = status.ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
            .collect();
        let mut response = RawResponse {
            status,
            status_line,
            headers,
            body: Vec::new(),
        };
        // A 304 (like 1xx and 204) never has a body, whatever its headers (RFC 9112 §6.3).
        if head_request || matches!(status, 100..=199 | 204 | 304) {
            return Ok(response);
        }
        match response.header("content-length") {
            Some(length) => {
                let length: usize = length.parse().map_err(|_| invalid("bad Content-Length"))?;
                while self.buf.len() < length {
                    self.fill_or_eof("body cut short")?;
                }
                response.body = self.buf.drain(..length).collect();
            }
            // No length: the body runs to the end of the connection.
            None => {
                while self.fill()? > 0 {}
                response.body = std::mem::take(&mut self.buf);
            }
        }
        Ok(response)
    }

    /// [`Conn::fill`], with an `UnexpectedEof` saying `message` if the server has closed.
    fn fill_or_eof(&mut self, message: &str) -> io::Result<()> {
        match self.fill()? {
            0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, message)),
            _ => Ok(()),
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n_read = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n_read]);
        Ok(n_read)
    }

    /// Whether the server closes the connection within `within`, with nothing more sent.
    /// Bytes that arrive instead make this panic: they would be an unexpected response.
    pub fn is_closed_by_peer(&mut self, within: Duration) -> bool {
        assert!(
            self.buf.is_empty(),
            "unread bytes: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut byte = [0u8; 1];
        let result = self.stream.read(&mut byte);
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
        match result {
            Ok(0) => true,
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => true,
            Ok(_) => panic!(
                "expected the server to close, got byte {:?}",
                byte[0] as char
            ),
            Err(_) => false,
        }
    }

    /// Waits for the server to close, returning how long that took; panics after [`PATIENCE`].
    pub fn time_until_closed(&mut self) -> Duration {
        let started = Instant::now();
        assert!(
            self.is_closed_by_peer(PATIENCE),
            "the server kept the connection open"
        );
        started.elapsed()
    }

    /// Half-closes: no more bytes from this side.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// An `InvalidData` error: the bytes are not an HTTP/1.1 response.
fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// A `GET path` request that keeps the connection.
pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

/// Opens a connection, sends `request`, reads one response.
pub fn send_raw(addr: SocketAddr, request: &[u8]) -> RawResponse {
    Conn::open(addr).exchange(request)
}

/// `GET path` over HTTP/1.1 with `Connection: close`.
pub fn get(addr: SocketAddr, path: &str) -> RawResponse {
    send_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}
