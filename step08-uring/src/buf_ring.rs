//! Defines [`BufRing`]: a ring of provided buffers that the kernel picks from as data arrives.
//!
//! With step 7, a connection owns the buffer a `read` fills, and reads only once it is told the
//! socket is ready. A completion-based receive needs its buffer *before* data arrives, and
//! ten thousand idle connections each holding a 4 KiB buffer for the day a byte comes would cost
//! 40 MiB. A provided buffer ring turns that around: the loop lends the kernel a pool of
//! buffers, shared by every connection of the ring; the kernel takes one only when bytes really
//! arrive, and names it in the completion (`IORING_CQE_F_BUFFER`). The loop copies the bytes into
//! the connection's decoder and gives the buffer straight back.
//!
//! Who owns a buffer when: from [`BufRing::provide`] until its id comes back in a completion, the
//! kernel (it may write into it at any moment); from that completion until the next
//! [`BufRing::provide`] of the same id, the loop (the kernel will not touch it). The memory itself
//! lives as long as the `BufRing`, which is unregistered before it is freed.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;
use io_uring::types::BufRingEntry;

// ANCHOR: buf_ring
/// The buffer group id of the one ring of each loop.
pub const BUFFER_GROUP: u16 = 0;
/// Buffers in the ring (a power of two, as the kernel requires).
pub const N_BUFFERS: u16 = 256;
/// Bytes per buffer: the core's read size, so a buffer holds what one step 7 `read` would.
pub const BUFFER_LEN: usize = step02_files::http::decoder::READ_CHUNK;

/// The provided buffers of one ring: the ring of descriptors the kernel reads, and the memory
/// they point into.
pub struct BufRing {
    /// `N_BUFFERS` entries, page-aligned, shared with the kernel.
    entries: *mut BufRingEntry,
    entries_layout: Layout,
    /// `N_BUFFERS * BUFFER_LEN` bytes: buffer `id` starts `id * BUFFER_LEN` bytes in. A raw
    /// allocation, not a `Box`: the kernel writes into it behind Rust's back.
    memory: *mut u8,
    memory_layout: Layout,
    /// The tail as this side knows it; the kernel consumes from its head up to the published tail.
    tail: u16,
}
// ANCHOR_END: buf_ring

impl BufRing {
    // ANCHOR: buf_ring_new
    /// Allocates the ring and its buffers, registers them with `ring` and provides every buffer.
    ///
    /// # Errors
    ///
    /// Fails when memory is short, or the kernel refuses buffer rings (before 5.19).
    pub fn register(ring: &IoUring) -> io::Result<BufRing> {
        let entries_layout = Layout::from_size_align(
            usize::from(N_BUFFERS) * std::mem::size_of::<BufRingEntry>(),
            4096,
        )
        .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size (256 entries of 16 bytes).
        let entries = unsafe { alloc_zeroed(entries_layout) }.cast::<BufRingEntry>();
        if entries.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let memory_layout = Layout::from_size_align(usize::from(N_BUFFERS) * BUFFER_LEN, 4096)
            .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size.
        let memory = unsafe { alloc_zeroed(memory_layout) };
        if memory.is_null() {
            // SAFETY: allocated just above with this layout, and not shared with anyone yet.
            unsafe { dealloc(entries.cast(), entries_layout) };
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let mut buf_ring = BufRing {
            entries,
            entries_layout,
            memory,
            memory_layout,
            tail: 0,
        };
        // SAFETY: `entries` points to N_BUFFERS zeroed, page-aligned entries that stay allocated
        // until `Drop`, and `Drop` runs only after the loop has unregistered the ring (see
        // `unregister`), so the kernel never reads the entries after they are freed.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries as u64,
                N_BUFFERS,
                BUFFER_GROUP,
                0,
            )?;
        }
        for id in 0..N_BUFFERS {
            buf_ring.push(id);
        }
        buf_ring.publish();
        Ok(buf_ring)
    }
    // ANCHOR_END: buf_ring_new

    /// Unregisters the ring from `ring`: from now on the kernel takes no buffer from it. Called
    /// once every receive has completed, just before the memory is freed.
    pub fn unregister(&self, ring: &IoUring) {
        // A ring that is being torn down frees its buffer rings anyway; nothing to do on error.
        let _ = ring.submitter().unregister_buf_ring(BUFFER_GROUP);
    }

    // ANCHOR: buf_ring_take
    /// The bytes the kernel put into buffer `id`: `len` of them, as its completion said.
    ///
    /// The caller must have that completion in hand, and not have provided `id` again since:
    /// until then the buffer is the loop's, and the kernel does not write into it.
    pub fn bytes(&self, id: u16, len: usize) -> &[u8] {
        let start = usize::from(id % N_BUFFERS) * BUFFER_LEN;
        // SAFETY: the buffer lies inside the allocation, which lives as long as `self`. The
        // completion for `id` handed the buffer to the loop: the kernel has finished writing it
        // and takes it again only after `provide(id)`, which needs `&mut self`, so no write can
        // happen while this borrow lives.
        unsafe { std::slice::from_raw_parts(self.memory.add(start), len.min(BUFFER_LEN)) }
    }

    /// Gives buffer `id` back to the kernel, which may write into it from now on.
    pub fn provide(&mut self, id: u16) {
        self.push(id);
        self.publish();
    }
    // ANCHOR_END: buf_ring_take

    /// Writes the entry for buffer `id` at the tail, not yet visible to the kernel.
    fn push(&mut self, id: u16) {
        let id = id % N_BUFFERS;
        let index = usize::from(self.tail & (N_BUFFERS - 1));
        // SAFETY: `index < N_BUFFERS`, inside the allocation. The kernel reads only entries
        // between its head and the published tail; this one is at or past the published tail,
        // so the loop alone owns it until `publish`.
        let entry = unsafe { &mut *self.entries.add(index) };
        // The buffer's memory stays at this address until the ring is freed.
        let start = usize::from(id) * BUFFER_LEN;
        entry.set_addr(self.memory as u64 + start as u64);
        entry.set_len(BUFFER_LEN as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the entries pushed so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field, inside the allocation;
        // the kernel only reads it. An atomic store with Release ordering makes the entries
        // written before it visible to the kernel before the new tail is.
        unsafe {
            let tail = BufRingEntry::tail(self.entries).cast_mut();
            (*tail.cast::<AtomicU16>()).store(self.tail, Ordering::Release);
        }
    }
}

// SAFETY: the ring and its memory belong to one loop, which moves to its thread before it runs
// and never shares them; the raw pointers are plain owned allocations.
unsafe impl Send for BufRing {}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with this layout; the loop drops the `BufRing` only
        // after unregistering it (or after the ring itself is gone), so the kernel holds no
        // pointer into it.
        unsafe {
            dealloc(self.entries.cast(), self.entries_layout);
            dealloc(self.memory, self.memory_layout);
        }
    }
}
