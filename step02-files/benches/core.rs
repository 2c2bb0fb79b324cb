//! What the sans-I/O core costs per request, apart from any socket: parsing a head, and deciding
//! the response (which opens the file under the document root, or finds it in the open-file cache).
//!
//! `cargo bench -p step02-files` (reports under `target/criterion/`). These figures are the floor
//! under every step's per-request CPU: whatever a concurrency model adds comes on top.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use step02_files::http::response::recycle_buffer;
use step02_files::{
    DocRoot, FileCache, FileCacheConfig, Limits, Parsed, Persistence, RequestDecoder,
    parse_request, respond, wall_clock,
};

/// What `wrk` and the project's load generator send.
const SMALL: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:7080\r\n\r\n";

/// What a browser sends for the same page.
const BROWSER: &[u8] = b"GET /index.html HTTP/1.1\r\n\
Host: 127.0.0.1:7080\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"156\", \"Not-A.Brand\";v=\"24\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: none\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\r\n";

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_request");
    group.throughput(Throughput::Elements(1));
    let limits = Limits::default();
    for (name, request) in [("wrk", SMALL), ("browser", BROWSER)] {
        group.bench_function(name, |b| {
            b.iter(|| match parse_request(black_box(request), &limits) {
                Ok(Parsed::Complete(request, used)) => (request, used),
                other => panic!("{other:?}"),
            })
        });
    }
    group.bench_function("decoder_pipelined_x16", |b| {
        let batch = SMALL.repeat(16);
        b.iter(|| {
            let mut decoder = RequestDecoder::new(limits);
            decoder.feed(black_box(&batch));
            let mut n_requests = 0;
            while let Ok(Some(_)) = decoder.next_request() {
                n_requests += 1;
            }
            assert_eq!(n_requests, 16);
        })
    });
    group.finish();
}

fn responding(c: &mut Criterion) {
    let root = DocRoot::open(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../www"))).unwrap();
    let Ok(Parsed::Complete(request, _)) = parse_request(SMALL, &Limits::default()) else {
        panic!("the sample request parses")
    };
    let mut group = c.benchmark_group("respond");
    group.throughput(Throughput::Elements(1));
    group.bench_function("index_html", |b| {
        b.iter(|| {
            respond(
                &root,
                black_box(&request),
                Persistence::KeepAlive,
                &wall_clock(),
            )
        })
    });
    // The same through the open-file cache: a hit makes no system call.
    let cached = root
        .clone()
        .with_cache(FileCache::new(FileCacheConfig::default()));
    group.bench_function("index_html_cached", |b| {
        b.iter(|| {
            respond(
                &cached,
                black_box(&request),
                Persistence::KeepAlive,
                &wall_clock(),
            )
        })
    });
    // What an event loop's core does per keep-alive request, buffers recycled as step 6's
    // `Outgoing` recycles them: frame the request, answer it from the cache, lay it out for the
    // wire. At steady state this allocates nothing.
    group.bench_function("keep_alive_cycle_cached", |b| {
        let mut decoder = RequestDecoder::new(Limits::default());
        b.iter(|| {
            decoder.feed(black_box(SMALL));
            let request = decoder.next_request().unwrap().unwrap();
            let response = respond(&cached, &request, Persistence::KeepAlive, &wall_clock());
            let wire = response.into_wire().unwrap();
            black_box(&wire.first);
            request.recycle();
            recycle_buffer(wire.first);
        })
    });
    group.finish();
}

criterion_group!(benches, parsing, responding);
criterion_main!(benches);
