//! Many clients at once: a process each, or a fixed set of workers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use testkit::concurrency::{
    GET_ROOT, LONG_IDLE, PROMPTLY, client_that_stops_reading, fresh_client_is_served_promptly,
    idle_clients,
};
use testkit::{Conn, PATIENCE, Server, TestSite};

const BIN: &str = env!("CARGO_BIN_EXE_step03-process");

#[test]
fn fifty_idle_clients_do_not_delay_a_fresh_one() {
    let server = Server::start(BIN, &["--idle-timeout", LONG_IDLE, "--quiet"]);
    let idle = idle_clients(&server, 50);
    // One process per connection: the model, visible from outside.
    assert_eq!(server.child_pids().len(), 50);
    fresh_client_is_served_promptly(&server);
    drop(idle);
    let settled = server.settle(0, PATIENCE, |server| server.child_pids().len());
    assert_eq!(settled, 0, "children outlived their connections");
}

/// Slowloris: 50 clients send half a request head and stop. A fresh client is still served, and
/// each half-sent request is answered 408 once the idle timeout passes.
#[test]
fn fifty_trickling_clients_do_not_delay_a_fresh_one_and_time_out() {
    testkit::concurrency::fifty_trickling_clients_do_not_delay_a_fresh_one_and_time_out(BIN, &[]);
}

/// A client that asks for a large file and stops reading blocks only its own process.
#[test]
fn a_client_that_stops_reading_stalls_only_itself() {
    let site = TestSite::new();
    site.add_file("large.bin", 32 * 1024 * 1024);
    let server = Server::start(BIN, &["--root", site.root().to_str().unwrap(), "--quiet"]);
    let _stuck = client_that_stops_reading(&server);
    fresh_client_is_served_promptly(&server);
}

/// With every process busy holding an idle client, the next client waits for the idle timeout
/// to free one: `args` caps the processes at 2.
fn next_client_waits_for_an_idle_one_to_time_out(args: &[&str]) -> Server {
    let idle_timeout = Duration::from_millis(1500);
    let mut args = args.to_vec();
    args.extend(["--idle-timeout", "1500ms", "--quiet"]);
    let server = Server::start(BIN, &args);
    let holders = idle_clients(&server, 2);
    let started = Instant::now();
    let mut next = Conn::open(server.addr());
    next.send(GET_ROOT);
    assert!(
        !next.is_closed_by_peer(Duration::from_millis(500)),
        "the third client should still be waiting"
    );
    assert_eq!(next.read_response(false).status, 200);
    let waited = started.elapsed();
    assert!(
        waited >= idle_timeout / 2,
        "served after {waited:?}: no wait?"
    );
    assert!(waited < idle_timeout + PROMPTLY, "waited {waited:?}");
    drop(holders);
    server
}

/// At `--max-children` the parent stops accepting: the next client waits in the backlog.
#[test]
fn at_max_children_the_next_client_waits_in_the_backlog() {
    let server = next_client_waits_for_an_idle_one_to_time_out(&["--max-children", "2"]);
    assert!(
        server.wait_for_stderr("--max-children", PATIENCE),
        "{:?}",
        server.stderr_lines()
    );
}

/// Prefork's limit, like a thread pool's: N workers, N idle clients, and the next one waits.
#[test]
fn prefork_with_every_worker_held_makes_the_next_wait() {
    next_client_waits_for_an_idle_one_to_time_out(&["--prefork", "2"]);
}
