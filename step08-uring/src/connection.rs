//! Defines [`Connection`]: one client of a ring, moved forward by completions instead of readiness.
//!
//! Step 7's connection is told "the socket is readable" and then reads; this one is told "these
//! bytes arrived" or "this many bytes went out". So it never makes a system call to move data:
//! it says which operation it wants next ([`Connection::next_op`]), the loop queues it on the
//! ring, and the completion comes back to one of the `on_` methods. Everything else follows the
//! rules of steps 2–7, with the core's decoder in and its responses out: requests answered one
//! at a time, in order; the idle timeout; 408 for a request cut short by it; a lingering close.
//!
//! The one new duty is ownership. While an operation is in flight the kernel may read or write
//! memory the connection owns (the response being sent, the pipe a file goes through), so the
//! connection counts its operations in flight and the loop frees it only when that count is
//! back to zero, whatever happened meanwhile (an error, a timeout, a shutdown).

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use step02_files::http::response::{FileRange, Segment, file_shrank, recycle_buffer};
pub use step02_files::server::stream::{LINGER_BYTES, LINGER_TIME};
use step02_files::{
    Persistence, Request, RequestDecoder, Response, Site, StatusCode, error_response, respond,
    status_page, wall_clock,
};

// ANCHOR: limits
/// Bytes a client may send while its response is going out before the connection stops
/// receiving: a client that pipelines without reading cannot make the server buffer without end.
pub const RECEIVE_AHEAD: usize = 64 * 1024;
/// Bytes a file moves through the pipe per splice where the pipe cannot be grown: a pipe's
/// default capacity.
pub const SPLICE_CHUNK: u32 = 64 * 1024;
/// The capacity a connection's pipe is grown to (`F_SETPIPE_SZ`; 1 MiB is what an unprivileged
/// process may ask for by default, `fs.pipe-max-size`). A splice from a file cannot be done
/// without blocking, so the ring hands each one to a kernel worker thread: the fewer splices a
/// large file takes, the fewer hand-offs. The pipe holds references to the page cache's pages,
/// not copies, so its size costs no memory of its own.
pub const PIPE_CAPACITY: u32 = 1024 * 1024;
// ANCHOR_END: limits

// ANCHOR: op
/// An operation a connection wants queued on the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Receive whatever arrives next.
    Recv,
    /// Send `len` bytes from `ptr` (part of the response buffer the connection owns), with
    /// `MSG_MORE` when a file follows.
    Send {
        /// The first byte not yet sent.
        ptr: *const u8,
        /// How many bytes.
        len: u32,
        /// A file body follows: let the head wait for it in the socket.
        more: bool,
    },
    /// Move `len` bytes of the file at `offset` into the pipe, linked to moving them on to the
    /// socket: two operations, one submission, and the bytes never enter this process.
    SpliceFile {
        /// The file.
        file: RawFd,
        /// Where in the file.
        offset: u64,
        /// How many bytes (at most [`SPLICE_CHUNK`]).
        len: u32,
        /// The pipe's write end.
        pipe_in: RawFd,
        /// The pipe's read end.
        pipe_out: RawFd,
    },
    /// Move `len` bytes left in the pipe on to the socket.
    SplicePipe {
        /// The pipe's read end.
        pipe_out: RawFd,
        /// How many bytes.
        len: u32,
    },
    /// Cancel the operations of this connection still in flight: it is closing.
    Cancel,
}

/// Why a receive is no longer armed.
#[derive(Debug)]
pub enum RecvEnd {
    /// The client sent FIN: nothing more will arrive.
    Eof,
    /// A single-shot receive completed, or a multishot one stopped (out of buffers, cancelled):
    /// armed again if still wanted.
    Stopped,
    /// The socket failed (a reset): the connection ends.
    Failed(io::Error),
}

/// Which of a connection's operations a completion belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A receive (multishot or not).
    Recv,
    /// A send of the buffer.
    Send,
    /// The file-to-pipe half of a splice.
    SpliceIn,
    /// The pipe-to-socket half of a splice (or a lone one).
    SpliceOut,
    /// A cancellation.
    Cancel,
}
// ANCHOR_END: op

// ANCHOR: state
/// What a connection is doing.
#[derive(Debug)]
enum State {
    /// Waiting for a request, or reading one; answering those already buffered.
    Reading,
    /// A response is going out (see [`Outgoing`]).
    Sending,
    /// FIN sent; dropping what the client still sends until it closes too.
    Lingering {
        /// Bytes dropped so far.
        n_drained: usize,
    },
    /// Done: cancel what is in flight; the loop frees the connection once nothing is.
    Closed,
}

/// A response on its way out: the buffer (head and small body), then a large file's rest, then
/// a multipart body's further segments (each part's headers, then its bytes of the file).
///
/// The kernel reads `buf` while a send is in flight and the file while a splice is; the
/// connection keeps this value until every such operation has completed, even once closed.
#[derive(Debug)]
struct Outgoing {
    buf: Vec<u8>,
    sent: usize,
    file: Option<FileRange>,
    /// What follows `file`, in order: empty but for a large multipart/byteranges body.
    then: std::vec::IntoIter<Segment>,
    /// File bytes spliced into the pipe and not yet out of it.
    in_pipe: u32,
    /// How many bytes the splice in flight asked the file for.
    splice_asked: u32,
    status: StatusCode,
    request: Option<Request>,
    body_len: u64,
    keep_alive: bool,
}

/// The operations in flight, each of which may still touch the connection's memory.
#[derive(Debug, Default, Clone, Copy)]
struct InFlight {
    /// A receive is armed (a multishot one stays armed over many completions).
    recv: bool,
    /// Send-side operations not yet completed: a send, or the one or two halves of a splice.
    send: u8,
    /// Cancellations not yet completed.
    cancel: u8,
    /// A cancellation has been asked for since the last operation was queued.
    cancelling: bool,
}
// ANCHOR_END: state

// ANCHOR: connection
/// One client connection of a ring.
#[derive(Debug)]
pub struct Connection {
    socket: TcpStream,
    peer: SocketAddr,
    state: State,
    out: Option<Outgoing>,
    decoder: RequestDecoder,
    in_flight: InFlight,
    /// Bytes received since the response in flight was queued (see [`RECEIVE_AHEAD`]).
    received_ahead: usize,
    /// The client sent FIN.
    at_eof: bool,
    /// A send-side operation failed; the connection closes once they are all back.
    send_failed: Option<io::Error>,
    /// A pipe for large files, made the first time one is sent: (read end, write end).
    pipe: Option<(OwnedFd, OwnedFd)>,
    /// What the pipe holds: [`PIPE_CAPACITY`], or less where the system refused to grow it.
    pipe_capacity: u32,
    deadline: Instant,
    shutdown_deadline: Option<Instant>,
}
// ANCHOR_END: connection

impl Connection {
    /// A connection just accepted at `now`; it waits up to `site.idle_timeout` for a request.
    pub fn new(socket: TcpStream, peer: SocketAddr, site: &Site, now: Instant) -> Self {
        Connection {
            socket,
            peer,
            state: State::Reading,
            out: None,
            decoder: RequestDecoder::new(site.limits),
            in_flight: InFlight::default(),
            received_ahead: 0,
            at_eof: false,
            send_failed: None,
            pipe: None,
            pipe_capacity: SPLICE_CHUNK,
            deadline: now + site.idle_timeout,
            shutdown_deadline: None,
        }
    }

    /// The socket, once the connection is finished, for the loop to close.
    pub fn into_socket(self) -> TcpStream {
        self.socket
    }

    /// The socket's descriptor, for the operations the loop queues.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// When [`on_deadline`](Connection::on_deadline) should be called, if nothing happens before.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the loop may free the connection: it is closed and the kernel holds no operation
    /// that could still read or write its memory.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Closed)
            && !self.in_flight.recv
            && self.in_flight.send == 0
            && self.in_flight.cancel == 0
    }

    // ANCHOR: next_op
    /// The next operation to queue, if any; the loop calls it until it returns `None`. Each one
    /// returned is counted as in flight until its completion comes back.
    pub fn next_op(&mut self) -> Option<Op> {
        if matches!(self.state, State::Closed) {
            return self.cancel_in_flight();
        }
        if !self.in_flight.recv && self.wants_bytes() {
            self.in_flight.recv = true;
            return Some(Op::Recv);
        }
        if self.in_flight.send == 0 && self.send_failed.is_none() {
            return self.next_send();
        }
        None
    }

    /// Whether a receive should be armed: while reading, and while sending up to
    /// [`RECEIVE_AHEAD`]; while lingering, to see the client's FIN.
    fn wants_bytes(&self) -> bool {
        !self.at_eof
            && match self.state {
                State::Reading | State::Lingering { .. } => true,
                State::Sending => self.received_ahead < RECEIVE_AHEAD,
                State::Closed => false,
            }
    }

    /// What goes out next: the rest of the buffer, else the rest of the pipe, else the next
    /// chunk of the file.
    fn next_send(&mut self) -> Option<Op> {
        let out = self.out.as_mut()?;
        out.begin_next_segment();
        let op = if out.sent < out.buf.len() {
            let pending = &out.buf[out.sent..];
            Op::Send {
                ptr: pending.as_ptr(),
                len: u32::try_from(pending.len()).unwrap_or(u32::MAX),
                more: out.file.is_some() || out.then.len() > 0,
            }
        } else if out.in_pipe > 0 {
            let (pipe_out, _) = self.pipe.as_ref()?;
            Op::SplicePipe {
                pipe_out: pipe_out.as_raw_fd(),
                len: out.in_pipe,
            }
        } else {
            let range = out.file.as_ref()?;
            let (file, offset, remaining) = (range.file.as_raw_fd(), range.offset, range.len);
            let (pipe_out, pipe_in) = match self.pipe() {
                Ok(pipe) => pipe,
                Err(error) => {
                    self.send_failed = Some(error);
                    self.state = State::Closed;
                    return self.cancel_in_flight();
                }
            };
            let len = splice_len(offset, remaining, self.pipe_capacity);
            Op::SpliceFile {
                file,
                offset,
                len,
                pipe_in,
                pipe_out,
            }
        };
        self.in_flight.send = match op {
            Op::SpliceFile { len, .. } => {
                if let Some(out) = self.out.as_mut() {
                    out.splice_asked = len;
                }
                2
            }
            _ => 1,
        };
        Some(op)
    }

    /// Asks the kernel to cancel whatever is still in flight, once.
    fn cancel_in_flight(&mut self) -> Option<Op> {
        let busy = self.in_flight.recv || self.in_flight.send > 0;
        if !busy || self.in_flight.cancelling {
            return None;
        }
        self.in_flight.cancelling = true;
        self.in_flight.cancel += 1;
        if self.in_flight.send > 0 {
            // A send waiting for room in a client's full window, or a splice blocked in a kernel
            // worker, ends at once on a socket shut down both ways; the cancellation does the rest.
            let _ = self.socket.shutdown(Shutdown::Both);
        }
        Some(Op::Cancel)
    }
    // ANCHOR_END: next_op

    /// The connection's pipe, made on first use: (read end, write end).
    fn pipe(&mut self) -> io::Result<(RawFd, RawFd)> {
        if self.pipe.is_none() {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors pipe2 writes.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: pipe2 succeeded: both descriptors are open and owned by no one else.
            self.pipe =
                Some(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) });
            // SAFETY: fcntl on a descriptor this connection owns; F_SETPIPE_SZ takes an int and
            // returns the capacity set, or -1 (over `fs.pipe-max-size`, or the user's pipes
            // already hold `fs.pipe-user-pages-soft`): then the pipe keeps its default.
            let grown = unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_CAPACITY as i32) };
            self.pipe_capacity = u32::try_from(grown)
                .ok()
                .filter(|&capacity| capacity >= SPLICE_CHUNK)
                .unwrap_or(SPLICE_CHUNK);
        }
        let (read_end, write_end) = self.pipe.as_ref().ok_or(io::ErrorKind::Other)?;
        Ok((read_end.as_raw_fd(), write_end.as_raw_fd()))
    }

    // ANCHOR: on_received
    /// `bytes` arrived from the client.
    pub fn on_received(&mut self, bytes: &[u8], site: &Site, now: Instant) {
        match &mut self.state {
            State::Reading | State::Sending => {
                self.decoder.feed(bytes);
                if matches!(self.state, State::Sending) {
                    self.received_ahead += bytes.len();
                }
            }
            State::Lingering { n_drained } => {
                *n_drained += bytes.len();
                if *n_drained >= LINGER_BYTES {
                    self.state = State::Closed;
                }
            }
            State::Closed => {}
        }
        self.advance(site, now);
    }

    /// The receive is no longer armed, for the reason given.
    pub fn on_recv_ended(&mut self, end: RecvEnd, site: &Site, now: Instant) {
        self.in_flight.recv = false;
        match end {
            RecvEnd::Eof => {
                self.at_eof = true;
                if matches!(self.state, State::Lingering { .. }) {
                    self.state = State::Closed;
                }
            }
            RecvEnd::Stopped => {}
            RecvEnd::Failed(error) => {
                // A reset: the client is gone. While lingering that is all we waited for.
                if !matches!(self.state, State::Lingering { .. } | State::Closed) {
                    site.log.connection_error(self.peer, &error);
                }
                self.state = State::Closed;
            }
        }
        self.advance(site, now);
    }
    // ANCHOR_END: on_received

    // ANCHOR: on_sent
    /// A send-side operation completed with `result` (bytes moved, or the error).
    pub fn on_sent(&mut self, kind: OpKind, result: io::Result<usize>, site: &Site, now: Instant) {
        self.in_flight.send = self.in_flight.send.saturating_sub(1);
        match result {
            Ok(n_bytes) => self.count_sent(kind, n_bytes),
            // The second half of a splice whose first half fell short: the first said why.
            Err(error) if error.raw_os_error() == Some(libc::ECANCELED) => {
                if self.send_failed.is_none() && !matches!(self.state, State::Closed) {
                    self.send_failed =
                        Some(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
                }
            }
            Err(error) => self.send_failed = Some(error),
        }
        if self.in_flight.send > 0 {
            return;
        }
        if let Some(error) = self.send_failed.take() {
            if !matches!(self.state, State::Closed) {
                site.log.connection_error(self.peer, &error);
                self.state = State::Closed;
            }
        } else if !matches!(self.state, State::Closed) {
            // A client that is reading, however slowly, keeps the connection.
            self.set_deadline(now + site.idle_timeout);
        }
        self.advance(site, now);
    }

    /// Counts what one send-side operation moved.
    fn count_sent(&mut self, kind: OpKind, n_bytes: usize) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        match kind {
            OpKind::Send if n_bytes == 0 => {
                self.send_failed = Some(io::ErrorKind::WriteZero.into());
            }
            OpKind::Send => out.sent += n_bytes,
            OpKind::SpliceIn => {
                let Some(range) = out.file.as_mut() else {
                    return;
                };
                // A file that ends before its promised length: the head cannot be kept.
                if n_bytes != out.splice_asked as usize {
                    self.send_failed = Some(file_shrank());
                }
                range.offset += n_bytes as u64;
                range.len -= (n_bytes as u64).min(range.len);
                out.in_pipe += n_bytes as u32;
                if range.len == 0 {
                    out.file = None;
                }
            }
            OpKind::SpliceOut if n_bytes == 0 => {
                self.send_failed = Some(io::ErrorKind::WriteZero.into());
            }
            OpKind::SpliceOut => out.in_pipe -= (n_bytes as u32).min(out.in_pipe),
            OpKind::Recv | OpKind::Cancel => {}
        }
    }
    // ANCHOR_END: on_sent

    /// A cancellation completed.
    pub fn on_cancelled(&mut self) {
        self.in_flight.cancel = self.in_flight.cancel.saturating_sub(1);
    }

    // ANCHOR: on_deadline
    /// Called when the deadline may have passed. Before the deadline it does nothing.
    ///
    /// As in step 7: a client silent in the middle of a request gets `408 Request Timeout`; one
    /// silent between requests is closed; one that stopped reading a response is cut off; a
    /// lingering close ends.
    pub fn on_deadline(&mut self, site: &Site, now: Instant) {
        if now < self.deadline {
            return;
        }
        match self.state {
            State::Closed => {}
            State::Lingering { .. } => self.state = State::Closed,
            State::Sending => {
                let error = io::Error::new(io::ErrorKind::TimedOut, "client stopped reading");
                site.log.connection_error(self.peer, &error);
                self.state = State::Closed;
            }
            State::Reading if self.decoder.has_partial_request() && !self.at_eof => {
                let timeout = status_page(StatusCode::REQUEST_TIMEOUT, &wall_clock());
                self.queue(timeout, None, site, now);
            }
            State::Reading => self.start_closing(now),
        }
        self.advance(site, now);
    }

    /// The server is stopping: finish the response in flight (if any) within `grace`, answer no
    /// further request, and close.
    pub fn begin_shutdown(&mut self, grace: Duration, site: &Site, now: Instant) {
        let shutdown_deadline = now + grace;
        self.shutdown_deadline = Some(shutdown_deadline);
        self.deadline = self.deadline.min(shutdown_deadline);
        self.advance(site, now);
    }
    // ANCHOR_END: on_deadline

    // ANCHOR: advance
    /// Moves the connection forward as far as the bytes it holds allow.
    fn advance(&mut self, site: &Site, now: Instant) {
        loop {
            match self.state {
                State::Reading => {
                    if !self.answer_next(site, now) {
                        return;
                    }
                }
                State::Sending => {
                    if self.in_flight.send > 0 || !self.response_is_out() {
                        return;
                    }
                    self.finish_response(site, now);
                }
                State::Lingering { .. } | State::Closed => return,
            }
        }
    }

    /// Whether every byte of the response in flight has left.
    fn response_is_out(&self) -> bool {
        self.out
            .as_ref()
            .is_none_or(|out| out.is_drained() && out.then.len() == 0)
    }

    /// Answers the next buffered request, or starts closing if none will come; returns whether
    /// the state changed.
    fn answer_next(&mut self, site: &Site, now: Instant) -> bool {
        match self.decoder.next_request() {
            Ok(Some(request)) => {
                let response = respond(&site.root, &request, Persistence::KeepAlive, &wall_clock());
                self.queue(response, Some(request), site, now);
                true
            }
            Err(error) => {
                self.queue(error_response(error, &wall_clock()), None, site, now);
                true
            }
            Ok(None) => {
                if self.decoder.is_finished() || self.at_eof || self.shutdown_deadline.is_some() {
                    self.start_closing(now);
                    return true;
                }
                false
            }
        }
    }
    // ANCHOR_END: advance

    // ANCHOR: queue
    /// Makes `response` the output in flight. A small file is read now and joins the head, so
    /// head and body leave in one send.
    fn queue(&mut self, response: Response, request: Option<Request>, site: &Site, now: Instant) {
        let (status, body_len, keep_alive) = (
            response.status(),
            response.body_len(),
            response.keep_alive(),
        );
        let wire = match response.into_wire() {
            Ok(wire) => wire,
            Err(error) => {
                site.log.connection_error(self.peer, &error);
                self.state = State::Closed;
                return;
            }
        };
        self.out = Some(Outgoing {
            buf: wire.first,
            sent: 0,
            file: wire.rest.filter(|range| range.len > 0),
            then: wire.then.into_iter(),
            in_pipe: 0,
            splice_asked: 0,
            status,
            request,
            body_len,
            keep_alive,
        });
        self.state = State::Sending;
        self.received_ahead = 0;
        self.set_deadline(now + site.idle_timeout);
    }

    /// The response is out: log it, then wait for the next request or close.
    fn finish_response(&mut self, site: &Site, now: Instant) {
        self.state = State::Reading;
        let Some(mut done) = self.out.take() else {
            return;
        };
        site.log
            .record(self.peer, done.request.as_ref(), done.status, done.body_len);
        if done.keep_alive && self.shutdown_deadline.is_none() {
            self.set_deadline(now + site.idle_timeout);
        } else if self.decoder.can_close_at_once(done.request.as_ref()) {
            self.state = State::Closed;
        } else {
            self.start_closing(now);
        }
        // The request's strings and the buffer go back to the core on this thread.
        if let Some(request) = done.request.take() {
            request.recycle();
        }
        recycle_buffer(std::mem::take(&mut done.buf));
    }
    // ANCHOR_END: queue

    // ANCHOR: start_closing
    /// Sends FIN and drops what the client still sends, for at most [`LINGER_TIME`]. A client
    /// that has already closed its side gets no linger.
    fn start_closing(&mut self, now: Instant) {
        if self.at_eof {
            self.state = State::Closed;
            return;
        }
        match self.socket.shutdown(Shutdown::Write) {
            Ok(()) => {
                self.state = State::Lingering { n_drained: 0 };
                self.set_deadline(now + LINGER_TIME);
            }
            Err(_) => self.state = State::Closed,
        }
    }
    // ANCHOR_END: start_closing

    /// Moves the deadline, never past the end of a graceful shutdown.
    fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = match self.shutdown_deadline {
            Some(limit) => deadline.min(limit),
            None => deadline,
        };
    }
}

impl Outgoing {
    /// Whether the buffer, the file's range and the pipe are all sent.
    fn is_drained(&self) -> bool {
        self.sent == self.buf.len() && self.file.is_none() && self.in_pipe == 0
    }

    /// Once the segment in hand is out, takes the next one of a multipart body: its bytes
    /// become the buffer (the kernel is done with the old one: no send is in flight), its file
    /// part the range to splice.
    fn begin_next_segment(&mut self) {
        while self.is_drained() {
            match self.then.next() {
                Some(Segment::Bytes(bytes)) => (self.buf, self.sent) = (bytes, 0),
                Some(Segment::File(range)) => self.file = Some(range).filter(|range| range.len > 0),
                None => return,
            }
        }
    }
}

/// How much of a file to splice from `offset`, with `remaining` bytes to go: at most what a
/// pipe of `capacity` bytes holds. A pipe holds whole pages, and a range that does not start on
/// a page boundary touches one page more than its length says, so the chunk ends on a page
/// boundary.
fn splice_len(offset: u64, remaining: u64, capacity: u32) -> u32 {
    const PAGE: u64 = 4096;
    let room = u64::from(capacity) - offset % PAGE;
    // room <= capacity, which fits a u32.
    remaining.min(room) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk never holds more pages than the pipe: one that starts inside a page ends on a
    /// page boundary; the last chunk is what remains.
    #[test]
    fn a_splice_fits_the_pipe_page_for_page() {
        assert_eq!(splice_len(0, 5_000_000, PIPE_CAPACITY), PIPE_CAPACITY);
        assert_eq!(
            splice_len(100, 5_000_000, PIPE_CAPACITY),
            PIPE_CAPACITY - 100
        );
        assert_eq!((100 + splice_len(100, 5_000_000, SPLICE_CHUNK)) % 4096, 0);
        assert_eq!(splice_len(4096 * 3, 10, PIPE_CAPACITY), 10);
    }
}
