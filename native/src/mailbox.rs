//! A worker's mailbox: what other threads reach of it without its lock (the gate that
//! admits messages, the count of those on their way, the ring fd to post into), and
//! the admission a sender holds for each message until the kernel posted it.
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

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use io_uring::{opcode, squeue, types, IoUring};

use crate::driver::user_data::{incoming, Wire};
use crate::error::{Result, IOT_E_WORKER_GONE};
use crate::notifier::Signal;

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

pub(crate) const FINAL: u64 = 1 << 63;
pub(crate) const CLOSED: u64 = 1 << 62;
const COUNT: u64 = CLOSED - 1;

/// Keeps a counter on a cache line of its own: senders write one counter, the receiver
/// the other, and sharing a line would bounce it between their cores on every message.
#[repr(align(64))]
struct OwnLine<T>(T);

/// What other threads reach of a worker without its lock: its message gate and the
/// load it publishes for senders choosing a target. Messages on their way here are
/// `admitted - settled`; both only grow, so no count can underflow.
pub(crate) struct Mailbox {
    /// A duplicate of the worker's ring fd: senders post into it, and a host waits on
    /// it without the lock; never a closed or reused fd while a sender holds the box.
    pub(crate) ring_fd: OwnedFd,
    /// `FINAL | CLOSED | messages ever admitted`, written by senders.
    admitted: OwnLine<AtomicU64>,
    /// Messages that arrived (written by this worker) or failed at their sender.
    settled: OwnLine<AtomicU64>,
    /// Sockets the worker had open at its last drain.
    pub(crate) sockets: AtomicU32,
    /// Wakes the worker's notifier when its last pending message failed at the sender.
    signal: Arc<Signal>,
}

impl Mailbox {
    pub(crate) fn new(signal: Arc<Signal>, ring_fd: OwnedFd) -> Mailbox {
        Mailbox {
            ring_fd,
            admitted: OwnLine(AtomicU64::new(0)),
            settled: OwnLine(AtomicU64::new(0)),
            sockets: AtomicU32::new(0),
            signal,
        }
    }

    /// Counts one more message on its way here, unless the worker stopped.
    pub(crate) fn admit(&self) -> bool {
        self.admitted
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & CLOSED == 0).then_some(s + 1)
            })
            .is_ok()
    }

    pub(crate) fn close(&self, bits: u64) {
        self.admitted.0.fetch_or(bits, Ordering::AcqRel);
    }

    /// A message arrived here.
    pub(crate) fn settle_arrived(&self) {
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

    pub(crate) fn is_final(&self) -> bool {
        self.admitted.0.load(Ordering::Acquire) & FINAL != 0
    }

    /// Stopped, and every message admitted before has arrived or failed.
    pub(crate) fn is_closed_and_empty(&self) -> bool {
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
    mailbox: Arc<Mailbox>,
    target: u64,
    settle_on_drop: bool,
}

impl Admission {
    /// Counts a message in worker `target`'s `mailbox`, unless it stopped (the kernel
    /// must pass our flags through `MSG_RING`: `supported`).
    pub(crate) fn new(target: u64, mailbox: Arc<Mailbox>) -> Result<Admission> {
        if !mailbox.admit() {
            return Err(IOT_E_WORKER_GONE);
        }
        Ok(Admission {
            mailbox,
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
            types::Fd(self.mailbox.ring_fd.as_raw_fd()),
            value,
            tag,
            Some(wire.flags()),
        )
        .build()
    }

    /// Whether the target is being freed (its final sweep may be over).
    pub(crate) fn target_freeing(&self) -> bool {
        self.mailbox.is_final()
    }

    /// The kernel posted the message: the target settles it when it arrives.
    pub(crate) fn posted(&mut self) {
        self.settle_on_drop = false;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.settle_on_drop {
            self.mailbox.settle_undelivered();
        }
    }
}
