//! Validators and conditional requests (RFC 9110 §8.8, §13): `ETag`, `Last-Modified`,
//! `If-Match`, `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since` and `If-Range`.
//! Pure functions of header values.

use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::date::{ImfDate, parse_http_date, whole_seconds};

/// The longest entity tag this server makes: quotes, three 64-bit numbers in hex, two dashes.
const ETAG_CAPACITY: usize = 2 + 3 * 16 + 2;

// ANCHOR: etag
/// A strong entity tag, `"INODE-SIZE-MTIME"` in hex, the modification time in nanoseconds.
///
/// What identifies a version of a file without reading it is its metadata:
/// - the modification time, in nanoseconds rather than seconds (nginx's `mtime-size` uses
///   seconds), so two edits within one second still give two tags;
/// - the size, which catches an edit that kept the time (a copy with `cp -p`, `rsync -t`);
/// - the inode, which catches a file replaced whole by a rename (the atomic way to publish a
///   file), even when the new one has the old one's size and time.
///
/// Apache once used the same three; it dropped the inode by default because a cluster of servers
/// serving copies of one site gives each copy a different inode, so each server a different tag.
/// This is one server, so the inode only helps. A hash of the content would be exact but costs a
/// read of the whole file to answer a request that may need none of it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ETag {
    text: [u8; ETAG_CAPACITY],
    len: u8,
}
// ANCHOR_END: etag

impl ETag {
    /// The tag of the file version `metadata` describes.
    pub fn of(metadata: &Metadata) -> ETag {
        let mtime_ns = (metadata.mtime() as i128) * 1_000_000_000 + metadata.mtime_nsec() as i128;
        // Opaque: a file dated before 1970 just wraps to another number.
        ETag::from_parts(metadata.ino(), metadata.size(), mtime_ns as u64)
    }

    fn from_parts(inode: u64, size: u64, mtime_ns: u64) -> ETag {
        use std::io::Write as _;
        let mut text = [0u8; ETAG_CAPACITY];
        let mut cursor = &mut text[..];
        // At most ETAG_CAPACITY bytes, so this cannot run out of room.
        let _ = write!(cursor, "\"{inode:x}-{size:x}-{mtime_ns:x}\"");
        let len = ETAG_CAPACITY - cursor.len();
        ETag {
            text,
            len: len as u8,
        }
    }

    /// The tag as it appears in a header, quotes included.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or("\"\"")
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What tells one version of a file from another, as the response heads carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validators {
    /// The entity tag.
    pub etag: ETag,
    /// The modification time, in whole seconds.
    pub last_modified: SystemTime,
    /// `last_modified` as the `Last-Modified` header says it.
    pub last_modified_text: ImfDate,
}

impl Validators {
    /// The validators of the file `metadata` describes.
    pub fn of(metadata: &Metadata) -> Validators {
        let modified = metadata
            .modified()
            .unwrap_or(UNIX_EPOCH + Duration::from_secs(metadata.mtime().max(0) as u64));
        let last_modified = whole_seconds(modified);
        Validators {
            etag: ETag::of(metadata),
            last_modified,
            last_modified_text: ImfDate::of(last_modified),
        }
    }
}

/// The conditional headers of a GET or HEAD, as sent (several lines of a list header joined).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    /// `If-Match`, every line of it.
    pub if_match: Option<&'a str>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a str>,
    /// `If-None-Match`, every line of it.
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a str>,
}

/// What the conditional headers of a GET or HEAD make of the answer for a file that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every condition holds: answer as if there were none (a `Range` may still apply).
    Proceed,
    /// `412 Precondition Failed`: the client asked for a version the file no longer is.
    PreconditionFailed,
    /// `304 Not Modified`: the client's copy is still current.
    NotModified,
}

// ANCHOR: evaluate
/// The verdict of `conditions` on the file `current`, in the order of RFC 9110 §13.2.2: the
/// preconditions (`If-Match`, else `If-Unmodified-Since`) first, since a client that asked for
/// one version must never be told "not modified" about another; then revalidation
/// (`If-None-Match`, else `If-Modified-Since`). `Range` and `If-Range` come after, in the caller.
pub fn evaluate(conditions: &Conditions<'_>, current: &Validators, now: SystemTime) -> Verdict {
    if !preconditions_hold(conditions, current) {
        Verdict::PreconditionFailed
    } else if is_not_modified(conditions, current, now) {
        Verdict::NotModified
    } else {
        Verdict::Proceed
    }
}
// ANCHOR_END: evaluate

// ANCHOR: preconditions_hold
/// Whether `If-Match` and `If-Unmodified-Since` hold for `current` (RFC 9110 §13.1.1, §13.1.4).
///
/// `If-Match` is evaluated first and, when present, decides alone: it holds for `*` (the file
/// exists) or a tag in its list that matches by strong comparison, so a weak tag never does. An
/// `If-Unmodified-Since` holds when the file was modified at or before its date; one that does
/// not parse is ignored (§13.1.4).
pub fn preconditions_hold(conditions: &Conditions<'_>, current: &Validators) -> bool {
    if let Some(list) = conditions.if_match {
        return match_holds(list, &current.etag);
    }
    match conditions.if_unmodified_since.and_then(parse_http_date) {
        Some(since) => current.last_modified <= since,
        None => true,
    }
}
// ANCHOR_END: preconditions_hold

/// Whether `If-Match: list` is true for a representation tagged `etag`: the list is `*`, or
/// holds a strong tag equal to `etag` (§8.8.3.2, strong comparison: `W/"x"` matches nothing).
fn match_holds(list: &str, etag: &ETag) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let ours = etag.as_str();
    entity_tags(list).any(|(weak, tag)| !weak && tag == ours)
}

// ANCHOR: is_not_modified
/// Whether a GET or HEAD with `conditions` gets `304 Not Modified` (RFC 9110 §13.2.2), once its
/// preconditions hold.
///
/// `If-None-Match` is evaluated first and, when present, decides alone: `If-Modified-Since` is
/// then ignored, since a tag is more exact than a date with one-second precision. A date that
/// does not parse is ignored (§13.1.3), and so is one later than the server's clock (RFC 2616
/// §14.25 called it invalid): a client cannot have seen a version from the future.
pub fn is_not_modified(conditions: &Conditions<'_>, current: &Validators, now: SystemTime) -> bool {
    if let Some(list) = conditions.if_none_match {
        return none_match_fails(list, &current.etag);
    }
    match conditions.if_modified_since.and_then(parse_http_date) {
        Some(since) if since <= now => current.last_modified <= since,
        _ => false,
    }
}
// ANCHOR_END: is_not_modified

/// Whether `If-None-Match: list` is false for a representation tagged `etag`, that is, whether
/// the list is `*` or holds a tag that matches `etag` by weak comparison (§13.1.2: GET and HEAD
/// compare weakly, so `W/"x"` matches `"x"`).
fn none_match_fails(list: &str, etag: &ETag) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let ours = etag.as_str();
    entity_tags(list).any(|(_weak, tag)| tag == ours)
}

/// `#entity-tag` (RFC 9110 §8.8.3): `[W/] "opaque"`, comma separated. Yields `(is_weak, tag)`,
/// the tag with its quotes. Stops at the first malformed element: the rest cannot be trusted.
fn entity_tags(list: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return None;
        }
        let (weak, after) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let body = after.strip_prefix('"')?;
        let close = body.find('"')?;
        let tag = &after[..close + 2];
        rest = &after[close + 2..];
        Some((weak, tag))
    })
}

// ANCHOR: if_range
/// Whether `If-Range: value` still holds for the current version, so the `Range` applies
/// (RFC 9110 §13.1.5). A tag must match by strong comparison (a weak tag never does); a date must
/// be exactly the `Last-Modified`. Anything else, or no match, means: send the whole file.
pub fn if_range_holds(value: &str, current: &Validators) -> bool {
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        let mut tags = entity_tags(value);
        return match (tags.next(), tags.next()) {
            (Some((false, tag)), None) => tag == current.etag.as_str(),
            _ => false,
        };
    }
    parse_http_date(value) == Some(current.last_modified)
}
// ANCHOR_END: if_range

#[cfg(test)]
mod tests {
    use super::*;

    fn validators() -> Validators {
        let last_modified = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        Validators {
            etag: ETag::from_parts(0xab, 0x10, 0x123),
            last_modified,
            last_modified_text: ImfDate::of(last_modified),
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(2_000_000_000)
    }

    fn not_modified(inm: Option<&str>, ims: Option<&str>) -> bool {
        let conditions = Conditions {
            if_none_match: inm,
            if_modified_since: ims,
            ..Conditions::default()
        };
        is_not_modified(&conditions, &validators(), now())
    }

    /// The verdict on [`validators`] of the headers `(name, value)`, names in lower case.
    fn verdict(headers: &[(&str, &str)]) -> Verdict {
        let value = |name: &str| {
            let mut values = headers.iter().filter(|(field, _)| *field == name);
            values.next().map(|(_, value)| *value)
        };
        let conditions = Conditions {
            if_match: value("if-match"),
            if_unmodified_since: value("if-unmodified-since"),
            if_none_match: value("if-none-match"),
            if_modified_since: value("if-modified-since"),
        };
        evaluate(&conditions, &validators(), now())
    }

    const OLDER: &str = "Sat, 01 Jan 2000 00:00:00 GMT";
    const NEWER: &str = "Sat, 01 Jan 2033 00:00:00 GMT";

    #[test]
    fn the_tag_is_inode_size_and_nanosecond_time() {
        assert_eq!(validators().etag.as_str(), "\"ab-10-123\"");
        let widest = ETag::from_parts(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(widest.as_str().len(), ETAG_CAPACITY);
    }

    #[test]
    fn if_none_match_compares_weakly_and_knows_star() {
        for list in [
            "\"ab-10-123\"",
            "W/\"ab-10-123\"",
            "\"x\", \"ab-10-123\"",
            "\"x\",W/\"ab-10-123\"",
            "*",
            " * ",
        ] {
            assert!(not_modified(Some(list), None), "{list}");
        }
        for list in [
            "\"x\"",
            "\"ab-10-124\"",
            "ab-10-123",
            "",
            "\"ab-10-123",
            "W/ab",
        ] {
            assert!(!not_modified(Some(list), None), "{list}");
        }
    }

    #[test]
    fn if_modified_since_compares_dates() {
        let at = validators().last_modified_text;
        assert!(not_modified(None, Some(at.as_str())));
        assert!(not_modified(None, Some("Sat, 01 Jan 2033 00:00:00 GMT")));
        assert!(!not_modified(None, Some("Sat, 01 Jan 2000 00:00:00 GMT")));
        // Unparsable, or later than now: ignored.
        assert!(!not_modified(None, Some("not a date")));
        assert!(!not_modified(None, Some("Sat, 01 Jan 2050 00:00:00 GMT")));
    }

    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        let at = validators().last_modified_text;
        assert!(!not_modified(Some("\"other\""), Some(at.as_str())));
        assert!(not_modified(
            Some("\"ab-10-123\""),
            Some("Sat, 01 Jan 2000 00:00:00 GMT")
        ));
    }

    #[test]
    fn no_conditions_proceed() {
        assert_eq!(verdict(&[]), Verdict::Proceed);
    }

    #[test]
    fn if_match_compares_strongly_and_knows_star_and_lists() {
        for list in [
            "\"ab-10-123\"",
            "\"x\", \"ab-10-123\"",
            "\"x\",\"ab-10-123\" , \"y\"",
            "W/\"x\", \"ab-10-123\"",
            "*",
            " * ",
        ] {
            assert_eq!(verdict(&[("if-match", list)]), Verdict::Proceed, "{list}");
        }
        for list in [
            "W/\"ab-10-123\"",
            "\"x\", W/\"ab-10-123\"",
            "\"x\"",
            "\"ab-10-124\"",
            "ab-10-123",
            "\"ab-10-123",
            "",
            "**",
            "\"x\", *",
        ] {
            let failed = verdict(&[("if-match", list)]);
            assert_eq!(failed, Verdict::PreconditionFailed, "{list}");
        }
    }

    #[test]
    fn if_unmodified_since_compares_dates_and_ignores_invalid_ones() {
        let at = validators().last_modified_text;
        for (date, expected) in [
            (at.as_str(), Verdict::Proceed),
            (NEWER, Verdict::Proceed),
            (OLDER, Verdict::PreconditionFailed),
            ("not a date", Verdict::Proceed),
            ("", Verdict::Proceed),
            // A list of dates is not a date (§13.1.4).
            (&format!("{at}, {at}"), Verdict::Proceed),
        ] {
            assert_eq!(
                verdict(&[("if-unmodified-since", date)]),
                expected,
                "{date}"
            );
        }
    }

    #[test]
    fn if_match_wins_over_if_unmodified_since() {
        let matching = [
            ("if-match", "\"ab-10-123\""),
            ("if-unmodified-since", OLDER),
        ];
        assert_eq!(verdict(&matching), Verdict::Proceed);
        let other = [("if-match", "\"x\""), ("if-unmodified-since", NEWER)];
        assert_eq!(verdict(&other), Verdict::PreconditionFailed);
    }

    #[test]
    fn preconditions_come_before_if_none_match() {
        // A failed precondition is 412 even when the client's copy would be current.
        let failed = [("if-match", "\"x\""), ("if-none-match", "\"ab-10-123\"")];
        assert_eq!(verdict(&failed), Verdict::PreconditionFailed);
        let stale = [("if-unmodified-since", OLDER), ("if-none-match", "*")];
        assert_eq!(verdict(&stale), Verdict::PreconditionFailed);
        // Once they hold, revalidation decides as without them.
        let current = [("if-match", "*"), ("if-none-match", "\"ab-10-123\"")];
        assert_eq!(verdict(&current), Verdict::NotModified);
        let changed = [("if-match", "*"), ("if-none-match", "\"x\"")];
        assert_eq!(verdict(&changed), Verdict::Proceed);
        let at = validators().last_modified_text;
        let dated = [
            ("if-unmodified-since", NEWER),
            ("if-modified-since", at.as_str()),
        ];
        assert_eq!(verdict(&dated), Verdict::NotModified);
    }

    #[test]
    fn if_range_needs_a_strong_match_or_the_exact_date() {
        let current = validators();
        assert!(if_range_holds("\"ab-10-123\"", &current));
        assert!(!if_range_holds("W/\"ab-10-123\"", &current));
        assert!(!if_range_holds("\"other\"", &current));
        assert!(if_range_holds(
            current.last_modified_text.as_str(),
            &current
        ));
        assert!(!if_range_holds("Sat, 01 Jan 2033 00:00:00 GMT", &current));
        assert!(!if_range_holds("garbage", &current));
    }
}
