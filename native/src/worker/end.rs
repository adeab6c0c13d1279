//! An op ends: its slot is freed, the pool buffers it took go back at once, and the
//! host buffers it borrowed go back when the host sees its completion (to the host
//! when they hold what was read, to the pool when their bytes went out; those go back
//! when the CQE is reaped, if that is before), so every buffer has one owner at a
//! time. An ordered op lets its handle's queue move on.

use super::Worker;
use crate::abi::*;
use crate::op::{Op, Recv, Work};
use crate::pieces::BufferRef;

/// An op's completion with the work whose borrowed host buffers it gives back: they
/// stay the op's until the host sees the completion, so each has one owner at a time.
pub(super) struct Ended {
    pub(super) completion: iot_completion,
    pub(super) lent: Option<Work>,
}

impl Ended {
    pub(super) fn nothing_lent(completion: iot_completion) -> Ended {
        Ended {
            completion,
            lent: None,
        }
    }
}

impl Ended {
    /// Whether the op lent buffers that go back to the host with its completion
    /// (what was read into them), not to the pool.
    fn keeps_host_buffers(&self) -> bool {
        self.lent
            .as_ref()
            .is_some_and(|work| work.fills_host_buffers())
    }
}

impl Worker {
    /// Ends op `key` with its CQE, in a drain: the completion goes to the host now,
    /// with the buffers it hands back. The next op queued behind it starts. Outside a
    /// drain the completion waits in `ready` instead. Host buffers a read filled wait
    /// with it; the buffers whose bytes went out go back to the pool now, as the
    /// completion says: behind a backlog of completions they would be held for as
    /// long again, and the receive ring ran dry for them at 10,000 connections.
    pub(super) fn end_op(
        &mut self,
        key: usize,
        completion: iot_completion,
    ) -> Option<iot_completion> {
        // Outside a drain, what ending this op makes end at once (the next queued op
        // failing to start) waits in `ready` behind this op's completion, as it would
        // reach the host behind it in a drain.
        let at = self.ready.len();
        let ended = self.end_op_unseen(key, completion);
        if self.reaping_outside_drain && ended.keeps_host_buffers() {
            self.insert_ended(at, ended);
            return None;
        }
        let completion = self.hand_over(ended);
        if self.reaping_outside_drain {
            self.insert_ended(at, Ended::nothing_lent(completion));
            return None;
        }
        Some(completion)
    }

    /// Ends op `key` outside a drain: its completion waits in `ready`.
    pub(super) fn end_op_later(&mut self, key: usize, completion: iot_completion) {
        let ended = self.end_op_unseen(key, completion);
        self.push_ended(ended);
    }

    pub(super) fn end_op_unseen(&mut self, key: usize, completion: iot_completion) -> Ended {
        let (socket, ordered) = (self.driver[key].socket, self.driver[key].ordered);
        let failed = ordered && completion.result < 0;
        let ended = self.retire(key, completion);
        if failed {
            self.break_stream(socket);
        }
        if ordered {
            self.start_outbound(socket);
        }
        ended
    }

    /// The host sees `ended`'s completion now: the buffers the op borrowed go back,
    /// to the host (what was read) or to the pool (what was sent or written, which the
    /// completion says with `IOT_COMPLETION_BUFFERS_RETURNED`).
    pub(super) fn hand_over(&mut self, ended: Ended) -> iot_completion {
        let mut completion = ended.completion;
        if let Some(work) = &ended.lent {
            let to_host = work.fills_host_buffers();
            for &buffer in work.borrowed() {
                if to_host {
                    self.buffers.return_to_host(buffer);
                } else {
                    self.release_operation_buffer(buffer);
                }
            }
            if !to_host && !work.borrowed().is_empty() {
                completion.flags |= IOT_COMPLETION_BUFFERS_RETURNED;
            }
        }
        if let Some(Work::Send(mut progress)) = ended.lent {
            if let Some(records) = progress.take_records() {
                self.keep_record_buffer(records);
            }
            if let Some(address) = progress.take_address() {
                self.send_addresses.keep(address);
            }
        }
        completion
    }

    /// Frees op `key`'s slot and gives back the buffers it borrowed (noting them in
    /// `completion`); an ordered op lets its handle's queue move on.
    pub(super) fn retire(&mut self, key: usize, completion: iot_completion) -> Ended {
        let op = self.driver.remove(key);
        self.conclude(op, completion)
    }

    /// Gives back what `op` borrowed; the slot (if it had one) is already free.
    pub(super) fn conclude(&mut self, op: Op, mut completion: iot_completion) -> Ended {
        if let Some(piece) = op.received {
            // A piece its last CQE handed over that no completion carries.
            self.drop_arrived(piece);
        }
        let lent = self.return_taken(op.work, &mut completion);
        if op.ordered {
            if let Ok(s) = self.sockets.get_mut(op.socket) {
                s.sending = false;
            }
        }
        Ended { completion, lent }
    }

    /// Ends op `key`, which is not in the kernel, as cancelled.
    pub(super) fn abandon(&mut self, key: usize) {
        self.end_op_later(key, self.driver[key].completion(-libc::ECANCELED));
    }

    /// Pool buffers the op took for itself (and did not hand over) go back now, which
    /// the completion says (a sender waiting for a free buffer or span may go on); the
    /// work is returned when it borrowed host buffers, which go back only when the
    /// host sees the completion (`hand_over`).
    pub(super) fn return_taken(
        &mut self,
        work: Work,
        completion: &mut iot_completion,
    ) -> Option<Work> {
        for &buffer in work.taken() {
            self.release_operation_buffer(BufferRef::whole(buffer));
            completion.flags |= IOT_COMPLETION_BUFFERS_RETURNED;
        }
        if let Work::Read(read) = &work {
            read.hand_back(completion);
        }
        if !work.borrowed().is_empty() {
            return Some(work);
        }
        if let Work::Recv(Recv {
            from: Some(header), ..
        }) = work
        {
            self.receive_headers.keep(header);
        }
        None
    }
}
