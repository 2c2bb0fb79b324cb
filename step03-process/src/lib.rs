//! Step 3's server: a process per connection (`fork`), or a pool of pre-forked worker processes.
//!
//! The connection itself is step 2's blocking loop ([`serve_tcp`]) with keep-alive; a process
//! blocks in `read` and `write` exactly as step 2 did. What this crate adds is *who* runs that
//! loop: a child forked for each connection ([`Model::ForkPerConnection`]) or one of N workers
//! forked up front ([`Model::Prefork`], in [`prefork`]). The parent never serves a request; it
//! accepts (or not, in prefork), forks, and reaps.

#![deny(missing_docs)]

pub mod children;
pub mod prefork;
pub mod process;
pub mod supervisor;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::PollTimeout;
use nix::unistd::ForkResult;
use step02_files::server::log::{self, note};
use step02_files::server::startup;
use step02_files::{Persistence, Site, serve_tcp};

pub use children::Children;
pub use process::{
    ChildExits, ChildSignals, ParentSignals, Wakeup, fork_child, fork_child_with, silence_hangups,
    unblock_stop_signals, wait_for,
};
pub use supervisor::{Pool, Worker, supervise};

/// Who serves each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// A child process forked for each connection, at most `max_children` alive at once.
    ForkPerConnection {
        /// At this many live children the parent stops accepting until one exits.
        max_children: NonZeroUsize,
    },
    /// This many worker processes forked at start, each accepting and serving one connection at
    /// a time; the parent replaces a worker that dies.
    Prefork {
        /// How many workers.
        workers: NonZeroUsize,
    },
}

/// Serves until SIGINT or SIGTERM, then stops every child and returns once all are reaped.
///
/// Takes the listener and the signals by value: each child drops its copies of them (closing
/// the descriptors) before it serves.
///
/// # Errors
///
/// Fails when waiting for events fails; errors of single connections are logged by the child
/// that serves them.
pub fn serve(
    listener: TcpListener,
    site: &Site,
    signals: ParentSignals,
    model: Model,
) -> io::Result<()> {
    match model {
        Model::ForkPerConnection { max_children } => {
            fork_per_connection(listener, site, signals, max_children)
        }
        Model::Prefork { workers } => prefork::prefork(listener, site, signals, workers),
    }
}

// ANCHOR: fork_per_connection
/// The parent's loop: reap, wait, accept, fork.
fn fork_per_connection(
    listener: TcpListener,
    site: &Site,
    signals: ParentSignals,
    max_children: NonZeroUsize,
) -> io::Result<()> {
    let mut children = Children::default();
    let mut cap = Cap::new(max_children);
    loop {
        signals.child_exits.clear();
        children.reap().iter().for_each(log_if_abnormal);
        let accepting = cap.allows(children.len());
        let listener_fd = accepting.then(|| listener.as_fd());
        let wakeup = wait_for(listener_fd, &signals, PollTimeout::NONE)?;
        if wakeup.stop {
            break;
        }
        if !wakeup.connection {
            continue;
        }
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) => {
                startup::accept_failed(&error);
                continue;
            }
        };
        match fork_child() {
            Ok(ForkResult::Child) => serve_in_child(listener, signals, stream, peer, site),
            Ok(ForkResult::Parent { child }) => {
                // The child has its own copy of the socket; the parent's must go, or the
                // connection would stay open after the child closes it.
                drop(stream);
                children.insert(child, format!("connection from {peer}"));
            }
            Err(errno) => note(format_args!(
                "{peer}: cannot fork ({errno}); connection dropped"
            )),
        }
    }
    children.stop_all();
    Ok(())
}
// ANCHOR_END: fork_per_connection

// ANCHOR: serve_in_child
/// The child's whole life: close what belongs to the parent, serve one connection, exit.
fn serve_in_child(
    listener: TcpListener,
    signals: ParentSignals,
    stream: TcpStream,
    peer: SocketAddr,
    site: &Site,
) -> ! {
    // A child holding the listening socket would keep the port open after the parent exits.
    drop(listener);
    drop(signals);
    serve_tcp(stream, peer, site, Persistence::KeepAlive);
    exit_child()
}
// ANCHOR_END: serve_in_child

// ANCHOR: exit_child
/// Ends a child at once, without returning into the parent's code.
///
/// `std::process::exit` would flush stdout's buffer, which the child inherited from the parent
/// and could hold the parent's unwritten bytes (they would be written twice), and would run
/// `atexit` handlers meant for the parent. `_exit` does neither. The access log does not go
/// through that buffer: each line is one `write` of its own, and only lines that a stdout nobody
/// reads could not take wait in the child's queue, which gets a short, bounded chance to go out.
pub fn exit_child() -> ! {
    exit_child_with(0)
}
// ANCHOR_END: exit_child

/// [`exit_child`] with an exit code: non-zero for a worker that could not start.
pub fn exit_child_with(code: i32) -> ! {
    log::flush(CHILD_EXIT_FLUSH);
    // SAFETY: `_exit` has no preconditions; it ends the process without running any destructor,
    // so nothing can observe state left half-done.
    unsafe { libc::_exit(code) }
}

/// How long a child about to exit waits for a stdout nobody reads to take its queued log lines.
/// Short: at `--max-children`, a child that lingers keeps a new client waiting.
const CHILD_EXIT_FLUSH: Duration = Duration::from_millis(100);

/// Tracks `--max-children`, logging when the cap is reached, not at every connection.
#[derive(Debug)]
struct Cap {
    max_children: NonZeroUsize,
    reached: bool,
}

impl Cap {
    fn new(max_children: NonZeroUsize) -> Self {
        Cap {
            max_children,
            reached: false,
        }
    }

    /// Whether the parent may fork another child.
    fn allows(&mut self, n_children: usize) -> bool {
        let at_cap = n_children >= self.max_children.get();
        if at_cap && !self.reached {
            note(format_args!(
                "{n_children} children busy (--max-children); new connections wait"
            ));
        }
        self.reached = at_cap;
        !at_cap
    }
}

/// Logs a child that crashed or was killed; a child that served its connection exits with 0.
fn log_if_abnormal(exited: &children::Exited) {
    if !exited.is_clean() {
        note(format_args!(
            "child {} ({}) {}",
            exited.pid,
            exited.role,
            exited.how()
        ));
    }
}
