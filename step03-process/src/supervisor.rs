//! Defines [`supervise`]: the master of a pool of worker processes, the one supervisor of the
//! workspace. Step 3's `--prefork N` runs it with workers that block in `accept`; step 7's
//! `--workers N` runs it with workers that each run event loops (nginx's master and workers).
//!
//! The master serves nothing. It forks the workers, waits until each says it is ready, announces
//! the server, and then only waits: for a worker to die (it forks a replacement into the same
//! slot) or for SIGINT or SIGTERM (it passes the stop on to every worker and waits for them all).

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::PollTimeout;
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid, getpid, getppid};
use step02_files::server::log::note;

use crate::children::{Children, Exited};
use crate::process::{ChildSignals, ParentSignals, fork_child_with, wait_for};
use crate::{exit_child, exit_child_with};

/// How long (in milliseconds) the master waits before trying again when a worker could not be
/// forked, or before it replaces a worker that died young.
const RETRY_FORK_MS: u16 = 1000;

/// A worker that dies sooner than this after its start is replaced only after [`RETRY_FORK_MS`]:
/// one that cannot start (out of descriptors, say) would otherwise be forked again and again as
/// fast as the machine can fork.
const YOUNG: Duration = Duration::from_secs(1);

/// How many workers, and how they stop.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    /// How many worker processes to keep alive.
    pub workers: NonZeroUsize,
    /// [`ChildSignals::Default`]: a stop kills the workers at once (SIGTERM). [`ChildSignals::Own`]:
    /// each worker installs its own handlers and the master asks it to stop with SIGQUIT, which
    /// lets it finish the responses in flight.
    pub child_signals: ChildSignals,
}

/// What a worker is told when it starts: which slot it fills, and how to say it is ready.
#[derive(Debug)]
pub struct Worker {
    /// Its slot, `0..workers`: a replacement gets the slot of the worker it replaces, and with it
    /// whatever the master set aside for that slot (step 7: its listeners).
    pub slot: usize,
    ready: Option<UnixStream>,
}

impl Worker {
    /// Tells the master this worker can serve. Only the first workers are waited for; a
    /// replacement's call does nothing.
    pub fn ready(&mut self) {
        if let Some(mut ready) = self.ready.take() {
            // A master gone meanwhile is no reason to fail: the worker is told by SIGTERM.
            let _ = ready.write_all(&[1]);
        }
    }
}

// ANCHOR: supervise
/// The master's loop: fork `pool.workers` workers, call `on_ready` once all of them are ready,
/// then keep them alive until SIGINT or SIGTERM, and stop them. `run_worker` is a worker's whole
/// life, in the forked child; it never returns (`Infallible`: a worker ends by `_exit`).
///
/// # Errors
///
/// Fails when waiting for events fails, and when a first worker dies before it is ready (the
/// others are stopped first; the error says how it ended).
pub fn supervise(
    signals: ParentSignals,
    pool: Pool,
    on_ready: impl FnOnce() -> io::Result<()>,
    mut run_worker: impl FnMut(Worker) -> Infallible,
) -> io::Result<()> {
    let master = getpid();
    let mut children = Children::default();
    let mut slots: Vec<Option<(Pid, Instant)>> = vec![None; pool.workers.get()];
    let mut replace_after: Option<Instant> = None;
    let (mut ready_from_workers, ready_to_master) = UnixStream::pair()?;
    let mut ready_to_master = Some(ready_to_master);
    let mut waiting_for = pool.workers.get();
    let mut on_ready = Some(on_ready);
    loop {
        signals.child_exits.clear();
        for exited in children.reap() {
            let slot = slots
                .iter_mut()
                .find(|slot| slot.is_some_and(|(pid, _)| pid == exited.pid));
            if let Some(slot) = slot {
                if slot.is_some_and(|(_, started)| started.elapsed() < YOUNG) {
                    replace_after = Some(Instant::now() + retry_fork());
                }
                *slot = None;
            }
            if ready_to_master.is_some() {
                children.stop_all_with(stop_signal(pool));
                return Err(io::Error::other(format!(
                    "worker {} {} before it was ready",
                    exited.pid,
                    exited.how()
                )));
            }
            log_worker_exit(&exited);
        }
        let now = Instant::now();
        let replacing = replace_after.is_none_or(|after| now >= after);
        for (slot_idx, slot) in slots.iter_mut().enumerate() {
            if slot.is_some() || !replacing {
                continue;
            }
            match fork_child_with(pool.child_signals) {
                Ok(ForkResult::Child) => {
                    drop(ready_from_workers);
                    let ready = ready_to_master.take();
                    start_worker(master, signals, pool, slot_idx, ready, &mut run_worker)
                }
                Ok(ForkResult::Parent { child }) => {
                    *slot = Some((child, now));
                    children.insert(child, format!("worker {slot_idx}"));
                }
                Err(errno) => {
                    note(format_args!("cannot fork a worker ({errno}); retrying"));
                    break;
                }
            }
        }
        if replacing {
            replace_after = None;
        }
        let timeout = if slots.iter().any(Option::is_none) {
            PollTimeout::from(RETRY_FORK_MS)
        } else {
            PollTimeout::NONE
        };
        // The master does not accept: until every first worker is ready it waits for their
        // bytes, then only for a worker to die or for a signal.
        let ready_fd = ready_to_master.as_ref().map(|_| ready_from_workers.as_fd());
        let wakeup = wait_for(ready_fd, &signals, timeout)?;
        if wakeup.stop {
            break;
        }
        if wakeup.connection {
            waiting_for = waiting_for.saturating_sub(read_ready_bytes(&mut ready_from_workers));
            if waiting_for == 0 {
                ready_to_master = None;
                if let Some(on_ready) = on_ready.take() {
                    on_ready()?;
                }
            }
        }
    }
    children.stop_all_with(stop_signal(pool));
    Ok(())
}
// ANCHOR_END: supervise

fn retry_fork() -> Duration {
    Duration::from_millis(u64::from(RETRY_FORK_MS))
}

/// The signal that passes a stop on to the workers.
fn stop_signal(pool: Pool) -> Signal {
    match pool.child_signals {
        ChildSignals::Default => Signal::SIGTERM,
        ChildSignals::Own => Signal::SIGQUIT,
    }
}

/// Reads the ready bytes that have come (the socket is read only once `poll` said so).
fn read_ready_bytes(ready: &mut UnixStream) -> usize {
    let mut bytes = [0u8; 64];
    ready.read(&mut bytes).unwrap_or_default()
}

// ANCHOR: start_worker
/// The child's side of a fork: cut the ties to the master's signals, then become a worker.
fn start_worker(
    master: Pid,
    signals: ParentSignals,
    pool: Pool,
    slot: usize,
    ready: Option<UnixStream>,
    run_worker: &mut impl FnMut(Worker) -> Infallible,
) -> ! {
    exit_with_parent(master);
    match pool.child_signals {
        ChildSignals::Default => drop(signals),
        ChildSignals::Own => signals.forget(),
    }
    match run_worker(Worker { slot, ready }) {}
}
// ANCHOR_END: start_worker

// ANCHOR: exit_with_parent
/// Makes the kernel send this worker SIGTERM when the master dies, even by SIGKILL, which
/// gives the master no chance to stop its workers. Without this, orphaned workers would go on
/// accepting on the port for ever.
fn exit_with_parent(master: Pid) {
    #[cfg(target_os = "linux")]
    if nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).is_err() {
        exit_child_with(1);
    }
    // The master may have died between `fork` and the line above; the worker was then adopted
    // by another process and the death signal will never come.
    if getppid() != master {
        exit_child();
    }
}
// ANCHOR_END: exit_with_parent

/// A worker exits only when killed, crashed or stopped on its own: say so, as it is about to be
/// replaced.
fn log_worker_exit(exited: &Exited) {
    note(format_args!(
        "worker {} {}; starting another",
        exited.pid,
        exited.how()
    ));
}
