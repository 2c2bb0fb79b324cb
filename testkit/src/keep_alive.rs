//! Persistent connections (RFC 9112 §9.3): the tests for steps that keep connections alive.

use std::time::Duration;

use crate::http::{Conn, get_request as get};
use crate::{PATIENCE, Target};

/// Three requests in one write come back as three responses, in order, on an open connection.
pub fn answers_pipelined_requests_in_order(target: &Target) {
    let server = target.start_on(&crate::www_root(), &[]);
    let mut conn = Conn::open(server.addr());
    let batch = [
        get("/hello%20world.txt"),
        get("/docs/"),
        get("/no-such-file"),
    ];
    conn.send(batch.concat().as_bytes());
    let first = conn.read_response(false);
    let second = conn.read_response(false);
    let third = conn.read_response(false);
    assert_eq!((first.status, second.status, third.status), (200, 200, 404));
    let in_order = first.text().contains("space") && second.text().contains("subfolder");
    assert!(in_order, "the answers are not the first file, then /docs/");
    assert!(!third.says_close(), "a 404 need not close the connection");
    let status = conn.exchange(get("/").as_bytes()).status;
    assert_eq!(status, 200, "the connection should still serve");
}

/// Reads the next response on `conn`, which must be `status`, say `Connection: close`, and be
/// followed by the close.
pub(crate) fn answers_then_closes(conn: &mut Conn, status: u16) {
    let response = conn.read_response(false);
    assert_eq!(response.status, status);
    assert!(response.says_close(), "no Connection: close");
    assert!(conn.is_closed_by_peer(PATIENCE), "did not close");
}

/// `Connection: close` from the client: the server answers, says so, and closes.
pub fn connection_close_is_honoured(target: &Target) {
    let server = target.start_on(&crate::www_root(), &[]);
    let mut conn = Conn::open(server.addr());
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    answers_then_closes(&mut conn, 200);
}

/// HTTP/1.0 closes by default and keeps the connection only with `Connection: keep-alive`,
/// which the response then confirms.
pub fn http10_closes_unless_asked_to_keep_alive(target: &Target) {
    let server = target.start_on(&crate::www_root(), &[]);
    let mut plain = Conn::open(server.addr());
    plain.send(b"GET / HTTP/1.0\r\n\r\n");
    answers_then_closes(&mut plain, 200);

    let mut kept = Conn::open(server.addr());
    kept.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let confirmed = kept
        .read_response(false)
        .header("connection")
        .map(str::to_lowercase);
    assert_eq!(confirmed.as_deref(), Some("keep-alive"));
    let again = kept.exchange(b"GET /docs/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(again.status, 200);
}

/// An idle connection is closed once the idle timeout passes, and not long before.
pub fn idle_timeout_closes_the_connection(target: &Target) {
    let server = target.start_on(&crate::www_root(), &["--idle-timeout", "400ms"]);
    let mut conn = Conn::open(server.addr());
    assert_eq!(conn.exchange(get("/").as_bytes()).status, 200);
    let waited = conn.time_until_closed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}, before the idle timeout"
    );
}

/// HEAD (no body follows) and a GET that carries a small body both leave the connection framed
/// right for the next request.
pub fn head_and_bodies_keep_framing(target: &Target) {
    let server = target.start_on(&crate::www_root(), &[]);
    let mut conn = Conn::open(server.addr());
    let head = conn.exchange(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let with_body =
        conn.exchange(b"GET /docs/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody");
    assert!(with_body.text().contains("subfolder"));
    let next = conn.exchange(get("/hello%20world.txt").as_bytes());
    assert!(next.text().contains("space"));
}
