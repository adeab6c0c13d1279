//! The worker's handle table: sockets and open files. A handle is
//! `worker << 40 | generation << 22 | slot`: it names its worker, so no other worker
//! (nor a freed one: ids are never reused) accepts it, and the generation changes every
//! time a slot is reused, so a stale handle never reaches a new socket or file.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use slab::Slab;

use crate::error::{from_io, Result, IOT_E_BAD_HANDLE, IOT_E_WRONG_SOCKET_KIND};
use crate::op::Op;
use crate::tls::TlsSession;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SocketKind {
    /// A listening TCP or Unix stream socket.
    Listener,
    /// A connected TCP or Unix stream socket.
    Stream,
    /// A UDP or Unix datagram socket.
    Datagram,
    /// An open file (or anything else opened by path: FIFOs, devices).
    File,
}

/// One cache line each (64-byte aligned, nothing rare stored inline): a worker with
/// thousands of sockets misses the cache on most socket lookups, so one line is one
/// miss per lookup.
#[repr(align(64))]
pub(crate) struct Socket {
    pub(crate) fd: OwnedFd,
    pub(crate) kind: SocketKind,
    generation: u32,
    /// Ops that must run one at a time in call order, not yet started: the kernel does
    /// not order concurrent sends on a stream, nor writes at a file's position.
    pub(crate) outbound: OrderedQueue,
    /// An op from `outbound` is in flight.
    pub(crate) sending: bool,
    /// A send failed with `ECONNRESET`: the peer reset the connection without closing
    /// it first (after its FIN, a reset is `EPIPE`). A reset's error goes to whichever
    /// call meets it first, so a receive after that send finds only the end of the
    /// stream, and reports the reset instead.
    pub(crate) reset_seen: bool,
    /// A send or shutdown of this stream failed, timed out or was cancelled once
    /// started: later ones end cancelled, unsent, as any would go out after a gap.
    pub(crate) broken: bool,
    /// In the ring's registered files at its handle's slot: its sends name the slot.
    pub(crate) fixed: bool,
    /// Receive-ring buffers this stream received that are not back in the ring.
    pub(crate) received_held: u32,
    /// The receive op waiting for some of them to come back (`recv_credit.rs`).
    pub(crate) throttled: Option<u32>,
    /// The Unix socket file this socket created; removed when the socket closes
    /// (declared after `fd`, so the socket is closed first).
    pub(crate) bound_path: Option<Box<BoundPath>>,
    /// The TLS session over this stream, from its handshake on.
    pub(crate) tls: Option<Box<TlsSession>>,
}

impl Socket {
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Records may be sent and received: no TLS session, or an established one.
    pub(crate) fn check_tls_established(&self) -> Result<()> {
        self.tls
            .as_deref()
            .map_or(Ok(()), TlsSession::check_established)
    }
}

/// A handle's ordered ops not started yet. Most ordered ops start at once
/// (`Worker::queue_ordered`), so the queue is made on first use, outside the socket.
/// Boxed on purpose: an empty `VecDeque` inline is 32 bytes of the socket's line.
#[derive(Default)]
#[allow(clippy::box_collection)]
pub(crate) struct OrderedQueue(Option<Box<VecDeque<Op>>>);

impl OrderedQueue {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().map_or(true, |queue| queue.is_empty())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |queue| queue.len())
    }

    pub(crate) fn push_back(&mut self, op: Op) {
        self.0.get_or_insert_with(Default::default).push_back(op);
    }

    pub(crate) fn pop_front(&mut self) -> Option<Op> {
        self.0.as_mut()?.pop_front()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Op> {
        self.0.iter().flat_map(|queue| queue.iter())
    }

    /// Takes every queued op out, in order.
    pub(crate) fn take(&mut self) -> VecDeque<Op> {
        self.0.take().map(|queue| *queue).unwrap_or_default()
    }
}

/// The socket file a socket created, removed when the socket closes — unless the file
/// at that path is no longer ours (someone replaced it), which is left alone.
pub(crate) struct BoundPath {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundPath {
    pub(crate) fn new(path: &Path) -> Result<BoundPath> {
        let meta = std::fs::symlink_metadata(path).map_err(from_io)?;
        Ok(BoundPath {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl Drop for BoundPath {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if ours {
            // Nothing to report to: the handle is already gone. A failure leaves a stale
            // file that IOT_UNIX_REPLACE_STALE handles.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Bits of a handle holding the slot: over four million open handles per worker.
const SLOT_BITS: u32 = 22;
/// Bits of a handle holding the generation.
const GENERATION_BITS: u32 = 18;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;
/// Worker ids that fit the rest of a handle (the registry issues no larger ones).
pub(crate) const MAX_HANDLE_WORKER_ID: u64 = (1 << (64 - SLOT_BITS - GENERATION_BITS)) - 1;

pub(crate) struct SocketTable {
    worker: u64,
    slots: Slab<Socket>,
    next_generation: u32,
}

/// (worker, generation, slot) of a handle.
fn split(handle: u64) -> (u64, u32, usize) {
    (
        handle >> (SLOT_BITS + GENERATION_BITS),
        (handle >> SLOT_BITS) as u32 & GENERATION_MASK,
        (handle & SLOT_MASK) as usize,
    )
}

impl SocketTable {
    pub(crate) fn new(worker: u64) -> SocketTable {
        SocketTable {
            worker,
            slots: Slab::new(),
            next_generation: 0,
        }
    }

    fn handle(&self, generation: u32, slot: usize) -> u64 {
        (self.worker << (SLOT_BITS + GENERATION_BITS))
            | (u64::from(generation) << SLOT_BITS)
            | slot as u64
    }

    /// Registers `fd`; `-EMFILE` when the worker has every slot a handle can name open.
    pub(crate) fn insert(&mut self, fd: OwnedFd, kind: SocketKind) -> Result<u64> {
        if self.slots.vacant_key() as u64 > SLOT_MASK {
            return Err(-libc::EMFILE);
        }
        // Generations skip 0, so no handle of worker 0 could ever be 0 either.
        self.next_generation = (self.next_generation + 1) & GENERATION_MASK;
        self.next_generation = self.next_generation.max(1);
        let generation = self.next_generation;
        let slot = self.slots.insert(Socket {
            fd,
            kind,
            generation,
            outbound: OrderedQueue::default(),
            sending: false,
            reset_seen: false,
            broken: false,
            fixed: false,
            received_held: 0,
            throttled: None,
            bound_path: None,
            tls: None,
        });
        Ok(self.handle(generation, slot))
    }

    pub(crate) fn get(&self, handle: u64) -> Result<&Socket> {
        let (worker, generation, slot) = split(handle);
        match self.slots.get(slot) {
            Some(s) if s.generation == generation && worker == self.worker => Ok(s),
            _ => Err(IOT_E_BAD_HANDLE),
        }
    }

    pub(crate) fn get_mut(&mut self, handle: u64) -> Result<&mut Socket> {
        let (worker, generation, slot) = split(handle);
        match self.slots.get_mut(slot) {
            Some(s) if s.generation == generation && worker == self.worker => Ok(s),
            _ => Err(IOT_E_BAD_HANDLE),
        }
    }

    pub(crate) fn get_kind(&self, handle: u64, kind: SocketKind) -> Result<&Socket> {
        let socket = self.get(handle)?;
        if socket.kind == kind {
            Ok(socket)
        } else {
            Err(IOT_E_WRONG_SOCKET_KIND)
        }
    }

    /// The slot of `handle`, which no other open socket of the table has.
    pub(crate) fn slot(handle: u64) -> usize {
        split(handle).2
    }

    pub(crate) fn remove(&mut self, handle: u64) -> Result<Socket> {
        self.get(handle)?;
        Ok(self.slots.remove(split(handle).2))
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Socket> + '_ {
        self.slots.drain()
    }

    /// Handles with a queued (not yet started) op tagged `tag`.
    pub(crate) fn handles_with_queued(&self, tag: u64) -> Vec<u64> {
        self.slots
            .iter()
            .filter(|(_, s)| s.outbound.iter().any(|op| op.tag == tag))
            .map(|(slot, s)| self.handle(s.generation, slot))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd() -> OwnedFd {
        std::fs::File::open("/dev/null")
            .expect("open /dev/null")
            .into()
    }

    #[test]
    fn handles_name_their_worker() {
        let (mut first, mut second) = (SocketTable::new(1), SocketTable::new(2));
        let a = first.insert(fd(), SocketKind::File).expect("slot");
        let b = second.insert(fd(), SocketKind::File).expect("slot");
        assert_ne!(a, b, "the first handle of two workers");
        assert_eq!(second.get(a).err(), Some(IOT_E_BAD_HANDLE));
        assert_eq!(first.remove(b).err(), Some(IOT_E_BAD_HANDLE));
        assert!(first.get(a).is_ok() && second.get(b).is_ok());
    }

    #[test]
    fn a_reused_slot_gets_a_new_handle() {
        let mut table = SocketTable::new(MAX_HANDLE_WORKER_ID);
        let old = table.insert(fd(), SocketKind::File).expect("slot");
        table.remove(old).expect("remove");
        let new = table.insert(fd(), SocketKind::File).expect("slot");
        assert_eq!(split(old).2, split(new).2, "same slot");
        assert_ne!(old, new);
        assert_eq!(split(new).0, MAX_HANDLE_WORKER_ID);
        assert_eq!(table.get(old).err(), Some(IOT_E_BAD_HANDLE));
    }
}
