//! Step 1's first program against step 1's server: a request head that arrives in several writes.
//!
//! The first program answers after one `read` and closes with the rest of the head unread; the
//! client's next bytes reach a closed socket and the kernel resets the connection. Step 1's
//! server reads to the blank line first, so the same client gets the page and a clean close.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use testkit::{PATIENCE, Server};

/// Sends a head in four writes 100 ms apart, as a slow client or a slow network does, then reads
/// the answer to the end.
fn get_in_pieces(addr: SocketAddr) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    for piece in [
        "GET / HTTP/1.1\r\n",
        "Host: localhost\r\n",
        "User-Agent: first-program-test\r\n",
        "\r\n",
    ] {
        stream.write_all(piece.as_bytes())?;
        thread::sleep(Duration::from_millis(100));
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

#[test]
fn one_read_then_close_resets_a_client_whose_head_arrives_in_pieces() {
    let first = Server::example("first-hello");
    let error = get_in_pieces(first.addr())
        .expect_err("the first program should reset this client, not answer it cleanly");
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "expected a reset, got {error}"
    );

    let step = Server::start(env!("CARGO_BIN_EXE_step01-hello"), &["--quiet"]);
    let answer = get_in_pieces(step.addr()).expect("step 1 answers and closes cleanly");
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(answer.ends_with(b"<h1>hello world</h1>"));
}
