//! A server whose stdout is a pipe nobody reads, as when a user pipes it into `less` and stops
//! scrolling: the access log must never stop it from answering.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::http::Conn;
use crate::server::{Launch, poll};
use crate::{PATIENCE, Server, Target};

/// How many keep-alive clients [`keeps_answering`] runs at once.
pub const CLIENTS: usize = 8;
/// How many requests each client sends: far more access-log lines in all than a pipe (64 KiB)
/// and the server's own queue hold.
pub const REQUESTS_PER_CLIENT: usize = 500;

/// Starts `target` on the bundled site with the access log on and its stdout never read.
fn start_stalled(target: &Target) -> Server {
    let launch = Launch {
        unread_stdout: true,
        ..Launch::default()
    };
    target.launch_on(&crate::www_root(), &["--idle-timeout", "5s"], &launch)
}

/// Sends SIGTERM, then reads the pipe as a reader who came back would, until the server has
/// exited and the pipe is empty. Returns the exit code and everything read.
fn stop_and_read_the_rest(server: &mut Server) -> (Option<i32>, String) {
    server.signal(libc::SIGTERM);
    let mut text = String::new();
    let status = poll(PATIENCE, || {
        text.push_str(&server.read_stdout_now());
        server.wait_exit(Duration::ZERO)
    })
    .expect("still running 10 s after SIGTERM");
    text.push_str(&server.read_stdout_now());
    (status.code(), text)
}

/// With stdout a pipe nobody reads, [`CLIENTS`] clients (keep-alive where the server keeps
/// connections alive) get every one of their [`REQUESTS_PER_CLIENT`] requests answered, each
/// within [`PATIENCE`]. Then a reader comes back and reads the pipe while a few more requests
/// are made: every request shows up in the log, or in a count of dropped lines, exactly once.
pub fn keeps_answering(target: &Target) {
    let server = start_stalled(target);
    let addr = server.addr();
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| run_client(addr, target.keep_alive, REQUESTS_PER_CLIENT));
        }
    });
    let mut n_requests = CLIENTS * REQUESTS_PER_CLIENT;
    let took = started.elapsed();
    assert!(took < PATIENCE * 3, "{n_requests} requests took {took:?}");
    let mut log = server.read_stdout_now();
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
        assert_eq!(crate::get(addr, "/index.html").status, 200);
        n_requests += 1;
        thread::sleep(Duration::from_millis(20));
        log.push_str(&server.read_stdout_now());
    }
}

/// With stdout a pipe nobody reads, more requests than the pipe holds but fewer than the pipe
/// and the server's queue together: at SIGTERM, a reader who comes back gets every line, none
/// dropped, and the server exits 0.
pub fn queued_lines_go_out_at_a_clean_exit(target: &Target) {
    const N_REQUESTS: usize = 2000;
    let mut server = start_stalled(target);
    run_client(server.addr(), true, N_REQUESTS);
    let (code, log) = stop_and_read_the_rest(&mut server);
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

/// One client: `n_requests` on one connection, or on one connection each when the server does
/// not keep connections alive (step 2).
fn run_client(addr: SocketAddr, keep_alive: bool, n_requests: usize) {
    let mut conn = Conn::open(addr);
    for _ in 0..n_requests {
        if !keep_alive {
            conn = Conn::open(addr);
        }
        let response = conn.exchange(b"GET /index.html HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_eq!(response.status, 200);
    }
}

/// Generates the stalled-stdout test for one server binary, in a module (default
/// `stalled_stdout`).
#[macro_export]
macro_rules! stalled_stdout_tests {
    ($(mod $name:ident,)? bin = $bin:expr, args = $args:expr, keep_alive = $keep_alive:expr $(,)?) => {
        $crate::target_tests!(stalled_stdout $($name)?, $crate::Target { bin: $bin, args: $args, keep_alive: $keep_alive }, [
            stalled_stdout::keeps_answering as a_stdout_nobody_reads_never_stops_the_server,
        ]);
    };
}
