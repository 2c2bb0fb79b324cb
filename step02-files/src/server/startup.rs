//! Defines [`Site`] and [`start`]: what every server does before its first `accept`.

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use socket2::{Domain, Socket, Type};

use crate::http::docroot::DocRoot;
use crate::http::file_cache::{FileCache, FileCacheConfig};
use crate::http::limits::Limits;
use crate::server::cli::ServerArgs;
use crate::server::log::AccessLog;

/// Everything a connection handler needs to know about the server, shared by all connections.
#[derive(Debug, Clone)]
pub struct Site {
    /// The folder being served.
    pub root: DocRoot,
    /// Bounds on each request.
    pub limits: Limits,
    /// How long a request may take to arrive, and how long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Where answered requests are recorded.
    pub log: AccessLog,
}

impl Site {
    /// This site with an open-file cache of its own (none if it had none): one per event loop
    /// makes step 7's `--threads N` share nothing between loops, like nginx's workers.
    pub fn with_own_file_cache(&self) -> Site {
        Site {
            root: self.root.with_own_cache(),
            ..self.clone()
        }
    }
}

/// Why a server could not start. Each is an operator's mistake, reported in one line.
#[derive(Debug)]
pub enum StartupError {
    /// Occurs when the address cannot be bound: the port is in use, or the address is not local.
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// Occurs when the document root does not exist or is not a folder.
    Root {
        /// The path asked for.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Occurs when a signal handler cannot be installed.
    Signals(io::Error),
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            StartupError::Root { path, source } => {
                write!(f, "cannot serve {}: {source}", path.display())
            }
            StartupError::Signals(source) => write!(f, "cannot install signal handlers: {source}"),
        }
    }
}

impl std::error::Error for StartupError {}

/// How to open the listening socket.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListenOptions {
    /// Set `SO_REUSEPORT`, so several sockets (one per event loop) can listen on one port and the
    /// kernel spreads connections among them.
    pub reuse_port: bool,
}

// ANCHOR: start
/// Opens the document root and binds the listener, in that order, so a typo in `--root` is
/// reported before a port is taken.
///
/// # Errors
///
/// Returns a [`StartupError`] saying which of the two failed.
pub fn start(
    args: &ServerArgs,
    options: ListenOptions,
) -> Result<(TcpListener, Site), StartupError> {
    let root = DocRoot::open(&args.root).map_err(|source| StartupError::Root {
        path: args.root.clone(),
        source,
    })?;
    let root = with_file_cache(root, args);
    let listener = listen(args.addr, options).map_err(|source| StartupError::Listen {
        addr: args.addr,
        source,
    })?;
    let site = Site {
        root,
        limits: Limits::default(),
        idle_timeout: args.idle_timeout,
        log: AccessLog::new(args.quiet),
    };
    Ok((listener, site))
}
// ANCHOR_END: start

// ANCHOR: with_file_cache
/// Gives the root its open-file cache, unless `--no-file-cache`.
///
/// The cache lives in the [`DocRoot`], so every clone of the [`Site`] shares it: one cache per
/// process, behind one lock, for the threads of step 4, the coroutines of step 5 and the loops of
/// step 7; one per worker process in step 3's prefork, as in nginx. A forked child serving one
/// connection (step 3) starts from its parent's empty cache and exits with it: the model pays its
/// own price there, as it does for everything else it cannot share.
fn with_file_cache(root: DocRoot, args: &ServerArgs) -> DocRoot {
    if args.no_file_cache {
        return root;
    }
    root.with_cache(FileCache::new(FileCacheConfig {
        valid_for: args.file_cache_valid,
        ..FileCacheConfig::default()
    }))
}
// ANCHOR_END: with_file_cache

// ANCHOR: listen
/// Binds a listening TCP socket.
///
/// `std`'s `TcpListener::bind` fixes the accept backlog at 128; a burst of new connections (a
/// benchmark with a connection per request, a C10K test) overflows that, and the kernel then drops
/// SYNs, which clients see as one-second stalls. This asks for 4096, which Linux caps at
/// `net.core.somaxconn`.
///
/// # Errors
///
/// Fails when the socket cannot be created or bound (the port is in use, say).
pub fn listen(addr: SocketAddr, options: ListenOptions) -> io::Result<TcpListener> {
    const BACKLOG: i32 = 4096;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // Lets a restarted server bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
// ANCHOR_END: listen

/// Prints the first line of stdout, `Listening on http://ADDR/`, with the real port.
/// Tests and benchmarks read it to learn where the server is.
///
/// # Errors
///
/// Fails when the listener has no local address (it always has once bound).
pub fn announce(listener: &TcpListener) -> io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    let mut out = io::stdout().lock();
    writeln!(out, "Listening on http://{addr}/")?;
    out.flush()?;
    Ok(addr)
}

// ANCHOR: accept_failed
/// Logs a failed `accept` and, when the cause is a shortage of descriptors or memory, pauses.
///
/// With `EMFILE` the pending connection stays in the backlog, so the listener stays readable and
/// an accept loop that simply retried would spin at 100% CPU until a descriptor frees up.
pub fn accept_failed(error: &io::Error) {
    let _ = writeln!(io::stderr().lock(), "accept failed: {error}");
    if is_resource_shortage(error) {
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether an `accept` error means the process or the system ran out of something
/// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), which retrying at once cannot fix.
pub fn is_resource_shortage(error: &io::Error) -> bool {
    let errno = error.raw_os_error().map(Errno::from_raw);
    matches!(
        errno,
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}
// ANCHOR_END: accept_failed
