//! Defines [`RingLoop`]: one thread, one listener, one io_uring, and every connection it accepted.
//!
//! Step 7's loop asks the kernel "which sockets are ready?" and then makes the system calls
//! itself. This loop hands the kernel the operations (accept, receive, send, splice) and waits
//! for their completions; one `io_uring_enter` submits everything the last batch of
//! completions called for and waits for the next batch. A multishot accept stays armed for
//! every connection to come, and a multishot receive for every byte a connection will send, so
//! a keep-alive request costs one send and its share of one `io_uring_enter`.
//!
//! Deadlines are step 7's heap; the wait carries the earliest as its timeout, so no timeout
//! operation is queued per request.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::time::Instant;

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use slab::Slab;
use step02_files::server::log::note;
use step02_files::server::startup::{ACCEPT_BACKOFF, is_resource_shortage};
use step02_files::{ShutdownSignal, Site};
use step07_epoll::timers::{Timer, Timers};

use crate::Options;
use crate::buf_ring::{BUFFER_GROUP, BUFFER_LEN, BufRing};
use crate::connection::{Connection, Op, OpKind, RecvEnd};

// ANCHOR: user_data
/// Every operation's `user_data`: the connection's slot in the upper bits, the kind below.
/// Operations of the loop itself use the kinds from [`ACCEPT`] on, with slot 0.
const KIND_BITS: u64 = 8;
const RECV: u64 = 1;
const SEND: u64 = 2;
const SPLICE_IN: u64 = 3;
const SPLICE_OUT: u64 = 4;
const CANCEL: u64 = 5;
const ACCEPT: u64 = 16;
const SIGNAL: u64 = 17;
const ACCEPT_CANCEL: u64 = 18;
/// A freed connection's socket, closed by the ring with the next batch (no key).
const CLOSE: u64 = 19;

fn user_data(key: usize, kind: u64) -> u64 {
    ((key as u64) << KIND_BITS) | kind
}
// ANCHOR_END: user_data

/// Submission and completion queue sizes: a completion queue large enough that ten thousand
/// connections' completions of one batch fit (the kernel keeps any overflow, but slowly).
const SQ_ENTRIES: u32 = 1024;
const CQ_ENTRIES: u32 = 8192;
/// How long an SQPOLL kernel thread spins for new submissions before it sleeps, in ms.
const SQPOLL_IDLE_MS: u32 = 100;

// ANCHOR: slot
/// A connection and its bookkeeping in the loop.
struct Slot {
    conn: Connection,
    serial: u64,
    timer_at: Option<Instant>,
    /// Without a buffer ring (`--no-buffer-ring`), the connection's own receive buffer: the
    /// kernel's while a receive is in flight, which is why it is freed only with the slot.
    recv_buf: Option<Box<[u8]>>,
}

/// One ring's loop: all of its state, owned by one thread, shared with no other loop.
pub struct RingLoop<'a> {
    ring: IoUring,
    options: Options,
    buf_ring: Option<BufRing>,
    site: &'a Site,
    shutdown: &'a ShutdownSignal,
    /// Dropped once the accept in flight has completed after shutdown.
    listener: Option<TcpListener>,
    accept_armed: bool,
    accept_cancel_armed: bool,
    /// Sockets handed to the ring to close whose completion has not come back.
    closes_in_flight: usize,
    accept_paused_until: Option<Instant>,
    signal_armed: bool,
    stopping: bool,
    connections: Slab<Slot>,
    timers: Timers,
    next_serial: u64,
    /// Connections touched by the current batch of completions, to queue their next operations.
    touched: Vec<usize>,
    completions: Vec<(u64, i32, u32)>,
    /// The ring takes submissions: it is enabled on the loop's own thread, in `run`.
    enabled: bool,
}
// ANCHOR_END: slot

impl<'a> RingLoop<'a> {
    // ANCHOR: ring_new
    /// Sets up the ring (disabled until [`run`](RingLoop::run) enables it on the loop's own
    /// thread, the only one that will ever submit to it), its buffer ring, and queues the accept
    /// and the wait for the shutdown signal.
    ///
    /// # Errors
    ///
    /// Fails when the kernel refuses io_uring or one of the features asked for.
    pub fn new(
        options: Options,
        listener: TcpListener,
        site: &'a Site,
        shutdown: &'a ShutdownSignal,
    ) -> io::Result<Self> {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(CQ_ENTRIES);
        if options.sqpoll {
            builder.setup_sqpoll(SQPOLL_IDLE_MS);
        } else {
            // Completions are processed only when this thread asks for them: no interrupting
            // task work in the middle of the loop's own work.
            builder
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_r_disabled();
        }
        let ring = builder.build(SQ_ENTRIES)?;
        let buf_ring = if options.buffer_ring {
            Some(BufRing::register(&ring)?)
        } else {
            None
        };
        // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one call here
        // instead of one per connection.
        socket_nodelay(&listener)?;
        let mut ring_loop = RingLoop {
            ring,
            options,
            buf_ring,
            site,
            shutdown,
            listener: Some(listener),
            accept_armed: false,
            accept_cancel_armed: false,
            closes_in_flight: 0,
            accept_paused_until: None,
            signal_armed: false,
            stopping: false,
            connections: Slab::new(),
            timers: Timers::new(),
            next_serial: 0,
            touched: Vec::new(),
            completions: Vec::new(),
            enabled: false,
        };
        ring_loop.arm_accept()?;
        ring_loop.arm_signal()?;
        Ok(ring_loop)
    }
    // ANCHOR_END: ring_new

    // ANCHOR: run
    /// Serves until the shutdown signal, then until the responses in flight are done and every
    /// operation has completed; only then are the buffers freed.
    ///
    /// # Errors
    ///
    /// Fails only if the ring itself fails; errors of single connections are logged.
    pub fn run(mut self) -> io::Result<()> {
        if !self.options.sqpoll {
            self.ring.submitter().register_enable_rings()?;
        }
        self.enabled = true;
        while !self.is_done() {
            self.discard_stale_timers();
            self.submit_and_wait()?;
            let now = Instant::now();
            self.take_completions();
            let completions = std::mem::take(&mut self.completions);
            for &(data, result, flags) in &completions {
                self.on_completion(data, result, flags, now)?;
            }
            self.completions = completions;
            self.expire_timers(now);
            if self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept_paused_until = None;
                self.arm_accept()?;
            }
            self.queue_next_ops()?;
        }
        if let Some(buf_ring) = &self.buf_ring {
            buf_ring.unregister(&self.ring);
        }
        Ok(())
    }

    /// Stopping, with nothing left in flight: no listener, no connection, no loop operation.
    fn is_done(&self) -> bool {
        self.stopping
            && self.listener.is_none()
            && self.connections.is_empty()
            && !self.accept_cancel_armed
            && !self.signal_armed
            && self.closes_in_flight == 0
    }
    // ANCHOR_END: run

    // ANCHOR: submit_and_wait
    /// One `io_uring_enter`: submits what is queued and sleeps until a completion arrives or the
    /// earliest deadline passes.
    fn submit_and_wait(&mut self) -> io::Result<()> {
        let wake_up = match (self.timers.next_due(), self.accept_paused_until) {
            (Some(timer), Some(pause)) => Some(timer.min(pause)),
            (timer, pause) => timer.or(pause),
        };
        let result = match wake_up {
            Some(at) => {
                let timeout = types::Timespec::from(at - Instant::now().min(at));
                let args = types::SubmitArgs::new().timespec(&timeout);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        match result {
            Ok(_) => Ok(()),
            // The deadline passed (ETIME), a signal came (EINTR), or completions must be reaped
            // first (EBUSY): all mean "look at the completion queue now".
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Copies the completion queue out, so the handlers may queue new submissions.
    fn take_completions(&mut self) {
        self.completions.clear();
        self.completions.extend(
            self.ring
                .completion()
                .map(|entry| (entry.user_data(), entry.result(), entry.flags())),
        );
    }
    // ANCHOR_END: submit_and_wait

    // ANCHOR: push
    /// Queues one operation; with `--submit-each`, submits it at once (one system call each, as
    /// a program that treats io_uring as asynchronous system calls would).
    ///
    /// # Safety
    ///
    /// Every buffer and descriptor `entry` names must stay valid until its completion arrives.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller keeps what `entry` points to alive until it completes.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                break;
            }
            // The submission queue is full: hand it to the kernel, which makes room.
            self.ring.submit()?;
        }
        if self.options.submit_each && self.enabled {
            self.ring.submit()?;
        }
        Ok(())
    }
    // ANCHOR_END: push

    // ANCHOR: arm_accept
    /// Queues the accept: multishot (one submission for every connection to come), or one
    /// connection at a time with `--no-multishot`.
    fn arm_accept(&mut self) -> io::Result<()> {
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        if self.accept_armed || self.stopping {
            return Ok(());
        }
        let fd = types::Fd(listener.as_raw_fd());
        let entry = if self.options.multishot {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        };
        // SAFETY: the listener stays open until this accept's last completion has arrived (it
        // is dropped in `on_accepted`, after the final completion of a cancelled accept); no
        // address buffer is passed.
        unsafe { self.push(&entry.user_data(user_data(0, ACCEPT)))? };
        self.accept_armed = true;
        Ok(())
    }

    /// Queues a one-shot poll of the shutdown signal's socket.
    fn arm_signal(&mut self) -> io::Result<()> {
        let fd = types::Fd(self.shutdown.as_fd().as_raw_fd());
        let entry = opcode::PollAdd::new(fd, libc::POLLIN as u32)
            .build()
            .user_data(user_data(0, SIGNAL));
        // SAFETY: the signal's socket lives as long as the process' `ShutdownSignal`, which
        // outlives every loop; a poll names no buffer.
        unsafe { self.push(&entry)? };
        self.signal_armed = true;
        Ok(())
    }
    // ANCHOR_END: arm_accept

    // ANCHOR: on_completion
    /// Hands one completion to whoever it belongs to.
    fn on_completion(
        &mut self,
        data: u64,
        result: i32,
        flags: u32,
        now: Instant,
    ) -> io::Result<()> {
        let key = (data >> KIND_BITS) as usize;
        match data & ((1 << KIND_BITS) - 1) {
            ACCEPT => self.on_accepted(result, flags, now)?,
            SIGNAL => self.on_signal(now)?,
            ACCEPT_CANCEL => self.accept_cancel_armed = false,
            CLOSE => self.closes_in_flight -= 1,
            RECV => self.on_recv(key, result, flags, now),
            kind @ (SEND | SPLICE_IN | SPLICE_OUT) => {
                let kind = match kind {
                    SEND => OpKind::Send,
                    SPLICE_IN => OpKind::SpliceIn,
                    _ => OpKind::SpliceOut,
                };
                if let Some(slot) = self.connections.get_mut(key) {
                    slot.conn.on_sent(kind, to_result(result), self.site, now);
                    self.touched.push(key);
                }
            }
            CANCEL => {
                if let Some(slot) = self.connections.get_mut(key) {
                    slot.conn.on_cancelled();
                    self.touched.push(key);
                }
            }
            _ => {}
        }
        Ok(())
    }
    // ANCHOR_END: on_completion

    // ANCHOR: on_accepted
    /// A connection arrived (or the accept failed, or ended).
    fn on_accepted(&mut self, result: i32, flags: u32, now: Instant) -> io::Result<()> {
        if !cqueue::more(flags) {
            self.accept_armed = false;
        }
        match to_result(result) {
            Ok(fd) => {
                // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
                let stream = unsafe { TcpStream::from_raw_fd(fd as i32) };
                self.add_connection(stream, now);
            }
            Err(error) if self.stopping => {
                // The accept was cancelled: now the listener may close.
                let _ = error;
            }
            Err(error) if is_resource_shortage(&error) => {
                // Out of descriptors: retry on a timer, meanwhile serve the open connections.
                note(format_args!("accept failed: {error}"));
                self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                return Ok(());
            }
            // A client that reset before we took it, or a signal: on to the next.
            Err(_) => {}
        }
        if self.stopping && !self.accept_armed {
            self.listener = None;
        } else if self.accept_paused_until.is_none() {
            self.arm_accept()?;
        }
        Ok(())
    }

    /// Gives a new connection a slot; its first receive is queued with this batch.
    fn add_connection(&mut self, stream: TcpStream, now: Instant) {
        // A multishot accept gives no address, and only the log shows it: with `--quiet` the
        // server does not ask (`getpeername`, a system call a connection).
        let peer = if self.site.log.is_on() {
            match stream.peer_addr() {
                Ok(peer) => peer,
                // Reset before we looked: nothing to serve.
                Err(_) => return,
            }
        } else {
            SocketAddr::from(([0, 0, 0, 0], 0))
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        let recv_buf =
            (!self.options.buffer_ring).then(|| vec![0u8; BUFFER_LEN].into_boxed_slice());
        let key = self.connections.insert(Slot {
            conn: Connection::new(stream, peer, self.site, now),
            serial,
            timer_at: None,
            recv_buf,
        });
        self.touched.push(key);
    }
    // ANCHOR_END: on_accepted

    // ANCHOR: on_recv
    /// Bytes arrived for a connection (or its receive ended).
    fn on_recv(&mut self, key: usize, result: i32, flags: u32, now: Instant) {
        let buffer_id = cqueue::buffer_select(flags);
        let Some(slot) = self.connections.get_mut(key) else {
            // Cannot happen (a slot is freed only once its receive has ended), but a buffer
            // must never be lost from the ring.
            if let (Some(buf_ring), Some(id)) = (self.buf_ring.as_mut(), buffer_id) {
                buf_ring.provide(id);
            }
            return;
        };
        self.touched.push(key);
        let end = match to_result(result) {
            Ok(0) => Some(RecvEnd::Eof),
            Ok(n_bytes) => {
                let bytes = match (&self.buf_ring, buffer_id, &slot.recv_buf) {
                    (Some(buf_ring), Some(id), _) => buf_ring.bytes(id, n_bytes),
                    // SAFETY not needed: this receive has completed, the buffer is ours again.
                    (None, _, Some(recv_buf)) => &recv_buf[..n_bytes.min(recv_buf.len())],
                    _ => &[],
                };
                slot.conn.on_received(bytes, self.site, now);
                (!cqueue::more(flags)).then_some(RecvEnd::Stopped)
            }
            // Out of provided buffers, or cancelled: the connection re-arms if it still wants.
            Err(error) if matches!(error.raw_os_error(), Some(libc::ENOBUFS | libc::ECANCELED)) => {
                Some(RecvEnd::Stopped)
            }
            Err(error) => Some(RecvEnd::Failed(error)),
        };
        // The bytes are in the decoder: the buffer goes back to the kernel at once.
        if let (Some(buf_ring), Some(id)) = (self.buf_ring.as_mut(), buffer_id) {
            buf_ring.provide(id);
        }
        if let Some(end) = end {
            slot.conn.on_recv_ended(end, self.site, now);
        }
    }
    // ANCHOR_END: on_recv

    // ANCHOR: on_signal
    /// The shutdown signal's socket is readable: stop accepting (cancel the accept, then close
    /// the listener when its last completion is in), let idle connections go, and give the
    /// responses in flight the idle timeout to finish.
    fn on_signal(&mut self, now: Instant) -> io::Result<()> {
        self.signal_armed = false;
        if !self.shutdown.is_requested() {
            return self.arm_signal();
        }
        self.stopping = true;
        self.accept_paused_until = None;
        if self.accept_armed {
            let entry = opcode::AsyncCancel::new(user_data(0, ACCEPT))
                .build()
                .user_data(user_data(0, ACCEPT_CANCEL));
            // SAFETY: a cancellation names no buffer.
            unsafe { self.push(&entry)? };
            self.accept_cancel_armed = true;
        } else {
            self.listener = None;
        }
        let keys: Vec<usize> = self.connections.iter().map(|(key, _)| key).collect();
        for key in keys {
            if let Some(slot) = self.connections.get_mut(key) {
                slot.conn
                    .begin_shutdown(self.site.idle_timeout, self.site, now);
                self.touched.push(key);
            }
        }
        Ok(())
    }
    // ANCHOR_END: on_signal

    // ANCHOR: queue_next_ops
    /// For every connection the batch touched: queue what it wants next, free it if it is done,
    /// else make sure a timer is queued no later than its deadline.
    fn queue_next_ops(&mut self) -> io::Result<()> {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for &key in &touched {
            self.queue_ops_of(key)?;
            let Some(slot) = self.connections.get_mut(key) else {
                continue;
            };
            if slot.conn.is_finished() {
                // Nothing is in flight: the kernel holds no pointer into this slot any more.
                let slot = self.connections.remove(key);
                self.close_by_ring(slot.conn.into_socket())?;
                continue;
            }
            let deadline = slot.conn.deadline();
            if slot.timer_at.is_none_or(|queued| deadline < queued) {
                self.timers.schedule(Timer {
                    at: deadline,
                    key,
                    serial: slot.serial,
                });
                slot.timer_at = Some(deadline);
            }
        }
        touched.clear();
        self.touched = touched;
        Ok(())
    }

    /// Closes a freed connection's socket with the next batch rather than by a `close` of its
    /// own: one system call less per connection.
    fn close_by_ring(&mut self, socket: TcpStream) -> io::Result<()> {
        let fd = std::os::fd::IntoRawFd::into_raw_fd(socket);
        let entry = opcode::Close::new(types::Fd(fd))
            .build()
            .user_data(user_data(0, CLOSE));
        // SAFETY: the entry names no memory; the descriptor is the ring's to close from now on,
        // and no one else holds it (the connection that owned it is gone). Should the push
        // fail, the ring is broken and the loop ends with the error: the descriptor is left
        // open rather than closed twice (the entry may be queued already).
        unsafe { self.push(&entry)? };
        self.closes_in_flight += 1;
        Ok(())
    }

    /// Queues each operation connection `key` asks for.
    fn queue_ops_of(&mut self, key: usize) -> io::Result<()> {
        loop {
            let Some(slot) = self.connections.get_mut(key) else {
                return Ok(());
            };
            let Some(op) = slot.conn.next_op() else {
                return Ok(());
            };
            let entry = self.entry_for(key, op);
            for entry in entry.iter().flatten() {
                // SAFETY: every pointer in these entries is into the slot's connection (its
                // response buffer, its own receive buffer) or its descriptors, and the slot is
                // freed only when `is_finished` says none of its operations is in flight. A
                // `Vec`'s or `Box`'s heap memory does not move when the slab grows.
                unsafe { self.push(entry)? };
            }
        }
    }
    // ANCHOR_END: queue_next_ops

    // ANCHOR: entry_for
    /// The submission entries for `op` of connection `key`: one, or two linked for a splice.
    fn entry_for(&mut self, key: usize, op: Op) -> [Option<squeue::Entry>; 2] {
        let Some(slot) = self.connections.get_mut(key) else {
            return [None, None];
        };
        let socket = types::Fd(slot.conn.fd());
        match op {
            Op::Recv => {
                let entry = match (&self.buf_ring, &mut slot.recv_buf) {
                    (Some(_), _) if self.options.multishot => {
                        opcode::RecvMulti::new(socket, BUFFER_GROUP).build()
                    }
                    (Some(_), _) => {
                        opcode::Recv::new(socket, std::ptr::null_mut(), BUFFER_LEN as u32)
                            .buf_group(BUFFER_GROUP)
                            .build()
                            .flags(squeue::Flags::BUFFER_SELECT)
                    }
                    (None, Some(recv_buf)) => {
                        opcode::Recv::new(socket, recv_buf.as_mut_ptr(), recv_buf.len() as u32)
                            .build()
                    }
                    (None, None) => return [None, None],
                };
                [Some(entry.user_data(user_data(key, RECV))), None]
            }
            Op::Send { ptr, len, more } => {
                let mut send_flags = libc::MSG_NOSIGNAL;
                if more {
                    send_flags |= libc::MSG_MORE;
                }
                let entry = opcode::Send::new(socket, ptr, len)
                    .flags(send_flags)
                    .build()
                    .user_data(user_data(key, SEND));
                [Some(entry), None]
            }
            Op::SpliceFile {
                file,
                offset,
                len,
                pipe_in,
                pipe_out,
            } => {
                let into_pipe = opcode::Splice::new(
                    types::Fd(file),
                    offset as i64,
                    types::Fd(pipe_in),
                    -1,
                    len,
                )
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(user_data(key, SPLICE_IN));
                let out_of_pipe = opcode::Splice::new(types::Fd(pipe_out), -1, socket, -1, len)
                    .build()
                    .user_data(user_data(key, SPLICE_OUT));
                [Some(into_pipe), Some(out_of_pipe)]
            }
            Op::SplicePipe { pipe_out, len } => {
                let entry = opcode::Splice::new(types::Fd(pipe_out), -1, socket, -1, len)
                    .build()
                    .user_data(user_data(key, SPLICE_OUT));
                [Some(entry), None]
            }
            Op::Cancel => {
                let entry = opcode::AsyncCancel2::new(types::CancelBuilder::fd(socket).all())
                    .build()
                    .user_data(user_data(key, CANCEL));
                [Some(entry), None]
            }
        }
    }
    // ANCHOR_END: entry_for

    // ANCHOR: timers
    /// Drops timers of connections that closed (or that a newer timer replaced) from the top of
    /// the heap, so the loop does not wake up for them.
    fn discard_stale_timers(&mut self) {
        while let Some(timer) = self.timers.peek() {
            if self.is_current(timer) {
                return;
            }
            self.timers.pop();
        }
    }

    fn is_current(&self, timer: Timer) -> bool {
        self.connections
            .get(timer.key)
            .is_some_and(|slot| slot.serial == timer.serial && slot.timer_at == Some(timer.at))
    }

    /// Handles every timer that is due, as step 7 does.
    fn expire_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            if !self.is_current(timer) {
                continue;
            }
            let Some(slot) = self.connections.get_mut(timer.key) else {
                continue;
            };
            slot.timer_at = None;
            slot.conn.on_deadline(self.site, now);
            self.touched.push(timer.key);
        }
    }
    // ANCHOR_END: timers
}

/// A completion's result as `io::Result`: a negative value is an errno.
fn to_result(result: i32) -> io::Result<usize> {
    if result < 0 {
        Err(io::Error::from_raw_os_error(-result))
    } else {
        Ok(result as usize)
    }
}

/// Turns Nagle's algorithm off on `listener`, for the sockets it will accept.
fn socket_nodelay(listener: &TcpListener) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `one` is a valid c_int for the duration of the call; the descriptor is open.
    let status = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            std::ptr::from_ref(&one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
