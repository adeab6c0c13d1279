//! The ops in flight on a ring: the slab whose keys are their `user_data`, each op's
//! life (its current kernel attempt; cancelled, parked out of the kernel, or backing
//! off), and what each CQE means for its op. Generic over the op type, which only
//! shows its [`Life`] ([`Tracked`]): monomorphised, so no dispatch per completion.
//!
//! Rules kept here: a slot is freed only by its owner after the op's final CQE (or
//! when the op never reached the kernel); a cancelled op keeps its slot, and so its
//! buffers, until that CQE arrives.

use io_uring::types::{CancelBuilder, Timespec};
use io_uring::{cqueue, opcode, squeue};
use slab::Slab;

use super::attempt::Attempt;
use super::ring::Ring;
use super::user_data::{self, Cqe, Wire};
use crate::error::Result;

/// Attempts in a row `Driver::retry_orphaned` lets the kernel cancel.
const MAX_ORPHANED_RETRIES: u8 = 4;

/// Where an op is in its life, as far as the ring is concerned.
pub(crate) struct Life {
    /// The current kernel attempt, with the op's timeout.
    pub(crate) attempt: Attempt,
    /// The host asked to cancel: never retry or resubmit.
    pub(crate) cancelled: bool,
    /// Not in the kernel: waiting for buffers to come back (the receive ring ran dry,
    /// or a read stream's window is full) before resubmitting.
    pub(crate) starved: bool,
    /// Not in the kernel: a back-off timer runs before the next attempt.
    pub(crate) backing_off: bool,
    /// Attempts in a row the kernel cancelled on its own (`Driver::retry_orphaned`).
    orphaned: u8,
}

impl Life {
    /// A new op's, with `timeout_ms` per attempt (0: none).
    pub(crate) fn new(timeout_ms: u32) -> Life {
        Life {
            attempt: Attempt::new(timeout_ms),
            cancelled: false,
            starved: false,
            backing_off: false,
            orphaned: 0,
        }
    }
}

/// What the driver needs of an op.
pub(crate) trait Tracked {
    fn life(&self) -> &Life;
    fn life_mut(&mut self) -> &mut Life;
    /// Runs in a blocking io-wq thread, where a linked timeout does not fire.
    fn blocks_in_io_wq(&self) -> bool;
}

/// What a CQE means, once the driver did its part.
pub(crate) enum Event {
    /// Nothing for anyone (a fire-and-forget SQE, or an op already gone).
    Nothing,
    /// A message from another worker (`user_data` is the sender's tag).
    Message(Wire),
    /// The outcome of message `key` of this worker's outbox.
    Sent(usize),
    /// The back-off timer of op `key` ended (the op is no longer backing off).
    BackedOff(usize),
    /// Multishot op `key` produced a result and stays armed.
    More(usize),
    /// A CQE of op `key`'s current attempt came in: `settle` tells whether it ended.
    Settle(usize),
}

pub(crate) struct Driver<T> {
    // Declared first so the ring closes before the memory its ops point into.
    pub(crate) ring: Ring,
    ops: Slab<T>,
}

impl<T: Tracked> Driver<T> {
    pub(crate) fn new(ring: Ring) -> Driver<T> {
        Driver {
            ring,
            ops: Slab::new(),
        }
    }

    /// A slot for `op`, not yet in the kernel; its key is its `user_data`.
    #[inline]
    pub(crate) fn insert(&mut self, op: T) -> usize {
        self.ops.insert(op)
    }

    /// Frees op `key`'s slot (after its final CQE, or when it never reached the kernel).
    #[inline]
    pub(crate) fn remove(&mut self, key: usize) -> T {
        self.ops.remove(key)
    }

    #[inline]
    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        self.ops.get(key)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.ops.get_mut(key)
    }

    /// The ops in flight, with their keys.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.ops.iter()
    }

    /// The keys of the ops matching `pred`.
    pub(crate) fn keys_where(&self, pred: impl Fn(&T) -> bool) -> Vec<usize> {
        self.iter()
            .filter(|(_, op)| pred(op))
            .map(|(k, _)| k)
            .collect()
    }

    /// Ops with a slot (in the kernel, starved or backing off).
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// Queues one kernel attempt of op `key`, whose SQE is `entry`, with its timeout.
    #[inline]
    pub(crate) fn submit(&mut self, key: usize, entry: squeue::Entry) -> Result<()> {
        let op = &mut self.ops[key];
        let in_io_wq = op.blocks_in_io_wq();
        let ring = &mut self.ring;
        let sqes = op
            .life_mut()
            .attempt
            .start(key, entry, in_io_wq, |ms| ring.stage_timespec(ms));
        ring.push(sqes.as_slice())
    }

    /// The next CQE as (`user_data`, result, flags); see [`Ring::next_cqe`].
    #[inline]
    pub(crate) fn next_cqe(&mut self, overflow_flushed: &mut bool) -> Option<(u64, i32, u32)> {
        self.ring.next_cqe(overflow_flushed)
    }

    /// Routes a CQE: does the ring's part (stopping a timer the op outlived, cancelling
    /// an op its timer outlived) and says who the rest is for.
    #[inline]
    pub(crate) fn route(&mut self, user_data: u64, res: i32, flags: u32) -> Event {
        match user_data::decode(user_data, flags) {
            Cqe::Op(key) => {
                let Some(op) = self.ops.get_mut(key) else {
                    return Event::Nothing;
                };
                if cqueue::more(flags) {
                    return Event::More(key);
                }
                let in_io_wq = op.blocks_in_io_wq();
                if op.life_mut().attempt.op_done(res, flags, in_io_wq) {
                    let stop = opcode::TimeoutRemove::new(user_data::timeout(key)).build();
                    let _ = self.ring.push_ignored(stop);
                }
                Event::Settle(key)
            }
            Cqe::Timeout(key) => {
                // It fired, or was cancelled because the op finished first.
                let Some(op) = self.ops.get_mut(key) else {
                    return Event::Nothing;
                };
                let in_io_wq = op.blocks_in_io_wq();
                if op.life_mut().attempt.timeout_done(res, in_io_wq) {
                    let cancel = CancelBuilder::user_data(user_data::op(key));
                    let _ = self.ring.cancel(cancel);
                }
                Event::Settle(key)
            }
            Cqe::Backoff(key) => match self.ops.get_mut(key) {
                Some(op) => {
                    op.life_mut().backing_off = false;
                    Event::BackedOff(key)
                }
                None => Event::Nothing,
            },
            Cqe::Message(wire) => Event::Message(wire),
            Cqe::Sent(key) => Event::Sent(key),
            Cqe::Ignored => Event::Nothing,
        }
    }

    /// The result of op `key`'s current attempt once its op and timeout CQEs are both
    /// in; `closed`: its handle was closed under it, which cancelled it too.
    #[inline]
    pub(crate) fn settle(&mut self, key: usize, closed: bool) -> Option<(i32, u32)> {
        let life = self.ops[key].life_mut();
        let cancelled = life.cancelled || closed;
        life.attempt.settle(cancelled)
    }

    /// Whether op `key`, whose attempt ended with `res`, should make another attempt
    /// because the kernel cancelled it (`-ECANCELED`) although nobody else did. The
    /// kernel finishes a poll-driven attempt as task work of the thread that submitted
    /// it, and cancels it once that thread has exited (a Dart pool thread retired
    /// while its isolate moved on, a native host's short-lived thread); the next
    /// attempt is submitted by the thread draining now. A few in a row at most, so a
    /// kernel that cancels for another reason still ends the op.
    #[inline]
    pub(crate) fn retry_orphaned(&mut self, key: usize, res: i32) -> bool {
        let life = self.ops[key].life_mut();
        if res != -libc::ECANCELED {
            life.orphaned = 0;
            return false;
        }
        if life.cancelled || life.orphaned >= MAX_ORPHANED_RETRIES {
            return false;
        }
        life.orphaned += 1;
        true
    }

    /// Multishot op `key`'s attempt produced a result: the kernel's cancellations
    /// counted by `retry_orphaned` are no longer in a row.
    #[inline]
    pub(crate) fn made_progress(&mut self, key: usize) {
        self.ops[key].life_mut().orphaned = 0;
    }

    /// Op `key` waits out `pause` before its next attempt; the timer's CQE comes back
    /// as [`Event::BackedOff`].
    pub(crate) fn back_off(&mut self, key: usize, pause: &'static Timespec) -> Result<()> {
        let timer = opcode::Timeout::new(pause as *const Timespec)
            .build()
            .user_data(user_data::backoff(key));
        self.ring.push(&[timer])?;
        self.ops[key].life_mut().backing_off = true;
        Ok(())
    }

    /// Marks op `key` cancelled and stops its back-off timer, or (`in_kernel`) its SQE
    /// in the kernel; either's CQE then ends it. True when it is starved: out of the
    /// kernel, where nothing but its owner ends it.
    pub(crate) fn cancel(&mut self, key: usize, in_kernel: bool) -> Result<bool> {
        let life = self.ops[key].life_mut();
        life.cancelled = true;
        if life.starved {
            return Ok(true);
        }
        if life.backing_off {
            let stop = opcode::TimeoutRemove::new(user_data::backoff(key)).build();
            self.ring.push_ignored(stop)?;
            return Ok(false);
        }
        if in_kernel {
            let what = CancelBuilder::user_data(user_data::op(key)).all();
            self.ring.cancel(what)?;
        }
        Ok(false)
    }

    /// Cancels op `key`'s kernel attempt but not the op: the attempt's final CQE
    /// (`-ECANCELED`, or a result that came first) goes to the op's owner as usual.
    pub(crate) fn cancel_attempt(&mut self, key: usize) -> Result<()> {
        self.ring
            .cancel(CancelBuilder::user_data(user_data::op(key)))
    }

    /// Shutdown: forgets the starved ops (no CQE will come for them), marks the rest
    /// cancelled and cancels everything in the kernel.
    pub(crate) fn cancel_everything(&mut self) {
        self.ops.retain(|_, op| !op.life().starved);
        for (_, op) in self.ops.iter_mut() {
            op.life_mut().cancelled = true;
        }
        let _ = self.ring.cancel(CancelBuilder::any());
        let _ = self.ring.flush();
    }
}

impl<T> std::ops::Index<usize> for Driver<T> {
    type Output = T;

    #[inline]
    fn index(&self, key: usize) -> &T {
        &self.ops[key]
    }
}

impl<T> std::ops::IndexMut<usize> for Driver<T> {
    #[inline]
    fn index_mut(&mut self, key: usize) -> &mut T {
        &mut self.ops[key]
    }
}
