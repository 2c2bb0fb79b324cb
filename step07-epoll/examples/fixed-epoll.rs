//! The fixed first program of step 7: the first program with exactly its three marked flaws fixed
//! (each fix marked `Fixed:`), whole, in plain Rust with `mio`.
//!
//! One thread sleeps in `Poll::poll` (`epoll_wait`) until the kernel names the sockets that are
//! ready. `mio` is edge-triggered: an event means "something changed", once. So every event is
//! worked until the socket says `WouldBlock`: accept until the backlog is empty, read until the
//! socket is empty, write until it takes no more, and keep the rest of an answer for the next
//! writable event.
//!
//! Run it: `cargo run -p step07-epoll --example fixed-epoll [ADDR [ROOT]]` (default
//! 127.0.0.1:7080 and the repository's `www/`), then open <http://127.0.0.1:7080/>.

// ANCHOR: client
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// The folder served unless a second argument names another: the repository's `www/`.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");
/// The listener's token; clients get 1, 2, 3 …
const LISTENER: Token = Token(0);

/// One client: where it got to between one event and the next.
struct Client {
    stream: TcpStream,
    /// The bytes of a request head received so far.
    head: Vec<u8>,
    /// Fixed: the bytes of an answer the socket has not taken yet.
    unsent: Vec<u8>,
}
// ANCHOR_END: client

// ANCHOR: main_start
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7080".to_string())
        .parse()?;
    let root = std::env::args().nth(2).unwrap_or_else(|| ROOT.to_string());
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: this program only listens on loopback (127.0.0.1)").into());
    }
    let mut listener = TcpListener::bind(addr)?;
    println!("Listening on http://{}/", listener.local_addr()?);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut clients: HashMap<Token, Client> = HashMap::new();
    let mut next_token = 1;
    let mut events = Events::with_capacity(128);
    // ANCHOR_END: main_start
    // ANCHOR: main_loop
    loop {
        match poll.poll(&mut events, None) {
            // A signal woke `epoll_wait` early (Ctrl-Z then `fg` does): just wait again.
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            result => result?,
        }
        for event in &events {
            if event.token() == LISTENER {
                // Fixed: accept until `WouldBlock`, so a burst that raised one event is taken
                // whole. Each client is watched for reading and writing from the start.
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(next_token);
                            next_token += 1;
                            let both = Interest::READABLE | Interest::WRITABLE;
                            poll.registry().register(&mut stream, token, both)?;
                            let (head, unsent) = (Vec::new(), Vec::new());
                            clients.insert(
                                token,
                                Client {
                                    stream,
                                    head,
                                    unsent,
                                },
                            );
                        }
                        Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                        Err(error) => {
                            eprintln!("accept: {error}");
                            break;
                        }
                    }
                }
                continue;
            }
            // Fixed: an event for a client removed earlier in this batch finds no entry and is
            // skipped; tokens are never reused, so it cannot reach another client.
            let Some(client) = clients.get_mut(&event.token()) else {
                continue;
            };
            if !take_turn(client, &root) {
                // Dropping the socket closes it, and the kernel forgets its registration.
                clients.remove(&event.token());
            }
        }
    }
}
// ANCHOR_END: main_loop

// ANCHOR: take_turn
/// Does everything the socket allows until it says `WouldBlock`: sends what is unsent, then
/// reads and answers. Returns `false` when the client is finished.
fn take_turn(client: &mut Client, root: &str) -> bool {
    loop {
        // Fixed: the rest of an answer goes first, until the socket takes no more; the next
        // writable event brings us back for what is left. Nothing is read meanwhile.
        while !client.unsent.is_empty() {
            match client.stream.write(&client.unsent) {
                Ok(0) => return false,
                Ok(sent) => drop(client.unsent.drain(..sent)),
                Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        // Fixed: read until `WouldBlock`; no new event comes for bytes already in the socket.
        let mut chunk = [0u8; 1024];
        match client.stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(received) => {
                client.head.extend_from_slice(&chunk[..received]);
                if client.head.windows(4).any(|window| window == b"\r\n\r\n") {
                    client.unsent = respond(&client.head, root);
                    client.head.clear();
                }
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
// ANCHOR_END: take_turn

// ANCHOR: respond
/// The answer to a request head: the file it names under `root`, head and body in one buffer.
fn respond(head: &[u8], root: &str) -> Vec<u8> {
    let request = String::from_utf8_lossy(head);
    let path = request.split(' ').nth(1).unwrap_or("/");
    let path = if path == "/" { "/index.html" } else { path };
    // Refusing `..` keeps this program inside `root` (step 2's first program did not).
    let file = (!path.contains("..")).then(|| std::fs::read(format!("{root}{path}")));
    let (status, body) = match file {
        Some(Ok(body)) => ("200 OK", body),
        _ => ("404 Not Found", b"file not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), &body].concat()
}
// ANCHOR_END: respond
