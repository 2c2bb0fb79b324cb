//! Defines [`Connections`]: the open connections, kept so a shutdown can reach them.
//!
//! A thread blocked in `read` on an idle keep-alive connection cannot see a shutdown flag; it
//! wakes only when bytes arrive, the idle timeout runs out, or the socket is shut down. So the
//! accept loop keeps a clone of every stream it hands out, and at shutdown it shuts down the
//! *reading* half of each: a blocked `read` returns 0 (end of stream) at once, which the
//! connection loop treats as "the client left", while a response being written goes on to the end.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The set of open connections, shared by the accept loop and the connection threads.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    open: Mutex<Registry>,
    /// Signalled whenever a connection ends, for [`Connections::wait_until_all_closed`].
    closed: Condvar,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    streams: HashMap<u64, TcpStream>,
}

/// Removes its connection from the set when dropped: when the connection's job returns, or when
/// the job is dropped without running (a thread that could not be spawned).
#[derive(Debug)]
pub struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Connections {
    // ANCHOR: register
    /// Adds `stream` to the set; the connection stays in it until the returned guard is dropped.
    ///
    /// Production note: the clone is a second descriptor for the same socket (`dup`), so each
    /// connection costs two. A server that counts descriptors closely would share one stream
    /// between the registry and the connection (an `Arc<TcpStream>` read through `&TcpStream`).
    ///
    /// # Errors
    ///
    /// Fails when the descriptor cannot be duplicated (the process is out of descriptors).
    pub fn register(&self, stream: &TcpStream) -> io::Result<Registration> {
        let clone = stream.try_clone()?;
        let mut registry = self.shared.lock();
        let id = registry.next_id;
        registry.next_id += 1;
        registry.streams.insert(id, clone);
        Ok(Registration {
            shared: Arc::clone(&self.shared),
            id,
        })
    }
    // ANCHOR_END: register

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.shared.lock().streams.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // ANCHOR: stop_reading
    /// Ends every connection's reading side: an idle connection's blocked `read` returns 0 now,
    /// and a connection busy writing a response finishes it, then finds no next request.
    ///
    /// Bytes already received are still read first, so a request that has arrived is answered.
    pub fn stop_reading(&self) {
        for stream in self.shared.lock().streams.values() {
            // The client may have gone already; there is nothing left to stop then.
            let _ = stream.shutdown(Shutdown::Read);
        }
    }
    // ANCHOR_END: stop_reading

    /// Ends every connection in both directions: a blocked `write` fails at once too.
    pub fn close_all(&self) {
        for stream in self.shared.lock().streams.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    // ANCHOR: wait_until_all_closed
    /// Waits until every connection has ended, for at most `timeout`; returns how many are still open.
    pub fn wait_until_all_closed(&self, timeout: Duration) -> usize {
        let registry = self.shared.lock();
        let (registry, _) = self
            .shared
            .closed
            .wait_timeout_while(registry, timeout, |registry| !registry.streams.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        registry.streams.len()
    }
    // ANCHOR_END: wait_until_all_closed
}

impl Shared {
    /// Locks the registry. A connection thread never panics while holding the lock (it only
    /// inserts and removes), but if one did, the map would still be consistent: use it anyway.
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ANCHOR: deregister
impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.lock().streams.remove(&self.id);
        self.shared.closed.notify_all();
    }
}
// ANCHOR_END: deregister
