//! The first program of step 2: the tutorial's static-file server, whole, in plain Rust.
//!
//! Step 1's loop, but the page comes from a file: a regex takes the path out of the request line,
//! and the file under `www/` with that name is the answer. It keeps the tutorial's flaws (marked
//! `Flaw:`), one of them dangerous: do not run it where anyone else can reach it.
//!
//! Run it: `cargo run -p step02-files --example first-files [ADDR]` (default 127.0.0.1:7080),
//! then open <http://127.0.0.1:7080/>.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use regex::Regex;

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
    eprintln!("warning: this server sends files from outside www/ (try /../Cargo.toml)");
    // The request line: a method, a space, then the path up to the next space.
    let request_line = Regex::new(r"^[A-Z]+ (/[^ ]*)")?;
    for stream in listener.incoming() {
        if let Err(error) = stream.and_then(|stream| handle(stream, &request_line)) {
            eprintln!("error: {error}");
        }
    }
    Ok(())
}

fn handle(mut stream: TcpStream, request_line: &Regex) -> std::io::Result<()> {
    let mut buffer = [0u8; 1024];
    // Flaw: one `read`, as in step 1's first program: a head longer than what has arrived is
    // cut, and closing with its rest unread resets the client. Step 2 reads to the blank line.
    let received = stream.read(&mut buffer)?;
    let request = String::from_utf8_lossy(&buffer[..received]);
    let lines: Vec<&str> = request.lines().collect();
    // Flaw: a client that connects and sends nothing (browsers do, to have a connection ready)
    // makes `lines` empty, `lines[0]` panics, and the whole server is gone. Step 2 answers what
    // it cannot parse with a 400 and treats an empty connection as no request at all.
    println!("{}", lines[0]);
    let path = match request_line.captures(lines[0]) {
        Some(captures) if &captures[1] == "/" => "/index.html".to_string(),
        Some(captures) => captures[1].to_string(),
        None => "/index.html".to_string(),
    };
    // Flaw: the path goes straight onto the root, so `/../Cargo.toml` names a file outside it
    // and the server sends it. Step 2 resolves the path and refuses anything outside the root.
    let response = match std::fs::read(format!("{ROOT}{path}")) {
        Ok(body) => [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), &body].concat(),
        Err(_) => b"HTTP/1.1 404 Not Found\r\n\r\nfile not found".to_vec(),
    };
    // Flaw: no `Content-Length` (nor `Content-Type`): the client learns where the file ends only
    // when the connection closes, so a connection serves one request. Step 2 sends both.
    stream.write_all(&response)
}
