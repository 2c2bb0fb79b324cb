//! The first program of step 3: the tutorial's process-per-connection server, whole, in plain Rust.
//!
//! The parent accepts; for each client it `fork`s a copy of itself (through `nix`) that serves
//! that one client and exits, while the parent goes back to `accept`. A slow client now holds up
//! only its own process. It keeps the tutorial's flaws (marked `Flaw:`).
//!
//! Run it: `cargo run -p step03-process --example first-process [ADDR]` (default
//! 127.0.0.1:7080), then open <http://127.0.0.1:7080/> and watch `ps -o pid,stat,cmd --ppid PID`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use nix::unistd::{ForkResult, fork};

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
        // SAFETY: this program runs one thread, so the child starts from a consistent copy: no
        // lock can be held by a thread that does not exist in the child.
        match unsafe { fork() }? {
            ForkResult::Child => {
                if let Err(error) = handle(stream) {
                    eprintln!("error: {error}");
                }
                std::process::exit(0);
            }
            // Flaw: nobody waits for the child. Each child that exits stays a zombie, an entry in
            // the process table holding its exit status, until this server exits; enough of them
            // and `fork` fails. Step 3 reaps its children (`waitpid`) when SIGCHLD says one ended.
            ForkResult::Parent { child } => println!("forked {child}"),
        }
        // The parent's copy of the client's socket closes here, as `stream` goes out of scope:
        // the tutorial's `client.close()` in the parent is what ownership does anyway.
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
