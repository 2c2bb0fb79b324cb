//! Checks the first programs of the non-blocking steps (6 and 7) share: what their marked flaws
//! do to a client, and that the fixed versions do not.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use crate::Server;

/// A folder holding one file larger than the socket buffers of both ends of a loopback
/// connection can hold: `write_all` on a non-blocking socket must meet `WouldBlock` with it.
fn site_with_a_large_file() -> (tempfile::TempDir, usize) {
    const SIZE: usize = 64 * 1024 * 1024;
    let site = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..SIZE).map(|at| (at % 251) as u8).collect();
    std::fs::write(site.path().join("large.bin"), &bytes).unwrap();
    (site, SIZE)
}

/// Asks for `/large.bin`, reads nothing for half a second (the server's writes fill the socket
/// buffers meanwhile), then reads until the body is whole or nothing comes for a second. Returns
/// how many body bytes arrived, and whether they are the file's bytes in order.
fn large_file_received(addr: SocketAddr) -> (usize, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /large.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let head_end = |received: &[u8]| {
        received
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map(|end| end + 4)
    };
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(count) => received.extend_from_slice(&chunk[..count]),
        }
        let whole = head_end(&received)
            .is_some_and(|end| received.len() - end >= content_length(&received[..end]));
        if whole {
            break;
        }
    }
    let body = &received[head_end(&received).expect("a response head")..];
    let intact = body
        .iter()
        .enumerate()
        .all(|(at, &byte)| byte == (at % 251) as u8);
    (body.len(), intact)
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .expect("a Content-Length")
        .trim()
        .parse()
        .unwrap()
}

/// `write_all` on a non-blocking socket stops at `WouldBlock` and drops the rest: the cargo
/// example `first` (a first program) sends a 64 MiB file cut short; `fixed`, its fixed version,
/// sends it whole and in order.
pub fn write_all_cuts_a_large_file_short(first: &str, fixed: &str) {
    let (site, size) = site_with_a_large_file();
    let root = site.path().to_str().unwrap();

    let first_server = Server::example_with(first, &[root]);
    let (received, _) = large_file_received(first_server.addr());
    eprintln!("{first} sent {received} of {size} bytes");
    assert!(
        received < size,
        "the first program's write_all should stop at WouldBlock and drop the rest"
    );

    let fixed_server = Server::example_with(fixed, &[root]);
    assert_eq!(large_file_received(fixed_server.addr()), (size, true));
}
