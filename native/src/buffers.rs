//! The worker's buffer pool: one page-aligned region of `recv + send` equal buffers.
//!
//! Ids `0..recv` feed a provided buffer ring (the kernel picks one per receive); ids
//! `recv..recv+send` are handed to the host for sends. The ring starts with at most
//! 256 receive buffers and doubles whenever a receive finds it empty, up to `recv`: the
//! whole region is reserved up front, but only the buffers a load needs are cycled
//! through the ring, so only their pages become resident. Every id has exactly one owner
//! at a time (kernel ring, host, or an in-flight operation), tracked in `owner`, so a
//! double release is an error instead of a corrupted ring.
//!
//! Optionally the whole region is also registered as fixed buffers, so file reads and
//! writes into pool buffers skip pinning pages on every operation.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

use crate::error::{from_io, Result, IOT_E_ADDRESS_SPACE, IOT_E_BAD_BUFFER, IOT_E_MEMLOCK};

/// Buffer group id of the receive ring.
pub(crate) const RECV_GROUP: u16 = 0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    Kernel,
    Host,
    Operation,
    Free,
}

/// Anonymous private mapping, unmapped on drop.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    pub(crate) fn new(len: usize) -> Result<Mapping> {
        // SAFETY: anonymous private mapping with no address hint; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        // Nothing is locked yet: a failed private mapping means no address space.
        if ptr == libc::MAP_FAILED {
            return Err(IOT_E_ADDRESS_SPACE);
        }
        NonNull::new(ptr.cast())
            .map(|ptr| Mapping { ptr, len })
            .ok_or(IOT_E_ADDRESS_SPACE)
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

pub(crate) struct BufferPool {
    memory: Mapping,
    ring: Mapping,
    ring_mask: u16,
    /// Our copy of the ring tail; published to the kernel with a release store.
    ring_tail: u16,
    /// Buffers given to the ring whose use the kernel has not reported yet.
    in_ring: u32,
    buffer_size: u32,
    recv_count: u32,
    /// How many receive buffers the ring holds when none is out (see the module doc).
    ring_target: u32,
    /// Free receive buffers beyond `ring_target`, the last freed on top (warm pages
    /// go back into use first).
    spare_recv: Vec<u32>,
    owner: Vec<Owner>,
    free_send: Vec<u32>,
    registered: bool,
    /// With fixed buffers: how many pool buffers each registered iovec spans.
    fixed_span: Option<u32>,
}

/// Receive buffers in the ring at first (all of them when there are fewer).
const INITIAL_RING_BUFFERS: u32 = 256;

/// Where a freed buffer went.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Freed {
    /// A receive buffer, back in the ring: a receive waiting for one can go on.
    ToRing,
    /// A receive buffer, kept spare (the ring holds all it needs).
    Spare,
    /// A send buffer, back with the others.
    Send,
}

impl Freed {
    pub(crate) fn was_receive_buffer(self) -> bool {
        self != Freed::Send
    }
}

/// The kernel refuses a single registered buffer larger than 1 GiB.
const MAX_FIXED_BYTES: u64 = 1 << 30;

// SAFETY: the raw mappings are owned exclusively by the pool, which is only used under
// its worker's mutex.
unsafe impl Send for BufferPool {}

impl BufferPool {
    pub(crate) fn new(
        ring: &IoUring,
        recv_count: u32,
        send_count: u32,
        buffer_size: u32,
        register_fixed: bool,
    ) -> Result<BufferPool> {
        let total = (recv_count + send_count) as usize;
        let ring_entries = recv_count.next_power_of_two();
        let memory = Mapping::new((total * buffer_size as usize).max(1))?;
        let ring_bytes = ring_entries as usize * std::mem::size_of::<BufRingEntry>();
        let ring_map = Mapping::new(ring_bytes)?;
        let ring_target = recv_count.min(INITIAL_RING_BUFFERS);
        let mut pool = BufferPool {
            memory,
            ring: ring_map,
            ring_mask: (ring_entries - 1) as u16,
            ring_tail: 0,
            in_ring: 0,
            buffer_size,
            recv_count,
            ring_target,
            spare_recv: (ring_target..recv_count).rev().collect(),
            owner: vec![Owner::Free; total],
            free_send: (recv_count..recv_count + send_count).rev().collect(),
            registered: false,
            fixed_span: None,
        };
        if register_fixed {
            pool.register_fixed(ring)?;
        }
        // SAFETY: the ring memory is page aligned (mmap), sized for ring_entries and
        // outlives the registration (unregistered in `unregister` before drop).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                pool.ring.ptr.as_ptr() as u64,
                ring_entries as u16,
                RECV_GROUP,
                0,
            )
        }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOMEM) => IOT_E_MEMLOCK,
            Some(libc::EINVAL) => crate::error::IOT_E_UNSUPPORTED,
            _ => from_io(e),
        })?;
        pool.registered = true;
        for id in 0..ring_target {
            pool.give_to_kernel(id);
        }
        pool.publish();
        for id in recv_count..recv_count + send_count {
            pool.owner[id as usize] = Owner::Free;
        }
        Ok(pool)
    }

    /// Registers the region as fixed buffers, in iovecs of whole pool buffers.
    fn register_fixed(&mut self, ring: &IoUring) -> Result<()> {
        let span =
            (MAX_FIXED_BYTES / u64::from(self.buffer_size)).min(u64::from(self.count())) as u32;
        let iovecs: Vec<libc::iovec> = (0..self.count())
            .step_by(span as usize)
            .map(|first| libc::iovec {
                iov_base: self.ptr(first).cast(),
                iov_len: ((self.count() - first).min(span) * self.buffer_size) as usize,
            })
            .collect();
        // SAFETY: the iovecs cover the pool mapping, which outlives the ring (the ring
        // field is dropped first in `Worker`).
        unsafe { ring.submitter().register_buffers(&iovecs) }.map_err(|e| {
            match e.raw_os_error() {
                Some(libc::ENOMEM) => IOT_E_MEMLOCK,
                _ => from_io(e),
            }
        })?;
        self.fixed_span = Some(span);
        Ok(())
    }

    /// The registered buffer index holding pool buffer `id`, when fixed buffers are on.
    pub(crate) fn fixed_index(&self, id: u32) -> Option<u16> {
        self.fixed_span.map(|span| (id / span) as u16)
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.memory.ptr.as_ptr()
    }

    pub(crate) fn buffer_size(&self) -> u32 {
        self.buffer_size
    }

    /// Buffers fed to the receive ring (ids `0..recv_count`).
    pub(crate) fn recv_count(&self) -> u32 {
        self.recv_count
    }

    pub(crate) fn count(&self) -> u32 {
        self.owner.len() as u32
    }

    /// Pointer to buffer `id`; the caller has checked the id.
    pub(crate) fn ptr(&self, id: u32) -> *mut u8 {
        // SAFETY: id < count, so the offset stays inside the mapping.
        unsafe { self.base().add(id as usize * self.buffer_size as usize) }
    }

    fn give_to_kernel(&mut self, id: u32) {
        let index = self.ring_tail & self.ring_mask;
        // SAFETY: index <= mask < ring_entries; the entry slot is ours until the tail
        // is published, and the kernel only reads entries below the published tail.
        let entry = unsafe {
            &mut *self
                .ring
                .ptr
                .as_ptr()
                .cast::<BufRingEntry>()
                .add(index as usize)
        };
        entry.set_addr(self.ptr(id) as u64);
        entry.set_len(self.buffer_size);
        entry.set_bid(id as u16);
        self.ring_tail = self.ring_tail.wrapping_add(1);
        self.owner[id as usize] = Owner::Kernel;
        self.in_ring += 1;
    }

    fn publish(&self) {
        let base = self.ring.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: the tail field lives inside the first ring entry, which is mapped; the
        // kernel reads it concurrently, hence the atomic release store.
        let tail = unsafe { &*(BufRingEntry::tail(base) as *const AtomicU16) };
        tail.store(self.ring_tail, Ordering::Release);
    }

    /// The kernel picked `id` for a receive: the host owns it now.
    pub(crate) fn take_received(&mut self, id: u32) {
        if let Some(owner @ Owner::Kernel) = self.owner.get_mut(id as usize) {
            *owner = Owner::Host;
            self.in_ring -= 1;
        }
    }

    /// Whether the receive ring may still hold a buffer (some the kernel took may not
    /// have been reported yet, so this can be true of an empty ring, never false of a
    /// non-empty one).
    pub(crate) fn ring_has_buffers(&self) -> bool {
        self.in_ring > 0
    }

    /// Buffers in the ring as far as this pool knows (see `ring_has_buffers`).
    pub(crate) fn in_ring(&self) -> u32 {
        self.in_ring
    }

    /// Receive buffers the ring holds when none is out (it grew to this many).
    pub(crate) fn ring_target(&self) -> u32 {
        self.ring_target
    }

    /// A receive found the ring empty: the ring doubles, from the spare receive
    /// buffers. Returns false when every receive buffer is in it or out already.
    pub(crate) fn grow_ring(&mut self) -> bool {
        let add = self.ring_target.max(1).min(self.spare_recv.len() as u32);
        for _ in 0..add {
            let id = self.spare_recv.pop().expect("counted above");
            self.give_to_kernel(id);
        }
        self.ring_target += add;
        self.publish();
        add > 0
    }

    /// A send buffer for the host, or `-ENOBUFS` when every one is in use.
    pub(crate) fn acquire(&mut self) -> Result<u32> {
        let id = self.free_send.pop().ok_or(-libc::ENOBUFS)?;
        self.owner[id as usize] = Owner::Host;
        Ok(id)
    }

    /// A free send buffer for an operation to fill (a one-shot datagram receive), or
    /// `-ENOBUFS`.
    pub(crate) fn acquire_for_operation(&mut self) -> Result<u32> {
        let id = self.acquire()?;
        self.owner[id as usize] = Owner::Operation;
        Ok(id)
    }

    /// Checks that the host owns `id` and that `offset + len` fits the buffer.
    pub(crate) fn check_host_range(&self, id: u32, offset: u32, len: u32) -> Result<()> {
        self.check_host(id)?;
        match offset.checked_add(len) {
            Some(end) if end <= self.buffer_size => Ok(()),
            _ => Err(-libc::EINVAL),
        }
    }

    /// The bytes of buffer `id`, which the host must own.
    pub(crate) fn host_buffer(&self, id: u32) -> Result<&[u8]> {
        self.check_host(id)?;
        // SAFETY: id is in range (checked) and the host, not the kernel, owns it now.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr(id), self.buffer_size as usize) })
    }

    fn check_host(&self, id: u32) -> Result<()> {
        match self.owner.get(id as usize) {
            Some(Owner::Host) => Ok(()),
            _ => Err(IOT_E_BAD_BUFFER),
        }
    }

    /// Ownership of a host buffer moves to an operation (a send).
    pub(crate) fn lend_to_operation(&mut self, id: u32) -> Result<()> {
        self.check_host(id)?;
        self.owner[id as usize] = Owner::Operation;
        Ok(())
    }

    /// An operation that borrowed host buffer `id` (a read) hands it back.
    pub(crate) fn return_to_host(&mut self, id: u32) {
        if let Some(owner @ Owner::Operation) = self.owner.get_mut(id as usize) {
            *owner = Owner::Host;
        }
    }

    /// Host gives `id` back.
    pub(crate) fn release(&mut self, id: u32) -> Result<Freed> {
        self.check_host(id)?;
        Ok(self.recycle(id))
    }

    /// An operation finished with its buffer: back to its pool (`None`: it was not
    /// the operation's).
    pub(crate) fn release_from_operation(&mut self, id: u32) -> Option<Freed> {
        match self.owner.get(id as usize) {
            Some(Owner::Operation) => Some(self.recycle(id)),
            _ => None,
        }
    }

    fn recycle(&mut self, id: u32) -> Freed {
        if id >= self.recv_count {
            self.owner[id as usize] = Owner::Free;
            self.free_send.push(id);
            Freed::Send
        } else if self.in_ring < self.ring_target {
            self.give_to_kernel(id);
            self.publish();
            Freed::ToRing
        } else {
            self.owner[id as usize] = Owner::Free;
            self.spare_recv.push(id);
            Freed::Spare
        }
    }

    /// Buffers the host or an operation holds (0 after everything was released).
    pub(crate) fn outstanding(&self) -> usize {
        self.owner
            .iter()
            .filter(|o| matches!(o, Owner::Host | Owner::Operation))
            .count()
    }

    pub(crate) fn unregister(&mut self, ring: &IoUring) {
        if self.registered {
            // Failure only means the ring is already gone; nothing to undo then.
            let _ = ring.submitter().unregister_buf_ring(RECV_GROUP);
            self.registered = false;
        }
    }
}
