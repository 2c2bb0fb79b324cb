//! The state machine driven by scripted sockets: reads that deliver one byte at a time, writes
//! that take one byte, `WouldBlock` and `Interrupted` everywhere, resets, half-closes and deadlines.
//! No real socket and no clock: time is a value passed in, so the timeouts are tested exactly.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use step02_files::{AccessLog, DocRoot, Limits, Site, Stream};

use super::{Connection, LINGER_TIME, Next, Readiness};

const IDLE: Duration = Duration::from_secs(5);

/// One thing the scripted peer does when the connection reads.
#[derive(Debug, Clone)]
enum Incoming {
    Bytes(Vec<u8>),
    WouldBlock,
    Interrupted,
    Eof,
    Reset,
}

/// How the scripted peer takes writes.
#[derive(Debug, Clone, Copy)]
struct WritePolicy {
    /// Most bytes one `write` accepts.
    max_per_write: usize,
    /// Every other `write` fails with `WouldBlock` (and the one after with `Interrupted`, if set).
    block_every_other: bool,
    interrupt_every_other: bool,
    /// `write` fails with `ConnectionReset` once this many bytes were taken.
    reset_after: Option<usize>,
    /// Every `write` fails with `WouldBlock`: a client that stopped reading.
    stalled: bool,
}

impl Default for WritePolicy {
    fn default() -> Self {
        WritePolicy {
            max_per_write: usize::MAX,
            block_every_other: false,
            interrupt_every_other: false,
            reset_after: None,
            stalled: false,
        }
    }
}

#[derive(Debug, Default)]
struct Peer {
    incoming: VecDeque<Incoming>,
    at_eof: bool,
    /// Most bytes one `read` delivers.
    max_per_read: Option<usize>,
    writes: WritePolicy,
    written: Vec<u8>,
    n_reads: usize,
    n_writes: usize,
    write_shut: bool,
    toggle: bool,
}

/// The connection's socket; the test keeps a second handle on the same [`Peer`] to script it.
#[derive(Debug, Clone)]
struct Scripted(Rc<RefCell<Peer>>);

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut peer = self.0.borrow_mut();
        peer.n_reads += 1;
        if peer.at_eof {
            return Ok(0);
        }
        let limit = peer.max_per_read.unwrap_or(usize::MAX).min(buf.len());
        match peer.incoming.pop_front() {
            None | Some(Incoming::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Some(Incoming::Interrupted) => Err(io::ErrorKind::Interrupted.into()),
            Some(Incoming::Reset) => Err(io::ErrorKind::ConnectionReset.into()),
            Some(Incoming::Eof) => {
                peer.at_eof = true;
                Ok(0)
            }
            Some(Incoming::Bytes(mut bytes)) => {
                let n_bytes = limit.min(bytes.len());
                buf[..n_bytes].copy_from_slice(&bytes[..n_bytes]);
                if n_bytes < bytes.len() {
                    peer.incoming
                        .push_front(Incoming::Bytes(bytes.split_off(n_bytes)));
                }
                Ok(n_bytes)
            }
        }
    }
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut peer = self.0.borrow_mut();
        peer.n_writes += 1;
        assert!(!peer.write_shut, "write after shutdown(Write)");
        let policy = peer.writes;
        if policy.stalled {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if policy.block_every_other || policy.interrupt_every_other {
            peer.toggle = !peer.toggle;
            if peer.toggle {
                return Err(if policy.block_every_other {
                    io::ErrorKind::WouldBlock.into()
                } else {
                    io::ErrorKind::Interrupted.into()
                });
            }
        }
        if policy
            .reset_after
            .is_some_and(|limit| peer.written.len() >= limit)
        {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        let n_bytes = policy.max_per_write.min(buf.len());
        peer.written.extend_from_slice(&buf[..n_bytes]);
        Ok(n_bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// No descriptor: file bodies take the portable path (`pread` + `write`), which these tests cover.
impl Stream for Scripted {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.borrow_mut().write_shut = true;
        Ok(())
    }

    fn set_write_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn set_read_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        unreachable!("a non-blocking connection never waits in read")
    }
}

struct Harness {
    peer: Rc<RefCell<Peer>>,
    conn: Connection<Scripted>,
    site: Site,
    start: Instant,
}

fn site_at(root: &Path) -> Site {
    Site {
        root: DocRoot::open(root).unwrap(),
        limits: Limits::default(),
        idle_timeout: IDLE,
        log: AccessLog::new(true),
    }
}

fn www() -> Site {
    site_at(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../www"))
}

impl Harness {
    fn new(site: Site, script: Vec<Incoming>) -> Harness {
        let peer = Rc::new(RefCell::new(Peer {
            incoming: script.into(),
            ..Peer::default()
        }));
        let start = Instant::now();
        let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let conn = Connection::new(Scripted(Rc::clone(&peer)), addr, &site, start);
        Harness {
            peer,
            conn,
            site,
            start,
        }
    }

    fn with(self, configure: impl FnOnce(&mut Peer)) -> Harness {
        configure(&mut self.peer.borrow_mut());
        self
    }

    /// Calls `on_ready(ALL)` the way step 6's loop does, until the connection closes or stops
    /// making progress.
    fn drive(&mut self) -> Next {
        let mut idle_rounds = 0;
        let mut next = Next::Read;
        for _ in 0..1_000_000 {
            let before = (self.conn.transfers(), self.peer.borrow().n_reads);
            next = self.conn.on_ready(Readiness::ALL, &self.site, self.start);
            if next == Next::Close {
                return next;
            }
            let after = (self.conn.transfers(), self.peer.borrow().n_reads);
            idle_rounds = if before.0 == after.0 {
                idle_rounds + 1
            } else {
                0
            };
            if idle_rounds > 4 && before.1 + 1 >= after.1 {
                return next;
            }
        }
        next
    }

    fn push(&self, incoming: Incoming) {
        self.peer.borrow_mut().incoming.push_back(incoming);
    }

    fn written(&self) -> Vec<u8> {
        self.peer.borrow().written.clone()
    }

    fn responses(&self) -> Vec<(u16, Vec<u8>)> {
        split_responses(&self.written())
    }

    fn after(&mut self, elapsed: Duration) -> Next {
        self.conn.on_deadline(&self.site, self.start + elapsed)
    }
}

fn get(path: &str) -> Incoming {
    Incoming::Bytes(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes())
}

/// Splits the bytes written into (status, body) pairs, by `Content-Length`.
fn split_responses(mut bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut responses = Vec::new();
    while !bytes.is_empty() {
        let head_end = bytes
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("a whole head")
            + 4;
        let head = String::from_utf8(bytes[..head_end].to_vec()).unwrap();
        let status: u16 = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .expect("Content-Length")
            .parse()
            .unwrap();
        responses.push((status, bytes[head_end..head_end + length].to_vec()));
        bytes = &bytes[head_end + length..];
    }
    responses
}

fn file(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../www")
            .join(name),
    )
    .unwrap()
}

#[test]
fn serves_a_request_that_arrives_one_byte_at_a_time_through_one_byte_writes() {
    let mut harness = Harness::new(www(), vec![get("/hello%20world.txt")]).with(|peer| {
        peer.max_per_read = Some(1);
        peer.writes.max_per_write = 1;
    });
    assert_eq!(harness.drive(), Next::Read, "keep-alive: waits for more");
    assert_eq!(
        harness.responses(),
        vec![(200, file("hello world.txt"))],
        "one whole response, byte by byte"
    );
}

#[test]
fn would_block_and_interrupted_everywhere_lose_nothing() {
    let request = b"GET /index.html HTTP/1.1\r\nHost: test\r\n\r\n";
    let mut script = Vec::new();
    for piece in request.chunks(3) {
        script.extend([
            Incoming::WouldBlock,
            Incoming::Interrupted,
            Incoming::Bytes(piece.to_vec()),
        ]);
    }
    let mut harness = Harness::new(www(), script).with(|peer| {
        peer.writes.block_every_other = true;
        peer.writes.max_per_write = 7;
    });
    harness.drive();
    harness.peer.borrow_mut().writes = WritePolicy {
        interrupt_every_other: true,
        max_per_write: 5,
        ..WritePolicy::default()
    };
    harness.push(get("/style.css"));
    harness.drive();
    assert_eq!(
        harness.responses(),
        vec![(200, file("index.html")), (200, file("style.css"))]
    );
}

#[test]
fn a_small_response_is_one_write_and_a_short_read_is_the_last_read() {
    let mut harness = Harness::new(www(), vec![get("/index.html")]);
    let next = harness
        .conn
        .on_ready(Readiness::ALL, &harness.site, harness.start);
    assert_eq!(next, Next::Read);
    let peer = harness.peer.borrow();
    assert_eq!(peer.n_writes, 1, "head and small body leave in one write");
    assert_eq!(
        peer.n_reads, 1,
        "a short read proves the socket empty: no read that would only say WouldBlock"
    );
}

#[test]
fn answers_pipelined_requests_in_order() {
    let batch = [
        "GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /no-such HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /app.js HTTP/1.1\r\nHost: t\r\n\r\n",
    ]
    .concat();
    let mut harness = Harness::new(www(), vec![Incoming::Bytes(batch.into_bytes())]);
    assert_eq!(harness.drive(), Next::Read);
    let statuses: Vec<u16> = harness
        .responses()
        .iter()
        .map(|(status, _)| *status)
        .collect();
    assert_eq!(statuses, [200, 404, 200]);
    assert_eq!(harness.responses()[2].1, file("app.js"));
}

#[test]
fn reads_nothing_more_while_a_response_is_stuck() {
    let one = "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n";
    let flood = one.repeat(10_000);
    let mut harness = Harness::new(www(), vec![Incoming::Bytes(flood.clone().into_bytes())])
        .with(|peer| peer.writes.stalled = true);
    assert_eq!(harness.drive(), Next::Write);
    let unread: usize = harness
        .peer
        .borrow()
        .incoming
        .iter()
        .map(|incoming| match incoming {
            Incoming::Bytes(bytes) => bytes.len(),
            _ => 0,
        })
        .sum();
    assert!(
        unread >= flood.len() - 4096,
        "read {} bytes of pipelined requests while it could not answer the first",
        flood.len() - unread
    );
}

#[test]
fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let mut harness = Harness::new(www(), vec![get("/style.css"), Incoming::Eof]);
    assert_eq!(harness.drive(), Next::Close);
    assert_eq!(harness.responses(), vec![(200, file("style.css"))]);
}

#[test]
fn end_of_stream_mid_request_closes_without_an_answer() {
    let partial = Incoming::Bytes(b"GET /index.html HTTP/1.1\r\nHo".to_vec());
    let mut harness = Harness::new(www(), vec![partial, Incoming::Eof]);
    assert_eq!(harness.drive(), Next::Close);
    assert!(harness.written().is_empty());
}

#[test]
fn a_reset_while_reading_ends_the_connection() {
    let mut harness = Harness::new(www(), vec![Incoming::Reset]);
    assert_eq!(harness.drive(), Next::Close);
}

#[test]
fn idle_connection_is_closed_silently_at_the_deadline() {
    let mut harness = Harness::new(www(), vec![]);
    assert_eq!(harness.drive(), Next::Read);
    assert_eq!(
        harness.after(IDLE - Duration::from_millis(1)),
        Next::Read,
        "too early"
    );
    assert!(!harness.peer.borrow().write_shut);
    assert_eq!(
        harness.after(IDLE),
        Next::Read,
        "lingering: FIN sent, draining"
    );
    assert!(harness.peer.borrow().write_shut);
    assert!(harness.written().is_empty(), "no 408 between requests");
    harness.push(Incoming::Eof);
    assert_eq!(harness.drive(), Next::Close);
}

#[test]
fn request_cut_short_by_the_deadline_gets_408_then_closes() {
    let partial = Incoming::Bytes(b"GET /index.html HTTP/1.1\r\n".to_vec());
    let mut harness = Harness::new(www(), vec![partial]);
    assert_eq!(harness.drive(), Next::Read);
    assert_eq!(harness.after(IDLE), Next::Read, "408 sent, lingering");
    let responses = harness.responses();
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].0, 408);
    assert!(harness.peer.borrow().write_shut);
}

#[test]
fn the_deadline_covers_the_whole_head_not_each_read() {
    let mut harness = Harness::new(www(), vec![Incoming::Bytes(b"GET / HTTP/1.1\r\n".to_vec())]);
    harness.drive();
    // A trickle of bytes later does not move the deadline: slowloris gets the same 5 s as anyone.
    harness.push(Incoming::Bytes(b"Host: t\r\n".to_vec()));
    harness.conn.on_ready(
        Readiness::ALL,
        &harness.site,
        harness.start + Duration::from_secs(4),
    );
    assert_eq!(harness.conn.deadline(), harness.start + IDLE);
}

#[test]
fn a_client_that_stops_reading_is_cut_off_at_the_deadline() {
    let mut harness =
        Harness::new(www(), vec![get("/index.html")]).with(|peer| peer.writes.stalled = true);
    assert_eq!(harness.drive(), Next::Write);
    assert_eq!(harness.after(IDLE), Next::Close);
}

#[test]
fn a_reset_mid_response_ends_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 1 << 20]).unwrap();
    let mut harness = Harness::new(site_at(dir.path()), vec![get("/big.bin")]).with(|peer| {
        peer.writes.max_per_write = 10_000;
        peer.writes.reset_after = Some(300_000);
    });
    assert_eq!(harness.drive(), Next::Close);
    assert!(harness.written().len() >= 300_000);
}

#[test]
fn streams_a_large_file_in_chunks_through_short_writes() {
    let dir = tempfile::tempdir().unwrap();
    let contents: Vec<u8> = (0..1_000_003u32).map(|n| (n * 31 % 251) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &contents).unwrap();
    let request = "GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut harness = Harness::new(
        site_at(dir.path()),
        vec![Incoming::Bytes(request.as_bytes().to_vec())],
    )
    .with(|peer| {
        peer.writes.max_per_write = 4093;
        peer.writes.block_every_other = true;
    });
    assert_eq!(
        harness.drive(),
        Next::Close,
        "the client said close and left nothing unread: no linger"
    );
    let responses = harness.responses();
    assert_eq!(responses.len(), 1);
    assert!(responses[0].1 == contents, "the body differs from the file");
}

#[test]
fn lingering_close_drains_what_the_client_still_sends() {
    // A body the server will not read (405): the client may still be sending it.
    let request = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n";
    let mut harness = Harness::new(
        www(),
        vec![
            Incoming::Bytes(request.as_bytes().to_vec()),
            Incoming::WouldBlock,
        ],
    );
    assert_eq!(
        harness.drive(),
        Next::Read,
        "FIN sent, waiting for the client's"
    );
    assert!(harness.peer.borrow().write_shut);
    harness.push(Incoming::Bytes(vec![b'x'; 10_000]));
    harness.push(Incoming::Eof);
    assert_eq!(harness.drive(), Next::Close);
    assert!(
        harness.peer.borrow().incoming.is_empty(),
        "drained to the end"
    );
}

#[test]
fn lingering_close_gives_up_after_the_linger_time() {
    let request = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n";
    let mut harness = Harness::new(www(), vec![Incoming::Bytes(request.as_bytes().to_vec())]);
    assert_eq!(harness.drive(), Next::Read);
    assert_eq!(harness.after(LINGER_TIME), Next::Close);
}

#[test]
fn an_oversized_head_gets_431_and_the_rest_is_never_read_as_requests() {
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        "a".repeat(20_000)
    );
    let mut harness = Harness::new(www(), vec![Incoming::Bytes(huge.into_bytes())]);
    harness.drive();
    let statuses: Vec<u16> = harness
        .responses()
        .iter()
        .map(|(status, _)| *status)
        .collect();
    assert_eq!(statuses, [431]);
    assert!(
        harness.peer.borrow().write_shut,
        "closing after a refused request"
    );
}

#[test]
fn a_short_read_with_the_peer_closed_still_reads_the_end_of_stream() {
    let mut harness = Harness::new(www(), vec![get("/style.css"), Incoming::Eof]);
    // What an edge-triggered loop sees when request and FIN arrived before it woke: one event,
    // readable and read-closed. A short read must not end the reading, or the FIN is never seen.
    let readiness = Readiness {
        readable: true,
        writable: true,
        read_closed: true,
    };
    let next = harness
        .conn
        .on_ready(readiness, &harness.site, harness.start);
    assert_eq!(next, Next::Close);
    assert_eq!(harness.responses(), vec![(200, file("style.css"))]);
}

#[test]
fn shutdown_closes_an_idle_connection_and_finishes_a_busy_one() {
    let mut idle = Harness::new(www(), vec![]);
    idle.drive();
    let next = idle
        .conn
        .begin_shutdown(Duration::from_secs(1), &idle.site, idle.start);
    assert_eq!(next, Next::Read, "FIN sent, lingering");
    assert!(idle.peer.borrow().write_shut);
    assert_eq!(idle.after(Duration::from_secs(1)), Next::Close);

    let mut busy = Harness::new(www(), vec![get("/index.html"), get("/style.css")])
        .with(|peer| peer.writes.stalled = true);
    busy.conn.on_ready(
        Readiness {
            readable: true,
            ..Readiness::default()
        },
        &busy.site,
        busy.start,
    );
    busy.conn
        .begin_shutdown(Duration::from_secs(1), &busy.site, busy.start);
    busy.peer.borrow_mut().writes.stalled = false;
    busy.drive();
    assert_eq!(
        busy.responses(),
        vec![(200, file("index.html"))],
        "the response in flight is finished, the next request is not answered"
    );
    assert!(busy.peer.borrow().write_shut);
}

#[test]
fn pipelined_bytes_after_connection_close_are_drained_not_reset() {
    // The client said close but sent more: those bytes are unread, so the close lingers.
    let request = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n";
    let mut harness = Harness::new(
        www(),
        vec![
            Incoming::Bytes(request.as_bytes().to_vec()),
            Incoming::WouldBlock,
        ],
    );
    assert_eq!(harness.drive(), Next::Read, "FIN sent, draining");
    assert!(harness.peer.borrow().write_shut);
}
