//! Fuzzes the request parser and the decoder that frames requests across reads.
//!
//! The first input byte picks how the rest is split into reads, so the decoder's resumption logic
//! is fuzzed along with the parser. Properties: no panic; a complete parse never consumes more
//! than it was given; the decoder and a one-shot parse agree on the first request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use step02_files::{Limits, Parsed, RequestDecoder, parse_request};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let limits = Limits::default();
    let one_shot = parse_request(bytes, &limits);
    if let Ok(Parsed::Complete(_, used)) = &one_shot {
        assert!(*used <= bytes.len());
    }

    let mut decoder = RequestDecoder::new(limits);
    let piece = usize::from(split % 64) + 1;
    let mut first = None;
    for chunk in bytes.chunks(piece) {
        decoder.feed(chunk);
        match decoder.next_request() {
            Ok(Some(request)) if first.is_none() => first = Some(Ok(request)),
            Err(error) if first.is_none() => first = Some(Err(error)),
            _ => {}
        }
        if first.is_some() {
            break;
        }
    }
    // A head the one-shot parse completes, the decoder completes too, with the same request.
    if let (Ok(Parsed::Complete(request, _)), Some(Ok(decoded))) = (&one_shot, &first) {
        assert_eq!(request, decoded);
    }
});
