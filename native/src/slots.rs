//! A fixed-capacity, process-wide table of slots that change hands between workers
//! without locks: the payload pool and the sockets in transit between workers use it.
//!
//! Each slot has one holder at a time: a worker (its host), or a message on its way to
//! a worker. Every change of holder goes through one compare-and-swap on the slot's
//! state word and stamps a new generation into it, so a handle (`generation << 32 |
//! index`) is valid for exactly one holding: a stale, foreign or released handle fails
//! the swap instead of touching a slot someone else holds now.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Worker ids fit in 31 bits (the registry stops issuing ids there), so a holder fits
/// the low half of the state word next to the generation.
pub(crate) const MAX_WORKER_ID: u64 = (1 << 31) - 1;
const IN_TRANSIT: u32 = 1 << 31;
const FREE: u32 = 0;

/// Who holds a slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Holder {
    /// Worker `id` (and so its host).
    Worker(u64),
    /// A message posted to worker `id`, not yet taken out of its completion queue.
    InTransitTo(u64),
}

impl Holder {
    fn code(self) -> u32 {
        // Ids above MAX_WORKER_ID are never issued; masking keeps a forged one from
        // setting the transit bit or meaning "free".
        match self {
            Holder::Worker(id) => (id & MAX_WORKER_ID) as u32,
            Holder::InTransitTo(id) => IN_TRANSIT | (id & MAX_WORKER_ID) as u32,
        }
    }
}

fn pack(generation: u32, holder: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(holder)
}

/// Generations skip 0, so no handle is 0 (0 means "none" in completions).
fn next_generation(generation: u32) -> u32 {
    generation.checked_add(1).unwrap_or(1)
}

pub(crate) fn index_of(handle: u64) -> u32 {
    handle as u32
}

fn generation_of(handle: u64) -> u32 {
    (handle >> 32) as u32
}

pub(crate) struct SlotTable {
    /// `generation << 32 | holder code` per slot.
    states: Box<[AtomicU64]>,
    /// What the slot carries (a payload length, a file descriptor), written by the
    /// holder that is about to pass the slot on and read by the next one.
    values: Box<[AtomicU64]>,
    free: FreeStack,
    /// Slots taken and not released, for leak checks.
    in_use: AtomicU32,
}

impl SlotTable {
    pub(crate) fn new(capacity: u32) -> SlotTable {
        SlotTable {
            states: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            values: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            free: FreeStack::new(capacity),
            in_use: AtomicU32::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.states.len() as u32
    }

    pub(crate) fn in_use(&self) -> u32 {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Takes a free slot for `holder`, carrying `value`. `None` when every slot is taken.
    pub(crate) fn take(&self, holder: Holder, value: u64) -> Option<u64> {
        let index = self.free.pop()?;
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let slot = index as usize;
        let generation = next_generation(generation_of(self.states[slot].load(Ordering::Acquire)));
        self.values[slot].store(value, Ordering::Relaxed);
        // A popped slot is ours alone: no valid handle names a free slot, so a plain
        // store cannot race a successful swap.
        self.states[slot].store(pack(generation, holder.code()), Ordering::Release);
        Some(pack(generation, index))
    }

    /// Passes slot `handle` from `from` to `to`; returns the new holder's handle (the
    /// old one goes stale). `None` if `from` does not hold it under this handle.
    pub(crate) fn transfer(&self, handle: u64, from: Holder, to: Holder) -> Option<u64> {
        let slot = self.slot(handle)?;
        let generation = next_generation(generation_of(handle));
        self.states[slot]
            .compare_exchange(
                pack(generation_of(handle), from.code()),
                pack(generation, to.code()),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()?;
        Some(pack(generation, index_of(handle)))
    }

    /// Frees slot `handle` held by `from`; returns what it carried. `None` if `from`
    /// does not hold it under this handle (e.g. a second release).
    pub(crate) fn release(&self, handle: u64, from: Holder) -> Option<u64> {
        let slot = self.slot(handle)?;
        self.states[slot]
            .compare_exchange(
                pack(generation_of(handle), from.code()),
                pack(next_generation(generation_of(handle)), FREE),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()?;
        // Still ours until pushed: the free list is the only way back to a holder.
        let value = self.values[slot].load(Ordering::Relaxed);
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        self.free.push(index_of(handle));
        Some(value)
    }

    /// The handle under which `holder` holds slot `index` now, if it does.
    pub(crate) fn handle_of(&self, index: u32, holder: Holder) -> Option<u64> {
        let state = self.states.get(index as usize)?.load(Ordering::Acquire);
        (state as u32 == holder.code()).then(|| pack(generation_of(state), index))
    }

    /// Who holds slot `handle` under this very handle (not a stale one), if anyone.
    pub(crate) fn holder_of(&self, handle: u64) -> Option<Holder> {
        let state = self.states.get(self.slot(handle)?)?.load(Ordering::Acquire);
        if generation_of(state) != generation_of(handle) {
            return None;
        }
        let code = state as u32;
        let id = u64::from(code & !IN_TRANSIT);
        match (code, code & IN_TRANSIT != 0) {
            (FREE, _) => None,
            (_, true) => Some(Holder::InTransitTo(id)),
            (_, false) => Some(Holder::Worker(id)),
        }
    }

    /// Handles of every slot `holder` holds at this moment (for sweeps at shutdown).
    pub(crate) fn held_by(&self, holder: Holder) -> Vec<u64> {
        (0..self.capacity())
            .filter_map(|index| self.handle_of(index, holder))
            .collect()
    }

    pub(crate) fn value(&self, handle: u64) -> u64 {
        self.slot(handle)
            .map_or(0, |slot| self.values[slot].load(Ordering::Acquire))
    }

    /// Sets what the slot carries; only its current holder may call this.
    pub(crate) fn set_value(&self, handle: u64, value: u64) {
        if let Some(slot) = self.slot(handle) {
            self.values[slot].store(value, Ordering::Release);
        }
    }

    fn slot(&self, handle: u64) -> Option<usize> {
        let index = index_of(handle) as usize;
        (index < self.states.len()).then_some(index)
    }
}

/// Lock-free stack of free slot indices (Treiber stack). The head carries a counter
/// that changes on every push and pop, so a pop that read a stale `next` fails its
/// swap instead of corrupting the list (the ABA problem).
struct FreeStack {
    /// `counter << 32 | (index + 1)`; index + 1 == 0 means empty.
    head: AtomicU64,
    next: Box<[AtomicU32]>,
}

impl FreeStack {
    fn new(capacity: u32) -> FreeStack {
        // Slot i links to i + 1, so slots are handed out from index 0 upwards.
        let next = (0..capacity)
            .map(|i| AtomicU32::new(if i + 1 < capacity { i + 2 } else { 0 }))
            .collect();
        FreeStack {
            head: AtomicU64::new(u64::from(capacity > 0)),
            next,
        }
    }

    fn pop(&self) -> Option<u32> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let top = head as u32;
            if top == 0 {
                return None;
            }
            let below = self.next[(top - 1) as usize].load(Ordering::Relaxed);
            let new = (((head >> 32) + 1) << 32) | u64::from(below);
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(top - 1),
                Err(current) => head = current,
            }
        }
    }

    fn push(&self, index: u32) {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            self.next[index as usize].store(head as u32, Ordering::Relaxed);
            let new = (((head >> 32) + 1) << 32) | u64::from(index + 1);
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Holder = Holder::Worker(1);
    const B: Holder = Holder::Worker(2);
    const TO_B: Holder = Holder::InTransitTo(2);

    #[test]
    fn every_holding_has_its_own_handle() {
        let table = SlotTable::new(2);
        let held = table.take(A, 7).expect("free slot");
        let in_transit = table.transfer(held, A, TO_B).expect("A holds it");
        assert_eq!(table.release(held, A), None, "A's handle went stale");
        assert_eq!(table.handle_of(index_of(held), TO_B), Some(in_transit));
        let at_b = table
            .transfer(in_transit, TO_B, B)
            .expect("in transit to B");
        assert_eq!(table.transfer(at_b, A, B), None, "A is not the holder");
        assert_eq!(table.release(at_b, B), Some(7));
        assert_eq!(table.release(at_b, B), None, "double release");
    }

    #[test]
    fn full_table_and_reuse() {
        let table = SlotTable::new(2);
        let a = table.take(A, 0).expect("slot 0");
        let b = table.take(A, 0).expect("slot 1");
        assert_eq!(table.take(A, 0), None);
        table.release(a, A).expect("release");
        let c = table.take(B, 0).expect("reused slot");
        assert_eq!(index_of(c), index_of(a));
        assert_ne!(c, a, "a reused slot gets a new generation");
        assert_eq!(table.held_by(A), vec![b]);
        assert_eq!(table.in_use(), 2);
    }

    #[test]
    fn concurrent_take_and_release_keep_slots_exclusive() {
        let table = std::sync::Arc::new(SlotTable::new(64));
        let threads: Vec<_> = (1..=4u64)
            .map(|worker| {
                let table = table.clone();
                std::thread::spawn(move || {
                    for round in 0..20_000u64 {
                        let Some(handle) = table.take(Holder::Worker(worker), round) else {
                            continue;
                        };
                        assert_eq!(table.value(handle), round, "slot shared by two holders");
                        assert_eq!(table.release(handle, Holder::Worker(worker)), Some(round));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("worker thread");
        }
        assert_eq!((0..64).filter_map(|_| table.take(A, 0)).count(), 64);
    }
}
