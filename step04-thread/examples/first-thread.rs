//! The first program of step 4: the tutorial's thread-per-connection server, whole, in plain Rust.
//!
//! The main thread accepts; each client gets a new thread (`std::thread::spawn`) that serves it
//! and ends. Threads share one process, so starting one is cheaper than a `fork`, and a slow
//! client holds up only its own thread. It keeps the tutorial's flaws (marked `Flaw:`).
//!
//! Run it: `cargo run -p step04-thread --example first-thread [ADDR]` (default 127.0.0.1:7080),
//! then open <http://127.0.0.1:7080/> and count threads with `ls /proc/PID/task | wc -l`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

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
    let listener = TcpListener::bind(addr)?;
    println!("Listening on http://{}/", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // Flaw: one new thread per client, without bound, and a client that connects and sends
        // nothing keeps its thread forever (no read timeout). A thousand idle connections are a
        // thousand threads, each with its stack; when the system refuses one more,
        // `thread::spawn` panics and the server is gone. Step 4 drops a silent client after
        // --idle-timeout, and `--pool N` bounds the threads.
        thread::spawn(move || {
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
