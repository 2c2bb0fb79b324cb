//! Fault and load checks that steps 6 and 7 share: the real binary, real sockets, loopback only.
//!
//! Both steps serve through the same connection state machine and must survive the same faults,
//! so the checks are written once, here, and each step's tests call them with the [`Target`].

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{Conn, get_request as get};
use crate::lifecycle::eventually;
use crate::server::Launch;
use crate::{PATIENCE, Server, Target, TestSite};

/// Sends a GET that must get a 200; returns the body as a reader, positioned after the head,
/// and the announced Content-Length.
pub(crate) fn request_body(addr: SocketAddr, path: &str) -> (BufReader<TcpStream>, usize) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(get(path).as_bytes()).unwrap();
    let mut body = BufReader::new(stream);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        let n_read = body.read_line(&mut head).unwrap();
        assert!(n_read > 0, "closed before the head");
    }
    assert!(head.starts_with("HTTP/1.1 200 "), "unexpected head: {head}");
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .expect("Content-Length");
    (body, length.parse().unwrap())
}

/// While a fresh client asks for a page, 25 clients sit idle and 25 trickle a request a byte at a
/// time, and one has asked for a large file and stopped reading. A server that waited for any of
/// them would keep the fresh client waiting for the idle timeout (10 s here).
pub fn fresh_client_is_served_among_idle_trickling_and_stalled_clients(target: &Target) {
    let site = TestSite::new();
    site.add_file("large.bin", 16 << 20);
    let server = target.start_on(&site.root(), &["--idle-timeout", "10s", "--quiet"]);
    let _idle: Vec<Conn> = (0..25).map(|_| Conn::open(server.addr())).collect();
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        for _ in 0..25 {
            let (mut conn, stop) = (Conn::open(server.addr()), &stop);
            scope.spawn(move || {
                let request = [&b"GET / HTTP/1.1\r\nX-Slow: "[..], &[b'a'; 200]].concat();
                for byte in request.chunks(1) {
                    if stop.load(Ordering::Relaxed) || conn.try_send(byte).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            });
        }
        let mut stalled = Conn::open(server.addr());
        stalled.send(get("/large.bin").as_bytes());
        thread::sleep(Duration::from_millis(200));

        let started = Instant::now();
        let response = crate::get(server.addr(), "/index.html");
        let waited = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        assert_eq!(response.status, 200);
        assert!(
            waited < Duration::from_secs(3),
            "a fresh client waited {waited:?} behind idle, trickling and stalled clients"
        );
    });
}

/// A file of `n_blocks` MiB whose every MiB starts with its own index, so a block sent twice or
/// out of order is caught, and which checks in `memcmp` time even in a debug build.
#[derive(Clone)]
struct BigFile {
    block: Vec<u8>,
    n_blocks: usize,
}

impl BigFile {
    const BLOCK: usize = 1 << 20;

    fn write_to(path: &std::path::Path, n_blocks: usize) -> BigFile {
        let block = crate::site::pseudo_random_bytes(BigFile::BLOCK);
        let mut big = BigFile { block, n_blocks };
        let mut file = fs::File::create(path).unwrap();
        for index in 0..n_blocks {
            file.write_all(big.block(index)).unwrap();
        }
        big
    }

    fn len(&self) -> usize {
        self.n_blocks * BigFile::BLOCK
    }

    /// The file's block `index`: the shared filler, stamped with its index.
    fn block(&mut self, index: usize) -> &[u8] {
        self.block[..8].copy_from_slice(&(index as u64).to_le_bytes());
        &self.block
    }

    /// Reads the body from `body` and compares it with the file, block by block.
    fn check_body(&mut self, body: &mut impl Read) {
        let mut received = vec![0u8; BigFile::BLOCK];
        for index in 0..self.n_blocks {
            body.read_exact(&mut received)
                .unwrap_or_else(|error| panic!("body cut short in block {index}: {error}"));
            let intact = received == self.block(index);
            assert!(intact, "block {index} of the body differs from the file");
        }
    }
}

/// Ten clients download a 200 MiB file at once: every byte arrives in order, and the server never
/// holds more than 64 MiB resident: files are streamed in bounded chunks, never read whole.
///
/// `blocks` is the file size in MiB (200 in the real test); smaller only to try the test quickly.
pub fn serves_a_huge_file_to_ten_clients_in_bounded_memory(target: &Target, blocks: usize) {
    let site = TestSite::new();
    let big = BigFile::write_to(&site.root().join("huge.bin"), blocks);
    let server = target.start_on(&site.root(), &["--quiet"]);
    let (addr, pid) = (server.addr(), server.pid());
    let (peak_rss, done) = (AtomicU64::new(0), AtomicBool::new(false));
    let start_together = Barrier::new(10);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                peak_rss.fetch_max(crate::procfs::rss_kib(pid), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
        });
        let clients: Vec<_> = (0..10)
            .map(|_| {
                let (mut big, start_together) = (big.clone(), &start_together);
                scope.spawn(move || {
                    start_together.wait();
                    let (mut body, length) = request_body(addr, "/huge.bin");
                    assert_eq!(length, big.len());
                    big.check_body(&mut body);
                })
            })
            .collect();
        let n_failed = clients.into_iter().filter_map(|c| c.join().err()).count();
        done.store(true, Ordering::Relaxed);
        assert_eq!(n_failed, 0, "a client saw a corrupted or short body");
    });
    let peak_mib = peak_rss.load(Ordering::Relaxed) / 1024;
    assert!(
        peak_mib < 64,
        "server RSS peaked at {peak_mib} MiB while sending {} MiB ten times",
        big.len() >> 20
    );
}

/// Clients that vanish in the middle of a large response (a reset: they close with unread data)
/// end only their own connection: the server goes on serving, and releases every descriptor.
pub fn survives_clients_that_reset_mid_response(target: &Target) {
    let site = TestSite::new();
    site.add_file("large.bin", 8 << 20);
    let server = target.start_on(&site.root(), &["--quiet"]);
    // Counted before any connection: right after a request, the server may still hold that
    // connection's socket for a moment (closing it lingers), which would inflate the baseline.
    // The open-file cache then keeps one descriptor for the large file it served: count it in.
    let baseline = server.fd_count() + 1;
    assert_eq!(crate::get(server.addr(), "/large.bin").status, 200);
    for round in 0..20 {
        let (mut body, _length) = request_body(server.addr(), "/large.bin");
        let mut some = vec![0u8; 1000 * (round + 1)];
        body.read_exact(&mut some).unwrap();
        // Closing with unread bytes in the receive buffer makes the kernel send RST, not FIN.
        drop(body);
    }
    let response = crate::get(server.addr(), "/index.html");
    assert_eq!(response.status, 200, "the server stopped serving");
    let settled = server.settle(baseline, PATIENCE, Server::fd_count);
    assert_eq!(settled, baseline, "descriptors leaked after resets");
}

/// 5,000 connections opened and closed one after another: complete requests, connections closed
/// before sending anything, requests cut off mid-head. Afterwards the server holds exactly the
/// descriptors it held before.
pub fn five_thousand_connections_leave_no_descriptor_behind(target: &Target) {
    let server = target.start_on(&crate::www_root(), &["--quiet"]);
    let baseline = server.fd_count();
    for round in 0..5_000 {
        let mut conn = Conn::open(server.addr());
        match round % 3 {
            0 => {
                let request = b"GET /style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
                assert_eq!(conn.exchange(request).status, 200, "round {round}");
                assert!(conn.is_closed_by_peer(PATIENCE), "round {round}");
            }
            1 => drop(conn),
            _ => {
                let _ = conn.try_send(b"GET /style.css HTTP/1.1\r\nHo");
                let _ = conn.stream().shutdown(Shutdown::Both);
            }
        }
    }
    let settled = server.settle(baseline, PATIENCE, Server::fd_count);
    assert_eq!(
        settled, baseline,
        "descriptors leaked after 5,000 connections"
    );
}

/// Starts `target` under a limit of 64 descriptors and connects 100 clients at once; returns when
/// the server has said it ran out.
pub(crate) fn flood_past_64_descriptors(target: &Target, extra: &[&str]) -> (Server, Vec<Conn>) {
    let launch = Launch {
        nofile_limit: Some(64),
        ..Launch::default()
    };
    let server = target.launch_on(&crate::www_root(), extra, &launch);
    let crowd = (0..100).map(|_| Conn::open(server.addr())).collect();
    let said_so = server.wait_for_stderr("Too many open files", PATIENCE);
    assert!(said_so, "no `accept failed: Too many open files` on stderr");
    (server, crowd)
}

/// Under a limit of 64 descriptors, 100 clients connect at once. The server runs out of
/// descriptors, says so, keeps serving the connections it has, and once the clients leave,
/// serves again. With `check_cpu`, it must also not spin while out of descriptors.
pub fn recovers_from_descriptor_exhaustion(target: &Target, check_cpu: bool) {
    let (server, mut crowd) = flood_past_64_descriptors(target, &["--quiet"]);
    // A connection accepted before the limit was hit is still answered. Not necessarily with the
    // file: opening it needs a descriptor too, and there is none left (the core then answers 404,
    // where 503 would be more honest; reported to the core's owner).
    crowd[0].send(get("/style.css").as_bytes());
    let mut head = [0u8; 9];
    crowd[0].stream().read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 ");
    if check_cpu {
        let cpu_before = server.cpu_time();
        thread::sleep(Duration::from_secs(1));
        let used = server.cpu_time() - cpu_before;
        assert!(
            used < Duration::from_millis(200),
            "the server used {used:?} of CPU in 1 s while out of descriptors: it spins"
        );
    }
    drop(crowd);
    // Whatever answers first after the clients left must be the page.
    let served_again = eventually(|| {
        let mut conn = Conn::open(server.addr());
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let response = conn.try_read_response(false);
        response
            .map(|response| assert_eq!(response.status, 200))
            .is_ok()
    });
    assert!(
        served_again,
        "the server never served again after the clients left"
    );
}

/// SIGTERM while one client is downloading slowly and another sits idle: the download finishes
/// intact, the idle client is let go, and the server exits with status 0.
pub fn stops_gracefully_finishing_responses_in_flight(target: &Target, signal: i32) {
    let site = TestSite::new();
    // Far larger than the socket buffers on both sides, so most of it is still in the server.
    let mut big = BigFile::write_to(&site.root().join("big.bin"), 32);
    let mut server = target.start_on(&site.root(), &["--idle-timeout", "5s", "--quiet"]);
    let mut idle = Conn::open(server.addr());
    assert_eq!(idle.exchange(get("/style.css").as_bytes()).status, 200);
    let (mut downloading, length) = request_body(server.addr(), "/big.bin");
    assert_eq!(length, big.len());
    server.signal(signal);
    let let_go = idle.is_closed_by_peer(PATIENCE);
    assert!(let_go, "the idle connection stayed open after the signal");
    big.check_body(&mut downloading);
    let status = server
        .wait_exit(PATIENCE)
        .expect("the server did not exit after the signal");
    assert!(status.success(), "exit status {status:?}");
    let accepting = TcpStream::connect(server.addr()).is_ok();
    assert!(!accepting, "still accepting after exit");
}
