//! The first program of step 6: the tutorial's non-blocking server, whole, in plain Rust.
//!
//! One thread and no waiting: the listener and every client socket are non-blocking, so `accept`
//! and `read` return at once, with `WouldBlock` when there is nothing yet. The loop asks the
//! listener, then each client in turn, forever. Connections stay open between requests
//! (`Content-Length` marks where each answer ends). It keeps the tutorial's flaws (`Flaw:`).
//!
//! Run it: `cargo run -p step06-nonblocking --example first-nonblocking [ADDR [ROOT]]`
//! (default 127.0.0.1:7080 and the repository's `www/`), then open <http://127.0.0.1:7080/>,
//! and watch it in `top` with no client.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// The folder served unless a second argument names another: the repository's `www/`.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7080".to_string())
        .parse()?;
    let root = std::env::args().nth(2).unwrap_or_else(|| ROOT.to_string());
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: this program only listens on loopback (127.0.0.1)").into());
    }
    let listener = TcpListener::bind(addr)?;
    println!("Listening on http://{}/", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    // Each client: its socket, and the bytes of a request head received so far.
    let mut clients: Vec<(TcpStream, Vec<u8>)> = Vec::new();
    // Flaw: the loop never waits. With no client at all it asks the listener again and again,
    // and burns a whole core. Step 7 sleeps in `epoll_wait` until a socket is
    // ready (step 6's `--nap` only naps between passes that found nothing to do).
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                clients.push((stream, Vec::new()));
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => eprintln!("accept: {error}"),
        }
        let mut i = 0;
        while i < clients.len() {
            let (stream, head) = &mut clients[i];
            let mut chunk = [0u8; 1024];
            let finished = match stream.read(&mut chunk) {
                Ok(0) => true,
                Ok(received) => {
                    head.extend_from_slice(&chunk[..received]);
                    if head.windows(4).any(|window| window == b"\r\n\r\n") {
                        respond(stream, head, &root);
                        head.clear();
                    }
                    false
                }
                Err(error) => error.kind() != ErrorKind::WouldBlock,
            };
            if finished {
                // Flaw: `remove` shifts the next client into slot `i`, and `i += 1` then skips it
                // for this pass (Python's `clients.remove(client)` inside `for client in clients`
                // does the same). Step 6 keeps the index where it is after a removal.
                clients.remove(i);
            }
            i += 1;
        }
    }
}

/// Answers a request head with the file it names under `root`.
fn respond(stream: &mut TcpStream, head: &[u8], root: &str) {
    let request = String::from_utf8_lossy(head);
    let path = request.split(' ').nth(1).unwrap_or("/");
    let path = if path == "/" { "/index.html" } else { path };
    // Refusing `..` keeps this program inside `www/` (step 2's first program did not).
    let file = (!path.contains("..")).then(|| std::fs::read(format!("{root}{path}")));
    let (status, body) = match file {
        Some(Ok(body)) => ("200 OK", body),
        _ => ("404 Not Found", b"file not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // Flaw: on a non-blocking socket `write_all` stops with `WouldBlock` as soon as the socket's
    // send buffer is full: the rest of a large file is dropped, and the client waits for bytes
    // that never come. Step 6 keeps what is left and sends more on later passes.
    let _ = stream.write_all(&[head.as_bytes(), &body].concat());
}
