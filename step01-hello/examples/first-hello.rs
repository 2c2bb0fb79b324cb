//! The first program of step 1: the tutorial's hello-world server, whole, in plain Rust.
//!
//! One socket, one client at a time: accept, read the request, answer a fixed page, close.
//! It works in a browser, and it keeps the tutorial's flaws (marked `Flaw:`) so that you can
//! watch them go wrong; `cargo run -p step01-hello` is the same server done right.
//!
//! Run it: `cargo run -p step01-hello --example first-hello [ADDR]` (default 127.0.0.1:7080),
//! then `curl -v http://127.0.0.1:7080/`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

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
        // One client's error ends that client, not the server.
        if let Err(error) = stream.and_then(handle) {
            eprintln!("error: {error}");
        }
    }
    Ok(())
}

fn handle(mut stream: TcpStream) -> std::io::Result<()> {
    let mut request = [0u8; 1024];
    // Flaw: one `read` returns whatever has arrived so far: part of a request head, or the first
    // 1024 bytes of a longer one. The rest stays unread, and closing a socket with unread bytes
    // makes the kernel answer with a reset (RST), which can destroy the page on its way to the
    // client. Step 1's server reads up to the blank line that ends the head, with a size cap and
    // a deadline (`read_head`).
    let received = stream.read(&mut request)?;
    print!("{}", String::from_utf8_lossy(&request[..received]));
    // Flaw: no `Content-Length`: the client learns where the page ends only when the connection
    // closes. Step 1's `RESPONSE` says how long the body is.
    stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n<h1>hello world</h1>")?;
    // Flaw: dropping `stream` closes both directions at once, unread bytes or not. Step 1 shuts
    // down its write side first and waits for the client to finish (`close_gracefully`).
    Ok(())
}
