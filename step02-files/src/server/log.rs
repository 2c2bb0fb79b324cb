//! Defines [`AccessLog`] (one line on stdout per answered request) and [`note`] (one diagnostic
//! line on stderr), and the writer under both, which never makes the server wait for whoever
//! reads its output.
//!
//! A server's stdout is often a pipe: into `less`, `grep`, a terminal that is scrolled back, a
//! supervisor. A plain `write` blocks once the pipe's 64 KiB are full, and a server that writes a
//! line per request then stops answering until someone reads. So every line goes through a
//! [`LineSink`]: a write that cannot block, a bounded queue for what the stream cannot take now,
//! and a count of the lines dropped once the queue is full. When the stream drains, the queue
//! goes out first, then one line saying how many lines were dropped.
//!
//! It works the same whatever runs the connections, which is why it has no writer thread: step
//! 3's processes each write their own lines (a thread would not survive `fork`), step 5's
//! coroutines must never block their worker thread, and steps 6 and 7 have one thread for
//! everything.

use std::fmt::{self, Write as _};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, send};

use crate::http::request::Request;
use crate::http::status::StatusCode;

/// The longest line written, in bytes: `PIPE_BUF`, the most a pipe takes in one `write` without
/// interleaving it with other writers' bytes. Step 3's processes share one stdout, so a longer
/// line could be torn by another process's line. A longer target is cut short (and says so).
pub const MAX_LINE_BYTES: usize = 4096;

/// At most this many bytes wait in a stream's queue while the stream is not being read; past
/// that, lines are dropped and counted. The pipe itself holds 64 KiB more.
pub const QUEUE_BYTES: usize = 64 * 1024;

/// How long a clean exit waits for a stream that is not being read to take what is queued.
pub const EXIT_FLUSH: Duration = Duration::from_secs(1);

// ANCHOR: access_log
/// Writes the access log: `PEER "METHOD TARGET VERSION" STATUS BYTES`, one line per response.
///
/// A request the parser refused has no request line to show and is logged as `"-"`.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog {
    /// `None` with `--quiet`.
    out: Option<&'static LineSink>,
}

impl AccessLog {
    /// A log that prints on stdout, unless `quiet`.
    pub fn new(quiet: bool) -> Self {
        // Both streams are opened now, before a step-3 server forks, so its children share them.
        LineSink::stderr();
        AccessLog {
            out: (!quiet).then(LineSink::stdout),
        }
    }

    /// Whether lines are written (not `--quiet`): a server that must ask for what only a line
    /// shows (the peer's address, where `accept` did not give it) asks only then.
    pub fn is_on(&self) -> bool {
        self.out.is_some()
    }

    /// Records one response of `status` with `body_bytes` bytes of body. Never waits: when stdout
    /// is not being read, the line is queued or, with the queue full, dropped and counted.
    pub fn record(
        &self,
        peer: SocketAddr,
        request: Option<&Request>,
        status: StatusCode,
        body_bytes: u64,
    ) {
        if let Some(out) = self.out {
            out.write_line(&access_line(peer, request, status, body_bytes));
        }
    }

    /// Reports a connection that ended in an I/O error (a reset, a timeout while writing), on
    /// stderr so it never mixes with the access log.
    pub fn connection_error(&self, peer: SocketAddr, error: &io::Error) {
        if self.out.is_some() {
            note(format_args!("{peer}: connection ended: {error}"));
        }
    }
}
// ANCHOR_END: access_log

/// Writes one diagnostic line on stderr (a failed `accept`, a child that crashed), with the same
/// promise as the access log: it never waits for the reader.
pub fn note(message: fmt::Arguments<'_>) {
    let mut line = message.to_string();
    line.push('\n');
    LineSink::stderr().write_line(&line);
}

/// Gives stdout and stderr up to `within` to take the lines still queued (a stream that is read
/// takes them at once), then says how many were dropped, if it can. Called on a clean exit.
pub fn flush(within: Duration) {
    let deadline = Instant::now() + within;
    for sink in [&STDOUT, &STDERR] {
        if let Some(sink) = sink.get() {
            sink.flush_until(deadline);
        }
    }
}

/// Builds one access-log line, at most [`MAX_LINE_BYTES`] long, newline included.
fn access_line(
    peer: SocketAddr,
    request: Option<&Request>,
    status: StatusCode,
    body_bytes: u64,
) -> String {
    let status = status.as_u16();
    let Some(request) = request else {
        return format!("{peer} \"-\" {status} {body_bytes}\n");
    };
    // A method the server does not know is still shown (its answer is 405), and could be long.
    let method = Escaped {
        text: request.method.as_str(),
        budget: 32,
    };
    let version = request.version.as_str();
    // Everything but the target is short (under 200 bytes: an IPv6 peer with its scope, at most
    // 32 of the method, a u64), so only a target that could grow past the rest of the line once
    // escaped needs a budget.
    let budget = if request.target.len() * 4 + 200 <= MAX_LINE_BYTES {
        usize::MAX
    } else {
        let fixed = format!("{peer} \"{method}  {version}\" {status} {body_bytes}\n").len();
        MAX_LINE_BYTES.saturating_sub(fixed)
    };
    let target = Escaped {
        text: &request.target,
        budget,
    };
    format!("{peer} \"{method} {target} {version}\" {status} {body_bytes}\n")
}

// ANCHOR: escaped
/// A target as the log shows it: printable ASCII only. Every other byte (`"` and `\`, which could
/// end the quoted field early and forge the rest of the line, control characters such as a
/// newline, and every byte of a non-ASCII character such as U+0085, which some viewers take for
/// a line break) is written as `\xHH`, as nginx does. So the line is the same whatever the parser
/// lets through. A target longer than `budget` bytes once escaped is cut and ends in `...`.
struct Escaped<'a> {
    text: &'a str,
    budget: usize,
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CUT: &str = "...";
        let bytes = self.text.as_bytes();
        // The common case: nothing to escape, and it fits.
        if bytes.len() <= self.budget && bytes.iter().all(|&byte| is_shown_as_is(byte)) {
            return f.write_str(self.text);
        }
        let mut written = 0;
        for &byte in bytes {
            let shown = if is_shown_as_is(byte) { 1 } else { 4 };
            if written + shown > self.budget.saturating_sub(CUT.len()) {
                return f.write_str(CUT);
            }
            written += shown;
            if shown == 1 {
                f.write_char(char::from(byte))?;
            } else {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

/// Printable ASCII, except the quote and the backslash.
fn is_shown_as_is(byte: u8) -> bool {
    matches!(byte, b' '..=b'~') && byte != b'"' && byte != b'\\'
}
// ANCHOR_END: escaped

static STDOUT: OnceLock<LineSink> = OnceLock::new();
static STDERR: OnceLock<LineSink> = OnceLock::new();

// ANCHOR: line_sink
/// One output stream written a whole line at a time, never waiting for its reader.
///
/// Production note: a line queued while the stream was not read goes out with the next line or
/// at exit, not the moment the reader catches up; a server with a writer thread would send it
/// at once, but could not fork.
#[derive(Debug)]
pub struct LineSink {
    /// What the log calls the stream in its "lines dropped" line.
    name: &'static str,
    /// How to write to it without blocking; `None` when it is closed or unusable.
    target: Option<(OwnedFd, Writing)>,
    /// Set once a write failed for good (the reader is gone).
    broken: AtomicBool,
    /// Lines dropped and not yet reported, counted in memory shared with every process forked
    /// from this one: a step-3 child that exits with lines it could not write leaves their count
    /// for whichever process writes next.
    dropped: &'static AtomicU64,
    backlog: Mutex<Backlog>,
}

/// How a write to the stream is kept from blocking.
#[derive(Debug, Clone, Copy)]
enum Writing {
    /// `write` on a descriptor of its own with `O_NONBLOCK` (a pipe, a terminal), or on a regular
    /// file or `/dev/null`, which never make a writer wait for a reader.
    Write,
    /// `send` with `MSG_DONTWAIT` (a socket, as a service manager's log collector gives).
    Send,
}

/// What the stream could not take yet.
#[derive(Debug, Default)]
struct Backlog {
    /// Whole lines, except that the first may have been partly written already.
    queued: Vec<u8>,
    /// How many bytes at the front of `queued` are written.
    sent: usize,
    /// The process that queued them: a child of `fork` inherits a copy of its parent's queue,
    /// which is the parent's to write, not the child's.
    owner: u32,
}

impl LineSink {
    /// The process's stdout, opened once and shared by every caller (and inherited across `fork`).
    pub fn stdout() -> &'static LineSink {
        STDOUT.get_or_init(|| LineSink::open(io::stdout().as_fd(), "stdout"))
    }

    /// The process's stderr, likewise.
    pub fn stderr() -> &'static LineSink {
        STDERR.get_or_init(|| LineSink::open(io::stderr().as_fd(), "stderr"))
    }

    // ANCHOR: open
    /// A sink writing to `stream` without ever blocking, whatever `stream` is.
    ///
    /// Setting `O_NONBLOCK` on the descriptor itself would not do: the flag belongs to the open
    /// file description, which the shell and every process in the pipeline share. Left on a
    /// terminal, it makes the shell's own reads fail after the server exits. So a pipe or a
    /// terminal is opened again through `/proc/self/fd`, which gives a description of its own,
    /// and the flag is set there. A socket gets `MSG_DONTWAIT` on each `send` instead, and a
    /// regular file needs nothing: writing to it never waits for a reader.
    pub fn open(stream: BorrowedFd<'_>, name: &'static str) -> LineSink {
        let target = match open_nonblocking(stream) {
            Ok(target) => Some(target),
            Err(error) => {
                // Only at start-up, once: a blocking write cannot stall a server not yet serving.
                let _ = writeln!(
                    io::stderr(),
                    "cannot write to {name} without blocking ({error}); its lines are dropped"
                );
                None
            }
        };
        LineSink {
            name,
            target,
            broken: AtomicBool::new(false),
            dropped: shared_counter(),
            backlog: Mutex::new(Backlog::default()),
        }
    }
    // ANCHOR_END: open

    // ANCHOR: write_line
    /// Writes `line` (one line, newline included) now if the stream takes it, else queues it,
    /// else drops it and counts it. Never waits for the stream.
    pub fn write_line(&self, line: &str) {
        if self.target.is_none() || self.broken.load(Ordering::Relaxed) {
            return;
        }
        let line = line.as_bytes();
        let mut backlog = self.lock();
        // Older lines first: whatever the stream takes of them now makes room for this one.
        self.send_queued(&mut backlog);
        if !self.is_clear(&backlog) {
            self.push(&mut backlog, line);
            return;
        }
        match self.write(line) {
            Ok(n_written) if n_written == line.len() => {}
            // A terminal or a socket may take part of a line; a pipe takes a short line whole
            // or not at all.
            Ok(n_written) => backlog.push(&line[n_written..]),
            Err(Errno::EAGAIN) => self.push(&mut backlog, line),
            Err(_) => self.break_down(&mut backlog),
        }
    }
    // ANCHOR_END: write_line

    /// Writes `line` with one non-blocking system call, or drops it; for a signal handler, which
    /// may not take the backlog's lock or allocate. The line may go out ahead of lines still
    /// queued, and is not counted if dropped.
    pub fn write_from_signal_handler(&self, line: &[u8]) {
        if self.target.is_some() && !self.broken.load(Ordering::Relaxed) {
            let _ = self.write(line);
        }
    }

    /// Writes what is queued, for at most until `deadline`; what is still queued then counts as
    /// dropped (for the next writer to report: a step-3 child flushes just before it exits).
    fn flush_until(&self, deadline: Instant) {
        let Some((fd, _)) = &self.target else { return };
        let mut backlog = self.lock();
        loop {
            self.send_queued(&mut backlog);
            if self.is_clear(&backlog) || self.broken.load(Ordering::Relaxed) {
                return;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let millis = u16::try_from(remaining.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        let unsent = &backlog.queued[backlog.sent..];
        let n_lines = unsent.iter().filter(|&&byte| byte == b'\n').count();
        self.dropped.fetch_add(n_lines as u64, Ordering::Relaxed);
        *backlog = Backlog::default();
    }

    /// Writes queued lines, a few at a time, until the stream stops taking them. Once the queue
    /// is empty, the count of dropped lines goes out as a line of its own.
    fn send_queued(&self, backlog: &mut Backlog) {
        while backlog.sent < backlog.queued.len() {
            match self.write(backlog.next_chunk()) {
                Ok(n_written) => backlog.sent += n_written,
                Err(Errno::EAGAIN) => return,
                Err(_) => return self.break_down(backlog),
            }
        }
        backlog.queued.clear();
        backlog.sent = 0;
        self.report_drops(backlog);
    }

    /// Writes how many lines were dropped, if any, when the stream takes it now. The count is
    /// taken from the shared counter first, so two processes never report the same lines, and
    /// given back if the stream cannot take the line yet.
    fn report_drops(&self, backlog: &mut Backlog) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped == 0 {
            return;
        }
        let line = drop_count_line(dropped, self.name);
        match self.write(line.as_bytes()) {
            Ok(n_written) if n_written == line.len() => {}
            Ok(n_written) => backlog.push(&line.as_bytes()[n_written..]),
            Err(Errno::EAGAIN) => {
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
            Err(_) => self.break_down(backlog),
        }
    }

    /// Whether nothing waits: no line queued, no drop to report.
    fn is_clear(&self, backlog: &Backlog) -> bool {
        backlog.sent == backlog.queued.len() && self.dropped.load(Ordering::Relaxed) == 0
    }

    /// Queues `line` if it fits, else drops it and counts it.
    fn push(&self, backlog: &mut Backlog, line: &[u8]) {
        if backlog.queued.len() - backlog.sent + line.len() > QUEUE_BYTES {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            backlog.push(line);
        }
    }

    /// Gives up on a stream whose reader is gone (`EPIPE`) or that fails otherwise: nothing
    /// written to it could ever be read, so later lines are not even queued.
    fn break_down(&self, backlog: &mut Backlog) {
        self.broken.store(true, Ordering::Relaxed);
        *backlog = Backlog::default();
    }

    /// One system call; `EAGAIN` when the stream cannot take anything now.
    fn write(&self, bytes: &[u8]) -> Result<usize, Errno> {
        let Some((fd, writing)) = &self.target else {
            return Err(Errno::EBADF);
        };
        loop {
            let written = match writing {
                Writing::Write => nix::unistd::write(fd, bytes),
                Writing::Send => send(
                    fd.as_raw_fd(),
                    bytes,
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                ),
            };
            if written != Err(Errno::EINTR) {
                return written;
            }
        }
    }

    /// Locks the backlog, forgetting one inherited from a parent process. The lock is held only
    /// for writes that cannot block, so no caller waits long; a panic while holding it (there is
    /// nothing in it that panics) would leave whole lines behind, so the backlog is used anyway.
    fn lock(&self) -> MutexGuard<'_, Backlog> {
        let mut backlog = self.backlog.lock().unwrap_or_else(PoisonError::into_inner);
        if backlog.sent < backlog.queued.len() && backlog.owner != std::process::id() {
            *backlog = Backlog::default();
        }
        backlog
    }
}
// ANCHOR_END: line_sink

impl Backlog {
    fn push(&mut self, bytes: &[u8]) {
        if self.queued.is_empty() {
            self.owner = std::process::id();
        }
        self.queued.extend_from_slice(bytes);
    }

    /// The next bytes to write: whole lines, at most [`MAX_LINE_BYTES`] in all, so a pipe takes
    /// them in one piece or not at all and never interleaves them with another writer's.
    fn next_chunk(&self) -> &[u8] {
        let unsent = &self.queued[self.sent..];
        let window = &unsent[..unsent.len().min(MAX_LINE_BYTES)];
        match window.iter().rposition(|&byte| byte == b'\n') {
            Some(last_newline) => &window[..=last_newline],
            None => window,
        }
    }
}

/// A counter in memory shared with every process later forked from this one (an anonymous
/// `MAP_SHARED` page), or, should the mapping fail, in this process's memory alone.
fn shared_counter() -> &'static AtomicU64 {
    // SAFETY: a fresh anonymous mapping, with no address asked for and no descriptor; the
    // arguments are plain integers.
    let page = unsafe {
        nix::libc::mmap(
            std::ptr::null_mut(),
            std::mem::size_of::<AtomicU64>(),
            nix::libc::PROT_READ | nix::libc::PROT_WRITE,
            nix::libc::MAP_SHARED | nix::libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == nix::libc::MAP_FAILED {
        return Box::leak(Box::new(AtomicU64::new(0)));
    }
    // SAFETY: the mapping is page-aligned (enough for a u64), zero-filled (a valid AtomicU64 of
    // 0), readable and writable, and never unmapped, so the reference lives as long as the
    // process. A `u64` atomic is lock-free on the targets this builds for, so the same page
    // seen from a forked process is updated atomically from both.
    unsafe { &*page.cast::<AtomicU64>() }
}

/// The line that reports dropped lines, written once the stream takes lines again.
fn drop_count_line(dropped: u64, name: &str) -> String {
    format!("[{dropped} lines dropped: {name} was not being read fast enough]\n")
}

/// A descriptor for `stream` that can be written without blocking, and how.
fn open_nonblocking(stream: BorrowedFd<'_>) -> io::Result<(OwnedFd, Writing)> {
    let file_type = nix::sys::stat::fstat(stream)
        .map(|stat| stat.st_mode & nix::libc::S_IFMT)
        .map_err(io::Error::from)?;
    match file_type {
        nix::libc::S_IFSOCK => Ok((stream.try_clone_to_owned()?, Writing::Send)),
        nix::libc::S_IFIFO | nix::libc::S_IFCHR => {
            let reopened = OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
                .open(format!("/proc/self/fd/{}", stream.as_raw_fd()))?;
            Ok((reopened.into(), Writing::Write))
        }
        _ => Ok((stream.try_clone_to_owned()?, Writing::Write)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    fn escaped(text: &str) -> String {
        Escaped {
            text,
            budget: MAX_LINE_BYTES,
        }
        .to_string()
    }

    #[test]
    fn quotes_and_backslashes_cannot_forge_a_log_field() {
        assert_eq!(escaped(r#"/a" 200 0 "x\y"#), r"/a\x22 200 0 \x22x\x5cy");
        assert_eq!(escaped("/plain/path?q=1"), "/plain/path?q=1");
    }

    #[test]
    fn control_and_non_ascii_characters_are_escaped_byte_by_byte() {
        assert_eq!(escaped("/a\nb\u{7f}"), r"/a\x0ab\x7f");
        // U+0085 (NEXT LINE) and U+2028 (LINE SEPARATOR) end a line in some viewers.
        assert_eq!(escaped("/\u{85}\u{2028}"), r"/\xc2\x85\xe2\x80\xa8");
    }

    #[test]
    fn a_long_target_is_cut_to_fit_its_budget() {
        let long = "\"".repeat(10_000);
        let shown = Escaped {
            text: &long,
            budget: 100,
        }
        .to_string();
        assert!(shown.len() <= 100, "{}", shown.len());
        assert!(shown.ends_with("..."));
        assert!(shown.starts_with(r"\x22\x22"));
    }

    /// A sink over one end of a socket pair, whose other end the test reads (or not).
    fn sink_over_socket() -> (LineSink, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let sink = LineSink::open(ours.as_fd(), "test");
        (sink, theirs)
    }

    #[test]
    fn a_stream_nobody_reads_costs_lines_not_time() {
        let (sink, mut reader) = sink_over_socket();
        let line = format!("{}\n", "x".repeat(99));
        let started = Instant::now();
        for _ in 0..20_000 {
            sink.write_line(&line);
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        let dropped = sink.dropped.load(Ordering::Relaxed);
        assert!(dropped > 10_000, "{dropped}");
        // Once read, the queue goes out, then the count, with the next line.
        reader.set_nonblocking(true).unwrap();
        let mut received = Vec::new();
        let mut buf = vec![0; 1 << 16];
        let mut drain = |received: &mut Vec<u8>| {
            while let Ok(n_read) = reader.read(&mut buf) {
                received.extend_from_slice(&buf[..n_read]);
            }
        };
        drain(&mut received);
        sink.write_line("last\n");
        drain(&mut received);
        sink.flush_until(Instant::now() + Duration::from_secs(1));
        drain(&mut received);
        let text = String::from_utf8(received).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let notice = format!("[{dropped} lines dropped: test was not being read fast enough]");
        assert_eq!(lines.iter().filter(|line| **line == notice).count(), 1);
        assert_eq!(lines.last(), Some(&"last"));
        assert_eq!(lines.len(), 20_000 - dropped as usize + 2);
        assert!(
            lines
                .iter()
                .all(|l| l.len() == 99 || *l == notice || *l == "last")
        );
    }

    #[test]
    fn a_stream_whose_reader_left_is_given_up() {
        let (sink, reader) = sink_over_socket();
        drop(reader);
        sink.write_line("nobody hears this\n");
        assert!(sink.broken.load(Ordering::Relaxed));
        sink.write_line("nor this\n");
        assert!(sink.lock().queued.is_empty());
    }

    #[test]
    fn a_line_has_at_most_pipe_buf_bytes() {
        let peer: SocketAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535"
            .parse()
            .unwrap();
        let target = format!("/{}", "a".repeat(8 * 1024));
        let method = "M".repeat(4000);
        let head = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        let limits = crate::Limits {
            max_head_bytes: 64 * 1024,
            max_target_bytes: 16 * 1024,
            ..crate::Limits::default()
        };
        let Ok(crate::Parsed::Complete(request, _)) =
            crate::parse_request(head.as_bytes(), &limits)
        else {
            panic!("not parsed")
        };
        let line = access_line(peer, Some(&request), StatusCode::NOT_FOUND, u64::MAX);
        assert!(line.len() <= MAX_LINE_BYTES, "{}", line.len());
        assert!(line.contains("aaa... HTTP/1.1\" 404 "), "{line}");
        assert!(
            line.contains(" \"MMMMMMMMMMMMMMMMMMMMMMMMMMMMM... /aaa"),
            "{line}"
        );
    }
}
