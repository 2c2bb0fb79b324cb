//! Resources come back, and the server stops gracefully: idle connections close at once,
//! responses in progress finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::thread;
use std::time::Duration;

use testkit::lifecycle::thousand_connections;
use testkit::site::fnv1a;
use testkit::{Conn, PATIENCE, Server, TestSite};

const BIN: &str = env!("CARGO_BIN_EXE_step04-thread");
const LARGE: usize = 32 * 1024 * 1024;

/// After 1,000 connections the descriptors are back to where they started, and the threads to
/// `threads`: the main thread, plus the pool's if there is one.
fn no_leak_after_a_thousand_connections(args: &[&str], threads: usize) {
    let server = Server::start(BIN, args);
    let fds = server.fd_count();
    thousand_connections(&server);
    assert_eq!(
        server.settle(fds, PATIENCE, Server::fd_count),
        fds,
        "descriptors leaked"
    );
    assert_eq!(
        server.settle(threads, PATIENCE, Server::thread_count),
        threads,
        "threads leaked"
    );
}

#[test]
fn thread_per_connection_leaks_nothing_after_a_thousand_connections() {
    no_leak_after_a_thousand_connections(&["--quiet"], 1);
}

#[test]
fn pool_leaks_nothing_after_a_thousand_connections() {
    no_leak_after_a_thousand_connections(&["--quiet", "--pool", "4"], 1 + 4);
}

/// The Rust book's pool hangs on Ctrl-C while a browser keeps an idle connection open. Here
/// the idle connection is closed at once and the server exits 0 long before the idle timeout.
fn ctrl_c_with_an_idle_connection_exits_promptly(args: &[&str]) {
    let mut args = args.to_vec();
    args.extend(["--idle-timeout", "30s"]);
    testkit::lifecycle::ctrl_c_with_an_idle_connection_exits_promptly(BIN, &args);
}

#[test]
fn ctrl_c_with_an_idle_connection_exits_promptly_thread() {
    ctrl_c_with_an_idle_connection_exits_promptly(&[]);
}

#[test]
fn ctrl_c_with_an_idle_connection_exits_promptly_pool() {
    ctrl_c_with_an_idle_connection_exits_promptly(&["--pool", "2"]);
}

/// Starts a 32 MiB download and reads only its first bytes: the server's thread is now blocked
/// writing, with megabytes still to send.
fn start_slow_download(server: &Server) -> (Conn, Vec<u8>) {
    let mut conn = Conn::open(server.addr());
    conn.send(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut first = vec![0u8; 64 * 1024];
    conn.stream().read_exact(&mut first).unwrap();
    (conn, first)
}

fn body_after_head(received: &[u8]) -> &[u8] {
    let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    &received[head_end..]
}

/// SIGTERM while a slow reader is in the middle of a large file: the file still arrives whole,
/// then the server closes the connection and exits 0.
fn slow_response_in_flight_completes(args: &[&str]) {
    let site = TestSite::new();
    let expected = site.add_file("large.bin", LARGE);
    let root = site.root();
    let mut args = args.to_vec();
    args.extend(["--root", root.to_str().unwrap(), "--quiet"]);
    let mut server = Server::start(BIN, &args);
    let (conn, mut received) = start_slow_download(&server);
    server.signal(libc::SIGTERM);
    // The reader stays slow a while longer: the server must wait for it, not give up.
    thread::sleep(Duration::from_millis(300));
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "exited mid-response"
    );
    conn.stream().read_to_end(&mut received).unwrap();
    let body = body_after_head(&received);
    assert_eq!(body.len(), LARGE);
    assert_eq!(fnv1a(body), expected);
    let status = server
        .wait_exit(PATIENCE)
        .expect("still running after the response");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn slow_response_in_flight_completes_thread() {
    slow_response_in_flight_completes(&[]);
}

#[test]
fn slow_response_in_flight_completes_pool() {
    slow_response_in_flight_completes(&["--pool", "2"]);
}

/// A client that never reads cannot hold the shutdown for ever: after --shutdown-timeout the
/// server closes it and exits 0 anyway, saying so.
#[test]
fn shutdown_timeout_bounds_the_wait_for_a_stuck_client() {
    let site = TestSite::new();
    site.add_file("large.bin", LARGE);
    let root = site.root();
    let mut server = Server::start(
        BIN,
        &[
            "--root",
            root.to_str().unwrap(),
            "--quiet",
            "--shutdown-timeout",
            "300ms",
        ],
    );
    let (_stuck, _) = start_slow_download(&server);
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(PATIENCE)
        .expect("a stuck client held the shutdown");
    assert_eq!(status.code(), Some(0));
    assert!(
        server.wait_for_stderr("still busy", PATIENCE),
        "{:?}",
        server.stderr_lines()
    );
}

/// Out of descriptors (a low `ulimit -n`, flooded with connections): the server logs, pauses,
/// and serves again once the clients leave.
#[test]
fn serves_again_after_running_out_of_descriptors() {
    testkit::lifecycle::serves_again_after_running_out_of_descriptors(BIN);
}

#[test]
fn help_explains_the_model_flags() {
    testkit::lifecycle::help_mentions(
        BIN,
        &[
            "--pool",
            "--shutdown-timeout",
            "a second Ctrl-C or SIGTERM exits at once",
        ],
    );
}

/// A second SIGTERM while a graceful stop waits for a download whose client stopped reading:
/// the server exits at once, long before `--shutdown-timeout`.
fn second_sigterm_cuts_the_graceful_stop_short(args: &'static [&'static str]) {
    let target = testkit::Target {
        bin: BIN,
        args,
        keep_alive: true,
    };
    let extra = ["--shutdown-timeout", "30s"];
    let graceful = testkit::conventions::second_signal_stops_at_once(
        &target,
        &extra,
        libc::SIGTERM,
        Server::signal,
    );
    assert!(
        graceful,
        "the first SIGTERM should have waited for the download"
    );
}

#[test]
fn second_sigterm_cuts_the_graceful_stop_short_thread() {
    second_sigterm_cuts_the_graceful_stop_short(&[]);
}

#[test]
fn second_sigterm_cuts_the_graceful_stop_short_pool() {
    second_sigterm_cuts_the_graceful_stop_short(&["--pool", "2"]);
}

/// A pool larger than `ulimit -u` allows: one line before `Listening`, not a panic after it.
#[test]
fn a_pool_larger_than_the_thread_limit_is_a_one_line_error() {
    let target = testkit::Target {
        bin: BIN,
        args: &[],
        keep_alive: true,
    };
    testkit::conventions::refuses_more_threads_than_the_limit(
        &target,
        &["--pool", "2000"],
        "cannot start a pool of 2000 threads",
    );
}
