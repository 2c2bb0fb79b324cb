//! Defines [`Site`] and [`start`]: what every server does before its first `accept`.

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::resource::{Resource, getrlimit};
use socket2::{Domain, Socket, Type};

use crate::http::docroot::DocRoot;
use crate::http::file_cache::{FileCache, FileCacheConfig, HitCheck};
use crate::http::limits::Limits;
use crate::server::cli::ServerArgs;
use crate::server::log::{AccessLog, note};

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
    /// Occurs when `--idle-timeout` is zero or longer than [`MAX_IDLE_TIMEOUT`].
    IdleTimeout(Duration),
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            StartupError::Root { path, source } => {
                write!(f, "cannot serve {}: {source}", path.display())
            }
            StartupError::Signals(source) => write!(f, "cannot install signal handlers: {source}"),
            StartupError::IdleTimeout(timeout) => write!(
                f,
                "--idle-timeout {} is out of range: it must be more than 0s and at most {}",
                humantime::format_duration(*timeout),
                humantime::format_duration(MAX_IDLE_TIMEOUT),
            ),
        }
    }
}

impl std::error::Error for StartupError {}

/// The longest `--idle-timeout` accepted: a day. Longer, an idle client holds its connection for
/// ever in practice, and deadlines computed from it (`Instant::now() + idle_timeout`) could
/// overflow the clock and panic; so it is refused at start-up.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// How to open the listening socket.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListenOptions {
    /// Let more sockets of this process listen on the same port afterwards ([`join`]), for one
    /// event loop each; the kernel spreads connections among them (`SO_REUSEPORT`).
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
    if args.idle_timeout.is_zero() || args.idle_timeout > MAX_IDLE_TIMEOUT {
        return Err(StartupError::IdleTimeout(args.idle_timeout));
    }
    let root = DocRoot::open(&args.root).map_err(|source| StartupError::Root {
        path: args.root.clone(),
        source,
    })?;
    let root = with_file_cache(root, args);
    let listener = listen(args.addr, options).map_err(|source| StartupError::Listen {
        addr: args.addr,
        source,
    })?;
    grow_descriptor_table(&listener);
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
        max_descriptors: cache_descriptor_budget(),
        check: match args.file_cache_check.as_str() {
            "stat" => HitCheck::Stat,
            _ => HitCheck::Watch,
        },
        ..FileCacheConfig::default()
    }))
}

/// A quarter of the descriptor limit for the open-file cache, the rest for clients, the log and
/// the files of responses in flight: under `ulimit -n 1024`, 256 cached large files at most.
fn cache_descriptor_budget() -> usize {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => usize::try_from(soft / 4).unwrap_or(usize::MAX),
        Err(_) => 0,
    }
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
/// With `options.reuse_port`, the socket still claims the port alone, as every server does, and
/// opens it to [`join`] only once it listens; see there why.
///
/// # Errors
///
/// Fails when the socket cannot be created or bound (the port is in use, say).
pub fn listen(addr: SocketAddr, options: ListenOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // Lets a restarted server bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    Ok(socket.into())
}
// ANCHOR_END: listen

/// The accept backlog asked for; see [`listen`].
const BACKLOG: i32 = 4096;

// ANCHOR: grow_descriptor_table
/// The most descriptors [`grow_descriptor_table`] makes room for, whatever the limit.
const LARGEST_DESCRIPTOR_TABLE: u64 = 1 << 16;

/// Grows the process's descriptor table, now, to as many descriptors as it may open.
///
/// The kernel doubles the table when it fills, and in a process with threads each doubling waits
/// for an RCU grace period (`synchronize_rcu` in `expand_fdtable`) while every thread that opens or
/// closes a descriptor waits too: loops accepting thousands of connections would all stall at once,
/// at each power of two. Done here, before the first client, it costs nobody anything.
pub fn grow_descriptor_table(any: &impl AsFd) {
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let top = soft.min(LARGEST_DESCRIPTOR_TABLE).saturating_sub(1);
    let Ok(top) = i32::try_from(top) else {
        return;
    };
    // The lowest free descriptor at or above `top`: the table grows to hold it, and never shrinks.
    if let Ok(raw) = fcntl(any, FcntlArg::F_DUPFD_CLOEXEC(top)) {
        // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` has just returned this new descriptor; nothing else in
        // the process knows it, so owning it here (and closing it on drop) is sound.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
    }
}
// ANCHOR_END: grow_descriptor_table

// ANCHOR: join
/// Opens one more listening socket on `first`'s address, in its `SO_REUSEPORT` group: the kernel
/// then hands each new connection to one socket of the group.
///
/// The pitfall: Linux lets *any* socket with `SO_REUSEPORT` set, of any process of the same user,
/// bind to a port whose sockets all have it, and join the group. Had the first socket set it
/// before `bind`, a second server started on the same port would not be refused: it would print
/// its `Listening on` line and silently take part of the traffic. So [`listen`] claims the port
/// as every other server does, with a plain `bind` and `listen`, and sets `SO_REUSEPORT` only
/// once it listens; only then can this process's other sockets join.
///
/// Why after `listen`, not just after `bind`: with `SO_REUSEADDR` (which every server sets, to
/// restart while old connections sit in `TIME_WAIT`) two sockets may both *bind* one port as long
/// as neither listens yet. Two servers starting at once could then both bind, both set
/// `SO_REUSEPORT`, and both listen, as one group. A socket without `SO_REUSEPORT` cannot
/// *listen* where another socket listens, so of two servers racing, the second to call `listen`
/// fails, whichever it is. From then on the port is held by a listening socket that refuses any
/// newcomer's plain `bind`.
///
/// Production note: a program of the same user that sets `SO_REUSEPORT` itself can still join
/// the group after the first socket has opened it. A server that must exclude that attaches a
/// reuseport BPF program (`SO_ATTACH_REUSEPORT_CBPF`) that picks only its own sockets.
///
/// # Errors
///
/// Fails when the socket cannot be created or bound.
pub fn join(first: &TcpListener) -> io::Result<TcpListener> {
    let addr = first.local_addr()?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
// ANCHOR_END: join

/// Prints the first line of stdout, `Listening on http://ADDR/`, with the real port.
/// Tests and benchmarks read it to learn where the server is.
///
/// # Errors
///
/// Fails when the listener has no local address (it always has once bound).
pub fn announce(listener: &TcpListener) -> io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    announce_addr(addr)?;
    Ok(addr)
}

/// [`announce`] for a server that no longer holds its listener at hand (step 7 hands its
/// listeners to its event loops first). The line is written and flushed before anything else
/// is written to stdout, and waited for: it is the one line a reader must get.
///
/// # Errors
///
/// Fails when stdout is closed.
pub fn announce_addr(addr: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "Listening on http://{addr}/")?;
    out.flush()
}

// ANCHOR: accept_failed
/// How long an accept loop pauses after `accept` failed for lack of descriptors or memory.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Logs a failed `accept` and, when the cause is a shortage of descriptors or memory, pauses the
/// thread for [`ACCEPT_BACKOFF`].
///
/// With `EMFILE` the pending connection stays in the backlog, so the listener stays readable and
/// an accept loop that simply retried would spin at 100% CPU until a descriptor frees up.
pub fn accept_failed(error: &io::Error) {
    accept_failed_then(error, thread::sleep);
}

/// [`accept_failed`] for a loop that must pause its own way: a coroutine sleeps without blocking
/// its worker thread, an event loop stops watching the listener until a deadline and serves its
/// other connections meanwhile. `pause` is called with [`ACCEPT_BACKOFF`], or not at all when
/// retrying at once is right (the client reset before it was accepted).
pub fn accept_failed_then(error: &io::Error, pause: impl FnOnce(Duration)) {
    note(format_args!("accept failed: {error}"));
    if is_resource_shortage(error) {
        pause(ACCEPT_BACKOFF);
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

/// Runs `start`, which starts `what` through a crate that panics when the system refuses a thread
/// (`threadpool`, `may`), and returns that refusal as the one-line error it is: an operator's
/// limit (`ulimit -u`, memory), not a bug. The panic's message is kept off stderr meanwhile.
///
/// # Errors
///
/// Fails when `start` panics.
pub fn start_threads<T>(what: impl fmt::Display, start: impl FnOnce() -> T) -> io::Result<T> {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(start));
    std::panic::set_hook(report);
    started.map_err(|_| {
        io::Error::other(format!(
            "cannot start {what}: the system refused a thread (see ulimit -u)"
        ))
    })
}
