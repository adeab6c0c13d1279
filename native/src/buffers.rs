//! The worker's buffer pool: one page-aligned region of `recv + send` equal buffers.
//!
//! Ids `0..recv` feed a provided buffer ring (the kernel picks one per receive); ids
//! `recv..recv+send` are handed to the host for sends. The ring starts with a few
//! receive buffers and grows when receives find it empty (`ring_growth.rs`), up to
//! `recv`: the whole region is reserved up front, but only the buffers a load needs
//! are cycled through the ring, so only their pages become resident. Every id has
//! exactly one owner at a time (kernel ring, host, or an in-flight operation), tracked
//! in `owner`, so a double release is an error instead of a corrupted ring.
//!
//! Where the kernel consumes ring buffers incrementally (`IOU_PBUF_RING_INC`, Linux
//! 6.12), receives are packed: each takes the next bytes of the buffer at the ring's
//! head, so a thousand connections sending 64 bytes fill 4 buffers (16 pages), not a
//! thousand (a thousand pages). The host then holds *pieces* of receive buffers
//! (`pieces.rs`), and a buffer returns to the ring once the kernel has moved past it
//! and all its pieces are back. Elsewhere (and with `IOT_CONFIG_WHOLE_BUFFERS`) every
//! receive takes a whole buffer, which is one piece at offset 0.
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
use crate::pieces::{BufferRef, Origin, Pieces};

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

/// `IOU_PBUF_RING_INC` of `linux/io_uring.h`: the kernel consumes ring buffers
/// incrementally.
const IOU_PBUF_RING_INC: u16 = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    Kernel,
    Host,
    Operation,
    Free,
    /// A receive buffer out of the ring, held in pieces (`pieces.rs`).
    Pieces,
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
    /// The kernel consumes receive buffers incrementally: receives are packed.
    incremental: bool,
    /// The pieces of receive buffers that the host and operations hold.
    pieces: Pieces,
    /// Receive buffers out of the ring and held in pieces.
    recv_out: u32,
    /// Bytes a packed receive took lately (a moving average; 0 before the first): how
    /// many receives a buffer serves, and how many buffers waiting receives need.
    typical_receive: u32,
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

/// Receive buffers in the ring at first (all of them when there are fewer), when each
/// receive takes a whole buffer.
const INITIAL_RING_BUFFERS: u32 = 256;
/// The same in bytes when receives are packed (4 buffers of 64 KiB): a buffer then
/// serves many receives, and the ring cycles its buffers first in, first out, so every
/// one of them ends up resident (and a small ring stays in cache). It grows like the
/// other while receives find it empty.
const INITIAL_PACKED_RING_BYTES: u32 = 256 << 10;

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

/// What giving back a piece or a buffer did: who held it (`origin`), and where the
/// buffer went, if it was its last piece and the kernel was done with it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Released {
    pub(crate) origin: Origin,
    pub(crate) freed: Option<Freed>,
}

/// What a receive's CQE handed over: the piece the host gets (`None`: no bytes, or
/// not a buffer the kernel held), and where its buffer went when that ends it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Received {
    pub(crate) piece: Option<BufferRef>,
    pub(crate) freed: Option<Freed>,
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
        self.register_with(ring, group, 0)
    }

    /// Registers it with `IOU_PBUF_RING_*` `flags` (`-EINVAL` for flags the kernel
    /// does not know).
    fn register_with(&self, ring: &IoUring, group: u16, flags: u16) -> Result<()> {
        // SAFETY: the mapping is page aligned (mmap), sized for `mask + 1` entries, and
        // outlives the registration (see above).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                self.memory.ptr.as_ptr() as u64,
                self.mask.wrapping_add(1),
                group,
                flags,
            )
        }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) if flags != 0 => -libc::EINVAL,
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
    /// A pool whose receives are packed when `pack` asks for it and the kernel can
    /// (`packs_receives`); only where datagrams have a ring of their own (spans): a
    /// datagram must land whole at the start of a buffer, never in the rest of one.
    pub(crate) fn new(
        ring: &IoUring,
        recv_count: u32,
        send_count: u32,
        buffer_size: u32,
        register_fixed: bool,
        pack: bool,
    ) -> Result<BufferPool> {
        let plain = recv_count + send_count;
        let span_len = Spans::geometry(plain, buffer_size);
        let total = (plain + span_len.map_or(0, |len| (RING_SPANS + FREE_SPANS) * len)) as usize;
        let ring_entries = recv_count.next_power_of_two();
        let memory = Mapping::new((total * buffer_size as usize).max(1))?;
        let mut pool = BufferPool {
            memory,
            ring: ProvidedRing::new(ring_entries)?,
            in_ring: 0,
            buffer_size,
            recv_count,
            plain,
            ring_target: 0,
            spare_recv: Vec::new(),
            owner: vec![Owner::Free; total],
            free_send: (recv_count..recv_count + send_count).rev().collect(),
            registered: false,
            fixed_span: None,
            spans: None,
            incremental: false,
            pieces: Pieces::default(),
            recv_out: 0,
            typical_receive: 0,
        };
        if register_fixed {
            pool.register_fixed(ring)?;
        }
        if let Some(len) = span_len {
            pool.add_spans(ring, plain, len)?;
        }
        pool.incremental = pack
            && pool.spans.is_some()
            && match pool.ring.register_with(ring, RECV_GROUP, IOU_PBUF_RING_INC) {
                Ok(()) => true,
                // Before Linux 6.12.
                Err(code) if code == -libc::EINVAL => false,
                Err(code) => return Err(code),
            };
        if !pool.incremental {
            pool.ring.register(ring, RECV_GROUP)?;
        }
        pool.registered = true;
        pool.fill_ring();
        Ok(pool)
    }

    /// Gives the ring its first buffers, the others spare.
    fn fill_ring(&mut self) {
        let first = match self.incremental {
            true => (INITIAL_PACKED_RING_BYTES / self.buffer_size).clamp(1, INITIAL_RING_BUFFERS),
            false => INITIAL_RING_BUFFERS,
        };
        self.ring_target = self.recv_count.min(first);
        self.spare_recv = (self.ring_target..self.recv_count).rev().collect();
        for id in 0..self.ring_target {
            self.give_to_kernel(id);
        }
        self.publish();
    }

    /// Whether receives are packed into shared buffers (see the module docs).
    pub(crate) fn packs_receives(&self) -> bool {
        self.incremental
    }

    /// Stops packing receives, before any receive: the receive ring is registered again
    /// without incremental consumption (a kernel whose probe showed it unfit).
    pub(crate) fn unpack(&mut self, ring: &IoUring) -> Result<()> {
        if !self.incremental {
            return Ok(());
        }
        let _ = ring.submitter().unregister_buf_ring(RECV_GROUP);
        self.registered = false;
        self.incremental = false;
        // A new registration starts at head 0: the ring is filled again from there,
        // and the kernel must not see the old tail meanwhile.
        self.ring.tail = 0;
        self.ring.publish();
        self.in_ring = 0;
        self.owner[..self.recv_count as usize].fill(Owner::Free);
        self.ring.register(ring, RECV_GROUP)?;
        self.registered = true;
        self.fill_ring();
        Ok(())
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
        if self.incremental {
            self.pieces.restart(id);
        }
    }

    fn publish(&self) {
        self.ring.publish();
    }

    /// The kernel put `res` bytes of a receive into buffer `id` (`more`: the CQE had
    /// `IORING_CQE_F_BUF_MORE`, the buffer stays at the ring's head): the host gets a
    /// piece of it, or a span or buffer whole.
    ///
    /// A packed buffer leaves the ring on the first CQE without `BUF_MORE` (the kernel
    /// moved its head past it; every receive into it is reported before: CQEs come in
    /// the order the kernel fills the buffer, and are taken in that order, see
    /// `Worker::take_in_order`). A
    /// receive of no bytes names a buffer only when a read reached the end of a file:
    /// then `BUF_MORE` says whether the kernel kept the buffer (a pipe's) or consumed
    /// the rest of it (a regular file's read takes its buffer when it starts).
    pub(crate) fn take_received(&mut self, id: u32, res: i32, more: bool) -> Received {
        if self.owner.get(id as usize) != Some(&Owner::Kernel) {
            return Received::default(); // not the kernel's to hand over
        }
        if let Some(spans) = self.spans.as_mut().filter(|s| id >= s.first) {
            spans.in_ring -= 1;
            self.owner[id as usize] = Owner::Host;
            return Received {
                piece: Some(BufferRef::whole(id)),
                freed: None,
            };
        }
        if !self.incremental {
            self.leave_ring(id);
            let offset = self.pieces.cut(id, self.buffer_size);
            return Received {
                piece: Some(BufferRef { id, offset }),
                freed: None,
            };
        }
        if res > 0 {
            self.note_receive(res as u32);
        }
        let piece = (res > 0).then(|| BufferRef {
            id,
            offset: self.pieces.cut(id, res as u32),
        });
        let mut freed = None;
        if !more {
            self.leave_ring(id);
            if self.pieces.none_out(id) {
                freed = Some(self.recycle(id));
            }
        }
        Received { piece, freed }
    }

    /// A packed receive took `bytes`: the average moves an eighth of the way.
    fn note_receive(&mut self, bytes: u32) {
        let typical = i64::from(self.typical_receive);
        self.typical_receive = match typical {
            0 => bytes,
            _ => (typical + (i64::from(bytes) - typical) / 8) as u32,
        };
    }

    /// How many receives one receive buffer serves: one when each takes a whole
    /// buffer, else as many typical receives as fit in it.
    pub(crate) fn receives_per_buffer(&self) -> u32 {
        match (self.incremental, self.typical_receive) {
            (true, typical) if typical > 0 => (self.buffer_size / typical).max(1),
            _ => 1,
        }
    }

    /// How many receives the buffers in the ring serve, as far as this pool knows.
    pub(crate) fn receives_ring_serves(&self) -> u32 {
        self.in_ring.saturating_mul(self.receives_per_buffer())
    }

    /// Receive buffer `id` left the ring: it is held in pieces.
    fn leave_ring(&mut self, id: u32) {
        self.owner[id as usize] = Owner::Pieces;
        self.in_ring -= 1;
        self.recv_out += 1;
        if !self.incremental {
            self.pieces.restart(id);
        }
    }

    /// The piece at `at`, which arrived with a receive's CQE, is the host's now (its
    /// completion names it).
    pub(crate) fn hand_over(&mut self, at: BufferRef) {
        if at.id < self.recv_count {
            self.pieces.hand_over(at.id, at.offset);
        }
    }

    /// Who hears when the piece at `at` comes back.
    pub(crate) fn set_origin(&mut self, at: BufferRef, origin: Origin) {
        if at.id < self.recv_count {
            self.pieces.set_origin(at.id, at.offset, origin);
        }
    }

    /// Whether the receive ring may still hold a buffer (some the kernel took may not
    /// have been reported yet, so this can be true of an empty ring, never false of a
    /// non-empty one).
    pub(crate) fn ring_has_buffers(&self) -> bool {
        self.in_ring > 0
    }

    /// Receive buffers the ring holds when none is out (it grew to this many).
    pub(crate) fn ring_target(&self) -> u32 {
        self.ring_target
    }

    /// A receive found the ring empty: up to `add` spare receive buffers join it (see
    /// `ring_growth.rs`). Returns false when every receive buffer is in it or out
    /// already.
    pub(crate) fn grow_ring(&mut self, add: u32) -> bool {
        let add = add.min(self.spare_recv.len() as u32);
        for _ in 0..add {
            let id = self.spare_recv.pop().expect("counted above");
            self.give_to_kernel(id);
        }
        self.ring_target += add;
        self.publish();
        add > 0
    }

    /// Receive buffers spare: how many the ring can grow by.
    pub(crate) fn spare_count(&self) -> u32 {
        self.spare_recv.len() as u32
    }

    /// A spare receive buffer (out of the ring) for the host, whole, if one is spare.
    pub(crate) fn take_spare(&mut self) -> Option<BufferRef> {
        let id = self.spare_recv.pop()?;
        self.owner[id as usize] = Owner::Pieces;
        self.recv_out += 1;
        self.pieces.restart(id);
        let offset = self.pieces.cut(id, self.buffer_size);
        self.pieces.hand_over(id, offset);
        Some(BufferRef { id, offset })
    }

    /// Receive buffers out of the ring, held in pieces (by the host, operations, or
    /// closed sockets whose pieces are not back yet).
    pub(crate) fn recv_out(&self) -> u32 {
        self.recv_out
    }

    /// A send buffer for the host, or `-ENOBUFS` when every one is in use.
    pub(crate) fn acquire(&mut self) -> Result<u32> {
        let id = self.free_send.pop().ok_or(-libc::ENOBUFS)?;
        self.owner[id as usize] = Owner::Host;
        Ok(id)
    }

    /// Whether `id` is a receive buffer, held in pieces.
    fn in_pieces(&self, id: u32) -> bool {
        id < self.recv_count
    }

    /// Checks that the host holds bytes `[offset, offset + len)` of buffer `id`: inside
    /// one piece of a receive buffer, or anywhere in another buffer it holds whole.
    pub(crate) fn check_host_range(&self, id: u32, offset: u32, len: u32) -> Result<()> {
        if self.in_pieces(id) {
            return self.pieces.check_host_range(id, offset, len).map(drop);
        }
        self.check_host(id)?;
        match offset.checked_add(len) {
            Some(end) if end <= self.buffer_len(id) => Ok(()),
            _ => Err(-libc::EINVAL),
        }
    }

    /// Bytes `[offset, offset + len)` of buffer `id`, which the host must hold.
    pub(crate) fn host_bytes(&self, id: u32, offset: u32, len: u32) -> Result<&[u8]> {
        self.check_host_range(id, offset, len)?;
        // SAFETY: the range is inside the pool (checked) and the host, not the kernel,
        // holds it now.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr(id).add(offset as usize), len as usize) })
    }

    /// The bytes of buffer `id` the host holds from its start: the whole buffer (or
    /// span), or the piece at offset 0.
    pub(crate) fn host_buffer(&self, id: u32) -> Result<&[u8]> {
        let len = match self.in_pieces(id) {
            true => self.pieces.check_host_range(id, 0, 0)?.1,
            false => self.buffer_len(id),
        };
        self.host_bytes(id, 0, len)
    }

    /// Where the host may write into the piece (or whole buffer) at `at`: its start and
    /// length, or `None` when the host does not hold it.
    pub(crate) fn host_room(&self, at: BufferRef) -> Option<(*mut u8, usize)> {
        let (start, len) = match self.in_pieces(at.id) {
            true => self.pieces.check_host_range(at.id, at.offset, 0).ok()?,
            false => (0, self.check_host(at.id).ok().map(|()| self.buffer_size)?),
        };
        // SAFETY: the piece lies inside buffer `at.id` of the pool.
        Some((unsafe { self.ptr(at.id).add(start as usize) }, len as usize))
    }

    fn check_host(&self, id: u32) -> Result<()> {
        match self.owner.get(id as usize) {
            Some(Owner::Host) => Ok(()),
            _ => Err(IOT_E_BAD_BUFFER),
        }
    }

    /// Ownership of the host's piece (or whole buffer) at `at` moves to an operation
    /// (a send).
    pub(crate) fn lend_to_operation(&mut self, at: BufferRef) -> Result<()> {
        if self.in_pieces(at.id) {
            return self.pieces.lend(at.id, at.offset);
        }
        self.check_host(at.id)?;
        self.owner[at.id as usize] = Owner::Operation;
        Ok(())
    }

    /// An operation that borrowed the host's piece or buffer at `at` (a read) hands it
    /// back.
    pub(crate) fn return_to_host(&mut self, at: BufferRef) {
        if self.in_pieces(at.id) {
            self.pieces.return_to_host(at.id, at.offset);
        } else if let Some(owner @ Owner::Operation) = self.owner.get_mut(at.id as usize) {
            *owner = Owner::Host;
        }
    }

    /// The host gives back the piece of receive buffer `id` starting at `offset`, or
    /// another buffer it holds whole (`offset` 0). `IOT_E_BAD_BUFFER` when it holds no
    /// such piece or buffer: a second release, a piece never handed out, an offset
    /// inside a piece or a buffer lent to a send.
    pub(crate) fn release(&mut self, id: u32, offset: u32) -> Result<Released> {
        if self.in_pieces(id) {
            let origin = self.pieces.release(id, offset)?;
            return Ok(self.piece_back(id, origin));
        }
        if offset != 0 {
            return Err(IOT_E_BAD_BUFFER);
        }
        self.check_host(id)?;
        Ok(Released {
            origin: Origin::Nobody,
            freed: Some(self.recycle(id)),
        })
    }

    /// An operation finished with the piece or buffer at `at` (its bytes went out):
    /// back to its pool (`None`: it was not the operation's).
    pub(crate) fn release_from_operation(&mut self, at: BufferRef) -> Option<Released> {
        if self.in_pieces(at.id) {
            let origin = self.pieces.release_lent(at.id, at.offset)?;
            return Some(self.piece_back(at.id, origin));
        }
        match self.owner.get(at.id as usize) {
            Some(Owner::Operation) => Some(Released {
                origin: Origin::Nobody,
                freed: Some(self.recycle(at.id)),
            }),
            _ => None,
        }
    }

    /// A piece of receive buffer `id` came back: the buffer too when it was the last
    /// one and the kernel is done with the buffer.
    fn piece_back(&mut self, id: u32, origin: Origin) -> Released {
        let done = self.owner[id as usize] == Owner::Pieces && self.pieces.none_out(id);
        Released {
            origin,
            freed: done.then(|| self.recycle(id)),
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
            return Freed::Send;
        }
        self.recv_out -= 1;
        if self.in_ring < self.ring_target {
            self.give_to_kernel(id);
            self.publish();
            Freed::ToRing
        } else {
            self.owner[id as usize] = Owner::Free;
            self.spare_recv.push(id);
            Freed::Spare
        }
    }

    /// Buffers the host or an operation it lent them to holds, whole or a piece of (0
    /// after everything was released); not a receive's piece before its completion.
    pub(crate) fn outstanding(&self) -> usize {
        let whole = self
            .owner
            .iter()
            .filter(|o| matches!(o, Owner::Host | Owner::Operation))
            .count();
        whole + self.pieces.buffers_held()
    }

    /// Pieces of receive buffers the host holds or lent to an operation.
    pub(crate) fn pieces_outstanding(&self) -> u32 {
        self.pieces.held()
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
