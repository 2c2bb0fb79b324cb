//! Step 2's first program against step 2's server: `..` in the path, and a connection that sends
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use testkit::{PATIENCE, Server};

const STEP: &str = env!("CARGO_BIN_EXE_step02-files");

/// Sends `request`, then reads until the server closes (the first program sends no length).
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn dot_dot_reads_outside_the_root_in_the_first_program_not_in_step_2() {
    let first = Server::example("first-files");
    let answer = get(first.addr(), "/../Cargo.toml");
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.contains("[workspace]"),
        "the first program should send the workspace's Cargo.toml, outside www/: {answer:?}"
    );
    assert!(
        first.wait_for_stderr("outside", PATIENCE),
        "the first program warns on stderr that it reads outside its root"
    );

    // Step 2, on a temporary root with a secret planted beside it.
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("index.html"), "inside").unwrap();
    std::fs::write(scratch.path().join("secret.txt"), "planted secret").unwrap();
    let step = Server::start(STEP, &["--quiet", "--root", root.to_str().unwrap()]);
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2E%2E%2Fsecret.txt",
    ] {
        let answer = get(step.addr(), path);
        assert!(answer.starts_with("HTTP/1.1 "), "{path}: {answer:?}");
        assert!(
            !answer.contains("planted secret"),
            "{path} escaped the root"
        );
    }
    let www = Server::start(STEP, &["--quiet"]);
    assert!(!get(www.addr(), "/../Cargo.toml").contains("[workspace]"));
}

#[test]
fn an_empty_connection_kills_the_first_program_not_step_2() {
    let mut first = Server::example("first-files");
    drop(TcpStream::connect(first.addr()).unwrap());
    let status = first
        .wait_exit(PATIENCE)
        .expect("the first program should die on an empty request");
    assert!(!status.success(), "it panicked: {status}");

    let step = Server::start(STEP, &["--quiet"]);
    drop(TcpStream::connect(step.addr()).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    let answer = get(step.addr(), "/");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
}
