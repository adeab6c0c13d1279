//! Cross-worker messages with `IORING_OP_MSG_RING`: a worker posts a completion (a
//! 64-bit tag and a 32-bit value) straight into another worker's completion queue. The
//! receiver's lock is never taken and no host thread is involved; its registered
//! eventfd fires like for any completion, so an idle, armed host wakes up, and a host
//! blocked in `iot_worker_wait` returns. The kernel posts a data message into a ring
//! like ours (no IOPOLL, no DEFER_TASKRUN) while the sender's SQE is submitted, so one
//! sender's messages arrive in the order it queued them.
//!
//! Wire format. The message CQE carries the sender's tag as `user_data`, the value (or
//! the slot of a payload or socket in transit) as `res`, and in `flags` a mark the
//! kernel never sets on our own operations' CQEs (`IORING_MSG_RING_FLAGS_PASS`,
//! Linux >= 6.3) plus what kind of message it is. So the full 64-bit tag stays the
//! host's, and a message tag can never be mistaken for one of our `user_data` keys.
//!
//! Outcome and accounting. Each send is an op on the sender's ring: the sender drains
//! an `IOT_KIND_MESSAGE_SENT` completion, result 0 when the kernel posted the message
//! into the target's queue ("reported as sent"), negative when it did not. Every
//! target keeps a mailbox count of messages admitted but not yet arrived; a worker that
//! stops refuses new messages and reports `IOT_KIND_STOPPED` only once that count is 0,
//! so a host that frees its worker after `STOPPED` has seen every message reported as
//! sent to it. A worker freed without stopping drops what is still queued, but never
//! leaks what a message carried: payloads return to the pool, sockets are closed, by
//! whichever side (receiver sweeping its queue, or sender seeing the target gone)
//! claims the slot first.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use io_uring::{opcode, squeue, types, IoUring};
use slab::Slab;

use crate::completion::*;
use crate::error::{Result, IOT_E_BAD_BUFFER, IOT_E_UNSUPPORTED, IOT_E_WORKER_GONE};
use crate::handoff;
use crate::notifier::Signal;
use crate::payloads;
use crate::registry::{self, Cell};
use crate::slots::index_of;
use crate::worker::Worker;

/// Marks the sender's own CQE for a message it sent: `SEND_BIT | outbox key`. Beside
/// `TIMEOUT_BIT` and `IGNORED` in ops.rs; outbox keys never reach it.
const SEND_BIT: u64 = 1 << 61;

/// Upper half of a message CQE's flags. Kernel CQEs of our own ops only use the upper
/// half for a buffer id, and then set `IORING_CQE_F_BUFFER` (bit 0), which messages
/// never do; the message kind sits in bits 8..16, clear of every kernel flag bit.
const MARK: u32 = 0x10A7_0000;
const KIND_SHIFT: u32 = 8;

/// What a message CQE carries in `res`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wire {
    /// The host's 32-bit value.
    Plain = 1,
    /// The slot index of a payload in transit.
    Payload = 2,
    /// The slot index of a socket in transit.
    Socket = 3,
    /// The value given to the broadcast.
    StopRequest = 4,
}

impl Wire {
    fn flags(self) -> u32 {
        MARK | (self as u32) << KIND_SHIFT
    }
}

/// The kind of message a CQE is, or `None` for the CQE of one of our own ops.
pub(crate) fn incoming(flags: u32) -> Option<Wire> {
    const IORING_CQE_F_BUFFER: u32 = 1;
    if flags & 0xFFFF_0000 != MARK || flags & IORING_CQE_F_BUFFER != 0 {
        return None;
    }
    match (flags & 0xFFFF) >> KIND_SHIFT {
        1 => Some(Wire::Plain),
        2 => Some(Wire::Payload),
        3 => Some(Wire::Socket),
        4 => Some(Wire::StopRequest),
        _ => None,
    }
}

/// The outbox key of the sender's CQE for a message, if `user_data` is one.
pub(crate) fn sent_key(user_data: u64) -> Option<usize> {
    (user_data & SEND_BIT != 0).then_some((user_data & !SEND_BIT) as usize)
}

/// Whether the kernel passes our flags through MSG_RING (Linux >= 6.3). Probed once per
/// process by messaging a throwaway ring, because backports make version numbers lie.
pub(crate) fn supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(probe_flags_pass)
}

fn probe_flags_pass() -> bool {
    let Ok(mut ring) = IoUring::new(4) else {
        return false;
    };
    let entry =
        opcode::MsgRingData::new(types::Fd(ring.as_raw_fd()), 0, 0, Some(Wire::Plain.flags()))
            .build();
    // SAFETY: a MSG_RING data entry points at no memory.
    if unsafe { ring.submission().push(&entry) }.is_err() || ring.submit_and_wait(1).is_err() {
        return false;
    }
    // The target CQE is posted before the sender's own one completes. (A local, so the
    // queue view borrowing the ring is gone before the ring is.)
    let passed = ring
        .completion()
        .any(|cqe| incoming(cqe.flags()) == Some(Wire::Plain));
    passed
}

const FINAL: u64 = 1 << 63;
const CLOSED: u64 = 1 << 62;
const COUNT: u64 = CLOSED - 1;

/// Keeps a counter on a cache line of its own: senders write one counter, the receiver
/// the other, and sharing a line would bounce it between their cores on every message.
#[repr(align(64))]
struct OwnLine<T>(T);

/// What other threads reach of a worker without its lock: its message gate and the
/// load it publishes for senders choosing a target. Messages on their way here are
/// `admitted - settled`; both only grow, so no count can underflow.
pub(crate) struct Mailbox {
    /// `FINAL | CLOSED | messages ever admitted`, written by senders.
    admitted: OwnLine<AtomicU64>,
    /// Messages that arrived (written by this worker) or failed at their sender.
    settled: OwnLine<AtomicU64>,
    /// Sockets the worker had open at its last drain.
    sockets: AtomicU32,
    /// Wakes the worker's notifier when its last pending message failed at the sender.
    signal: Arc<Signal>,
}

impl Mailbox {
    fn new(signal: Arc<Signal>) -> Mailbox {
        Mailbox {
            admitted: OwnLine(AtomicU64::new(0)),
            settled: OwnLine(AtomicU64::new(0)),
            sockets: AtomicU32::new(0),
            signal,
        }
    }

    /// Counts one more message on its way here, unless the worker stopped.
    fn admit(&self) -> bool {
        self.admitted
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & CLOSED == 0).then_some(s + 1)
            })
            .is_ok()
    }

    fn close(&self, bits: u64) {
        self.admitted.0.fetch_or(bits, Ordering::AcqRel);
    }

    /// A message arrived here.
    fn settle_arrived(&self) {
        self.settled.0.fetch_add(1, Ordering::AcqRel);
    }

    /// A message the sender could not deliver: if it was the last one a stopping
    /// worker waited for, wake that worker so its drain reports `STOPPED`.
    fn settle_undelivered(&self) {
        let settled = self.settled.0.fetch_add(1, Ordering::AcqRel) + 1;
        let admitted = self.admitted.0.load(Ordering::Acquire);
        if admitted & CLOSED != 0 && admitted & COUNT == settled {
            self.signal.kick();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.admitted.0.load(Ordering::Acquire) & CLOSED != 0
    }

    fn is_final(&self) -> bool {
        self.admitted.0.load(Ordering::Acquire) & FINAL != 0
    }

    /// Stopped, and every message admitted before has arrived or failed.
    fn is_closed_and_empty(&self) -> bool {
        // Once closed, `admitted` no longer moves, so reading it first is exact.
        let admitted = self.admitted.0.load(Ordering::Acquire);
        admitted & CLOSED != 0 && admitted & COUNT == self.settled.0.load(Ordering::Acquire)
    }

    /// Open sockets plus messages on their way here: what a balancer compares.
    pub(crate) fn load(&self) -> u64 {
        let settled = self.settled.0.load(Ordering::Relaxed);
        let admitted = self.admitted.0.load(Ordering::Relaxed) & COUNT;
        u64::from(self.sockets.load(Ordering::Relaxed)) + admitted.saturating_sub(settled)
    }
}

/// One message counted in its target's mailbox. The count is settled by the target
/// when the message arrives; dropping an admission that was not handed to the target
/// settles it here (the message was never posted, or failed).
pub(crate) struct Admission {
    /// Keeps the target's ring fd number valid until the kernel took the SQE naming it.
    cell: Arc<Cell>,
    target: u64,
    settle_on_drop: bool,
}

impl Admission {
    pub(crate) fn new(target: u64) -> Result<Admission> {
        if !supported() {
            return Err(IOT_E_UNSUPPORTED);
        }
        let cell = registry::cell(target).map_err(|_| IOT_E_WORKER_GONE)?;
        if !cell.mailbox.admit() {
            return Err(IOT_E_WORKER_GONE);
        }
        Ok(Admission {
            cell,
            target,
            settle_on_drop: true,
        })
    }

    pub(crate) fn target(&self) -> u64 {
        self.target
    }

    /// The SQE that posts this message into the target's completion queue.
    pub(crate) fn entry(&self, tag: u64, wire: Wire, value: i32) -> squeue::Entry {
        opcode::MsgRingData::new(
            types::Fd(self.cell.ring_fd.as_raw_fd()),
            value,
            tag,
            Some(wire.flags()),
        )
        .build()
    }

    /// The kernel posted the message: the target settles it when it arrives.
    pub(crate) fn posted(&mut self) {
        self.settle_on_drop = false;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.settle_on_drop {
            self.cell.mailbox.settle_undelivered();
        }
    }
}

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
    pub(crate) mailbox: Arc<Mailbox>,
    outbox: Slab<Sending>,
    stopped_reported: bool,
    /// The worker is being freed (its mailbox is final). Kept here too because only the
    /// worker sets it, and reading the shared word per message would contend with senders.
    freeing: bool,
}

impl Messaging {
    pub(crate) fn new(signal: Arc<Signal>) -> Messaging {
        Messaging {
            mailbox: Arc::new(Mailbox::new(signal)),
            outbox: Slab::new(),
            stopped_reported: false,
            freeing: false,
        }
    }

    /// Messages sent and not yet reported back.
    pub(crate) fn in_flight(&self) -> usize {
        self.outbox.len()
    }
}

/// How many final drains a freed worker makes to sweep messages still arriving.
const FINAL_SWEEP_ROUNDS: usize = 1024;

impl Worker {
    /// Queues a message with `tag` and `value` for worker `target`.
    pub(crate) fn send_message(&mut self, target: u64, tag: u64, value: u32) -> Result<()> {
        self.reserve_submission()?;
        let admission = Admission::new(target)?;
        self.post(admission, tag, Wire::Plain, value as i32, Parcel::Nothing)
    }

    /// Queues a message carrying `len` bytes of `payload`; the payload belongs to the
    /// message from now on.
    pub(crate) fn send_payload(
        &mut self,
        target: u64,
        tag: u64,
        payload: u64,
        len: u32,
    ) -> Result<()> {
        let pool = payloads::existing().ok_or(IOT_E_BAD_BUFFER)?;
        self.reserve_submission()?;
        let admission = Admission::new(target)?;
        let in_transit = pool.dispatch(self.id, payload, len, target)?;
        let slot = index_of(in_transit) as i32;
        self.post(
            admission,
            tag,
            Wire::Payload,
            slot,
            Parcel::Payload(in_transit),
        )
    }

    /// Makes room for one SQE before anything irreversible happens, so that posting a
    /// message whose parcel already left the host cannot fail for want of space.
    pub(crate) fn reserve_submission(&mut self) -> Result<()> {
        if self.ring.submission().is_full() {
            self.flush()?;
        }
        if self.ring.submission().is_full() {
            return Err(-libc::EBUSY);
        }
        Ok(())
    }

    /// Queues the SQE of an admitted message; its CQE completes it in `on_message_sent`.
    pub(crate) fn post(
        &mut self,
        admission: Admission,
        tag: u64,
        wire: Wire,
        value: i32,
        parcel: Parcel,
    ) -> Result<()> {
        let entry = admission.entry(tag, wire, value);
        let key = self.messaging.outbox.insert(Sending {
            tag,
            admission,
            parcel,
        });
        if let Err(code) = self.push(&[entry.user_data(SEND_BIT | key as u64)]) {
            // Unreachable after `reserve_submission`; never lose the parcel regardless.
            let sending = self.messaging.outbox.remove(key);
            self.take_back(sending.admission.target(), sending.parcel);
            return Err(code);
        }
        Ok(())
    }

    /// The sender's CQE for a message: report the outcome, and if the message did not
    /// reach the target's host, take its parcel back.
    pub(crate) fn on_message_sent(&mut self, key: usize, res: i32) -> Option<iot_completion> {
        let Sending {
            tag,
            mut admission,
            parcel,
        } = self.messaging.outbox.try_remove(key)?;
        let mut completion = iot_completion::new(tag, IOT_KIND_MESSAGE_SENT, res);
        if res >= 0 {
            admission.posted();
        }
        // A target freed meanwhile may have gone before sweeping this message: whoever
        // claims the parcel first (its final sweep, or us) disposes of it.
        if res < 0 || admission.cell.mailbox.is_final() {
            if let Some(handle) = self.take_back(admission.target(), parcel) {
                completion.handle = handle;
                if res >= 0 {
                    completion.result = IOT_E_WORKER_GONE;
                }
            }
        }
        Some(completion)
    }

    /// Returns an undelivered parcel to this worker's host; its new handle, if any.
    fn take_back(&mut self, target: u64, parcel: Parcel) -> Option<u64> {
        match parcel {
            Parcel::Nothing => None,
            Parcel::Payload(in_transit) => {
                payloads::existing()?.take_back(in_transit, target, self.id)
            }
            Parcel::Socket(in_transit) => {
                let fd = handoff::take_back(in_transit, target)?;
                self.adopt_stream(fd).ok()
            }
        }
    }

    /// A message CQE arrived for this worker.
    pub(crate) fn on_message(
        &mut self,
        tag: u64,
        value: i32,
        wire: Wire,
    ) -> Option<iot_completion> {
        self.messaging.mailbox.settle_arrived();
        if self.messaging.freeing {
            self.discard_message(wire, value as u32);
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
                Some(fd) => match self.adopt_stream(fd) {
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
    fn discard_message(&mut self, wire: Wire, slot: u32) {
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
    pub(crate) fn stop_messages(&mut self) {
        self.messaging.mailbox.close(CLOSED);
        self.report_stopped_when_quiet();
    }

    /// Bookkeeping after each drain: publish the load, report `STOPPED` when due.
    pub(crate) fn after_drain(&mut self) {
        self.messaging
            .mailbox
            .sockets
            .store(self.sockets.len() as u32, Ordering::Relaxed);
        self.report_stopped_when_quiet();
    }

    fn report_stopped_when_quiet(&mut self) {
        if self.messaging.stopped_reported
            || self.messaging.freeing
            || !self.messaging.mailbox.is_closed_and_empty()
            || !self.messaging.outbox.is_empty()
        {
            return;
        }
        self.messaging.stopped_reported = true;
        self.push_ready(iot_completion::new(0, IOT_KIND_STOPPED, 0));
    }

    /// First step of freeing: from now on messages are refused, and those still
    /// arriving are disposed of instead of delivered.
    pub(crate) fn begin_final_messaging(&mut self) {
        self.messaging.freeing = true;
        self.messaging.mailbox.close(CLOSED | FINAL);
    }

    /// Last step of freeing, after the outbox was reaped: sweep messages still in the
    /// completion queue and give back every payload this worker or its host held.
    pub(crate) fn end_final_messaging(&mut self) {
        let mut scratch = [iot_completion::default(); 64];
        for _ in 0..FINAL_SWEEP_ROUNDS {
            let more =
                self.drain(&mut scratch) == scratch.len() || !self.ring.completion().is_empty();
            if !more {
                break;
            }
        }
        if let Some(pool) = payloads::existing() {
            pool.release_all(self.id);
        }
    }
}
