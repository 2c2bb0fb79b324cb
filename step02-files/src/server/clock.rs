//! Defines [`wall_clock`]: the shell reads the clock for the core, formatting the `Date` header
//! once per second rather than once per response.
//!
//! Reading the clock is cheap (`clock_gettime` goes through the vDSO on Linux: no system call);
//! formatting the date is not free, and it changes only once a second. So each thread keeps the
//! last second it formatted and its text, and reformats only when the second turns.
//!
//! Per thread, not per process: no lock, and every model gets the same cache. A thread-per-
//! connection server (step 4) formats once per connection's first response in a new second; a
//! coroutine (step 5) only reads and copies the thread's value, never holding it across a yield.

use std::cell::Cell;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::http::date::{ImfDate, Now};

thread_local! {
    /// The second last formatted on this thread, and its text.
    static FORMATTED: Cell<Option<(u64, ImfDate)>> = const { Cell::new(None) };
}

// ANCHOR: wall_clock
/// The current time for a response: read now, its `Date` text formatted at most once per second
/// per thread.
pub fn wall_clock() -> Now {
    let wall = SystemTime::now();
    let mono = Instant::now();
    let second = wall
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let date = FORMATTED.with(|cell| match cell.get() {
        Some((formatted, date)) if formatted == second => date,
        _ => {
            let date = ImfDate::of(wall);
            cell.set(Some((second, date)));
            date
        }
    });
    Now { wall, mono, date }
}
// ANCHOR_END: wall_clock

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_the_current_second() {
        let before = SystemTime::now();
        let now = wall_clock();
        let after = SystemTime::now();
        let date = crate::http::date::parse_http_date(now.date.as_str()).unwrap();
        let floor = crate::http::date::whole_seconds(before);
        assert!(date >= floor && date <= after, "{:?}", now.date);
        // A second reading in the same second reuses the text: same value either way.
        let again = wall_clock();
        assert!(again.wall >= now.wall);
    }
}
