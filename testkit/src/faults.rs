//! Faults every server must survive whatever its model: a file that changes under a response,
//! and clients that vanish in the middle of one (the writes that follow raise `SIGPIPE`/`EPIPE`).

use std::fs;
use std::io::Read;
use std::net::Shutdown;
use std::time::Duration;

use crate::http::Conn;
use crate::site::{TestSite, fnv1a, pseudo_random_bytes};
use crate::{PATIENCE, Target};

const LARGE: usize = 16 * 1024 * 1024;

fn start_large_download(target: &Target, site: &TestSite) -> (crate::Server, Conn, Vec<u8>) {
    let expected = pseudo_random_bytes(LARGE);
    fs::write(site.root().join("large.bin"), &expected).unwrap();
    let server = target.start_on(&site.root(), &["--quiet", "--idle-timeout", "10s"]);
    let mut conn = Conn::open(server.addr());
    conn.send(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    // Read a little so the response has begun; the rest waits in the socket buffers.
    let mut first = vec![0u8; 64 * 1024];
    conn.stream().set_read_timeout(Some(PATIENCE)).unwrap();
    conn.stream().read_exact(&mut first).unwrap();
    (server, conn, first)
}

fn read_rest(conn: &Conn, first: Vec<u8>) -> Vec<u8> {
    let mut received = first;
    let _ = conn.stream().read_to_end(&mut received);
    received
}

fn body_of(received: &[u8]) -> &[u8] {
    let head_end = received
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap()
        + 4;
    &received[head_end..]
}

/// A file deleted while it is being sent arrives whole: the open descriptor keeps its data.
pub fn deleted_file_is_still_sent_whole(target: &Target) {
    let site = TestSite::new();
    let (server, conn, first) = start_large_download(target, &site);
    fs::remove_file(site.root().join("large.bin")).unwrap();
    let received = read_rest_with_close(&conn, first);
    let body = body_of(&received);
    assert_eq!(body.len(), LARGE);
    assert_eq!(fnv1a(body), fnv1a(&pseudo_random_bytes(LARGE)));
    // The open-file cache may serve what it found for up to its interval (1 s by default).
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        crate::get(server.addr(), "/large.bin").status,
        404,
        "deleted means gone once the open-file cache revalidates"
    );
}

fn read_rest_with_close(conn: &Conn, first: Vec<u8>) -> Vec<u8> {
    // The server keeps the connection open after the response; ask it to close by half-closing.
    let _ = conn.stream().shutdown(Shutdown::Write);
    read_rest(conn, first)
}

/// A file truncated while it is being sent: the server cannot keep the length it promised, so it
/// closes the connection early, and goes on serving others.
pub fn truncated_file_ends_the_connection_not_the_server(target: &Target) {
    let site = TestSite::new();
    let (server, conn, first) = start_large_download(target, &site);
    fs::File::options()
        .write(true)
        .open(site.root().join("large.bin"))
        .unwrap()
        .set_len(1024)
        .unwrap();
    let received = read_rest(&conn, first);
    assert!(
        body_of(&received).len() < LARGE,
        "a truncated file cannot arrive whole"
    );
    assert_eq!(
        crate::get(server.addr(), "/").status,
        200,
        "the server must go on serving"
    );
}

/// Clients that close with a response half sent make the server's next write fail with `EPIPE`
/// (and raise `SIGPIPE`, which kills a process by default). The server must live on.
pub fn vanishing_clients_never_kill_the_server(target: &Target) {
    let site = TestSite::new();
    fs::write(site.root().join("large.bin"), pseudo_random_bytes(LARGE)).unwrap();
    let mut server = target.start_on(&site.root(), &["--quiet"]);
    for _ in 0..20 {
        let mut conn = Conn::open(server.addr());
        conn.send(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut some = [0u8; 4096];
        let _ = conn.stream().read(&mut some);
        let _ = conn.stream().shutdown(Shutdown::Both);
    }
    assert!(
        server.wait_exit(Duration::from_millis(300)).is_none(),
        "the server died"
    );
    assert_eq!(crate::get(server.addr(), "/").status, 200);
}
