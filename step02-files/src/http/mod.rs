//! The HTTP core: bytes in, values out. Nothing in this module touches a socket.
//!
//! A shell (the blocking loop of steps 2–5, or step 6's connection state machine) reads bytes and
//! feeds them to a [`RequestDecoder`](decoder::RequestDecoder); [`respond`](respond::respond) turns
//! each request into a [`Response`](response::Response); the shell writes it. Opening a file under
//! the [`DocRoot`](docroot::DocRoot) is the core's only contact with the outside.
//!
//! | module | role |
//! |---|---|
//! | [`request`], [`decoder`] | bytes → requests, with every limit enforced ([`limits`]) |
//! | [`error`], [`status`] | why a request was refused, and the status that says so |
//! | [`docroot`] | URL path → file, never outside the root |
//! | [`respond`], [`response`] | request → response head and body |

pub mod decoder;
pub mod docroot;
pub mod error;
pub mod limits;
pub mod request;
pub mod respond;
pub mod response;
pub mod status;
