//! Fuzzes `Range` as the core reads it: one range or a list of them, against a file whose length
//! the input's first two bytes give (0 to 65,535).
//!
//! Properties: no panic; every part lies wholly inside the file and has at least one byte; a
//! multipart answer has 2 to `MAX_RANGES` parts that together are no longer than the file, so a
//! request can never make the server send more than the file once plus the part heads; an empty
//! file is always sent whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use step02_files::http::range::{ByteRange, MAX_RANGES, RangeChoice, choose_range};

fn inside(range: ByteRange, file_len: u64) -> bool {
    range.len > 0 && range.start.checked_add(range.len).is_some_and(|end| end <= file_len)
}

fuzz_target!(|data: &[u8]| {
    let [high, low, rest @ ..] = data else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    let file_len = u64::from(u16::from_be_bytes([*high, *low]));
    match choose_range(value, file_len) {
        RangeChoice::Whole => {}
        RangeChoice::Part { start, len } => {
            assert!(inside(ByteRange { start, len }, file_len));
        }
        RangeChoice::Parts(parts) => {
            assert!((2..=MAX_RANGES).contains(&parts.len()), "{} parts", parts.len());
            assert!(parts.iter().all(|part| inside(*part, file_len)));
            let total: u64 = parts.iter().map(|part| part.len).sum();
            assert!(total <= file_len, "{total} bytes of a {file_len}-byte file");
        }
        RangeChoice::Unsatisfiable => assert!(file_len > 0, "416 for an empty file"),
    }
    if file_len == 0 {
        assert_eq!(choose_range(value, 0), RangeChoice::Whole);
    }
});
