//! Byte ranges (RFC 9110 §14): what a `Range` header asks of a file of a given length.

// ANCHOR: range_choice
/// What to send for a `Range` header, given the file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeChoice {
    /// The whole file, 200: no `Range`, one this server ignores (another unit, bad syntax, an
    /// empty file), or several ranges.
    ///
    /// Several ranges would need a `multipart/byteranges` body. RFC 9110 §14.2 lets a server
    /// ignore `Range` altogether, and the clients that resume downloads or seek in media ask for
    /// one range; answering several with the whole file keeps one code path and is never wrong.
    /// (nginx does answer them, as multipart; this is a deliberate simplification.)
    Whole,
    /// 206: `len` bytes from `start`, wholly inside the file.
    Part {
        /// The first byte.
        start: u64,
        /// How many bytes.
        len: u64,
    },
    /// 416: the range starts at or past the end of the file.
    Unsatisfiable,
}
// ANCHOR_END: range_choice

// ANCHOR: choose_range
/// Reads `Range: value` against a file of `file_len` bytes (RFC 9110 §14.1.2):
/// `bytes=a-b` (an end past the file is clamped), `bytes=a-` (to the end), `bytes=-n` (the last
/// `n` bytes, or the whole file if it is shorter).
pub fn choose_range(value: &str, file_len: u64) -> RangeChoice {
    let Some((unit, set)) = value.trim().split_once('=') else {
        return RangeChoice::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || file_len == 0 {
        // Another unit is ignored (§14.2). An empty file has no byte to point at: send it whole.
        return RangeChoice::Whole;
    }
    let mut specs = set
        .split(',')
        .map(str::trim)
        .filter(|spec| !spec.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeChoice::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeChoice::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    match (digits(first), digits(last)) {
        // `-n`: a suffix. `-0` asks for nothing, which no file can give (§14.1.1).
        (None, Some(suffix)) if first.is_empty() => match suffix {
            0 => RangeChoice::Unsatisfiable,
            _ => {
                let len = suffix.min(file_len);
                RangeChoice::Part {
                    start: file_len - len,
                    len,
                }
            }
        },
        (Some(start), None) if last.is_empty() => from_to(start, u64::MAX, file_len),
        (Some(start), Some(end)) if start <= end => from_to(start, end, file_len),
        // `b-a` with b > a, or anything but digits: invalid, so ignored.
        _ => RangeChoice::Whole,
    }
}
// ANCHOR_END: choose_range

fn from_to(start: u64, end: u64, file_len: u64) -> RangeChoice {
    if start >= file_len {
        return RangeChoice::Unsatisfiable;
    }
    let end = end.min(file_len - 1);
    RangeChoice::Part {
        start,
        len: end - start + 1,
    }
}

/// `1*DIGIT`, saturating: a position too large for a `u64` is past the end of any file anyway.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::RangeChoice::{Part, Unsatisfiable, Whole};
    use super::*;

    #[test]
    fn one_range_in_each_form() {
        let cases = [
            ("bytes=0-9", Part { start: 0, len: 10 }),
            ("bytes=10-19", Part { start: 10, len: 10 }),
            ("bytes=90-", Part { start: 90, len: 10 }),
            ("bytes=-5", Part { start: 95, len: 5 }),
            ("bytes=-500", Part { start: 0, len: 100 }),
            ("bytes=50-5000", Part { start: 50, len: 50 }),
            ("bytes=99-99", Part { start: 99, len: 1 }),
            ("BYTES = 1-2", Part { start: 1, len: 2 }),
            (
                "bytes=0-99999999999999999999999",
                Part { start: 0, len: 100 },
            ),
            ("bytes=1-2,", Part { start: 1, len: 2 }),
        ];
        for (value, expected) in cases {
            assert_eq!(choose_range(value, 100), expected, "{value}");
        }
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        for value in [
            "bytes=100-",
            "bytes=100-200",
            "bytes=-0",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(choose_range(value, 100), Unsatisfiable, "{value}");
        }
    }

    #[test]
    fn what_is_ignored_gives_the_whole_file() {
        for value in [
            "items=0-9",
            "bytes=0-1,5-6",
            "bytes=9-1",
            "bytes=a-b",
            "bytes=",
            "bytes",
            "bytes=-",
            "bytes=+1-2",
            "bytes=1-2-3",
            "",
        ] {
            assert_eq!(choose_range(value, 100), Whole, "{value}");
        }
        assert_eq!(choose_range("bytes=0-9", 0), Whole, "an empty file");
    }
}
