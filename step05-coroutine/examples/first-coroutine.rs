//! The first program of step 5: the tutorial's gevent server, whole, in plain Rust with `may`.
//!
//! `go!` starts a coroutine per client: a function with its own small stack that `may` runs on a
//! worker thread and sets aside whenever it waits for a `may` socket, so that one thread serves
//! many clients. It keeps a flaw of its own (marked `Flaw:`): Python's gevent needs
//! `monkey.patch_all()` to make the `socket` module yield; Rust has no patching, and this
//! program uses `std::net` sockets, which never yield.
//!
//! Run it: `cargo run -p step05-coroutine --example first-coroutine [ADDR]` (default
//! 127.0.0.1:7080), then open <http://127.0.0.1:7080/>; then hold `nc 127.0.0.1 7080` open
//! and try again.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use may::go;

/// The folder served: the repository's `www/`.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7080".to_string())
        .parse()?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: this program only listens on loopback (127.0.0.1)").into());
    }
    // One worker thread runs every coroutine, as gevent runs every greenlet on one thread.
    may::config().set_workers(1);
    // Flaw: `std::net` sockets block the thread, not the coroutine. A client that sends
    // nothing leaves its coroutine in `read`, and with it the worker thread: every other
    // coroutine on that worker waits, and the server answers no one. Step 5 uses
    // `may::net` sockets, whose `read` yields to the next coroutine instead.
    let listener = TcpListener::bind(addr)?;
    println!("Listening on http://{}/", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        go!(move || {
            if let Err(error) = handle(stream) {
                eprintln!("error: {error}");
            }
        });
    }
    Ok(())
}

/// Reads a request and answers with the file it names under `www/`.
fn handle(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buffer = [0u8; 1024];
    // Flaw: one `read`, as in step 1's first program: a head that arrives in pieces is cut short.
    let received = stream.read(&mut buffer)?;
    let request = String::from_utf8_lossy(&buffer[..received]);
    let path = request.split(' ').nth(1).unwrap_or("/");
    let path = if path == "/" { "/index.html" } else { path };
    // Refusing `..` keeps this program inside `www/` (step 2's first program did not).
    let file = (!path.contains("..")).then(|| std::fs::read(format!("{ROOT}{path}")));
    let response = match file {
        Some(Ok(body)) => [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), &body].concat(),
        _ => b"HTTP/1.1 404 Not Found\r\n\r\nfile not found".to_vec(),
    };
    // Flaw: no `Content-Length`: the close marks the end of the body, one request per connection.
    stream.write_all(&response)
}
