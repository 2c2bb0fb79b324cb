//! Step 7's first program against its fixed version and step 7's server: what edge triggering
//! leaves behind when a loop does one `read` or one `accept` per event, and what `write_all` drops
//! on a non-blocking socket. The fixed first program (`examples/fixed-epoll.rs`) passes where the
//! first one fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use testkit::Server;
use testkit::concurrency::PROMPTLY;

const STEP: &str = env!("CARGO_BIN_EXE_step07-epoll");

/// A request head over 6 KiB, sent in one write: it arrives at once, and raises one event.
fn send_large_head(addr: SocketAddr) -> TcpStream {
    let filler: String = (0..70)
        .map(|at| format!("X-Filler-{at}: {}\r\n", "v".repeat(80)))
        .collect();
    let request = format!("GET / HTTP/1.1\r\nHost: localhost\r\n{filler}\r\n");
    assert!(request.len() > 6 * 1024);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream
}

/// Whether a response starts arriving on `stream` within `patience`.
fn answered_within(stream: &mut TcpStream, patience: Duration) -> bool {
    stream.set_read_timeout(Some(patience)).unwrap();
    let mut start = [0u8; 15];
    // A timeout (nothing yet) and a closed connection both mean: no answer.
    stream.read_exact(&mut start).is_ok() && &start == b"HTTP/1.1 200 OK"
}

#[test]
fn one_read_per_event_leaves_a_large_head_unanswered_in_the_first_program_not_when_fixed() {
    let first = Server::example("first-epoll");
    let mut stream = send_large_head(first.addr());
    assert!(
        !answered_within(&mut stream, Duration::from_secs(1)),
        "the first program read 1 KiB per event and should still wait for the rest of the head"
    );

    let fixed = Server::example("fixed-epoll");
    let mut stream = send_large_head(fixed.addr());
    assert!(answered_within(&mut stream, PROMPTLY), "fixed-epoll");

    for backend in ["mio", "epoll"] {
        let step = Server::start(STEP, &["--quiet", "--backend", backend]);
        let mut stream = send_large_head(step.addr());
        assert!(answered_within(&mut stream, PROMPTLY), "{backend}");
    }
}

/// Connects `count` clients while `pid` is stopped, each sending a whole request, then resumes
/// it: the connections wait in the backlog together, and the listener raises a single event.
fn burst(addr: SocketAddr, count: usize, stop: impl Fn(i32)) -> Vec<TcpStream> {
    stop(libc::SIGSTOP);
    let clients = (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    thread::sleep(Duration::from_millis(100));
    stop(libc::SIGCONT);
    clients
}

/// How many of `clients` have an answer after a second.
fn answered(clients: &mut [TcpStream]) -> usize {
    thread::sleep(Duration::from_secs(1));
    let mut count = 0;
    for stream in clients {
        count += usize::from(answered_within(stream, Duration::from_millis(100)));
    }
    count
}

#[test]
fn one_accept_per_event_leaves_a_burst_waiting_in_the_first_program_not_when_fixed() {
    const BURST: usize = 20;
    let mut first = Server::example("first-epoll");
    let mut clients = burst(first.addr(), BURST, |signal| first.signal(signal));
    let served = answered(&mut clients);
    assert!(
        served < BURST,
        "the first program accepted one connection per event, yet served all {BURST}"
    );
    eprintln!("first-epoll served {served} of a burst of {BURST}");
    assert!(
        first.wait_exit(Duration::ZERO).is_none(),
        "the first program should still run, waiting for an event that does not come"
    );

    let fixed = Server::example("fixed-epoll");
    let mut clients = burst(fixed.addr(), BURST, |signal| fixed.signal(signal));
    assert_eq!(answered(&mut clients), BURST, "fixed-epoll");

    for backend in ["mio", "epoll"] {
        let step = Server::start(STEP, &["--quiet", "--backend", backend]);
        let mut clients = burst(step.addr(), BURST, |signal| step.signal(signal));
        assert_eq!(answered(&mut clients), BURST, "{backend}");
    }
}

#[test]
fn write_all_cuts_a_large_file_short_in_the_first_program_the_fixed_one_sends_it_whole() {
    testkit::first_programs::write_all_cuts_a_large_file_short("first-epoll", "fixed-epoll");
}
