//! Resources come back, the stack is big enough, and signals stop the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::thread;
use std::time::{Duration, Instant};

use step05_coroutine::DEFAULT_STACK_SIZE;
use testkit::{Conn, PATIENCE, Server, TestSite};

const BIN: &str = env!("CARGO_BIN_EXE_step05-coroutine");

#[test]
fn no_leak_after_a_thousand_connections() {
    let server = Server::start(BIN, &["--quiet", "--workers", "2"]);
    let fds = server.fd_count();
    // The main thread, `may`'s timer thread and its two workers, started before `Listening`.
    let threads = server.thread_count();
    assert_eq!(threads, 4);
    testkit::lifecycle::thousand_connections(&server);
    assert_eq!(
        server.settle(fds, PATIENCE, Server::fd_count),
        fds,
        "descriptors leaked"
    );
    assert_eq!(server.thread_count(), threads, "threads appeared");
}

/// Ctrl-C with idle keep-alive connections open: the server exits 0 at once.
#[test]
fn ctrl_c_with_an_idle_connection_exits_promptly() {
    testkit::lifecycle::ctrl_c_with_an_idle_connection_exits_promptly(
        BIN,
        &["--idle-timeout", "30s"],
    );
}

/// Guards the stack budget: a change in the core that made a connection's stack much deeper
/// would overflow coroutines in production; here it fails a test first. `--report-stack-usage`
/// makes `may` print each coroutine's use, in words, when it ends.
#[test]
fn connections_use_under_half_the_default_stack() {
    let site = TestSite::new();
    site.add_file("large.bin", 3 * 1024 * 1024);
    let root = site.root();
    let server = Server::start(
        BIN,
        &[
            "--root",
            root.to_str().unwrap(),
            "--report-stack-usage",
            "--idle-timeout",
            "500ms",
        ],
    );
    let requests: [&[u8]; 6] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /docs/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /large.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /%2e%2e/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /docs HTTP/1.0\r\n\r\n",
        b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo",
    ];
    for request in requests {
        let mut conn = Conn::open(server.addr());
        conn.send(request);
        let _ = conn.try_read_response(false);
    }
    assert!(server.wait_for_log_count(requests.len(), PATIENCE));
    // The last request times out after 500 ms; wait for its coroutine's report.
    let reports = |server: &Server| {
        server
            .log_lines()
            .iter()
            .filter_map(|line| {
                line.split("used size = ")
                    .nth(1)?
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + PATIENCE;
    while reports(&server).len() < requests.len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let used_words = reports(&server);
    assert_eq!(used_words.len(), requests.len(), "{:?}", server.log_lines());
    let deepest = used_words.iter().max().unwrap() * std::mem::size_of::<usize>();
    assert!(
        deepest < DEFAULT_STACK_SIZE / 2,
        "a connection used {deepest} bytes of stack; DEFAULT_STACK_SIZE is {DEFAULT_STACK_SIZE}"
    );
}

/// Out of descriptors (a low `ulimit -n`, flooded with connections): the accept loop logs,
/// pauses without stalling its worker, and serves again once the clients leave.
#[test]
fn serves_again_after_running_out_of_descriptors() {
    testkit::lifecycle::serves_again_after_running_out_of_descriptors(BIN);
}

#[test]
fn help_explains_the_model_flags() {
    testkit::lifecycle::help_mentions(BIN, &["--workers", "--stack-size", "--report-stack-usage"]);
}

/// More worker threads than `ulimit -u` allows: one line, before `Listening`, no panic.
#[test]
fn more_workers_than_the_thread_limit_is_a_one_line_error() {
    let target = testkit::Target {
        bin: BIN,
        args: &[],
        keep_alive: true,
    };
    testkit::conventions::refuses_more_threads_than_the_limit(
        &target,
        &["--workers", "2000"],
        "2000 worker threads",
    );
}

/// A stack too small for the deepest request (every connection would overflow and hang) or too
/// large to allocate is refused before `Listening`, in one line.
#[test]
fn an_out_of_range_stack_size_is_a_one_line_error() {
    let target = testkit::Target {
        bin: BIN,
        args: &[],
        keep_alive: true,
    };
    for size in ["0", "1K", "99999999M"] {
        testkit::conventions::refuses_to_start(&target, &["--stack-size", size], "--stack-size");
    }
}
