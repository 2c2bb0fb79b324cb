//! The production servers of `--peer`: each installed one starts through the harness on a port of its
//! own, from its configuration in `bench/peers/`, and serves the benchmark's document root; a name
//! that is not a peer is refused. A peer that is not installed is skipped with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use bench::compare::{self, CompareOptions, CompareResults};
use bench::docroot::{BIG_BYTES, BIG_PATH, DocRoot, SMALL_PATH};
use bench::peers::{PEERS, Peer};

/// One `GET path` with `Connection: close`: the status line and the body's length.
fn get(addr: std::net::SocketAddr, path: &str) -> (String, usize) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let head_end = text.find("\r\n\r\n").expect("a complete head");
    let status = text.lines().next().unwrap_or_default().to_owned();
    (status, response.len() - head_end - 4)
}

#[test]
fn every_installed_peer_serves_the_document_root() {
    let root = DocRoot::create().unwrap();
    let page = std::fs::read(root.path().join(SMALL_PATH.trim_start_matches('/'))).unwrap();
    for kind in PEERS {
        let peer = Peer::parse(kind.name).unwrap();
        if let Err(reason) = peer.binary() {
            println!("SKIPPED {peer}: {reason}");
            continue;
        }
        let (server, _prefix) = peer.start(root.path()).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            get(server.addr(), SMALL_PATH),
            ("HTTP/1.1 200 OK".to_owned(), page.len()),
            "{peer}"
        );
        assert_eq!(get(server.addr(), BIG_PATH).1, BIG_BYTES, "{peer}");
        let missing = get(server.addr(), "/no-such-file").0;
        assert!(missing.starts_with("HTTP/1.1 404 "), "{peer}: {missing}");
        server.stop();
    }
}

#[test]
fn a_peer_runs_the_workers_it_is_given() {
    let Ok(peer) = Peer::parse("h2o:2") else {
        unreachable!("h2o is a peer")
    };
    if let Err(reason) = peer.binary() {
        println!("SKIPPED: {reason}");
        return;
    }
    let root = DocRoot::create().unwrap();
    let (server, _prefix) = peer.start(root.path()).unwrap();
    // h2o runs one event loop per `num-threads` besides its main thread, started once it listens.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.thread_count() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.thread_count(), 3);
    server.stop();
}

#[test]
fn an_unknown_peer_is_refused_with_the_known_ones() {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["compare", "--peer", "iis"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown peer \"iis\"") && stderr.contains("apache-prefork"),
        "{stderr}"
    );
}

#[test]
fn syscalls_are_counted_in_a_run_of_their_own() {
    let peer = Peer::nginx(1);
    if let Err(reason) = peer.binary() {
        println!("SKIPPED: {reason}");
        return;
    }
    if Command::new("strace").arg("-V").output().is_err() {
        println!("SKIPPED: no strace");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let options = CompareOptions {
        no_steps: true,
        nginx_workers: vec![1],
        peers: vec![peer],
        scenarios: vec!["keep-alive-c16-small".to_owned()],
        out: Some(out.path().to_path_buf()),
        duration: Some(Duration::from_millis(300)),
        warmup: Some(Duration::ZERO),
        threads: 1,
        repeat: 2,
        syscalls: true,
        ..CompareOptions::default()
    };
    compare::run(&options, "test").unwrap();
    let json = std::fs::read_to_string(out.path().join("results.json")).unwrap();
    let results: CompareResults = serde_json::from_str(&json).unwrap();
    assert_eq!(
        results.runs.len(),
        2,
        "--nginx 1 and --peer nginx are one server"
    );
    let counted: Vec<_> = results
        .runs
        .iter()
        .filter_map(|run| run.syscalls.as_ref())
        .collect();
    assert_eq!(
        counted.len(),
        1,
        "counted in the first round only: {results:?}"
    );
    let count = counted[0];
    assert!(count.requests >= 2000, "{count:?}");
    // At least a read and a write per request, and far fewer than a busy loop would make.
    assert!((2.0..100.0).contains(&count.per_request), "{count:?}");
    if count.tool.starts_with("strace") {
        assert!(
            count.top.iter().any(|(name, _)| name.contains("write")),
            "{count:?}"
        );
    }
    let markdown = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    assert!(markdown.contains("| syscalls/req |"), "{markdown}");
    assert!(markdown.contains("nginx-1 (beside step07-1)"), "{markdown}");
}
