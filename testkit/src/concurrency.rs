//! Many clients at once, for the blocking models (steps 3–5): idle keep-alive clients, slowloris
//! clients and a client that stops reading must not delay a fresh client.
//!
//! Each step keeps its model-specific checks (child processes, threads, coroutines) in its own
//! tests and calls these for the parts every model shares.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::{Conn, Server};

/// Long enough that a server which made the fresh client wait for an idle one would fail.
pub const LONG_IDLE: &str = "20s";

/// How long a fresh client may wait, however busy the server is with other clients.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// A keep-alive request for `/`.
pub const GET_ROOT: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// Opens a connection that completed one request and now sits idle, as a browser's does.
pub fn idle_client(server: &Server) -> Conn {
    let mut conn = Conn::open(server.addr());
    assert_eq!(conn.exchange(GET_ROOT).status, 200);
    conn
}

/// Opens `n` connections that each completed one request and now sit idle, as a browser's do.
pub fn idle_clients(server: &Server, n: usize) -> Vec<Conn> {
    (0..n).map(|_| idle_client(server)).collect()
}

/// A fresh client asks for `/` and gets 200 within [`PROMPTLY`].
pub fn fresh_client_is_served_promptly(server: &Server) {
    let started = Instant::now();
    assert_eq!(crate::get(server.addr(), "/").status, 200);
    let waited = started.elapsed();
    assert!(waited < PROMPTLY, "the fresh client waited {waited:?}");
}

/// Slowloris: starts `bin` with `args` followed by `--idle-timeout 2s --quiet`; 50 clients send
/// half a request head and stop. A fresh client is still served, and each half-sent request is
/// answered 408 once the idle timeout passes.
pub fn fifty_trickling_clients_do_not_delay_a_fresh_one_and_time_out(bin: &str, args: &[&str]) {
    let mut args = args.to_vec();
    args.extend(["--idle-timeout", "2s", "--quiet"]);
    let server = Server::start(bin, &args);
    let started = Instant::now();
    let mut trickling: Vec<Conn> = (0..50)
        .map(|_| {
            let mut conn = Conn::open(server.addr());
            conn.send(b"GET / HTTP/1.1\r\nHo");
            conn
        })
        .collect();
    for conn in &mut trickling {
        conn.send(b"s");
    }
    fresh_client_is_served_promptly(&server);
    let in_time = started.elapsed() < Duration::from_secs(2);
    assert!(in_time, "too slow to test before the timeout");
    for conn in &mut trickling {
        assert_eq!(conn.read_response(false).status, 408);
    }
}

/// Asks for `/large.bin` (which the server's root must hold, larger than the socket buffers) and
/// reads only its first 4 KiB: the client has stopped reading, and the server's write blocks.
/// Returns the connection and the bytes read.
pub fn client_that_stops_reading(server: &Server) -> (Conn, [u8; 4096]) {
    let mut stuck = Conn::open(server.addr());
    stuck.send(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut first = [0u8; 4096];
    stuck.stream().read_exact(&mut first).unwrap();
    (stuck, first)
}
