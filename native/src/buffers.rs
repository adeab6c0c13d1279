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
//!
//! Datagrams up to the protocol maximum need more room than one buffer. When the
//! buffers are smaller than `DATAGRAM_SPAN_BYTES` (and not tiny), the region also holds
//! *spans*: runs of consecutive buffers past the send buffers, each named by its first
//! id (its head) and owned as one. `RING_SPANS` of them feed a second provided buffer
//! ring (`DATAGRAM_GROUP`) that multishot datagram receives take from, so a small
//! datagram still costs one ring entry and a large one arrives whole in one contiguous
//! span; `FREE_SPANS` more serve large datagram sends and one-shot datagram receives.
//! Only pages written are ever resident, so a small datagram touches one page of its
//! span. The host sees a span as one buffer whose bytes run on past `buffer_size`.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

use crate::error::{from_io, Result, IOT_E_ADDRESS_SPACE, IOT_E_BAD_BUFFER, IOT_E_MEMLOCK};

/// Buffer group id of the receive ring.
pub(crate) const RECV_GROUP: u16 = 0;
/// Buffer group id of the datagram ring (spans; see the module docs).
pub(crate) const DATAGRAM_GROUP: u16 = 1;

/// Bytes a span holds at least: a received datagram's header (`op/recvmsg.rs`, 144
/// bytes) and the largest payload a UDP length field can describe (65,535; IPv4 allows
/// 65,507 and IPv6 65,527 of them).
pub(crate) const DATAGRAM_SPAN_BYTES: u32 = 144 + 65_535;
/// Spans in the datagram ring (a power of two).
const RING_SPANS: u32 = 64;
/// Spans for large sends and one-shot receives.
const FREE_SPANS: u32 = 16;
/// Buffers small enough to need more per span are "tiny": no spans, datagrams are cut
/// to one buffer (and flagged) as before.
const MAX_SPAN_BUFFERS: u32 = 32;
/// Buffer ids travel in 16 bits (`iot_completion.buffer_id`).
const MAX_IDS: u64 = 1 << 16;

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
    ring: ProvidedRing,
    /// Buffers given to the ring whose use the kernel has not reported yet.
    in_ring: u32,
    buffer_size: u32,
    recv_count: u32,
    /// Receive and send buffers (ids below this; spans follow).
    plain: u32,
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
    /// Runs of buffers for whole large datagrams, if the buffers are too small for them.
    spans: Option<Spans>,
}

/// The pool's spans (module docs): heads `first + i * len`; spans `0..RING_SPANS` feed
/// the datagram ring, the others are taken from `free`.
struct Spans {
    first: u32,
    len: u32,
    ring: ProvidedRing,
    /// Ring spans the kernel has not reported using yet.
    in_ring: u32,
    free: Vec<u32>,
    registered: bool,
}

impl Spans {
    /// Buffers per span for `buffer_size`, when the pool needs and can hold spans
    /// after `plain` buffers.
    fn geometry(plain: u32, buffer_size: u32) -> Option<u32> {
        let len = DATAGRAM_SPAN_BYTES.div_ceil(buffer_size);
        let ids = u64::from(plain) + u64::from((RING_SPANS + FREE_SPANS) * len);
        (len > 1 && len <= MAX_SPAN_BUFFERS && ids <= MAX_IDS).then_some(len)
    }

    fn ring_end(&self) -> u32 {
        self.first + RING_SPANS * self.len
    }

    fn end(&self) -> u32 {
        self.ring_end() + FREE_SPANS * self.len
    }

    /// Whether `id` is a span's head.
    fn is_head(&self, id: u32) -> bool {
        id >= self.first && id < self.end() && (id - self.first) % self.len == 0
    }
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
    /// A send buffer (or a free span), back with the others.
    Send,
    /// A span, back in the datagram ring: a datagram receive waiting for one can go on.
    SpanToRing,
}

impl Freed {
    /// A buffer of the receive ring (not a span, nor a send buffer).
    pub(crate) fn was_receive_buffer(self) -> bool {
        matches!(self, Freed::ToRing | Freed::Spare)
    }
}

/// The kernel refuses a single registered buffer larger than 1 GiB.
const MAX_FIXED_BYTES: u64 = 1 << 30;

// SAFETY: the raw mappings are owned exclusively by the pool, which is only used under
// its worker's mutex.
unsafe impl Send for BufferPool {}

/// A provided buffer ring: its entries, shared with the kernel, and our copy of the
/// tail, published with a release store.
struct ProvidedRing {
    memory: Mapping,
    mask: u16,
    tail: u16,
}

impl ProvidedRing {
    /// Room for `entries` entries (a power of two).
    fn new(entries: u32) -> Result<ProvidedRing> {
        let bytes = entries as usize * std::mem::size_of::<BufRingEntry>();
        Ok(ProvidedRing {
            memory: Mapping::new(bytes)?,
            mask: (entries - 1) as u16,
            tail: 0,
        })
    }

    /// Registers the ring for buffer group `group`; it is unregistered before its
    /// memory is unmapped (`BufferPool::unregister`).
    fn register(&self, ring: &IoUring, group: u16) -> Result<()> {
        // SAFETY: the mapping is page aligned (mmap), sized for `mask + 1` entries, and
        // outlives the registration (see above).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                self.memory.ptr.as_ptr() as u64,
                self.mask.wrapping_add(1),
                group,
                0,
            )
        }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOMEM) => IOT_E_MEMLOCK,
            // Provided buffer rings came with Linux 5.19.
            Some(libc::EINVAL) => crate::error::IOT_E_UNSUPPORTED,
            _ => from_io(e),
        })
    }

    /// Adds `len` bytes at `addr` as buffer `bid`, seen by the kernel once published.
    fn push(&mut self, addr: *mut u8, len: u32, bid: u16) {
        let index = self.tail & self.mask;
        // SAFETY: index <= mask < entries; the entry slot is ours until the tail is
        // published, and the kernel only reads entries below the published tail.
        let entry = unsafe {
            &mut *self
                .memory
                .ptr
                .as_ptr()
                .cast::<BufRingEntry>()
                .add(usize::from(index))
        };
        entry.set_addr(addr as u64);
        entry.set_len(len);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        let base = self.memory.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: the tail field lives inside the first ring entry, which is mapped; the
        // kernel reads it concurrently, hence the atomic release store.
        let tail = unsafe { &*(BufRingEntry::tail(base) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl BufferPool {
    pub(crate) fn new(
        ring: &IoUring,
        recv_count: u32,
        send_count: u32,
        buffer_size: u32,
        register_fixed: bool,
    ) -> Result<BufferPool> {
        let plain = recv_count + send_count;
        let span_len = Spans::geometry(plain, buffer_size);
        let total = (plain + span_len.map_or(0, |len| (RING_SPANS + FREE_SPANS) * len)) as usize;
        let ring_entries = recv_count.next_power_of_two();
        let memory = Mapping::new((total * buffer_size as usize).max(1))?;
        let ring_target = recv_count.min(INITIAL_RING_BUFFERS);
        let mut pool = BufferPool {
            memory,
            ring: ProvidedRing::new(ring_entries)?,
            in_ring: 0,
            buffer_size,
            recv_count,
            plain,
            ring_target,
            spare_recv: (ring_target..recv_count).rev().collect(),
            owner: vec![Owner::Free; total],
            free_send: (recv_count..recv_count + send_count).rev().collect(),
            registered: false,
            fixed_span: None,
            spans: None,
        };
        if register_fixed {
            pool.register_fixed(ring)?;
        }
        if let Some(len) = span_len {
            pool.add_spans(ring, plain, len)?;
        }
        pool.ring.register(ring, RECV_GROUP)?;
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

    /// Registers the receive and send buffers as fixed buffers, in iovecs of whole pool
    /// buffers (not the spans: they would only add locked memory).
    fn register_fixed(&mut self, ring: &IoUring) -> Result<()> {
        let plain = self.plain_count();
        let span = (MAX_FIXED_BYTES / u64::from(self.buffer_size)).min(u64::from(plain)) as u32;
        let iovecs: Vec<libc::iovec> = (0..plain)
            .step_by(span as usize)
            .map(|first| libc::iovec {
                iov_base: self.ptr(first).cast(),
                iov_len: ((plain - first).min(span) * self.buffer_size) as usize,
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

    /// The registered buffer index holding pool buffer `id`, when fixed buffers are on
    /// (spans never are).
    pub(crate) fn fixed_index(&self, id: u32) -> Option<u16> {
        let span = self.fixed_span.filter(|_| id < self.plain_count())?;
        Some((id / span) as u16)
    }

    /// Carves `RING_SPANS + FREE_SPANS` spans of `len` buffers from ids `first..` and
    /// registers the datagram ring with the first `RING_SPANS` of them.
    fn add_spans(&mut self, ring: &IoUring, first: u32, len: u32) -> Result<()> {
        let mut spans = Spans {
            first,
            len,
            ring: ProvidedRing::new(RING_SPANS)?,
            in_ring: 0,
            free: Vec::new(),
            registered: false,
        };
        spans.free = (spans.ring_end()..spans.end())
            .step_by(len as usize)
            .rev()
            .collect();
        spans.ring.register(ring, DATAGRAM_GROUP)?;
        spans.registered = true;
        let heads = (first..spans.ring_end()).step_by(len as usize);
        self.spans = Some(spans);
        for head in heads {
            self.give_span_to_kernel(head);
        }
        self.publish_spans();
        Ok(())
    }

    fn give_span_to_kernel(&mut self, head: u32) {
        let ptr = self.ptr(head);
        let bytes = self.buffer_size;
        let Some(spans) = self.spans.as_mut() else {
            return;
        };
        spans.ring.push(ptr, spans.len * bytes, head as u16);
        spans.in_ring += 1;
        self.owner[head as usize] = Owner::Kernel;
    }

    fn publish_spans(&self) {
        if let Some(spans) = &self.spans {
            spans.ring.publish();
        }
    }

    /// The buffer group multishot datagram receives take from: the datagram ring, or
    /// the receive ring when the pool has no spans.
    pub(crate) fn datagram_group(&self) -> u16 {
        match self.spans {
            Some(_) => DATAGRAM_GROUP,
            None => RECV_GROUP,
        }
    }

    /// Whether the datagram ring may still hold a span (as `ring_has_buffers`).
    pub(crate) fn datagram_ring_has_spans(&self) -> bool {
        self.spans.as_ref().is_some_and(|s| s.in_ring > 0)
    }

    /// Spans in the datagram ring as far as this pool knows.
    pub(crate) fn spans_in_ring(&self) -> u32 {
        self.spans.as_ref().map_or(0, |s| s.in_ring)
    }

    /// Bytes of buffer `id`: a span's when `id` is a span head, else `buffer_size`.
    pub(crate) fn buffer_len(&self, id: u32) -> u32 {
        match &self.spans {
            Some(spans) if spans.is_head(id) => spans.len * self.buffer_size,
            _ => self.buffer_size,
        }
    }

    /// Bytes of the pool's spans (0: it has none, its buffers are large enough or tiny).
    pub(crate) fn span_bytes(&self) -> u32 {
        self.spans.as_ref().map_or(0, |s| s.len * self.buffer_size)
    }

    /// A free span for the host to fill (a large datagram send): its head.
    /// `-EMSGSIZE` when the pool has no spans, `-ENOBUFS` when every one is in use.
    pub(crate) fn acquire_span(&mut self) -> Result<u32> {
        let spans = self.spans.as_mut().ok_or(-libc::EMSGSIZE)?;
        let head = spans.free.pop().ok_or(-libc::ENOBUFS)?;
        self.owner[head as usize] = Owner::Host;
        Ok(head)
    }

    /// Room for a one-shot datagram receive to fill: a free span when the pool has one,
    /// else a free send buffer (a datagram longer than it is cut and flagged), else
    /// `-ENOBUFS`.
    pub(crate) fn acquire_datagram_room(&mut self) -> Result<u32> {
        let id = match self.acquire_span() {
            Ok(head) => head,
            Err(_) => self.acquire()?,
        };
        self.owner[id as usize] = Owner::Operation;
        Ok(id)
    }

    /// Receive and send buffers (ids below this), without the spans.
    fn plain_count(&self) -> u32 {
        self.plain
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
        self.ring.push(self.ptr(id), self.buffer_size, id as u16);
        self.owner[id as usize] = Owner::Kernel;
        self.in_ring += 1;
    }

    fn publish(&self) {
        self.ring.publish();
    }

    /// The kernel picked `id` for a receive: the host owns it now.
    pub(crate) fn take_received(&mut self, id: u32) {
        if let Some(owner @ Owner::Kernel) = self.owner.get_mut(id as usize) {
            *owner = Owner::Host;
            match self.spans.as_mut() {
                Some(spans) if id >= spans.first => spans.in_ring -= 1,
                _ => self.in_ring -= 1,
            }
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

    /// A spare receive buffer (out of the ring) for the host, if one is spare.
    pub(crate) fn take_spare(&mut self) -> Option<u32> {
        let id = self.spare_recv.pop()?;
        self.owner[id as usize] = Owner::Host;
        Some(id)
    }

    /// A send buffer for the host, or `-ENOBUFS` when every one is in use.
    pub(crate) fn acquire(&mut self) -> Result<u32> {
        let id = self.free_send.pop().ok_or(-libc::ENOBUFS)?;
        self.owner[id as usize] = Owner::Host;
        Ok(id)
    }

    /// Checks that the host owns `id` and that `offset + len` fits the buffer.
    pub(crate) fn check_host_range(&self, id: u32, offset: u32, len: u32) -> Result<()> {
        self.check_host(id)?;
        match offset.checked_add(len) {
            Some(end) if end <= self.buffer_len(id) => Ok(()),
            _ => Err(-libc::EINVAL),
        }
    }

    /// The bytes of buffer `id`, which the host must own.
    pub(crate) fn host_buffer(&self, id: u32) -> Result<&[u8]> {
        self.check_host(id)?;
        // SAFETY: id is in range (checked) and the host, not the kernel, owns it now.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr(id), self.buffer_len(id) as usize) })
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
        if let Some(spans) = self.spans.as_mut().filter(|s| id >= s.first) {
            if id < spans.ring_end() {
                self.give_span_to_kernel(id);
                self.publish_spans();
                return Freed::SpanToRing;
            }
            spans.free.push(id);
            self.owner[id as usize] = Owner::Free;
            return Freed::Send;
        }
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
        if let Some(spans) = self.spans.as_mut().filter(|s| s.registered) {
            let _ = ring.submitter().unregister_buf_ring(DATAGRAM_GROUP);
            spans.registered = false;
        }
    }
}
