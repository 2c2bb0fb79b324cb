//! The HTTP core: bytes in, values out. Nothing in this module touches a socket.
//!
//! A shell (the blocking loop of steps 2–5, or step 6's connection state machine) reads bytes and
//! feeds them to a [`RequestDecoder`](decoder::RequestDecoder); [`respond`](respond::respond) turns
//! each request into a [`Response`](response::Response); the shell writes it. Opening a file under
//! the [`DocRoot`](docroot::DocRoot) (and reading a small file into the
//! [`FileCache`](file_cache::FileCache)) is the core's only contact with the outside.
//!
//! | module | role |
//! |---|---|
//! | [`request`], [`decoder`] | bytes → requests, with every limit enforced ([`limits`]) |
//! | [`error`], [`status`] | why a request was refused, and the status that says so |
//! | [`host`] | the syntax of a `Host` value |
//! | [`docroot`], [`file_cache`], [`watch`] | URL path → file, never outside the root; what was found, remembered until it changes |
//! | [`date`] | the clock reading the shell hands in, and HTTP dates |
//! | [`validators`], [`range`] | `ETag`, `Last-Modified`, conditional requests, byte ranges |
//! | [`respond`], [`response`] | request → response head and body |
//!
//! The core never reads the clock: [`respond`](respond::respond) is given a [`Now`](date::Now).

pub mod date;
pub mod decoder;
pub mod docroot;
pub mod error;
pub mod file_cache;
pub mod host;
pub mod limits;
pub mod range;
pub mod request;
pub mod respond;
pub mod response;
pub mod status;
pub mod validators;
#[cfg(target_os = "linux")]
pub mod watch;

/// Elsewhere there is no inotify: the open-file cache checks every hit by `stat`.
#[cfg(not(target_os = "linux"))]
pub mod watch {
    /// Never made.
    #[derive(Debug)]
    pub struct Watch;

    impl Watch {
        pub fn new() -> Option<Watch> {
            None
        }
        pub fn is_own(&self) -> bool {
            true
        }
        pub fn cover(&mut self, _path: &std::path::Path) -> bool {
            false
        }
        pub fn saw_change(&mut self) -> bool {
            true
        }
    }
}
