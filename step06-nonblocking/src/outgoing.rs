//! Defines [`Outgoing`]: a response on its way out through a non-blocking socket, and how much of
//! it has been sent.
//!
//! The blocking loop of step 2 writes a response with `write_all` and a copy loop; here a `write`
//! may take part of the bytes, or none (`WouldBlock`), and the rest must wait for the next time the
//! socket is writable. So the unsent bytes and the file's position live in this value between calls.

use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use step02_files::http::response::{FileRange, file_shrank};
use step02_files::server::blocking::COPY_CHUNK;
use step02_files::{Request, Response, StatusCode};

/// A response being sent: a buffer of bytes not yet written, then, for a large file, the rest of
/// the file, read one [`COPY_CHUNK`] at a time into the same buffer.
///
/// Memory per connection stays bounded whatever the file's size: one head, or one chunk.
#[derive(Debug)]
pub struct Outgoing {
    /// The head (with a small body appended), later the current chunk of a large file.
    buf: Vec<u8>,
    /// `buf[sent..filled]` is still to be written.
    sent: usize,
    filled: usize,
    /// A large file's part not yet read into `buf`: `file.len` bytes from `file.offset` on.
    file: Option<FileRange>,
    /// What the access log says once the response is out.
    pub(crate) status: StatusCode,
    pub(crate) request: Option<Request>,
    pub(crate) body_len: u64,
    /// Whether the connection may carry another request after this response.
    pub(crate) keep_alive: bool,
}

/// Where a call to [`Outgoing::write_to`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Every byte of the response has been written.
    Done,
    /// The socket took less than offered, or nothing: its send buffer is full.
    Blocked,
}

impl Outgoing {
    // ANCHOR: outgoing_new
    /// Prepares `response` for sending. A small file is read now and appended to the head, so head
    /// and body leave in one `write` (one system call, and usually one TCP segment).
    ///
    /// # Errors
    ///
    /// Fails when a small file cannot be read whole (it shrank since it was opened).
    pub fn new(response: Response, request: Option<Request>) -> io::Result<Outgoing> {
        let (status, body_len, keep_alive) = (
            response.status(),
            response.body_len(),
            response.keep_alive(),
        );
        let wire = response.into_wire()?;
        let filled = wire.first.len();
        Ok(Outgoing {
            buf: wire.first,
            sent: 0,
            filled,
            file: wire.rest,
            status,
            request,
            body_len,
            keep_alive,
        })
    }
    // ANCHOR_END: outgoing_new

    // ANCHOR: write_to
    /// Writes as much as `socket` takes; returns how many bytes went out and where it stopped.
    ///
    /// A write that takes only part of the buffer means the socket's send buffer is full: on Linux
    /// (epoll) that is as good as `WouldBlock`, and the readiness event for "writable again" will
    /// come, so the loop stops without paying for a `write` that would fail.
    ///
    /// # Errors
    ///
    /// Fails when the peer is gone (`EPIPE`, `ECONNRESET`), or the file shrank while being sent: the
    /// head promised a length the server can no longer keep, so the connection must end.
    pub fn write_to<W: Write + ?Sized>(&mut self, socket: &mut W) -> io::Result<(u64, Flow)> {
        let mut n_written = 0u64;
        loop {
            if self.sent == self.filled {
                if self.file.as_ref().is_none_or(|range| range.len == 0) {
                    return Ok((n_written, Flow::Done));
                }
                self.refill()?;
            }
            let pending = &self.buf[self.sent..self.filled];
            match socket.write(pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n_bytes) => {
                    self.sent += n_bytes;
                    n_written += n_bytes as u64;
                    if n_bytes < pending.len() {
                        return Ok((n_written, Flow::Blocked));
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((n_written, Flow::Blocked));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
    // ANCHOR_END: write_to

    /// Reads the next chunk of the file into the buffer, which has been written out.
    fn refill(&mut self) -> io::Result<()> {
        let Some(range) = self.file.as_mut() else {
            return Err(file_shrank());
        };
        if self.buf.len() < COPY_CHUNK {
            self.buf.resize(COPY_CHUNK, 0);
        }
        let wanted = clamp(range.len, COPY_CHUNK);
        let n_read = loop {
            match range.file.read_at(&mut self.buf[..wanted], range.offset) {
                Ok(0) => return Err(file_shrank()),
                Ok(n_read) => break n_read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        };
        self.sent = 0;
        self.filled = n_read;
        range.offset += n_read as u64;
        range.len -= n_read as u64;
        Ok(())
    }
}

fn clamp(len: u64, max: usize) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX).min(max)
}
