//! Faults every server must survive whatever its model: a file that changes under a response,
//! and clients that vanish in the middle of one (the writes that follow raise `SIGPIPE`/`EPIPE`).

use std::fs;
use std::io::{BufReader, Read};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::http::Conn;
use crate::load::request_body;
use crate::site::{TestSite, fnv1a, pseudo_random_bytes};
use crate::{Server, Target};

const LARGE: usize = 16 * 1024 * 1024;

/// Starts a download of a large file and reads the first 64 KiB of its body, so the response has
/// begun; the rest waits in the socket buffers. Returns the body so far and the reader of the rest.
fn start_large_download(
    target: &Target,
    site: &TestSite,
) -> (Server, BufReader<TcpStream>, Vec<u8>) {
    site.add_file("large.bin", LARGE);
    let server = target.start_on(&site.root(), &["--quiet", "--idle-timeout", "10s"]);
    let (mut body, _length) = request_body(server.addr(), "/large.bin");
    let mut received = vec![0u8; 64 * 1024];
    body.read_exact(&mut received).unwrap();
    (server, body, received)
}

/// A file deleted while it is being sent arrives whole: the open descriptor keeps its data.
pub fn deleted_file_is_still_sent_whole(target: &Target) {
    let site = TestSite::new();
    let (server, mut body, mut received) = start_large_download(target, &site);
    fs::remove_file(site.root().join("large.bin")).unwrap();
    // The server keeps the connection open after the response; ask it to close by half-closing.
    let _ = body.get_ref().shutdown(Shutdown::Write);
    let _ = body.read_to_end(&mut received);
    assert_eq!(received.len(), LARGE);
    assert_eq!(fnv1a(&received), fnv1a(&pseudo_random_bytes(LARGE)));
    let status = crate::get(server.addr(), "/large.bin").status;
    assert_eq!(
        status, 404,
        "deleted means gone at the next request, though the open-file cache held it"
    );
}

/// A file replaced by rename while it is being sent (a deploy): the download in flight gets the
/// old version whole, from the descriptor it holds, and the next request gets the new one,
/// though the open-file cache held the old.
pub fn replaced_file_is_sent_whole_and_the_next_request_sees_the_new(target: &Target) {
    let site = TestSite::new();
    let (server, mut body, mut received) = start_large_download(target, &site);
    fs::write(site.root().join("large.new"), b"the new version").unwrap();
    fs::rename(site.root().join("large.new"), site.root().join("large.bin")).unwrap();
    let _ = body.get_ref().shutdown(Shutdown::Write);
    let _ = body.read_to_end(&mut received);
    assert_eq!(received.len(), LARGE);
    assert_eq!(fnv1a(&received), fnv1a(&pseudo_random_bytes(LARGE)));
    let next = crate::get(server.addr(), "/large.bin");
    assert_eq!(
        (next.status, next.text().as_str()),
        (200, "the new version")
    );
}

/// A file truncated while it is being sent: the server cannot keep the length it promised, so it
/// closes the connection early, and goes on serving others.
pub fn truncated_file_ends_the_connection_not_the_server(target: &Target) {
    let site = TestSite::new();
    let (server, mut body, mut received) = start_large_download(target, &site);
    let file = fs::File::options()
        .write(true)
        .open(site.root().join("large.bin"));
    file.unwrap().set_len(1024).unwrap();
    let _ = body.read_to_end(&mut received);
    assert!(
        received.len() < LARGE,
        "a truncated file cannot arrive whole"
    );
    let status = crate::get(server.addr(), "/").status;
    assert_eq!(status, 200, "the server must go on serving");
    let next = crate::get(server.addr(), "/large.bin");
    assert_eq!(
        (next.status, next.body.len()),
        (200, 1024),
        "the next request sees the truncated file, though the open-file cache held it"
    );
}

/// Clients that close with a response half sent make the server's next write fail with `EPIPE`
/// (and raise `SIGPIPE`, which kills a process by default). The server must live on.
pub fn vanishing_clients_never_kill_the_server(target: &Target) {
    let site = TestSite::new();
    site.add_file("large.bin", LARGE);
    let mut server = target.start_on(&site.root(), &["--quiet"]);
    for _ in 0..20 {
        let mut conn = Conn::open(server.addr());
        conn.send(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut some = [0u8; 4096];
        let _ = conn.stream().read(&mut some);
        let _ = conn.stream().shutdown(Shutdown::Both);
    }
    let alive = server.wait_exit(Duration::from_millis(300)).is_none();
    assert!(alive, "the server died");
    assert_eq!(crate::get(server.addr(), "/").status, 200);
}

/// A client that asks for a large file and then stops reading holds the server's side of the
/// connection (a blocking worker, in steps 2–5) for about the idle timeout, not for a multiple of
/// it: the timeout bounds the response's progress as a whole, not each write, and a write that
/// sends a little before it times out does not start the clock again.
pub fn a_client_that_stops_reading_is_dropped_after_the_idle_timeout(target: &Target) {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let site = TestSite::new();
    site.add_file("large.bin", LARGE);
    let server = target.start_on(&site.root(), &["--quiet", "--idle-timeout", "1s"]);
    let mut stalled = TcpStream::connect(server.addr()).unwrap();
    std::io::Write::write_all(&mut stalled, b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // The socket buffers fill, then nothing moves. A server that gave up has closed by now, and
    // reading shows only what was already buffered; one still waiting resumes and sends it all.
    std::thread::sleep(TIMEOUT * 5 / 2);
    stalled.set_read_timeout(Some(crate::PATIENCE)).unwrap();
    let mut received = Vec::new();
    let _ = stalled.read_to_end(&mut received);
    assert!(
        received.len() < LARGE,
        "still sending after 2.5 × the idle timeout: {} bytes arrived",
        received.len()
    );
    assert_eq!(crate::get(server.addr(), "/").status, 200);
}

/// An open-file cache full of large files never takes the descriptors clients need: under a
/// limit of 128 descriptors, 200 files of 20 KiB (each cached with its descriptor open) are each
/// fetched once, and every answer, then and after, is the file, never a 503; the server holds
/// at most half its descriptors once all are cached.
pub fn a_full_file_cache_leaves_descriptors_for_clients(target: &Target) {
    const FILES: usize = 200;
    let site = TestSite::new();
    for index in 0..FILES {
        site.add_file(&format!("photo-{index}.bin"), 20 * 1024);
    }
    let launch = crate::server::Launch {
        nofile_limit: Some(128),
        ..crate::server::Launch::default()
    };
    let server = target.launch_on(&site.root(), &["--quiet"], &launch);
    let statuses = |range: std::ops::Range<usize>| -> Vec<(usize, u16)> {
        range
            .map(|index| {
                let path = format!("/photo-{index}.bin");
                (index, crate::get(server.addr(), &path).status)
            })
            .filter(|&(_, status)| status != 200)
            .collect()
    };
    let refused = statuses(0..FILES);
    assert!(refused.is_empty(), "while filling the cache: {refused:?}");
    // A quarter of the limit for the cache, a few for listeners, logs and loops: never most.
    let held = server.fd_count();
    assert!(
        held <= 64,
        "{held} of 128 descriptors held with every file cached"
    );
    let refused = statuses(0..20);
    assert!(refused.is_empty(), "after: {refused:?}");
}
