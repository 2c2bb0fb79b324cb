//! Defines [`Timers`]: every connection's deadline, ordered so the loop finds the earliest at once.
//!
//! The event loop must wake when the earliest deadline passes, whether or not a socket is ready, so
//! it passes "time until the earliest deadline" as `epoll_wait`'s timeout. Scanning every
//! connection for that on each wake-up would bring back step 6's cost, so deadlines live in a
//! min-heap.
//!
//! The heap is lazy. A keep-alive connection pushes its deadline back after every response; updating
//! a heap entry each time would cost `O(log n)` per request. Instead the heap keeps, per connection,
//! one entry no later than its real deadline. When that entry comes due, the loop looks at the
//! connection: if its deadline has moved on, the entry is pushed again at the new time; only if the
//! deadline has really passed does the connection hear about it. A deadline that moves *earlier*
//! (a lingering close is shorter than the idle timeout) pushes a new entry at once, and the older,
//! later entry is recognised as stale when it comes out.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

// ANCHOR: timers
/// One scheduled wake-up: when, for which connection slot, and which connection it was for (slots
/// are reused; the serial number tells a new connection from the old one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer {
    /// When the timer is due.
    pub at: Instant,
    /// The connection's slot.
    pub key: usize,
    /// The connection's serial number.
    pub serial: u64,
}

/// A min-heap of [`Timer`]s.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
}
// ANCHOR_END: timers

impl Timers {
    /// An empty set of timers.
    pub fn new() -> Self {
        Timers::default()
    }

    /// Schedules a wake-up.
    pub fn schedule(&mut self, timer: Timer) {
        self.heap.push(Reverse(timer));
    }

    /// When the earliest timer is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.peek().map(|timer| timer.at)
    }

    /// The earliest timer, left in place.
    pub fn peek(&self) -> Option<Timer> {
        self.heap.peek().map(|Reverse(timer)| *timer)
    }

    /// Removes the earliest timer.
    pub fn pop(&mut self) -> Option<Timer> {
        self.heap.pop().map(|Reverse(timer)| timer)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        if self.next_due()? > now {
            return None;
        }
        self.pop()
    }

    /// How many timers are scheduled, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no timer is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timers_come_out_earliest_first_and_only_when_due() {
        let start = Instant::now();
        let mut timers = Timers::new();
        for (key, secs) in [(0, 5), (1, 2), (2, 9)] {
            timers.schedule(Timer {
                at: start + Duration::from_secs(secs),
                key,
                serial: 0,
            });
        }
        assert_eq!(timers.next_due(), Some(start + Duration::from_secs(2)));
        assert_eq!(timers.pop_due(start + Duration::from_secs(1)), None);
        let due: Vec<usize> = std::iter::from_fn(|| timers.pop_due(start + Duration::from_secs(6)))
            .map(|timer| timer.key)
            .collect();
        assert_eq!(due, [1, 0]);
        assert_eq!(timers.len(), 1);
    }
}
