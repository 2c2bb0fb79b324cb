//! The server around the HTTP core: what every step's binary shares.
//!
//! These modules do the I/O the core leaves out: flags, binding, signals, the access log, and the
//! blocking read–answer loop that steps 2–5 run on their sockets.
//!
//! | module | role |
//! |---|---|
//! | [`blocking`] | the read–answer loop of steps 2–5, generic over [`Stream`](stream::Stream) |
//! | [`stream`] | the byte-stream trait every loop serves, `sendfile`, the lingering-close bounds |
//! | [`clock`] | the time each response is made at, its `Date` formatted once per second |
//! | [`cli`] | the flags every server takes, and exit codes |
//! | [`startup`] | root check, bind, the `Listening on` line, accept-error back-off |
//! | [`shutdown`] | SIGINT/SIGTERM as a descriptor an accept loop or event loop can wait on; SIGHUP ignored |
//! | [`log`] | the access log |

pub mod blocking;
pub mod cli;
pub mod clock;
pub mod log;
pub mod shutdown;
pub mod startup;
pub mod stream;
