//! A tiny in-test HTTP server that answers every request with fixed bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use bench::target::Target;

/// What the test server does after reading one request.
#[derive(Clone, Copy)]
pub enum Answer {
    /// Write these bytes and keep reading requests.
    Write(&'static [u8]),
    /// Write these bytes and close the connection.
    WriteAndClose(&'static [u8]),
    /// Never answer (hold the connection until the client gives up).
    Stall,
    /// Like `Write`, but pause this long before the n-th answer (1-based) of each connection.
    PauseBefore(usize, std::time::Duration, &'static [u8]),
}

/// Starts a server on 127.0.0.1:0 that answers every request with `answer`, one thread per connection.
/// The threads die with the test process.
pub fn serve(answer: Answer) -> Target {
    serve_counting(answer).0
}

/// Like [`serve`], also counting the connections accepted.
pub fn serve_counting(answer: Answer) -> (Target, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            counter.fetch_add(1, Ordering::Relaxed);
            thread::spawn(move || handle(stream, answer));
        }
    });
    let target = Target::parse(&format!("http://{addr}/index.html")).unwrap();
    (target, accepted)
}

fn handle(mut stream: TcpStream, answer: Answer) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut answered = 0;
    loop {
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            answered += 1;
            let (bytes, close) = match answer {
                Answer::Write(bytes) => (bytes, false),
                Answer::WriteAndClose(bytes) => (bytes, true),
                Answer::Stall => continue,
                Answer::PauseBefore(nth, pause, bytes) => {
                    if answered == nth {
                        thread::sleep(pause);
                    }
                    (bytes, false)
                }
            };
            if stream.write_all(bytes).is_err() || close {
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}
