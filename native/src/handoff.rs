//! Connection hand-off: one worker accepts, another serves. A file descriptor is valid
//! in the whole process, so handing a socket over is bookkeeping: detach it from the
//! sender's socket table, park the fd in a process-wide slot while the message travels,
//! adopt it into the receiver's table when the message arrives.
//!
//! The parked fd belongs to the slot, and exactly one party claims the slot (the
//! receiver when the message arrives or when it sweeps its queue on free, or the sender
//! when the target failed or was freed first), so an fd in transit is never leaked and
//! never closed twice.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::sync::OnceLock;

use crate::error::Result;
use crate::messaging::{Admission, Parcel, Wire};
use crate::slots::{index_of, Holder, SlotTable};
use crate::sockets::SocketKind;
use crate::worker::Worker;

/// Sockets that may be in transit at once in the process; beyond it hand-offs fail
/// with `-EAGAIN` until some arrive.
const PARKING_CAPACITY: u32 = 16 * 1024;

fn parking() -> &'static SlotTable {
    static PARKING: OnceLock<SlotTable> = OnceLock::new();
    PARKING.get_or_init(|| SlotTable::new(PARKING_CAPACITY))
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

impl Worker {
    /// Hands stream `socket` to worker `target`: its handle goes stale here at once, and
    /// `target` drains an `IOT_KIND_SOCKET` completion with its own handle for it.
    pub(crate) fn handoff_socket(&mut self, socket: u64, target: u64, tag: u64) -> Result<()> {
        let fd = self.sockets.get_kind(socket, SocketKind::Stream)?.raw();
        // Operations in flight would keep using the fd on this ring after the hand-off.
        let busy = {
            let s = self.sockets.get(socket)?;
            s.sending || !s.outbound.is_empty()
        } || self.ops.iter().any(|(_, op)| op.socket == socket);
        if busy {
            return Err(-libc::EBUSY);
        }
        self.reserve_submission()?;
        let admission = Admission::new(target)?;
        let parked = parking()
            .take(Holder::InTransitTo(target), fd as u64)
            .ok_or(-libc::EAGAIN)?;
        // The slot owns the fd now; the table entry must not close it.
        let detached = match self.sockets.remove(socket) {
            Ok(detached) => detached,
            Err(code) => {
                // Checked above, so unreachable; the table still owns the fd then.
                let _ = parking().release(parked, Holder::InTransitTo(target));
                return Err(code);
            }
        };
        let _ = detached.fd.into_raw_fd();
        self.post(
            admission,
            tag,
            Wire::Socket,
            index_of(parked) as i32,
            Parcel::Socket(parked),
        )
    }

    /// Registers a connected stream that arrived from (or came back from) another
    /// worker; returns its socket handle (the fd is closed when none is left).
    pub(crate) fn adopt_stream(&mut self, fd: OwnedFd) -> Result<u64> {
        self.sockets.insert(fd, SocketKind::Stream)
    }
}
