//! Step 1 as a user meets it: the real binary, real sockets, curl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use testkit::{Conn, PATIENCE, Server};

const BIN: &str = env!("CARGO_BIN_EXE_step01-hello");

testkit::convention_tests!(bin = env!("CARGO_BIN_EXE_step01-hello"), args = &[]);

#[test]
fn answers_hello_world_and_closes() {
    let server = Server::start(BIN, &[]);
    let mut conn = Conn::open(server.addr());
    let response = conn.exchange(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(response.header("content-length"), Some("20"));
    assert!(response.says_close());
    assert_eq!(response.text(), "<h1>hello world</h1>");
    assert!(
        conn.is_closed_by_peer(PATIENCE),
        "the server should close after answering"
    );
}

/// ~6 KB of headers, written a few bytes at a time: a server that answered after its first
/// `read` and closed would leave unread bytes, and the kernel would reset the connection.
#[test]
fn a_large_head_in_small_writes_gets_the_page_not_a_reset() {
    let server = Server::start(BIN, &["--quiet"]);
    let filler: String = (0..60)
        .map(|at| format!("X-Filler-{at}: {}\r\n", "v".repeat(80)))
        .collect();
    let request = format!("GET / HTTP/1.1\r\nHost: localhost\r\n{filler}\r\n");
    assert!(request.len() > 5_000);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    for piece in request.as_bytes().chunks(7) {
        stream.write_all(piece).unwrap();
    }
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("the answer, then a clean close (FIN), not a reset");
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(answer.ends_with(b"<h1>hello world</h1>"));
}

#[test]
fn an_endless_head_gets_431() {
    let server = Server::start(BIN, &["--quiet"]);
    let mut conn = Conn::open(server.addr());
    let _ = conn.try_send(format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(20 * 1024)).as_bytes());
    assert_eq!(conn.read_response(false).status, 431);
}

#[test]
fn prints_one_line_per_request() {
    let server = Server::start(BIN, &[]);
    testkit::send_raw(
        server.addr(),
        b"GET /anything?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert!(server.wait_for_log(
        |line| line.ends_with("\"GET /anything?x=1 HTTP/1.1\" 200 20"),
        PATIENCE
    ));
    assert_eq!(server.log_lines().len(), 1);
}

#[test]
fn a_silent_client_is_dropped_after_the_idle_timeout_and_the_next_is_served() {
    let server = Server::start(BIN, &["--idle-timeout", "300ms", "--quiet"]);
    let mut silent = Conn::open(server.addr());
    let waited = silent.time_until_closed();
    assert!(
        waited >= Duration::from_millis(200),
        "dropped after {waited:?}"
    );
    assert_eq!(testkit::get(server.addr(), "/").status, 200);
}

#[test]
fn curl_gets_the_page() {
    let Some(curl) = testkit::clients::require_program(&["curl"], "curl_gets_the_page") else {
        return;
    };
    let server = Server::start(BIN, &["--quiet"]);
    let output = std::process::Command::new(curl)
        .args(["-sS", "--max-time", "10", &server.url("/")])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, b"<h1>hello world</h1>");
}

/// Lesson 1 stands alone: what a reader sees in `src/` is the whole server, with no crate of
/// this project underneath (the workspace's own crates are `step…` and `testkit`).
#[test]
fn depends_on_no_project_crate() {
    let manifest = include_str!("../Cargo.toml");
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] section");
    for line in dependencies.lines().map(str::trim) {
        assert!(
            !line.starts_with("step") && !line.starts_with("testkit") && !line.contains("path"),
            "step 1 depends on a project crate: {line}"
        );
    }
}

/// A client being served holds a first Ctrl-C back (step 1 answers it first); a second Ctrl-C
/// ends the server at once, with status 0.
#[test]
fn a_second_ctrl_c_does_not_wait_for_the_client() {
    let target = testkit::Target {
        bin: BIN,
        args: &[],
        keep_alive: false,
    };
    let graceful = testkit::conventions::second_signal_stops_at_once(
        &target,
        &[],
        libc::SIGINT,
        Server::signal_group,
    );
    assert!(
        graceful,
        "the first Ctrl-C should have waited for the client"
    );
}
