//! Many clients at once: idle and trickling clients do not delay a fresh one, and the pool's
//! limit is what it is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use testkit::concurrency::{
    GET_ROOT, LONG_IDLE, PROMPTLY, client_that_stops_reading, fresh_client_is_served_promptly,
    idle_clients,
};
use testkit::{Conn, PATIENCE, Server, TestSite};

const BIN: &str = env!("CARGO_BIN_EXE_step04-thread");

#[test]
fn fifty_idle_clients_do_not_delay_a_fresh_one() {
    let server = Server::start(BIN, &["--idle-timeout", LONG_IDLE, "--quiet"]);
    let baseline = server.thread_count();
    let idle = idle_clients(&server, 50);
    // One thread per connection: the model, visible from outside.
    assert_eq!(server.thread_count(), baseline + 50);
    fresh_client_is_served_promptly(&server);
    drop(idle);
    assert_eq!(
        server.settle(baseline, PATIENCE, Server::thread_count),
        baseline
    );
}

/// Slowloris: 50 clients send half a request head and stop. A fresh client is still served, and
/// each half-sent request is answered 408 once the idle timeout passes, freeing its thread.
#[test]
fn fifty_trickling_clients_do_not_delay_a_fresh_one_and_time_out() {
    testkit::concurrency::fifty_trickling_clients_do_not_delay_a_fresh_one_and_time_out(BIN, &[]);
}

/// A client that asks for a large file and stops reading fills its socket buffers; its thread
/// blocks in `write`, and nobody else notices.
#[test]
fn a_client_that_stops_reading_stalls_only_itself() {
    let site = TestSite::new();
    site.add_file("large.bin", 32 * 1024 * 1024);
    let server = Server::start(
        BIN,
        &[
            "--root",
            site.root().to_str().unwrap(),
            "--quiet",
            "--pool",
            "2",
        ],
    );
    let _stuck = client_that_stops_reading(&server);
    fresh_client_is_served_promptly(&server);
}

/// The pool's limit, shown honestly: with as many idle keep-alive clients as threads, the next
/// client waits until the idle timeout frees a thread. (A browser tab holds connections open
/// exactly like this, which is why pooled servers keep the idle timeout short.)
#[test]
fn pool_with_every_thread_held_by_idle_clients_makes_the_next_wait() {
    let idle_timeout = Duration::from_millis(1500);
    let server = Server::start(BIN, &["--pool", "2", "--idle-timeout", "1500ms", "--quiet"]);
    let holders = idle_clients(&server, 2);
    let started = Instant::now();
    let mut next = Conn::open(server.addr());
    next.send(GET_ROOT);
    assert!(
        !next.is_closed_by_peer(Duration::from_millis(500)),
        "the third client should still be waiting for a thread"
    );
    assert_eq!(next.read_response(false).status, 200);
    let waited = started.elapsed();
    assert!(
        waited >= idle_timeout / 2,
        "served after {waited:?}: no wait?"
    );
    assert!(
        waited < idle_timeout + PROMPTLY,
        "waited {waited:?}, past the idle timeout"
    );
    drop(holders);
}
