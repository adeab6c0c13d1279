//! The process-wide payload pool: bytes that travel with a message when a tag and a
//! value are not enough. The sender fills a payload, the message carries its slot
//! index, ownership moves with the message, and the receiver releases it. No copy.
//!
//! Why one pool for the process rather than per-worker pools: a payload outlives its
//! sender's interest in it, and a worker's buffers are owned and locked by that worker
//! and unmapped when it is freed, which would leave a receiver's view dangling or make
//! the receiver take the sender's lock to give a buffer back. This pool is mapped once
//! and never unmapped, so a view can go stale (its slot reused after a release) but
//! never dangle; ownership is checked per slot without locks (`SlotTable`), and a
//! handle is valid for one holding only, so a double release is an error.

use std::sync::OnceLock;

use crate::buffers::Mapping;
use crate::error::{Result, IOT_E_BAD_BUFFER, IOT_E_BAD_HANDLE};
use crate::slots::{Holder, SlotTable};

pub(crate) const DEFAULT_PAYLOAD_SIZE: u32 = 64 * 1024;
pub(crate) const DEFAULT_PAYLOAD_COUNT: u32 = 1024;
const MAX_PAYLOAD_SIZE: u32 = 16 << 20;
const MAX_PAYLOAD_COUNT: u32 = 1 << 20;
/// Address space the pool may reserve (pages are only backed once written).
const MAX_POOL_BYTES: u64 = 1 << 36;

pub(crate) struct PayloadPool {
    memory: Mapping,
    size: u32,
    slots: SlotTable,
}

// SAFETY: the pool never reads or writes payload bytes itself; the mapping is fixed for
// the life of the process and each slot's bytes belong to whoever holds the slot, which
// `SlotTable` keeps to one holder at a time with atomics.
unsafe impl Send for PayloadPool {}
// SAFETY: as above; all shared state is atomic.
unsafe impl Sync for PayloadPool {}

static POOL: OnceLock<PayloadPool> = OnceLock::new();

/// Sets the pool's geometry; only before its first use (`-EBUSY` after).
pub(crate) fn configure(size: u32, count: u32) -> Result<()> {
    validate(size, count)?;
    if POOL.get().is_some() {
        return Err(-libc::EBUSY);
    }
    POOL.set(PayloadPool::new(size, count)?)
        .map_err(|_| -libc::EBUSY)
}

/// The pool, created with the default geometry on first use.
pub(crate) fn pool() -> Result<&'static PayloadPool> {
    if let Some(pool) = POOL.get() {
        return Ok(pool);
    }
    let created = PayloadPool::new(DEFAULT_PAYLOAD_SIZE, DEFAULT_PAYLOAD_COUNT)?;
    // Losing a race to another first user just drops (unmaps) our copy.
    let _ = POOL.set(created);
    POOL.get().ok_or(-libc::ENOMEM)
}

/// Checks a geometry; returns the bytes it needs.
fn validate(size: u32, count: u32) -> Result<u64> {
    let bytes = u64::from(size) * u64::from(count);
    if (1..=MAX_PAYLOAD_SIZE).contains(&size)
        && (1..=MAX_PAYLOAD_COUNT).contains(&count)
        && bytes <= MAX_POOL_BYTES
    {
        Ok(bytes)
    } else {
        Err(-libc::EINVAL)
    }
}

/// The pool if anyone created it; nothing can be held in a pool that does not exist.
pub(crate) fn existing() -> Option<&'static PayloadPool> {
    POOL.get()
}

impl PayloadPool {
    fn new(size: u32, count: u32) -> Result<PayloadPool> {
        let bytes = validate(size, count)?;
        Ok(PayloadPool {
            memory: Mapping::new(bytes as usize)?,
            size,
            slots: SlotTable::new(count),
        })
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.memory.base()
    }

    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    pub(crate) fn count(&self) -> u32 {
        self.slots.capacity()
    }

    /// Payloads held by hosts or in transit.
    pub(crate) fn in_use(&self) -> u32 {
        self.slots.in_use()
    }

    /// A free payload for `worker`'s host, or `-ENOBUFS` when all are in use.
    pub(crate) fn acquire(&self, worker: u64) -> Result<u64> {
        self.slots
            .take(Holder::Worker(worker), 0)
            .ok_or(-libc::ENOBUFS)
    }

    pub(crate) fn release(&self, worker: u64, payload: u64) -> Result<()> {
        self.slots
            .release(payload, Holder::Worker(worker))
            .map(drop)
            .ok_or_else(|| self.refusal(worker, payload))
    }

    /// Why `worker` may not use `payload`: another worker's (or a message's) handle is
    /// a bad handle here, like a foreign socket handle; a stale one (released, sent
    /// on) is a bad buffer.
    fn refusal(&self, worker: u64, payload: u64) -> i32 {
        match self.slots.holder_of(payload) {
            Some(holder) if holder != Holder::Worker(worker) => IOT_E_BAD_HANDLE,
            _ => IOT_E_BAD_BUFFER,
        }
    }

    /// Hands `len` bytes of `payload` to a message for `target`; returns the handle the
    /// message holds it under.
    pub(crate) fn dispatch(&self, worker: u64, payload: u64, len: u32, target: u64) -> Result<u64> {
        if len > self.size {
            return Err(-libc::EINVAL);
        }
        let in_transit = self
            .slots
            .transfer(payload, Holder::Worker(worker), Holder::InTransitTo(target))
            .ok_or_else(|| self.refusal(worker, payload))?;
        // Written before the message is submitted, read after it arrived.
        self.slots.set_value(in_transit, u64::from(len));
        Ok(in_transit)
    }

    /// `worker` takes the payload of a message that arrived for it: (handle, length).
    pub(crate) fn receive(&self, worker: u64, index: u32) -> Option<(u64, u32)> {
        let in_transit = self.slots.handle_of(index, Holder::InTransitTo(worker))?;
        let len = self.slots.value(in_transit) as u32;
        let held = self.slots.transfer(
            in_transit,
            Holder::InTransitTo(worker),
            Holder::Worker(worker),
        )?;
        Some((held, len))
    }

    /// A payload message that never reached its target's host comes back to `sender`,
    /// unless the target took it first. Returns the sender's new handle.
    pub(crate) fn take_back(&self, in_transit: u64, target: u64, sender: u64) -> Option<u64> {
        self.slots.transfer(
            in_transit,
            Holder::InTransitTo(target),
            Holder::Worker(sender),
        )
    }

    /// Frees the payload of a message that arrived at a worker being freed.
    pub(crate) fn discard_arrived(&self, worker: u64, index: u32) {
        if let Some(in_transit) = self.slots.handle_of(index, Holder::InTransitTo(worker)) {
            let _ = self.slots.release(in_transit, Holder::InTransitTo(worker));
        }
    }

    /// Frees every payload `worker` (or its host) still holds: the worker is gone.
    pub(crate) fn release_all(&self, worker: u64) {
        for payload in self.slots.held_by(Holder::Worker(worker)) {
            let _ = self.slots.release(payload, Holder::Worker(worker));
        }
    }
}
