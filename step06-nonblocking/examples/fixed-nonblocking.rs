//! The fixed first program of step 6: the first program with exactly its three marked flaws fixed
//! (each fix marked `Fixed:`), whole, in plain Rust.
//!
//! One thread, non-blocking sockets, a loop that asks the listener and then every client in turn.
//! Each client now keeps the bytes of its answer not yet sent, and sends more on later passes; a
//! finished client is removed without skipping the next one; a pass that found nothing to do naps
//! for a millisecond instead of asking again at once.
//!
//! Run it: `cargo run -p step06-nonblocking --example fixed-nonblocking [ADDR [ROOT]]`
//! (default 127.0.0.1:7080 and the repository's `www/`), then open <http://127.0.0.1:7080/>.

// ANCHOR: client
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// The folder served unless a second argument names another: the repository's `www/`.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");
/// How long a pass that found nothing to do sleeps.
const NAP: Duration = Duration::from_millis(1);

/// One client: where it got to between one pass and the next.
struct Client {
    stream: TcpStream,
    /// The bytes of a request head received so far.
    head: Vec<u8>,
    /// Fixed: the bytes of an answer the socket has not taken yet.
    unsent: Vec<u8>,
}

/// What one turn did for a client.
enum Turn {
    /// Bytes moved: the loop has work, it should not nap.
    Progress,
    /// The socket said `WouldBlock`: nothing to do now.
    Idle,
    /// The client closed, or its socket failed: remove it.
    Finished,
}
// ANCHOR_END: client

// ANCHOR: main
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
    let mut clients: Vec<Client> = Vec::new();
    loop {
        let mut busy = false;
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                let (head, unsent) = (Vec::new(), Vec::new());
                clients.push(Client {
                    stream,
                    head,
                    unsent,
                });
                busy = true;
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => eprintln!("accept: {error}"),
        }
        let mut i = 0;
        while i < clients.len() {
            match take_turn(&mut clients[i], &root) {
                Turn::Progress => {
                    busy = true;
                    i += 1;
                }
                Turn::Idle => i += 1,
                // Fixed: `swap_remove` moves the last client into slot `i`, and `i` stays, so
                // that client gets its turn in this same pass.
                Turn::Finished => {
                    clients.swap_remove(i);
                }
            }
        }
        // Fixed: a pass that moved nothing naps, instead of asking again at once and burning a
        // core. A request that arrives meanwhile waits up to a nap (step 7 removes the trade).
        if !busy {
            std::thread::sleep(NAP);
        }
    }
}
// ANCHOR_END: main

// ANCHOR: take_turn
/// Sends what the client's answer still holds; with nothing left to send, reads.
fn take_turn(client: &mut Client, root: &str) -> Turn {
    // Fixed: an answer not yet sent goes first, as much as the socket takes now, and nothing more
    // is read until it is out (a client that never reads cannot make us buffer more).
    if !client.unsent.is_empty() {
        return match client.stream.write(&client.unsent) {
            Ok(0) => Turn::Finished,
            Ok(sent) => {
                client.unsent.drain(..sent);
                Turn::Progress
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => Turn::Idle,
            Err(_) => Turn::Finished,
        };
    }
    let mut chunk = [0u8; 1024];
    match client.stream.read(&mut chunk) {
        Ok(0) => Turn::Finished,
        Ok(received) => {
            client.head.extend_from_slice(&chunk[..received]);
            if client.head.windows(4).any(|window| window == b"\r\n\r\n") {
                client.unsent = respond(&client.head, root);
                client.head.clear();
            }
            Turn::Progress
        }
        Err(error) if error.kind() == ErrorKind::WouldBlock => Turn::Idle,
        Err(_) => Turn::Finished,
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
