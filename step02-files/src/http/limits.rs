//! Defines [`Limits`]: every bound on what a peer may make the server hold.

// ANCHOR: limits
/// Bounds on what one request may make the server buffer or read.
///
/// Everything the peer controls is bounded, so a hostile client can cost the server at most a known
/// amount of memory per connection. The defaults follow common servers: h11 caps the head at 16 KiB,
/// nginx's `large_client_header_buffers` allows 8 KiB for the request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The request line and all header lines together, up to and including the blank line.
    pub max_head_bytes: usize,
    /// The request target (`/path?query`) as sent, before percent-decoding.
    pub max_target_bytes: usize,
    /// How many header lines one request may have.
    pub max_headers: usize,
    /// The largest body the server reads and discards on a GET or HEAD.
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_target_bytes: 8 * 1024,
            max_headers: 100,
            max_body_bytes: 64 * 1024,
        }
    }
}
// ANCHOR_END: limits
