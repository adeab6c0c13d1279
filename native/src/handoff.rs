//! Connection hand-off: one worker accepts, another serves. A file descriptor is valid
//! in the whole process, so handing a socket over is bookkeeping: detach it from the
//! sender's socket table, park the fd in a process-wide slot while the message travels,
//! adopt it into the receiver's table when the message arrives.
//!
//! The parked fd belongs to the slot, and exactly one party claims the slot (the
//! receiver when the message arrives or when it sweeps its queue on free, or the sender
//! when the target failed or was freed first), so an fd in transit is never leaked and
//! never closed twice.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use crate::error::Result;
use crate::slots::{Holder, SlotTable};

/// Sockets that may be in transit at once in the process; beyond it hand-offs fail
/// with `-EAGAIN` until some arrive.
const PARKING_CAPACITY: u32 = 16 * 1024;

fn parking() -> &'static SlotTable {
    static PARKING: OnceLock<SlotTable> = OnceLock::new();
    PARKING.get_or_init(|| SlotTable::new(PARKING_CAPACITY))
}

/// Parks `fd` for worker `target`: the slot owns it from now on (its socket table
/// must let go of it). Returns the slot's handle.
pub(crate) fn park(fd: RawFd, target: u64) -> Result<u64> {
    parking()
        .take(Holder::InTransitTo(target), fd as u64)
        .ok_or(-libc::EAGAIN)
}

/// Frees the slot of a hand-off that never left: the fd stays where it was.
pub(crate) fn unpark(parked: u64, target: u64) {
    let _ = parking().release(parked, Holder::InTransitTo(target));
}

/// Takes the fd parked in slot `index` for `worker`, if it is still parked there.
pub(crate) fn receive(worker: u64, index: u32) -> Option<OwnedFd> {
    let parked = parking().handle_of(index, Holder::InTransitTo(worker))?;
    claim(parked, worker)
}

/// Takes back the fd of a hand-off to `target` that did not reach its host, unless the
/// target claimed it first.
pub(crate) fn take_back(parked: u64, target: u64) -> Option<OwnedFd> {
    claim(parked, target)
}

fn claim(parked: u64, target: u64) -> Option<OwnedFd> {
    let fd = parking().release(parked, Holder::InTransitTo(target))?;
    // SAFETY: the slot owned this fd since it was parked, and releasing the slot made
    // us its only owner.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
