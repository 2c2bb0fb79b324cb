//! Defines [`Now`]: the clock reading the core is handed, and HTTP dates (RFC 9110 §5.6.7).
//!
//! The core never reads the clock itself. The shell reads it once per request and passes a
//! [`Now`], whose `Date` text it formats only when the second changes (`server::clock`). That
//! keeps the core a pure function of its inputs, and tests can hand it any time they like.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The length of an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
const IMF_FIXDATE_LEN: usize = 29;

/// An HTTP date in its preferred form, IMF-fixdate: always 29 ASCII bytes, so it is `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ImfDate([u8; IMF_FIXDATE_LEN]);

impl ImfDate {
    /// Formats `time`, to the second (HTTP dates have no fractions).
    pub fn of(time: SystemTime) -> ImfDate {
        let text = httpdate::fmt_http_date(time);
        let mut bytes = [b' '; IMF_FIXDATE_LEN];
        // fmt_http_date always writes 29 ASCII bytes for years 1970–9999, the only ones a
        // SystemTime on this system reaches in practice; anything else is cut or padded.
        let n_bytes = text.len().min(IMF_FIXDATE_LEN);
        bytes[..n_bytes].copy_from_slice(&text.as_bytes()[..n_bytes]);
        ImfDate(bytes)
    }

    /// The date as text.
    pub fn as_str(&self) -> &str {
        // Only ever filled from ASCII (see `of`).
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for ImfDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ImfDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ANCHOR: now
/// The time at which a response is made, as the shell read it.
///
/// `wall` is what the `Date` header says; `mono` is what the open-file cache measures its
/// revalidation interval against (a wall clock may jump, a monotonic one does not).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Wall-clock time.
    pub wall: SystemTime,
    /// Monotonic time, for intervals.
    pub mono: Instant,
    /// `wall` formatted for the `Date` header.
    pub date: ImfDate,
}
// ANCHOR_END: now

impl Now {
    /// A reading of `wall` and `mono`, formatting the date now. The shell's clock reuses the
    /// formatted date for a whole second instead (see `server::clock`).
    pub fn at(wall: SystemTime, mono: Instant) -> Now {
        Now {
            wall,
            mono,
            date: ImfDate::of(wall),
        }
    }
}

/// Parses an HTTP date in any of its three forms (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete
/// RFC 850 and asctime forms a recipient must accept). `None` for anything else: a condition
/// with an invalid date is ignored, as §13.1.3 requires.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

/// `time` cut to whole seconds, the precision of an HTTP date: a file modified at 12:00:00.7
/// has `Last-Modified: … 12:00:00`, and a client that sends that back must match it.
pub fn whole_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        // Before 1970: HTTP dates cannot say it anyway.
        Err(_) => UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_all_three_forms() {
        let time = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(ImfDate::of(time).as_str(), "Sun, 06 Nov 1994 08:49:37 GMT");
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(text), Some(time), "{text}");
        }
        for text in ["", "yesterday", "Sun, 06 Nov 1994 08:49:37", "1994-11-06"] {
            assert_eq!(parse_http_date(text), None, "{text}");
        }
    }

    #[test]
    fn whole_seconds_drops_the_fraction() {
        let time = UNIX_EPOCH + Duration::from_millis(1_700);
        assert_eq!(whole_seconds(time), UNIX_EPOCH + Duration::from_secs(1));
    }
}
