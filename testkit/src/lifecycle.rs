//! Resources come back and signals stop the server, for the blocking models (steps 3–5): the
//! leak, shutdown and out-of-descriptor checks their lifecycle tests share.

use std::time::{Duration, Instant};

use crate::concurrency::idle_client;
use crate::{PATIENCE, Server, Target};

/// Opens, uses and closes 1,000 connections one after another, each with one request for `/`.
pub fn thousand_connections(server: &Server) {
    for _ in 0..1000 {
        assert_eq!(crate::get(server.addr(), "/").status, 200);
    }
}

/// Polls `condition` until it holds or [`PATIENCE`] runs out, and says whether it held: for the
/// changes a test has no event to wait on (a process's death, a line on stderr).
pub fn eventually(condition: impl Fn() -> bool) -> bool {
    crate::server::poll(PATIENCE, || condition().then_some(())).is_some()
}

/// Ctrl-C (SIGINT to the process group) while a keep-alive connection sits idle: the server
/// exits 0 within 3 seconds, long before the idle timeout, and closes the idle connection.
/// `args` should set a long `--idle-timeout`.
pub fn ctrl_c_with_an_idle_connection_exits_promptly(bin: &str, args: &[&str]) {
    let mut server = Server::start(bin, args);
    let mut idle = idle_client(&server);
    let started = Instant::now();
    server.signal_group(libc::SIGINT);
    let status = server
        .wait_exit(PATIENCE)
        .expect("still running after Ctrl-C");
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(idle.is_closed_by_peer(PATIENCE));
}

/// Out of descriptors (`bin` under a limit of 64, flooded with 100 connections): the server logs
/// `Too many open files`, and serves again once the clients leave.
pub fn serves_again_after_running_out_of_descriptors(bin: &'static str) {
    let target = Target {
        bin,
        args: &[],
        keep_alive: true,
    };
    let extra = ["--idle-timeout", "1s", "--quiet"];
    let (server, flood) = crate::load::flood_past_64_descriptors(&target, &extra);
    drop(flood);
    assert_eq!(crate::get(server.addr(), "/").status, 200);
}

/// `bin --help` mentions each of the model's own `flags`.
pub fn help_mentions(bin: &str, flags: &[&str]) {
    crate::conventions::assert_help_mentions(bin, &[], flags);
}
