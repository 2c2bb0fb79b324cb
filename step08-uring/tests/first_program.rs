//! Step 8's first program against step 7 and step 8: io_uring used one operation at a time makes
//! at least as many system calls per request as epoll; batched, it makes fewer. Counted with
//! `strace -c -f` (skipped, with the reason printed, where strace is missing).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use testkit::Server;
use testkit::http::{Conn, get_request};

const STEP: &str = env!("CARGO_BIN_EXE_step08-uring");
/// Keep-alive requests counted per server.
const REQUESTS: usize = 200;

/// Step 7's binary, built next to step 8's (a no-op under `cargo test --workspace`).
fn step7_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "step07-epoll",
            "--bin",
            "step07-epoll",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p step07-epoll failed");
    PathBuf::from(STEP).with_file_name("step07-epoll")
}

/// System calls `server` makes per keep-alive request, over [`REQUESTS`] requests on one
/// connection, as `strace -c -f` attached to it counts them (every thread).
fn syscalls_per_request(strace: &str, server: &Server) -> f64 {
    let mut conn = Conn::open(server.addr());
    // Warm up: the file cache and the first buffers are not what is counted.
    assert_eq!(
        conn.exchange(get_request("/index.html").as_bytes()).status,
        200
    );
    let summary = tempfile::NamedTempFile::new().unwrap();
    let mut tracer = Command::new(strace)
        .args(["-f", "-c", "-o"])
        .arg(summary.path())
        .args(["-p", &server.pid().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // strace says "Process N attached" once it traces.
    let mut line = String::new();
    BufReader::new(tracer.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("attached"), "strace: {line}");
    for _ in 0..REQUESTS {
        assert_eq!(
            conn.exchange(get_request("/index.html").as_bytes()).status,
            200
        );
    }
    // SIGINT makes strace detach and write its summary.
    // SAFETY: kill(2) on the child we spawned; it has not been reaped yet.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    tracer.wait().unwrap();
    let text = std::fs::read_to_string(summary.path()).unwrap();
    let total = text
        .lines()
        .find(|line| line.trim_end().ends_with("total"))
        .unwrap_or_else(|| panic!("no total in strace's summary:\n{text}"));
    // "100.00  seconds  usecs/call  calls  [errors]  total": calls is the fourth column.
    let calls: f64 = total.split_whitespace().nth(3).unwrap().parse().unwrap();
    calls / REQUESTS as f64
}

#[test]
fn one_submission_per_operation_costs_as_many_system_calls_as_epoll_and_batching_fewer() {
    let Some(strace) = testkit::clients::require_program(&["strace"], "syscall_count") else {
        return;
    };
    let first = Server::example("first-uring");
    let step7 = Server::start(step7_binary().to_str().unwrap(), &["--quiet"]);
    let step8 = Server::start(STEP, &["--quiet"]);
    let first_count = syscalls_per_request(&strace, &first);
    let step7_count = syscalls_per_request(&strace, &step7);
    let step8_count = syscalls_per_request(&strace, &step8);
    eprintln!(
        "system calls per keep-alive request: first-uring {first_count:.2}, step 7 {step7_count:.2}, step 8 {step8_count:.2}"
    );
    assert!(
        first_count >= step7_count,
        "the first program should make at least as many system calls as epoll: {first_count} < {step7_count}"
    );
    assert!(
        step8_count < step7_count,
        "step 8 should make fewer system calls than step 7: {step8_count} >= {step7_count}"
    );
}

/// A client that connects and says nothing holds up the first program (it waits for that
/// client's receive before it accepts anyone else); step 8 serves the next client at once.
#[test]
fn a_silent_client_blocks_the_first_program_not_step_8() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    fn answered(addr: std::net::SocketAddr) -> bool {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut start = [0u8; 12];
        stream.read_exact(&mut start).is_ok() && &start == b"HTTP/1.1 200"
    }

    let first = Server::example("first-uring");
    let _silent = TcpStream::connect(first.addr()).unwrap();
    assert!(
        !answered(first.addr()),
        "the first program should still be waiting for the silent client"
    );
    let step8 = Server::start(STEP, &["--quiet"]);
    let _silent = TcpStream::connect(step8.addr()).unwrap();
    assert!(answered(step8.addr()));
}
