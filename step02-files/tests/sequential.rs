//! Step 2's limit, shown as a test: one connection at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use testkit::{Conn, PATIENCE, Server};

const BIN: &str = env!("CARGO_BIN_EXE_step02-files");

fn request_root(conn: &mut Conn) {
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
}

/// While a first client holds its connection without sending, a second one gets no answer; it is
/// served as soon as the first goes away.
#[test]
fn a_second_client_waits_for_the_first() {
    let server = Server::start(BIN, &["--idle-timeout", "20s", "--quiet"]);
    let holder = Conn::open(server.addr());
    let mut waiting = Conn::open(server.addr());
    request_root(&mut waiting);
    assert!(
        !waiting.is_closed_by_peer(Duration::from_millis(500)),
        "the second client should still be waiting"
    );
    drop(holder);
    let started = Instant::now();
    assert_eq!(waiting.read_response(false).status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "served {:?} after the first left",
        started.elapsed()
    );
}

/// A first client that never sends nor leaves holds the server only until the idle timeout.
#[test]
fn the_idle_timeout_bounds_the_wait() {
    let server = Server::start(BIN, &["--idle-timeout", "700ms", "--quiet"]);
    let _holder = Conn::open(server.addr());
    let started = Instant::now();
    let mut waiting = Conn::open(server.addr());
    request_root(&mut waiting);
    assert_eq!(waiting.read_response(false).status, 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "answered after {waited:?}: not sequential?"
    );
    // The holder is dropped at the timeout itself: nothing was exchanged, so there is nothing
    // to linger for (a lingering close here once added two seconds).
    assert!(
        waited < Duration::from_millis(2500),
        "answered after {waited:?}"
    );
}

/// Step 2 closes after every response, even when an HTTP/1.1 client would keep the connection.
#[test]
fn closes_after_each_response() {
    let server = Server::start(BIN, &["--quiet"]);
    let mut conn = Conn::open(server.addr());
    request_root(&mut conn);
    assert!(conn.read_response(false).says_close());
    assert!(conn.is_closed_by_peer(PATIENCE));
}
