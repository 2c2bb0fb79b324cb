//! The core's HTTP semantics on their own, without a socket: byte ranges through `respond` and
//! `into_wire` down to the bytes a sender would read, validators of a changing file, and the
//! open-file cache against the resolver it sits on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{FileExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use step02_files::http::response::Segment;
use step02_files::{
    DocRoot, FileCache, FileCacheConfig, Limits, Now, Parsed, Persistence, Request, Resolved,
    parse_request, respond,
};

fn request(text: &str) -> Request {
    match parse_request(text.as_bytes(), &Limits::default()) {
        Ok(Parsed::Complete(request, _)) => request,
        other => panic!("{text:?}: {other:?}"),
    }
}

fn now() -> Now {
    Now::at(SystemTime::now(), Instant::now())
}

/// What a client receives: status, head text, and the body as every sender would send it (the
/// bytes after the head in `first`, then the file range read at its offset).
fn receive(root: &DocRoot, text: &str, at: &Now) -> (u16, String, Vec<u8>) {
    let response = respond(root, &request(text), Persistence::KeepAlive, at);
    let status = response.status().as_u16();
    let head_len = response.head().len();
    let head = String::from_utf8_lossy(response.head()).into_owned();
    let wire = response.into_wire().unwrap();
    let mut body = wire.first[head_len..].to_vec();
    let then = wire.then.into_iter();
    for segment in wire.rest.map(Segment::File).into_iter().chain(then) {
        match segment {
            Segment::Bytes(bytes) => body.extend_from_slice(&bytes),
            Segment::File(range) => {
                let start = body.len();
                body.resize(start + range.len as usize, 0);
                range
                    .file
                    .read_exact_at(&mut body[start..], range.offset)
                    .unwrap();
            }
        }
    }
    (status, head, body)
}

/// One range of a list, as the proptest asks for it: `a-b`, `a-` or `-b` by `form`.
fn range_spec(form: u8, a: u64, b: u64) -> String {
    match form {
        0 => format!("{a}-{}", a.max(b)),
        1 => format!("{a}-"),
        _ => format!("-{b}"),
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn root_at(path: &Path, cached: bool) -> DocRoot {
    let root = DocRoot::open(path).unwrap();
    if cached {
        // Every file is remembered at once, however young: the cache's checks are what is tested.
        root.with_cache(FileCache::new(FileCacheConfig {
            settle: Duration::ZERO,
            ..FileCacheConfig::default()
        }))
    } else {
        root
    }
}

/// The bytes a range asks of a file of `len` bytes, computed the plain way; `None` for 416.
fn expected(form: u8, a: u64, b: u64, len: u64) -> Option<(u64, u64)> {
    match form {
        0 => (a < len).then(|| (a, a.max(b).min(len - 1))),
        1 => (a < len).then(|| (a, len - 1)),
        _ => (b > 0).then(|| (len.saturating_sub(b), len - 1)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any single range of any file gives exactly the file's bytes there, whether the file is read
    /// into the head, held by the cache in memory, or left as a range for the sender.
    #[test]
    fn any_range_of_any_file_is_exactly_those_bytes(
        len in 1u64..70_000,
        form in 0u8..3,
        a in 0u64..80_000,
        b in 0u64..80_000,
        cached in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let contents: Vec<u8> = (0..len).map(|at| (at * 31 % 251) as u8).collect();
        fs::write(dir.path().join("f.bin"), &contents).unwrap();
        let root = root_at(dir.path(), cached);
        let spec = match form {
            0 => format!("{a}-{}", a.max(b)),
            1 => format!("{a}-"),
            _ => format!("-{b}"),
        };
        let text = format!("GET /f.bin HTTP/1.1\r\nHost: x\r\nRange: bytes={spec}\r\n\r\n");
        let (status, head, body) = receive(&root, &text, &now());
        match expected(form, a, b, len) {
            Some((first, last)) => {
                prop_assert_eq!(status, 206);
                let content_range = format!("bytes {first}-{last}/{len}");
                prop_assert_eq!(header(&head, "content-range"), Some(content_range.as_str()));
                let content_length = (last - first + 1).to_string();
                prop_assert_eq!(header(&head, "content-length"), Some(content_length.as_str()));
                prop_assert!(body == contents[first as usize..=last as usize]);
            }
            None => {
                prop_assert_eq!(status, 416);
                let content_range = format!("bytes */{len}");
                prop_assert_eq!(header(&head, "content-range"), Some(content_range.as_str()));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any list of ranges over any file gives exactly what nginx would: the bytes of every
    /// satisfiable range, in order, each in a part read back from the multipart body with its
    /// own `Content-Type` and `Content-Range`, under an exact `Content-Length`; one satisfiable
    /// range is a plain 206, none a 416, too many or too much (overlap) the whole file.
    #[test]
    fn any_ranges_of_any_file_are_exactly_those_bytes(
        len in 1u64..70_000,
        specs in prop::collection::vec((0u8..3, 0u64..80_000, 0u64..80_000), 2..6),
        extra_tiny in 0usize..40,
        cached in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let contents: Vec<u8> = (0..len).map(|at| (at * 31 % 251) as u8).collect();
        fs::write(dir.path().join("f.bin"), &contents).unwrap();
        let root = root_at(dir.path(), cached);
        // Besides the random ranges, some one-byte ones, to cross the limit on the count.
        let tiny = (0..extra_tiny as u64).map(|at| (0u8, at % len, at % len));
        let all: Vec<(u8, u64, u64)> = specs.iter().copied().chain(tiny).collect();
        let list: Vec<String> = all.iter().map(|&(form, a, b)| range_spec(form, a, b)).collect();
        let text = format!(
            "GET /f.bin HTTP/1.1\r\nHost: x\r\nRange: bytes={}\r\n\r\n",
            list.join(",")
        );
        let (status, head, body) = receive(&root, &text, &now());
        let wanted: Vec<(u64, u64)> =
            all.iter().filter_map(|&(form, a, b)| expected(form, a, b, len)).collect();
        let total: u64 = wanted.iter().map(|(first, last)| last - first + 1).sum();
        let content_length = body.len().to_string();
        prop_assert_eq!(header(&head, "content-length"), Some(content_length.as_str()));
        match wanted.as_slice() {
            [] => prop_assert_eq!(status, 416),
            [(first, last)] => {
                prop_assert_eq!(status, 206);
                prop_assert!(body == contents[*first as usize..=*last as usize]);
            }
            _ if wanted.len() > step02_files::http::range::MAX_RANGES || total > len => {
                prop_assert_eq!(status, 200);
                prop_assert!(body == contents);
            }
            _ => {
                prop_assert_eq!(status, 206);
                let content_type = header(&head, "content-type").unwrap();
                let boundary = testkit::byteranges::boundary_of(content_type).unwrap();
                let parts = testkit::byteranges::parse_byteranges(&body, boundary).unwrap();
                prop_assert_eq!(parts.len(), wanted.len());
                for (part, (first, last)) in parts.iter().zip(&wanted) {
                    prop_assert_eq!((part.first, part.last, part.complete_len), (*first, *last, len));
                    prop_assert_eq!(part.content_type.as_str(), "application/octet-stream");
                    prop_assert!(part.bytes == contents[*first as usize..=*last as usize]);
                }
            }
        }
    }
}

#[test]
fn a_changed_file_gets_new_validators() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.txt");
    fs::write(&path, "first").unwrap();
    let root = root_at(dir.path(), false);
    let get = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let (_, before, _) = receive(&root, get, &now());
    let etag = header(&before, "etag").unwrap().to_owned();
    let revalidate = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n");
    assert_eq!(receive(&root, &revalidate, &now()).0, 304);
    fs::write(&path, "second!").unwrap();
    let (status, after, body) = receive(&root, &revalidate, &now());
    assert_eq!((status, body.as_slice()), (200, &b"second!"[..]));
    assert_ne!(header(&after, "etag").unwrap(), etag);
}

#[test]
fn an_empty_file_with_a_range_is_sent_whole() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("empty"), "").unwrap();
    let root = root_at(dir.path(), false);
    let text = "GET /empty HTTP/1.1\r\nHost: x\r\nRange: bytes=0-\r\n\r\n";
    let (status, head, body) = receive(&root, text, &now());
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(header(&head, "content-length"), Some("0"));
}

// The open-file cache, through the same lookups `respond` makes.

fn served(root: &DocRoot, path: &str) -> Option<Vec<u8>> {
    let text = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, _, body) = receive(root, &text, &now());
    (status == 200).then_some(body)
}

#[test]
fn a_cached_file_changed_on_disk_is_served_fresh_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.txt");
    let large = dir.path().join("large.bin");
    fs::write(&small, "old").unwrap();
    fs::write(&large, vec![1u8; 100_000]).unwrap();
    let root = root_at(dir.path(), true);
    assert_eq!(served(&root, "/small.txt").unwrap(), b"old");
    assert_eq!(served(&root, "/large.bin").unwrap()[0], 1);
    assert_eq!(root.cache().unwrap().len(), 2, "both are remembered");
    // Past a tick of the file clock, then a write of the same size, as an editor's save is.
    std::thread::sleep(step02_files::SETTLE);
    fs::write(&small, "new").unwrap();
    // Replaced whole, as a deploy does: a new inode; the cached descriptor still reads the old.
    fs::write(dir.path().join("large.tmp"), vec![2u8; 100_000]).unwrap();
    fs::rename(dir.path().join("large.tmp"), &large).unwrap();
    assert_eq!(served(&root, "/small.txt").unwrap(), b"new");
    assert_eq!(served(&root, "/large.bin").unwrap()[0], 2);
}

#[test]
fn the_cache_never_serves_what_the_resolver_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    fs::create_dir(&www).unwrap();
    fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    fs::write(www.join("page.txt"), "page").unwrap();
    symlink("page.txt", www.join("link.txt")).unwrap();
    fs::write(www.join("gone.txt"), "here").unwrap();
    let root = root_at(&www, true);
    assert_eq!(served(&root, "/link.txt").unwrap(), b"page");
    assert_eq!(served(&root, "/gone.txt").unwrap(), b"here");
    // The symlink now leads outside the root; the file is removed.
    fs::remove_file(www.join("link.txt")).unwrap();
    symlink("../secret.txt", www.join("link.txt")).unwrap();
    fs::remove_file(www.join("gone.txt")).unwrap();
    for _ in 0..2 {
        assert_eq!(served(&root, "/link.txt"), None);
        assert!(matches!(
            root.lookup("/link.txt", SystemTime::now()),
            Resolved::Forbidden
        ));
        assert!(matches!(
            root.lookup("/gone.txt", SystemTime::now()),
            Resolved::NotFound
        ));
    }
    assert!(root.cache().unwrap().is_empty(), "refusals are not kept");
}

#[test]
fn without_the_cache_every_request_sees_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.txt");
    fs::write(&path, "one").unwrap();
    let root = root_at(dir.path(), false);
    assert_eq!(served(&root, "/a.txt").unwrap(), b"one");
    fs::write(&path, "two").unwrap();
    assert_eq!(served(&root, "/a.txt").unwrap(), b"two");
    fs::remove_file(&path).unwrap();
    assert_eq!(served(&root, "/a.txt"), None);
    assert!(root.cache().is_none());
}
