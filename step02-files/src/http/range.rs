//! Byte ranges (RFC 9110 §14): what a `Range` header asks of a file of a given length.

// ANCHOR: range_choice
/// What to send for a `Range` header, given the file's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeChoice {
    /// The whole file, 200: no `Range`, one this server ignores (another unit, bad syntax, an
    /// empty file), or several ranges it declines to send one by one (see [`choose_range`]).
    Whole,
    /// 206: `len` bytes from `start`, wholly inside the file.
    Part {
        /// The first byte.
        start: u64,
        /// How many bytes.
        len: u64,
    },
    /// 206 `multipart/byteranges`: two or more parts, in the order asked, each wholly inside
    /// the file, together no longer than the file.
    Parts(Vec<ByteRange>),
    /// 416: every range starts at or past the end of the file.
    Unsatisfiable,
}

/// `len` bytes of a file from `start`: one part of a 206.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// How many bytes (at least one).
    pub len: u64,
}

/// The most satisfiable ranges one request may ask for and get in parts; with more, the whole
/// file is sent (a 200), as nginx does past its `max_ranges`. Each part costs a part head and a
/// `sendfile` call, so this bounds the work of one request whatever its `Range` says.
pub const MAX_RANGES: usize = 32;
// ANCHOR_END: range_choice

// ANCHOR: choose_range
/// Reads `Range: value` against a file of `file_len` bytes (RFC 9110 §14.1.2):
/// `bytes=a-b` (an end past the file is clamped), `bytes=a-` (to the end), `bytes=-n` (the last
/// `n` bytes, or the whole file if it is shorter), or a comma-separated list of those.
///
/// Several ranges are answered as nginx answers them, which RFC 9110 §14.2 allows (a server may
/// ignore `Range`, or coalesce or refuse ranges that overlap or are many and small):
/// - a range that starts past the end is skipped; if none is left, 416;
/// - one satisfiable range left is a plain 206, as if it had been asked alone;
/// - more than [`MAX_RANGES`] satisfiable ranges, or ranges that together ask for more bytes
///   than the file holds (they overlap), get the whole file, 200: a request cannot make the
///   server send a file many times over or in thousands of tiny parts;
/// - ranges are kept in the order asked and never merged (nginx does not merge either).
///
/// Any invalid range in the list makes the whole header invalid, so it is ignored (200), as
/// RFC 9110 §14.2 says for an invalid `Range`. Here nginx differs: it answers an invalid list
/// with 416, and skips a backwards `b-a` as it skips a range past the end.
pub fn choose_range(value: &str, file_len: u64) -> RangeChoice {
    let Some((unit, set)) = value.trim().split_once('=') else {
        return RangeChoice::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || file_len == 0 {
        // Another unit is ignored (§14.2). An empty file has no byte to point at: send it whole.
        return RangeChoice::Whole;
    }
    let mut parts = Vec::new();
    let (mut total, mut n_specs) = (0u64, 0usize);
    let specs = set
        .split(',')
        .map(str::trim)
        .filter(|spec| !spec.is_empty());
    for spec in specs {
        n_specs += 1;
        match one_range(spec, file_len) {
            Spec::Invalid => return RangeChoice::Whole,
            Spec::PastTheEnd => {}
            Spec::Within(range) => {
                total = total.saturating_add(range.len);
                if parts.len() == MAX_RANGES || total > file_len {
                    return RangeChoice::Whole;
                }
                parts.push(range);
            }
        }
    }
    match parts.as_slice() {
        // `bytes=` names no range at all: invalid, so ignored.
        [] if n_specs == 0 => RangeChoice::Whole,
        [] => RangeChoice::Unsatisfiable,
        [ByteRange { start, len }] => RangeChoice::Part {
            start: *start,
            len: *len,
        },
        _ => RangeChoice::Parts(parts),
    }
}
// ANCHOR_END: choose_range

/// One `range-spec` of a list, against a file of `file_len` (more than 0) bytes.
enum Spec {
    /// Not a byte range: the whole header is then ignored.
    Invalid,
    /// A range that starts at or past the end, or `-0`: no byte of the file.
    PastTheEnd,
    /// A range with at least one byte of the file.
    Within(ByteRange),
}

fn one_range(spec: &str, file_len: u64) -> Spec {
    let Some((first, last)) = spec.split_once('-') else {
        return Spec::Invalid;
    };
    let (first, last) = (first.trim(), last.trim());
    match (digits(first), digits(last)) {
        // `-n`: a suffix. `-0` asks for nothing, which no file can give (§14.1.1).
        (None, Some(suffix)) if first.is_empty() => match suffix {
            0 => Spec::PastTheEnd,
            _ => {
                let len = suffix.min(file_len);
                Spec::Within(ByteRange {
                    start: file_len - len,
                    len,
                })
            }
        },
        (Some(start), None) if last.is_empty() => from_to(start, u64::MAX, file_len),
        (Some(start), Some(end)) if start <= end => from_to(start, end, file_len),
        // `b-a` with b > a, or anything but digits: invalid, so ignored.
        _ => Spec::Invalid,
    }
}

fn from_to(start: u64, end: u64, file_len: u64) -> Spec {
    if start >= file_len {
        return Spec::PastTheEnd;
    }
    let end = end.min(file_len - 1);
    Spec::Within(ByteRange {
        start,
        len: end - start + 1,
    })
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
    use super::RangeChoice::{Part, Parts, Unsatisfiable, Whole};
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
            "bytes=9-1",
            "bytes=0-1,9-1",
            "bytes=0-1,x",
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

    #[test]
    fn several_ranges_are_parts_in_the_order_asked() {
        let part = |start, len| ByteRange { start, len };
        let cases = [
            ("bytes=0-1,5-9", vec![part(0, 2), part(5, 5)]),
            ("bytes=90-, 0-0", vec![part(90, 10), part(0, 1)]),
            ("bytes=-5,10-19", vec![part(95, 5), part(10, 10)]),
            // Overlapping is fine while the parts together are no longer than the file.
            ("bytes=0-9,5-14", vec![part(0, 10), part(5, 10)]),
        ];
        for (value, expected) in cases {
            assert_eq!(choose_range(value, 100), Parts(expected), "{value}");
        }
    }

    #[test]
    fn unsatisfiable_ranges_in_a_list_are_skipped() {
        assert_eq!(
            choose_range("bytes=500-,0-9", 100),
            Part { start: 0, len: 10 }
        );
        assert_eq!(
            choose_range("bytes=-0,0-1,200-300,5-5", 100),
            Parts(vec![
                ByteRange { start: 0, len: 2 },
                ByteRange { start: 5, len: 1 }
            ])
        );
        assert_eq!(choose_range("bytes=500-,-0", 100), Unsatisfiable);
    }

    #[test]
    fn too_many_or_too_much_gets_the_whole_file() {
        let at_limit: Vec<String> = (0..MAX_RANGES).map(|at| format!("{at}-{at}")).collect();
        let at_limit = format!("bytes={}", at_limit.join(","));
        assert!(matches!(choose_range(&at_limit, 100), Parts(parts) if parts.len() == MAX_RANGES));
        let over = format!("{at_limit},50-50");
        assert_eq!(choose_range(&over, 100), Whole);
        // Past-the-end ranges are not counted: they cost nothing to send.
        let skipped = format!("{at_limit},500-");
        assert!(matches!(choose_range(&skipped, 100), Parts(_)));
        // Together more bytes than the file: the same bytes over and over.
        assert_eq!(choose_range("bytes=0-,0-", 100), Whole);
        assert_eq!(choose_range("bytes=0-60,40-99", 100), Whole);
    }
}
