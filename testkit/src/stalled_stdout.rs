//! A server whose stdout is a pipe nobody reads, as when a user pipes it into `less` and stops
//! scrolling: the access log must never stop it from answering.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::Conn;
use crate::{PATIENCE, Target};

/// How many keep-alive clients [`keeps_answering`] runs at once.
pub const CLIENTS: usize = 8;
/// How many requests each client sends: far more access-log lines in all than a pipe (64 KiB)
/// and the server's own queue hold.
pub const REQUESTS_PER_CLIENT: usize = 500;

/// A server started with its stdout a pipe whose read end is held open but, after the
/// `Listening on` line, never read. Dropping it kills the server's process group.
pub struct StalledServer {
    child: Child,
    addr: SocketAddr,
    stdout: ChildStdout,
}

impl StalledServer {
    /// Starts `target` on the bundled site, on `127.0.0.1:0`, with the access log on.
    pub fn start(target: &Target) -> StalledServer {
        let mut child = Command::new(target.bin)
            .args(["--addr", "127.0.0.1:0", "--idle-timeout", "5s"])
            .args(["--root", crate::www_root().to_str().expect("UTF-8 path")])
            .args(target.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // stderr is not what this is about: let it go.
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", target.bin));
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let line = read_first_line(&mut stdout);
        let addr = line
            .strip_prefix("Listening on http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("{}: first line {line:?}", target.bin));
        StalledServer {
            child,
            addr,
            stdout,
        }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads what the pipe holds now (without waiting for more), as a reader who comes back.
    pub fn read_available(&mut self) -> String {
        set_nonblocking(&self.stdout);
        let mut text = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n_read) = self.stdout.read(&mut buf) {
            if n_read == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n_read]);
        }
        String::from_utf8_lossy(&text).into_owned()
    }
}

impl StalledServer {
    /// Sends SIGTERM, then reads the pipe as a reader who came back would, until the server has
    /// exited and the pipe is empty. Returns the exit code and everything read.
    pub fn stop_and_read_the_rest(&mut self) -> (Option<i32>, String) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + PATIENCE;
        let mut text = String::new();
        loop {
            let exited = self.child.try_wait().expect("try_wait on our child");
            text.push_str(&self.read_available());
            if let Some(status) = exited {
                text.push_str(&self.read_available());
                return (status.code(), text);
            }
            assert!(
                Instant::now() < deadline,
                "still running 10 s after SIGTERM"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for StalledServer {
    fn drop(&mut self) {
        // SAFETY: killpg has no memory-safety preconditions; the group is the server's own.
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads up to the first newline one byte at a time, so nothing after it leaves the pipe.
fn read_first_line(stdout: &mut ChildStdout) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).expect("read stdout") == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

fn set_nonblocking(stdout: &ChildStdout) {
    use std::os::fd::AsRawFd;
    let fd = stdout.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// With stdout a pipe nobody reads, [`CLIENTS`] clients (keep-alive where the server keeps
/// connections alive) get every one of their [`REQUESTS_PER_CLIENT`] requests answered, each
/// within [`PATIENCE`]. Then a reader comes back and reads the pipe while a few more requests
/// are made: every request shows up in the log, or in a count of dropped lines, exactly once.
pub fn keeps_answering(target: &Target) {
    let mut server = StalledServer::start(target);
    let addr = server.addr();
    let started = Instant::now();
    let keep_alive = target.keep_alive;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| thread::spawn(move || run_client(addr, keep_alive)))
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    let mut n_requests = CLIENTS * REQUESTS_PER_CLIENT;
    let took = started.elapsed();
    assert!(took < PATIENCE * 3, "{n_requests} requests took {took:?}");
    let mut log = server.read_available();
    assert!(log.lines().count() > 100, "the pipe held only {log:?}");
    // What each server process could not write yet goes out with its next line, and the count
    // of dropped lines once its queue is empty: a few more requests let every process catch up.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (n_logged, n_dropped) = tally(&log);
        if n_logged + n_dropped >= n_requests {
            assert_eq!(
                n_logged + n_dropped,
                n_requests,
                "{n_logged} lines + {n_dropped} dropped"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n_requests} requests, but {n_logged} lines and {n_dropped} dropped; last lines: {:?}",
            log.lines().rev().take(3).collect::<Vec<_>>()
        );
        let mut conn = Conn::open(addr);
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        assert_eq!(conn.read_response(false).status, 200);
        n_requests += 1;
        thread::sleep(Duration::from_millis(20));
        log.push_str(&server.read_available());
    }
}

/// With stdout a pipe nobody reads, more requests than the pipe holds but fewer than the pipe
/// and the server's queue together: at SIGTERM, a reader who comes back gets every line, none
/// dropped, and the server exits 0.
pub fn queued_lines_go_out_at_a_clean_exit(target: &Target) {
    const N_REQUESTS: usize = 2000;
    let mut server = StalledServer::start(target);
    let mut conn = Conn::open(server.addr());
    for _ in 0..N_REQUESTS {
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_eq!(conn.read_response(false).status, 200);
    }
    drop(conn);
    let (code, log) = server.stop_and_read_the_rest();
    assert_eq!(code, Some(0));
    assert_eq!(tally(&log), (N_REQUESTS, 0));
}

/// Counts the access-log lines in `log`, and the lines its "N lines dropped" lines report.
fn tally(log: &str) -> (usize, usize) {
    let mut n_logged = 0;
    let mut n_dropped = 0;
    for line in log.lines() {
        if line.starts_with("127.0.0.1:") {
            n_logged += 1;
        } else if let Some(count) = line.strip_prefix('[').and_then(|rest| {
            rest.strip_suffix(" lines dropped: stdout was not being read fast enough]")
        }) {
            n_dropped += count.parse::<usize>().expect("a count");
        } else {
            panic!("unexpected log line {line:?}");
        }
    }
    (n_logged, n_dropped)
}

/// One client: its requests on one connection, or on one connection each when the server does
/// not keep connections alive (step 2).
fn run_client(addr: SocketAddr, keep_alive: bool) {
    let mut conn = Conn::open(addr);
    for _ in 0..REQUESTS_PER_CLIENT {
        if !keep_alive {
            conn = Conn::open(addr);
        }
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: test\r\n\r\n");
        let response = conn.read_response(false);
        assert_eq!(response.status, 200);
    }
}

/// Generates the stalled-stdout test for one server binary, in a module (default
/// `stalled_stdout`).
#[macro_export]
macro_rules! stalled_stdout_tests {
    (bin = $bin:expr, args = $args:expr, keep_alive = $keep_alive:expr $(,)?) => {
        $crate::stalled_stdout_tests!(mod stalled_stdout, bin = $bin, args = $args, keep_alive = $keep_alive);
    };
    (mod $name:ident, bin = $bin:expr, args = $args:expr, keep_alive = $keep_alive:expr $(,)?) => {
        mod $name {
            const TARGET: $crate::Target =
                $crate::Target { bin: $bin, args: $args, keep_alive: $keep_alive };

            #[test]
            fn a_stdout_nobody_reads_never_stops_the_server() {
                $crate::stalled_stdout::keeps_answering(&TARGET);
            }
        }
    };
}
