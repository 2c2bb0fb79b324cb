//! The first program of step 8: step 7's first program translated to io_uring, naively, whole,
//! in plain Rust with the `io-uring` crate.
//!
//! Every operation (accept, receive, send) is put on the submission ring and then waited for at
//! once with `submit_and_wait(1)`: io_uring used as a slower way to make system calls. It works,
//! and it shows what io_uring does not give for free (marked `Flaw:`).
//!
//! Run it: `cargo run -p step08-uring --example first-uring [ADDR]` (default 127.0.0.1:7080),
//! then open <http://127.0.0.1:7080/>. Linux only.

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::net::{SocketAddr, TcpListener};
    use std::os::fd::AsRawFd;

    use io_uring::{IoUring, opcode, types};

    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7080".to_string())
        .parse()?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: this program only listens on loopback (127.0.0.1)").into());
    }
    let listener = TcpListener::bind(addr)?;
    println!("Listening on http://{}/", listener.local_addr()?);
    let mut ring = IoUring::new(8)?;
    loop {
        let accept = opcode::Accept::new(
            types::Fd(listener.as_raw_fd()),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
        .build();
        // Flaw: one operation per submission and one wait per operation. Every accept, receive
        // and send costs an `io_uring_enter`, so a request costs at least as many system calls
        // as with epoll. Step 8 submits a whole batch in the call that also waits.
        let client = run_one(&mut ring, &accept)?;
        if client < 0 {
            continue;
        }
        // Flaw: the loop waits for this client's every operation before it accepts the next:
        // one silent client holds up everyone, as in step 2. Step 8 keeps every connection's
        // operations in flight at once and handles completions in whatever order they come.
        serve_client(&mut ring, client);
        // SAFETY: `client` is the descriptor the accept returned; nothing else owns it, and no
        // operation on it is in flight (each was waited for).
        unsafe { libc_close(client) };
    }
}

/// Answers requests on one connection until the client closes it.
#[cfg(target_os = "linux")]
fn serve_client(ring: &mut io_uring::IoUring, client: i32) {
    use io_uring::{opcode, types};
    let mut head = Vec::new();
    loop {
        // Flaw: a buffer per connection, owned by the kernel while the receive waits for bytes.
        // Ten thousand idle clients would pin ten thousand buffers. Step 8 lends the kernel one
        // ring of buffers that it takes from only when bytes arrive.
        let mut chunk = [0u8; 1024];
        let recv =
            opcode::Recv::new(types::Fd(client), chunk.as_mut_ptr(), chunk.len() as u32).build();
        let received = match run_one(ring, &recv) {
            Ok(received) if received > 0 => received as usize,
            _ => return,
        };
        head.extend_from_slice(&chunk[..received]);
        if head.windows(4).any(|window| window == b"\r\n\r\n") {
            let response = respond(&head);
            head.clear();
            let send =
                opcode::Send::new(types::Fd(client), response.as_ptr(), response.len() as u32)
                    .build();
            // Flaw: a short send loses the rest of the response, as `write` did in step 6's
            // first program. Step 8 sends the rest when the completion says how much went out.
            if run_one(ring, &send).is_err() {
                return;
            }
        }
    }
}

/// Submits `entry`, waits for its completion and returns its result (negative: an errno).
#[cfg(target_os = "linux")]
fn run_one(ring: &mut io_uring::IoUring, entry: &io_uring::squeue::Entry) -> std::io::Result<i32> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT_TAG: AtomicU64 = AtomicU64::new(1);
    let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
    let entry = entry.clone().user_data(tag);
    // SAFETY: every buffer `entry` names lives on the caller's stack until this function has
    // seen the completion: the kernel owns it only while we wait here.
    unsafe { ring.submission().push(&entry) }.map_err(std::io::Error::other)?;
    loop {
        match ring.submit_and_wait(1) {
            // A signal (or a debugger attaching) interrupted the wait: the operation is still
            // in flight, wait again.
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            result => {
                result?;
            }
        }
        // Only this operation's completion counts (one interrupted earlier may come late).
        let found = ring
            .completion()
            .find(|completion| completion.user_data() == tag);
        match found {
            // Interrupted in the kernel: run it again.
            Some(completion) if completion.result() == -4 => {
                // SAFETY: as above; the first attempt has completed, so the buffers are free.
                unsafe { ring.submission().push(&entry) }.map_err(std::io::Error::other)?;
            }
            Some(completion) => return Ok(completion.result()),
            None => {}
        }
    }
}

/// Answers a request head with the file it names under `www/`.
fn respond(head: &[u8]) -> Vec<u8> {
    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");
    let request = String::from_utf8_lossy(head);
    let path = request.split(' ').nth(1).unwrap_or("/");
    let path = if path == "/" { "/index.html" } else { path };
    // Refusing `..` keeps this program inside `www/` (step 2's first program did not).
    let file = (!path.contains("..")).then(|| std::fs::read(format!("{ROOT}{path}")));
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

/// Closes a descriptor (std has no safe way to close a raw one without owning it first).
///
/// # Safety
///
/// `fd` must be open and owned by the caller.
#[cfg(target_os = "linux")]
unsafe fn libc_close(fd: i32) {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: the caller owns `fd`; the OwnedFd closes it when dropped.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("first-uring: io_uring is Linux's: this program runs on Linux only");
    std::process::exit(1);
}
