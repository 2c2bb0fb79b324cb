//! Step 5's first program against step 5's server: one client that sends nothing, on one worker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use testkit::concurrency::PROMPTLY;
use testkit::{PATIENCE, Server};

/// Sends a request for `/` and reads until the close or until `patience` passes.
fn get_index(addr: SocketAddr, patience: Duration) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(patience))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// A client that connects and says nothing, once the server has had time to start serving it.
fn silent_client(addr: SocketAddr) -> TcpStream {
    let silent = TcpStream::connect(addr).unwrap();
    thread::sleep(Duration::from_millis(200));
    silent
}

#[test]
fn a_blocking_std_read_stalls_the_first_programs_worker_not_step_5s() {
    let first = Server::example("first-coroutine");
    let silent = silent_client(first.addr());
    let fresh = thread::spawn({
        let addr = first.addr();
        move || get_index(addr, PATIENCE)
    });
    thread::sleep(Duration::from_secs(1));
    assert!(
        !fresh.is_finished(),
        "the fresh client should still wait: the only worker is blocked in the silent client's read"
    );
    // The stall ends when the blocking call returns: here, when the silent client leaves.
    drop(silent);
    let answer = fresh
        .join()
        .unwrap()
        .expect("answered once the worker is free");
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"));

    let step = Server::start(
        env!("CARGO_BIN_EXE_step05-coroutine"),
        &["--quiet", "--workers", "1", "--idle-timeout", "20s"],
    );
    let _silent = silent_client(step.addr());
    let answer =
        get_index(step.addr(), PROMPTLY).expect("step 5 answers at once, one worker or not");
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
}
