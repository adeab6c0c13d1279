//! Cross-worker messages with `IORING_OP_MSG_RING`: a worker posts a completion (a
//! 64-bit tag and a 32-bit value) straight into another worker's completion queue. The
//! receiver's lock is never taken and no host thread is involved; like any completion,
//! it makes the ring readable, so an idle, armed host wakes up, and a host
//! blocked in `iot_worker_wait` returns. The kernel posts a data message into a ring
//! like ours (no IOPOLL, no DEFER_TASKRUN) while the sender's SQE is submitted, so one
//! sender's messages arrive in the order it queued them.
//!
//! Wire format. The message CQE carries the sender's tag as `user_data`, the value (or
//! the slot of a payload or socket in transit) as `res`, and in `flags` a mark the
//! kernel never sets on our own operations' CQEs (`IORING_MSG_RING_FLAGS_PASS`,
//! Linux >= 6.3) plus what kind of message it is (`driver/user_data.rs`). So the full
//! 64-bit tag stays the host's, and a message tag can never be mistaken for one of our
//! `user_data` keys.
//!

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use slab::Slab;

use crate::abi::*;
use crate::driver::user_data::Wire;
use crate::error::{IOT_E_BAD_BUFFER, IOT_E_WORKER_GONE};
use crate::handoff;
use crate::mailbox::{Admission, Mailbox, CLOSED, FINAL};
use crate::notifier::Signal;
use crate::payloads;
use crate::sockets::{SocketKind, SocketTable};

/// What a message carries besides its tag and value, held in transit by its slot.
pub(crate) enum Parcel {
    Nothing,
    /// The payload's in-transit handle.
    Payload(u64),
    /// The in-transit handle of a handed-off socket.
    Socket(u64),
}

/// A message this worker sent whose own CQE has not arrived yet.
struct Sending {
    tag: u64,
    admission: Admission,
    parcel: Parcel,
}

/// The messaging state a worker keeps under its lock.
pub(crate) struct Messaging {
    /// The worker's id: payloads and sockets in transit name their holder by it.
    id: u64,
    pub(crate) mailbox: Arc<Mailbox>,
    outbox: Slab<Sending>,
    stopped_reported: bool,
    /// The worker is being freed (its mailbox is final). Kept here too because only the
    /// worker sets it, and reading the shared word per message would contend with senders.
    freeing: bool,
}

impl Messaging {
    /// For worker `id`, whose ring `ring_fd` duplicates, waking its host by `signal`.
    pub(crate) fn new(id: u64, signal: Arc<Signal>, ring_fd: OwnedFd) -> Messaging {
        Messaging {
            id,
            mailbox: Arc::new(Mailbox::new(signal, ring_fd)),
            outbox: Slab::new(),
            stopped_reported: false,
            freeing: false,
        }
    }

    /// Messages sent and not yet reported back.
    pub(crate) fn in_flight(&self) -> usize {
        self.outbox.len()
    }

    /// Puts `admission`'s message in the outbox, under the key its SQE's CQE names
    /// (`on_sent`).
    pub(crate) fn queue(&mut self, tag: u64, admission: Admission, parcel: Parcel) -> usize {
        self.outbox.insert(Sending {
            tag,
            admission,
            parcel,
        })
    }

    /// Message `key` could not be posted after all: its parcel comes back.
    pub(crate) fn unqueue(&mut self, key: usize, sockets: &mut SocketTable) {
        if let Some(sending) = self.outbox.try_remove(key) {
            self.take_back(sending.admission.target(), sending.parcel, sockets);
        }
    }

    /// The sender's CQE for a message: report the outcome, and if the message did not
    /// reach the target's host, take its parcel back.
    pub(crate) fn on_sent(
        &mut self,
        key: usize,
        res: i32,
        sockets: &mut SocketTable,
    ) -> Option<iot_completion> {
        let Sending {
            tag,
            mut admission,
            parcel,
        } = self.outbox.try_remove(key)?;
        let mut completion = iot_completion::new(tag, IOT_KIND_MESSAGE_SENT, res);
        if res >= 0 {
            admission.posted();
        }
        // A target freed meanwhile may have gone before sweeping this message: whoever
        // claims the parcel first (its final sweep, or us) disposes of it.
        if res < 0 || admission.target_freeing() {
            if let Some(handle) = self.take_back(admission.target(), parcel, sockets) {
                completion.handle = handle;
                if res >= 0 {
                    completion.result = IOT_E_WORKER_GONE;
                }
            }
        }
        Some(completion)
    }

    /// Returns an undelivered parcel to this worker's host; its new handle, if any.
    fn take_back(&mut self, target: u64, parcel: Parcel, sockets: &mut SocketTable) -> Option<u64> {
        match parcel {
            Parcel::Nothing => None,
            Parcel::Payload(in_transit) => {
                payloads::existing()?.take_back(in_transit, target, self.id)
            }
            Parcel::Socket(in_transit) => {
                let fd = handoff::take_back(in_transit, target)?;
                sockets.insert(fd, SocketKind::Stream).ok()
            }
        }
    }

    /// A message CQE arrived for this worker.
    pub(crate) fn on_message(
        &mut self,
        tag: u64,
        value: i32,
        wire: Wire,
        sockets: &mut SocketTable,
    ) -> Option<iot_completion> {
        self.mailbox.settle_arrived();
        if self.freeing {
            self.discard(wire, value as u32);
            return None;
        }
        let (kind, result, handle) = match wire {
            Wire::Plain => (IOT_KIND_MESSAGE, value, 0),
            Wire::StopRequest => (IOT_KIND_STOP_REQUESTED, value, 0),
            Wire::Payload => {
                match payloads::existing().and_then(|p| p.receive(self.id, value as u32)) {
                    Some((payload, len)) => (IOT_KIND_PAYLOAD, len as i32, payload),
                    None => (IOT_KIND_PAYLOAD, IOT_E_BAD_BUFFER, 0),
                }
            }
            Wire::Socket => match handoff::receive(self.id, value as u32) {
                Some(fd) => match sockets.insert(fd, SocketKind::Stream) {
                    Ok(handle) => (IOT_KIND_SOCKET, 0, handle),
                    Err(code) => (IOT_KIND_SOCKET, code, 0),
                },
                None => (IOT_KIND_SOCKET, -libc::EBADF, 0),
            },
        };
        let mut completion = iot_completion::new(tag, kind, result);
        completion.handle = handle;
        Some(completion)
    }

    /// Disposes of what a message carried when this worker's host will not see it.
    fn discard(&mut self, wire: Wire, slot: u32) {
        match wire {
            Wire::Payload => {
                if let Some(pool) = payloads::existing() {
                    pool.discard_arrived(self.id, slot);
                }
            }
            Wire::Socket => drop(handoff::receive(self.id, slot)),
            Wire::Plain | Wire::StopRequest => {}
        }
    }

    /// Refuses new messages; `IOT_KIND_STOPPED` follows once everything already on its
    /// way here has arrived and every message this worker sent was reported.
    pub(crate) fn stop(&mut self) -> Option<iot_completion> {
        self.mailbox.close(CLOSED);
        self.stopped_when_quiet()
    }

    /// Bookkeeping after each drain: publish the load (`sockets_open`), and the
    /// `STOPPED` completion when due.
    pub(crate) fn after_drain(&mut self, sockets_open: usize) -> Option<iot_completion> {
        self.mailbox
            .sockets
            .store(sockets_open as u32, Ordering::Relaxed);
        self.stopped_when_quiet()
    }

    fn stopped_when_quiet(&mut self) -> Option<iot_completion> {
        if self.stopped_reported
            || self.freeing
            || !self.mailbox.is_closed_and_empty()
            || !self.outbox.is_empty()
        {
            return None;
        }
        self.stopped_reported = true;
        Some(iot_completion::new(0, IOT_KIND_STOPPED, 0))
    }

    /// First step of freeing: from now on messages are refused, and those still
    /// arriving are disposed of instead of delivered.
    pub(crate) fn begin_final(&mut self) {
        self.freeing = true;
        self.mailbox.close(CLOSED | FINAL);
    }

    /// Last step of freeing, after the outbox was reaped and messages still arriving
    /// were swept: give back every payload this worker or its host held.
    pub(crate) fn end_final(&mut self) {
        if let Some(pool) = payloads::existing() {
            pool.release_all(self.id);
        }
    }
}
