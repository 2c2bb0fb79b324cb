//! The sans-I/O core on its own: the parser from tables, the decoder's framing, the document root,
//! and property tests that throw arbitrary bytes and paths at both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};

use proptest::prelude::*;
use step02_files::{
    DocRoot, HttpError, Limits, Method, Parsed, Request, RequestDecoder, Resolved, Version,
    parse_request,
};

fn parse(input: &str) -> Result<Parsed, HttpError> {
    parse_request(input.as_bytes(), &Limits::default())
}

/// Parses `input`, which must be one whole request, and returns it.
fn complete(input: &str) -> Request {
    match parse(input) {
        Ok(Parsed::Complete(request, used)) => {
            assert_eq!(used, input.len(), "{input:?} should be consumed whole");
            request
        }
        other => panic!("{input:?} gave {other:?}"),
    }
}

#[test]
fn valid_requests_parse_to_their_parts() {
    let request = complete(
        "GET /docs/caf%C3%A9.html?x=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent:  curl/8 \r\n\r\n",
    );
    assert_eq!(request.method, Method::Get);
    assert_eq!(request.target, "/docs/caf%C3%A9.html?x=%20");
    assert_eq!(request.path, "/docs/café.html");
    assert_eq!(request.version, Version::Http11);
    assert_eq!(request.header("user-agent"), Some("curl/8"));
    assert_eq!(request.header("HOST"), Some("example.com"));
    assert!(request.keep_alive);
    assert_eq!(request.content_length, 0);

    let cases: &[(&str, Method, bool)] = &[
        ("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", Method::Head, true),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            Method::Get,
            false,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n",
            Method::Get,
            false,
        ),
        ("GET / HTTP/1.0\r\n\r\n", Method::Get, false),
        (
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            Method::Get,
            true,
        ),
        ("GET / HTTP/1.1\nHost: a\n\n", Method::Get, true),
        (
            "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Method::Get,
            true,
        ),
        (
            "OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n",
            Method::Other("OPTIONS".into()),
            true,
        ),
    ];
    for (input, method, keep_alive) in cases {
        let request = complete(input);
        assert_eq!(&request.method, method, "{input:?}");
        assert_eq!(request.keep_alive, *keep_alive, "{input:?}");
    }
}

#[test]
fn an_absolute_form_target_is_read_as_its_path() {
    for (target, origin, path) in [
        ("http://a/index.html?x=1", "/index.html?x=1", "/index.html"),
        ("HTTP://a:8080/docs/", "/docs/", "/docs/"),
        ("https://a", "/", "/"),
        ("http://a?x=1", "/", "/"),
        ("/?next=http://b/", "/?next=http://b/", "/"),
    ] {
        let request = complete(&format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert_eq!(
            (request.target.as_str(), request.path.as_str()),
            (origin, path),
            "{target}"
        );
    }
}

#[test]
fn every_prefix_of_a_valid_request_is_partial() {
    let requests = [
        "GET /a%20b?q HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
        "HEAD / HTTP/1.0\n\n",
        "\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
    ];
    for request in requests {
        for end in 0..request.len() {
            assert_eq!(
                parse(&request[..end]),
                Ok(Parsed::Partial),
                "prefix {:?}",
                &request[..end]
            );
        }
        assert!(matches!(parse(request), Ok(Parsed::Complete(..))));
    }
}

#[test]
fn bad_requests_give_their_error() {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(8 * 1024));
    let endless_line = format!("GET /{}", "x".repeat(9 * 1024));
    let endless_head = format!("GET / HTTP/1.1\r\n{}", "X: y\r\n".repeat(3000));
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
        "X: y\r\n".repeat(100)
    );
    let endless_blank_lines = "\r\n".repeat(9000);
    let cases: &[(&str, HttpError)] = &[
        ("GET / HTTP/2.0\r\n\r\n", HttpError::VersionNotSupported),
        ("GET / HTTP/0.9\r\n\r\n", HttpError::VersionNotSupported),
        ("GET / HTTP/1.1x\r\n\r\n", HttpError::BadRequestLine),
        ("GET /\r\n\r\n", HttpError::BadRequestLine),
        (
            "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
            HttpError::BadRequestLine,
        ),
        (
            " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            HttpError::BadRequestLine,
        ),
        (
            "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            HttpError::BadRequestLine,
        ),
        ("GET / HTTP/1.1\rHost: a\r\n\r\n", HttpError::BadLineEnding),
        (&long_target, HttpError::UriTooLong),
        (&endless_line, HttpError::UriTooLong),
        (&endless_head, HttpError::HeadTooLarge),
        (&many_headers, HttpError::HeadTooLarge),
        (&endless_blank_lines, HttpError::HeadTooLarge),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HttpError::BadHeader),
        (
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            HttpError::BadHeader,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
            HttpError::BadHeader,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
            HttpError::BadHeader,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n",
            HttpError::BadHeader,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n",
            HttpError::BadHeader,
        ),
        ("GET / HTTP/1.1\r\n\r\n", HttpError::BadHost),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
            HttpError::BadHost,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpError::TransferEncodingNotImplemented,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpError::BadContentLength,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n",
            HttpError::BadContentLength,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
            HttpError::BadContentLength,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
            HttpError::BadContentLength,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            HttpError::BadContentLength,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            HttpError::BadContentLength,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 65537\r\n\r\n",
            HttpError::BodyTooLarge,
        ),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::BadTarget),
        (
            "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            HttpError::BadTarget,
        ),
        (
            "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
            HttpError::BadTarget,
        ),
        (
            "GET http://user@a/x HTTP/1.1\r\nHost: a\r\n\r\n",
            HttpError::BadTarget,
        ),
        ("GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::BadTarget),
        ("GET /%4 HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::BadTarget),
        (
            "GET /a%00 HTTP/1.1\r\nHost: a\r\n\r\n",
            HttpError::BadTarget,
        ),
        (
            "GET /%c0%ae HTTP/1.1\r\nHost: a\r\n\r\n",
            HttpError::BadTarget,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            parse(input),
            Err(*expected),
            "{:?}",
            &input[..input.len().min(80)]
        );
    }
}

#[test]
fn statuses_match_the_contract() {
    let statuses: Vec<u16> = [
        HttpError::BadRequestLine,
        HttpError::VersionNotSupported,
        HttpError::UriTooLong,
        HttpError::HeadTooLarge,
        HttpError::TransferEncodingNotImplemented,
        HttpError::BodyTooLarge,
    ]
    .iter()
    .map(|error| error.status().as_u16())
    .collect();
    assert_eq!(statuses, [400, 505, 414, 431, 501, 413]);
}

#[test]
fn a_large_body_on_another_method_is_not_refused_as_413() {
    // The server never reads a POST body, so its size is irrelevant: the answer is 405.
    let request = complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n");
    assert_eq!(request.method, Method::Other("POST".into()));
}

// The decoder: framing across reads.

#[test]
fn decoder_frames_pipelined_requests_and_skips_bodies_split_across_reads() {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.feed(b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
    assert_eq!(decoder.next_request().unwrap().unwrap().path, "/a");
    assert_eq!(decoder.next_request(), Ok(None));
    assert!(
        decoder.has_partial_request(),
        "half a body is still to come"
    );
    decoder.feed(b"56789GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\n");
    assert_eq!(decoder.next_request().unwrap().unwrap().path, "/b");
    assert_eq!(decoder.next_request(), Ok(None));
    decoder.feed(b"Host: x\r\n\r\n");
    assert_eq!(decoder.next_request().unwrap().unwrap().path, "/c");
    assert!(!decoder.has_partial_request());
}

#[test]
fn decoder_fed_one_byte_at_a_time_yields_the_same_requests() {
    let stream = b"GET /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nabGET /2 HTTP/1.1\nHost: x\n\nHEAD /3 HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut paths = Vec::new();
    for byte in stream {
        decoder.feed(std::slice::from_ref(byte));
        while let Some(request) = decoder.next_request().unwrap() {
            paths.push(request.path);
        }
    }
    assert_eq!(paths, ["/1", "/2", "/3"]);
}

#[test]
fn decoder_stops_after_a_request_whose_body_it_will_not_read() {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        !decoder
            .next_request()
            .unwrap()
            .unwrap()
            .method
            .is_supported()
    );
    assert_eq!(decoder.next_request(), Ok(None));
    assert!(decoder.is_finished());
}

#[test]
fn decoder_stops_after_an_error() {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.feed(b"GET / HTTP/9.9\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(decoder.next_request(), Err(HttpError::VersionNotSupported));
    assert_eq!(decoder.next_request(), Ok(None));
    assert!(decoder.is_finished());
}

#[test]
fn decoder_reports_an_overlong_line_before_the_newline_arrives() {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.feed(b"GET /");
    for _ in 0..100 {
        decoder.feed(&[b'a'; 100]);
        if let Err(error) = decoder.next_request() {
            assert_eq!(error, HttpError::UriTooLong);
            return;
        }
    }
    panic!("10 KB without a newline should be refused");
}

// The document root.

struct Fixture {
    _dir: tempfile::TempDir,
    /// The root as servers open it (`openat2` on Linux).
    root: DocRoot,
    /// The same root, resolved the portable way (check each component, then open).
    portable: DocRoot,
    inside: HashSet<(u64, u64)>,
}

/// A root with a few files, symlinks out and in, and a secret beside it.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root_path = dir.path().join("www");
    fs::create_dir_all(root_path.join("docs")).unwrap();
    fs::write(root_path.join("index.html"), "home").unwrap();
    fs::write(root_path.join("docs/index.html"), "docs").unwrap();
    fs::write(root_path.join("a b.txt"), "space").unwrap();
    fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    symlink("../secret.txt", root_path.join("out.txt")).unwrap();
    symlink("..", root_path.join("up")).unwrap();
    symlink("docs/index.html", root_path.join("in.html")).unwrap();
    nix::unistd::mkfifo(&root_path.join("pipe.html"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let inside = ["index.html", "docs/index.html", "a b.txt"]
        .iter()
        .map(|name| {
            let metadata = fs::metadata(root_path.join(name)).unwrap();
            (metadata.dev(), metadata.ino())
        })
        .collect();
    Fixture {
        root: DocRoot::open(&root_path).unwrap(),
        portable: DocRoot::open_portable(&root_path).unwrap(),
        _dir: dir,
        inside,
    }
}

fn outcome(root: &DocRoot, path: &str) -> &'static str {
    match root.resolve(path) {
        Resolved::File(_) => "file",
        Resolved::MissingSlash => "301",
        Resolved::NotFound => "404",
        Resolved::Forbidden => "403",
        Resolved::BadPath => "400",
        Resolved::Unavailable => "503",
    }
}

#[test]
fn resolves_files_folders_and_refusals() {
    let fixture = fixture();
    let cases = [
        ("/", "file"),
        ("/index.html", "file"),
        ("/docs/", "file"),
        ("/docs", "301"),
        ("/a b.txt", "file"),
        ("//docs//index.html", "file"),
        ("/./index.html", "file"),
        ("/missing", "404"),
        ("/index.html/", "404"),
        ("/../secret.txt", "400"),
        ("/docs/../index.html", "400"),
        ("/..\\secret.txt", "400"),
        ("/out.txt", "403"),
        ("/up/secret.txt", "403"),
        ("/up/www/index.html", "403"),
        ("/in.html", "file"),
        // Opening a FIFO for reading would block until a writer came: it must be refused at once.
        ("/pipe.html", "404"),
    ];
    for (path, expected) in cases {
        assert_eq!(outcome(&fixture.root, path), expected, "{path}");
        assert_eq!(
            outcome(&fixture.portable, path),
            expected,
            "{path}, portable resolution"
        );
    }
}

#[test]
fn content_types_come_from_the_extension() {
    use std::path::Path;
    use step02_files::http::docroot::content_type;
    let cases = [
        ("a.html", "text/html; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.svg", "image/svg+xml"),
        ("a.png", "image/png"),
        ("a.weird", "application/octet-stream"),
        ("noextension", "application/octet-stream"),
    ];
    for (name, expected) in cases {
        assert_eq!(content_type(Path::new(name)), expected, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the parser, and a complete parse never claims more bytes than
    /// it was given.
    #[test]
    fn parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(Parsed::Complete(_, used)) = parse_request(&bytes, &Limits::default()) {
            prop_assert!(used <= bytes.len());
        }
    }

    /// Request-shaped input with arbitrary targets and headers never panics, and whatever path it
    /// decodes to starts with `/` and holds no NUL.
    #[test]
    fn parser_survives_arbitrary_heads(target in "[ -~]{0,64}", header in "[ -~\t]{0,64}") {
        let input = format!("GET {target} HTTP/1.1\r\nHost: a\r\nX: {header}\r\n\r\n");
        if let Ok(Parsed::Complete(request, _)) = parse_request(input.as_bytes(), &Limits::default()) {
            prop_assert!(request.path.starts_with('/'));
            prop_assert!(!request.path.contains('\0'));
        }
    }

    /// The decoder yields the same requests however the stream is split into reads.
    #[test]
    fn decoder_is_indifferent_to_read_boundaries(splits in proptest::collection::vec(1usize..40, 1..20)) {
        let stream: &[u8] = b"GET /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut decoder = RequestDecoder::new(Limits::default());
        let mut paths = Vec::new();
        let mut at = 0;
        for split in splits.iter().cycle() {
            if at >= stream.len() {
                break;
            }
            let end = (at + split).min(stream.len());
            decoder.feed(&stream[at..end]);
            at = end;
            while let Some(request) = decoder.next_request().unwrap() {
                paths.push(request.path);
            }
        }
        prop_assert_eq!(paths, vec!["/1".to_string(), "/2".to_string()]);
    }

    /// Whatever path is asked for, a file that comes back is one of the files inside the root.
    #[test]
    fn resolver_never_leaves_the_root(
        segments in proptest::collection::vec(
            prop_oneof![
                Just(".."), Just("."), Just(""), Just("up"), Just("out.txt"), Just("in.html"),
                Just("docs"), Just("index.html"), Just("secret.txt"), Just("www"), Just("a b.txt"),
                Just("..\\"), Just("%2e%2e"),
            ],
            0..8,
        ),
        trailing_slash in any::<bool>(),
    ) {
        let fixture = fixture();
        let mut path = format!("/{}", segments.join("/"));
        if trailing_slash {
            path.push('/');
        }
        for root in [&fixture.root, &fixture.portable] {
            if let Resolved::File(found) = root.resolve(&path) {
                let metadata = found.file().unwrap().metadata().unwrap();
                prop_assert!(fixture.inside.contains(&(metadata.dev(), metadata.ino())), "{} escaped", path);
            }
        }
    }
}

#[test]
fn only_a_client_that_said_close_and_left_nothing_unread_skips_the_linger() {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let request = decoder.next_request().unwrap().unwrap();
    assert!(decoder.can_close_at_once(Some(&request)));

    let mut pipelined = RequestDecoder::new(Limits::default());
    pipelined.feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /more HTTP/1.1\r\n");
    let request = pipelined.next_request().unwrap().unwrap();
    assert!(
        !pipelined.can_close_at_once(Some(&request)),
        "bytes after it are unread"
    );

    let mut kept = RequestDecoder::new(Limits::default());
    kept.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let request = kept.next_request().unwrap().unwrap();
    assert!(
        !kept.can_close_at_once(Some(&request)),
        "the client did not say it was done"
    );

    let mut post = RequestDecoder::new(Limits::default());
    post.feed(b"POST / HTTP/1.0\r\nContent-Length: 9\r\n\r\n");
    let request = post.next_request().unwrap().unwrap();
    assert!(
        !post.can_close_at_once(Some(&request)),
        "its body was never read"
    );
    assert!(
        !post.can_close_at_once(None),
        "a refused request may leave anything unread"
    );
}
