//! The first program of step 7: the tutorial's epoll server, whole, in plain Rust with `mio`.
//!
//! One thread sleeps in `Poll::poll` (`epoll_wait`) until the kernel names the sockets that are
//! ready, and touches only those. `mio`, not raw epoll through `nix`: it is step 7's default, and
//! it is always edge-triggered (an event means "something new arrived", once). The tutorial's
//! loop, written for level-triggered epoll, does one `accept` or `read` per event; under edge
//! triggering that leaves work behind with no event to come back for it (marked `Flaw:`).
//!
//! Run it: `cargo run -p step07-epoll --example first-epoll [ADDR [ROOT]]` (default
//! 127.0.0.1:7080 and the repository's `www/`), then open <http://127.0.0.1:7080/>.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// The folder served unless a second argument names another: the repository's `www/`.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");
/// The listener's token; clients get 1, 2, 3 …
const LISTENER: Token = Token(0);

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
    // Each client: its socket, and the bytes of a request head received so far.
    let mut clients: HashMap<Token, (TcpStream, Vec<u8>)> = HashMap::new();
    let mut next_token = 1;
    let mut events = Events::with_capacity(128);
    loop {
        match poll.poll(&mut events, None) {
            // A signal woke `epoll_wait` early (Ctrl-Z then `fg` does): just wait again.
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            result => result?,
        }
        for event in &events {
            if event.token() == LISTENER {
                // Flaw: one `accept` per event. Connections that arrived together raise one
                // event; all but the first wait in the backlog until another connection comes.
                // Step 7 accepts until `accept` says `WouldBlock`.
                if let Ok((mut stream, _)) = listener.accept() {
                    let token = Token(next_token);
                    next_token += 1;
                    poll.registry()
                        .register(&mut stream, token, Interest::READABLE)?;
                    clients.insert(token, (stream, Vec::new()));
                }
                continue;
            }
            let Some((stream, head)) = clients.get_mut(&event.token()) else {
                continue;
            };
            let mut chunk = [0u8; 1024];
            // Flaw: one `read` per event. A head longer than 1024 bytes that arrived at once
            // leaves the rest in the socket, and no new event comes for bytes already there:
            // the request waits until the client sends more. Step 7 reads until `WouldBlock`.
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
                // Dropping the socket closes it, and the kernel forgets its registration.
                clients.remove(&event.token());
            }
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
    // Flaw: as in step 6's first program, `write_all` gives up at `WouldBlock` and the rest of a
    // large file is lost. Step 7 keeps the rest and asks for a writable event.
    let _ = stream.write_all(&[head.as_bytes(), &body].concat());
}
