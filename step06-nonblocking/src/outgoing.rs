//! Defines [`Outgoing`]: a response on its way out through a non-blocking socket, and how much of
//! it has been sent.
//!
//! The blocking loop of step 2 writes a response with `write_all` and `sendfile` until done; here
//! a `write` or `sendfile` may take part of the bytes, or none (`WouldBlock`), and the rest must
//! wait for the next time the socket is writable. So the unsent bytes and the file's position
//! live in this value between calls.

use std::io;

use step02_files::http::response::{FileRange, Segment, file_shrank, recycle_buffer};
use step02_files::server::blocking::COPY_CHUNK;
use step02_files::server::stream::{Stream, send_file, send_head};
use step02_files::{Request, Response, StatusCode};

// ANCHOR: outgoing
/// A response being sent: a buffer of bytes not yet written (the head, with a small body), then,
/// for a large file, the part of the file not yet sent.
///
/// On a real socket the file goes out through `sendfile`, straight from the page cache: memory per
/// connection is the head, whatever the file's size. A stream without a descriptor (the unit
/// tests' scripted sockets, or a platform without `sendfile`) gets the file one [`COPY_CHUNK`] at
/// a time, read into the same buffer: still bounded.
#[derive(Debug)]
pub struct Outgoing {
    /// The head (with a small body appended); on the copying path, later the current chunk.
    buf: Vec<u8>,
    /// `buf[sent..filled]` is still to be written.
    sent: usize,
    filled: usize,
    /// A large file's part not yet sent (nor copied into `buf`): `len` bytes from `offset` on.
    file: Option<FileRange>,
    /// What follows `file` (a multipart body's later part heads and parts), not yet begun.
    /// Boxed, and only for multipart bodies, so that every other response's state stays small.
    then: Option<Box<std::vec::IntoIter<Segment>>>,
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
// ANCHOR_END: outgoing

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
            file: wire.rest.filter(|range| range.len > 0),
            then: (!wire.then.is_empty()).then(|| Box::new(wire.then.into_iter())),
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
    /// The buffer goes first; a head that a file follows is sent with "more follows" (`MSG_MORE`),
    /// so it shares a segment with the file's first bytes. Then the file, by `sendfile` until the
    /// socket says `WouldBlock`: a short `sendfile` may mean a full socket or a file that shrank,
    /// and only the next call tells which (`WouldBlock`, or 0 bytes).
    ///
    /// A `write` that takes only part of the buffer means the socket's send buffer is full: on Linux
    /// (epoll) that is as good as `WouldBlock`, and the readiness event for "writable again" will
    /// come, so the loop stops without paying for a `write` that would fail.
    ///
    /// # Errors
    ///
    /// Fails when the peer is gone (`EPIPE`, `ECONNRESET`), or the file shrank while being sent: the
    /// head promised a length the server can no longer keep, so the connection must end.
    pub fn write_to<S: Stream + ?Sized>(&mut self, socket: &mut S) -> io::Result<(u64, Flow)> {
        let mut n_written = 0u64;
        loop {
            let result = if self.sent < self.filled {
                self.write_buffered(socket)
            } else if let Some(range) = &self.file {
                match send_file(socket, &range.file, range.offset, range.len) {
                    Some(result) => result.and_then(|n_sent| self.advance_file(n_sent)),
                    // No zero-copy here: copy a chunk into the buffer, to be written next.
                    None => self.refill().map(|()| Progress::Whole(0)),
                }
            } else if let Some(segment) = self.then.as_mut().and_then(|then| then.next()) {
                self.begin(segment);
                continue;
            } else {
                return Ok((n_written, Flow::Done));
            };
            match result {
                Ok(Progress::Partial(n_bytes)) => {
                    n_written += n_bytes as u64;
                    return Ok((n_written, Flow::Blocked));
                }
                Ok(Progress::Whole(n_bytes)) => n_written += n_bytes as u64,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((n_written, Flow::Blocked));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
    // ANCHOR_END: write_to

    // ANCHOR: outgoing_steps
    /// One `write` (or `send` with `MSG_MORE`, when a file follows) of the buffered bytes.
    fn write_buffered<S: Stream + ?Sized>(&mut self, socket: &mut S) -> io::Result<Progress> {
        let pending = &self.buf[self.sent..self.filled];
        let file_follows =
            self.file.is_some() || self.then.as_ref().is_some_and(|then| then.len() > 0);
        let n_bytes = if file_follows && socket.socket_fd().is_some() {
            send_head(socket, pending)?
        } else {
            socket.write(pending)?
        };
        if n_bytes == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.sent += n_bytes;
        Ok(if self.sent < self.filled {
            Progress::Partial(n_bytes)
        } else {
            Progress::Whole(n_bytes)
        })
    }

    /// Starts the next segment of a multipart body: its bytes into the buffer (written out by
    /// now), or its file part to be sent as a single range is.
    fn begin(&mut self, segment: Segment) {
        match segment {
            Segment::Bytes(bytes) => {
                self.buf.clear();
                self.buf.extend_from_slice(&bytes);
                self.sent = 0;
                self.filled = bytes.len();
            }
            Segment::File(range) => self.file = Some(range).filter(|range| range.len > 0),
        }
    }

    /// Counts `n_sent` file bytes as sent; 0 means the file ended before its promised length.
    fn advance_file(&mut self, n_sent: usize) -> io::Result<Progress> {
        let Some(range) = self.file.as_mut() else {
            return Ok(Progress::Whole(0));
        };
        if n_sent == 0 {
            return Err(file_shrank());
        }
        range.offset += n_sent as u64;
        range.len -= (n_sent as u64).min(range.len);
        if range.len == 0 {
            self.file = None;
        }
        // A short sendfile is not proof of a full socket (the file may have shrunk): go on until
        // the socket says WouldBlock, which costs one call per full socket.
        Ok(Progress::Whole(n_sent))
    }

    /// Reads the next chunk of the file into the buffer, which has been written out (the
    /// copying path, where there is no `sendfile`).
    fn refill(&mut self) -> io::Result<()> {
        let Some(range) = self.file.as_mut() else {
            return Err(file_shrank());
        };
        let n_read = match range.read_chunk(0, COPY_CHUNK, &mut self.buf)? {
            0 => return Err(file_shrank()),
            n_read => n_read,
        };
        self.sent = 0;
        self.filled = n_read;
        range.offset += n_read as u64;
        range.len -= n_read as u64;
        if range.len == 0 {
            self.file = None;
        }
        Ok(())
    }
}

/// Once the response is out (or abandoned), its request's strings and its buffer go back to the
/// core on this thread, so the next request on any connection of this loop is parsed and
/// answered without allocating.
impl Drop for Outgoing {
    fn drop(&mut self) {
        if let Some(request) = self.request.take() {
            request.recycle();
        }
        recycle_buffer(std::mem::take(&mut self.buf));
    }
}

/// What one system call of [`Outgoing::write_to`] achieved.
enum Progress {
    /// It sent everything it was offered (or a `sendfile` call made progress): try the next.
    Whole(usize),
    /// The socket took only part of the buffer: it is full.
    Partial(usize),
}
// ANCHOR_END: outgoing_steps

#[cfg(test)]
mod tests {
    //! The zero-copy path on a real non-blocking socket: partial progress, `WouldBlock`, a range
    //! that starts mid-file, and a file that shrinks while it is sent.

    use std::fs::File;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    use step02_files::StatusCode;
    use step02_files::http::response::{FileRange, Segment};

    use super::{Flow, Outgoing};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        // A bug that loses bytes must fail the test, not hang it.
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        (server, client)
    }

    fn outgoing(head: &[u8], file: File, offset: u64, len: u64) -> Outgoing {
        Outgoing {
            buf: head.to_vec(),
            sent: 0,
            filled: head.len(),
            file: Some(FileRange {
                file: Arc::new(file),
                offset,
                len,
            }),
            then: None,
            status: StatusCode::OK,
            request: None,
            body_len: len,
            keep_alive: true,
        }
    }

    fn temp_file(contents: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body.bin");
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    /// Sends `out` through `server`, draining `client` whenever the socket is full; returns what
    /// the client received and how many times the socket was full.
    fn drive(
        mut out: Outgoing,
        server: &mut TcpStream,
        client: &mut TcpStream,
        expected: usize,
    ) -> std::io::Result<(Vec<u8>, usize)> {
        let mut received = Vec::new();
        let mut n_blocked = 0;
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let (_, flow) = out.write_to(server)?;
            if flow == Flow::Done {
                break;
            }
            n_blocked += 1;
            let n_read = client.read(&mut chunk).unwrap();
            received.extend_from_slice(&chunk[..n_read]);
        }
        while received.len() < expected {
            let n_read = client.read(&mut chunk).unwrap();
            assert!(
                n_read > 0,
                "the client saw the end before the whole response"
            );
            received.extend_from_slice(&chunk[..n_read]);
        }
        Ok((received, n_blocked))
    }

    #[test]
    fn sendfile_sends_a_range_from_mid_file_exactly_through_a_full_socket() {
        let contents: Vec<u8> = (0..24_000_000u32).map(|n| (n * 7 % 253) as u8).collect();
        let (_dir, path) = temp_file(&contents);
        let (mut server, mut client) = pair();
        let (offset, len) = (1_000_001u64, 20_000_000u64);
        let out = outgoing(b"HEAD\r\n\r\n", File::open(&path).unwrap(), offset, len);
        let expected = 8 + len as usize;
        let (received, n_blocked) = drive(out, &mut server, &mut client, expected).unwrap();
        assert!(
            n_blocked > 0,
            "20 MB never filled the socket: WouldBlock untested"
        );
        assert_eq!(&received[..8], b"HEAD\r\n\r\n");
        assert!(
            received[8..] == contents[offset as usize..(offset + len) as usize],
            "the body differs from the file's range"
        );
    }

    #[test]
    fn a_file_that_shrank_mid_send_is_an_error_not_a_hang() {
        let contents = vec![5u8; 4_000_000];
        let (_dir, path) = temp_file(&contents);
        let (mut server, mut client) = pair();
        let out = outgoing(b"H\r\n\r\n", File::open(&path).unwrap(), 0, 4_000_000);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1000)
            .unwrap();
        let error = drive(out, &mut server, &mut client, usize::MAX).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    /// A multipart body: part heads and parts of a file in turn, through a full socket.
    #[test]
    fn multipart_segments_follow_the_first_part_in_order() {
        let contents: Vec<u8> = (0..6_000_000u32).map(|n| (n * 13 % 251) as u8).collect();
        let (_dir, path) = temp_file(&contents);
        let file = Arc::new(File::open(&path).unwrap());
        let range = |offset, len| FileRange {
            file: Arc::clone(&file),
            offset,
            len,
        };
        let mut out = outgoing(b"H|", File::open(&path).unwrap(), 10, 2_000_000);
        out.then = Some(Box::new(
            vec![
                Segment::Bytes(b"|P2|".to_vec()),
                Segment::File(range(3_000_000, 2_500_000)),
                Segment::Bytes(b"|END".to_vec()),
            ]
            .into_iter(),
        ));
        let expected = [
            &b"H|"[..],
            &contents[10..2_000_010],
            b"|P2|",
            &contents[3_000_000..5_500_000],
            b"|END",
        ]
        .concat();
        let (mut server, mut client) = pair();
        let (received, n_blocked) = drive(out, &mut server, &mut client, expected.len()).unwrap();
        assert!(n_blocked > 0, "the socket never filled");
        assert!(received == expected, "the multipart body differs");
    }

    /// A stream with no descriptor that takes at most 1,000 bytes a write: the copying path.
    struct Copying(Vec<u8>);

    impl std::io::Read for Copying {
        fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
            Ok(0)
        }
    }

    impl std::io::Write for Copying {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n_bytes = buf.len().min(1000);
            self.0.extend_from_slice(&buf[..n_bytes]);
            Ok(n_bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl step02_files::Stream for Copying {
        fn shutdown_write(&mut self) -> std::io::Result<()> {
            Ok(())
        }

        fn set_read_timeout(&mut self, _: Option<std::time::Duration>) -> std::io::Result<()> {
            Ok(())
        }

        fn set_write_timeout(&mut self, _: Option<std::time::Duration>) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn multipart_segments_take_the_copying_path_too() {
        let contents: Vec<u8> = (0..200_000u32).map(|n| (n * 13 % 251) as u8).collect();
        let (_dir, path) = temp_file(&contents);
        let mut out = outgoing(b"H|", File::open(&path).unwrap(), 5, 70_000);
        out.then = Some(Box::new(
            vec![
                Segment::Bytes(b"|P2|".to_vec()),
                Segment::File(FileRange {
                    file: Arc::new(File::open(&path).unwrap()),
                    offset: 100_000,
                    len: 90_000,
                }),
                Segment::Bytes(b"|END".to_vec()),
            ]
            .into_iter(),
        ));
        let mut sink = Copying(Vec::new());
        let mut n_calls = 0;
        while out.write_to(&mut sink).unwrap().1 != Flow::Done {
            n_calls += 1;
            assert!(n_calls < 10_000, "no end in sight");
        }
        let expected = [
            &b"H|"[..],
            &contents[5..70_005],
            b"|P2|",
            &contents[100_000..190_000],
            b"|END",
        ]
        .concat();
        assert!(sink.0 == expected, "the multipart body differs");
    }

    #[test]
    fn a_head_with_more_to_follow_reaches_the_client() {
        // MSG_MORE holds the head back for the body; the body's last bytes push both out.
        let (_dir, path) = temp_file(b"0123456789");
        let (mut server, mut client) = pair();
        let out = outgoing(b"HEAD ", File::open(&path).unwrap(), 2, 5);
        let (received, _) = drive(out, &mut server, &mut client, 10).unwrap();
        assert_eq!(received, b"HEAD 23456");
    }
}
