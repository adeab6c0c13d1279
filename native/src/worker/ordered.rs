//! Ops that must run one after another on their handle (sends and shutdowns on a
//! socket; writes, reads and syncs at a file's position) wait in the handle's queue;
//! the next starts when the one in flight ends.

use super::Worker;
use crate::error::Result;
use crate::op::Op;
use crate::sockets::SocketKind;

impl Worker {
    /// Queues `op` behind the handle's previous ordered op (sends and shutdowns on a
    /// socket, writes, reads and syncs at a file's position).
    pub(crate) fn queue_ordered(&mut self, op: Op) -> Result<()> {
        let socket = op.socket;
        let s = self.sockets.get_mut(socket)?;
        if s.broken {
            // Behind the failure's completion, which the host may not have seen yet.
            self.complete_dropped(op);
            return Ok(());
        }
        if s.sending || !s.outbound.is_empty() {
            s.outbound.push_back(op);
            return Ok(());
        }
        // Nothing ahead of it (the common case): it starts now, without a trip
        // through the queue's memory. If it cannot, it ends at once and the queue
        // it leaves behind is empty.
        s.sending = true;
        self.start_ordered(op);
        Ok(())
    }

    pub(super) fn start_outbound(&mut self, socket: u64) {
        loop {
            let Ok(s) = self.sockets.get_mut(socket) else {
                return;
            };
            if s.sending {
                return;
            }
            let Some(op) = s.outbound.pop_front() else {
                return;
            };
            s.sending = true;
            if self.start_ordered(op) {
                return;
            }
        }
    }

    /// Starts ordered `op`, its handle marked as sending. False when it could not
    /// start: it ended at once (its completion waits in `ready`) and the op queued
    /// behind it may go.
    fn start_ordered(&mut self, mut op: Op) -> bool {
        op.ordered = true;
        let key = self.driver.insert(op);
        match self
            .seal_for_tls(key)
            .and_then(|()| self.submit_attempt(key))
        {
            Ok(()) => true,
            Err(code) => {
                let socket = self.driver[key].socket;
                let ended = self.retire(key, self.driver[key].completion(code));
                self.push_ended(ended);
                self.break_stream(socket);
                false
            }
        }
    }

    /// A send or shutdown of stream `socket` failed (an error, a timeout, a cancel):
    /// its bytes must go out in order or not at all, so the ones queued behind it end
    /// as cancelled, and so do later ones (`Socket::broken`); starting them would
    /// leave a gap the peer cannot see (or end the stream cleanly after one). Other
    /// handles' ordered ops (a file's) go on.
    pub(super) fn break_stream(&mut self, socket: u64) {
        match self.sockets.get_mut(socket) {
            Ok(s) if s.kind == SocketKind::Stream => s.broken = true,
            _ => return,
        }
        self.drop_queued(socket, |_| true);
    }

    /// Removes queued (not yet started) ops matching `pred`, completing them as
    /// cancelled and returning their buffers.
    pub(super) fn drop_queued(&mut self, socket: u64, pred: impl Fn(&Op) -> bool) {
        let Ok(s) = self.sockets.get_mut(socket) else {
            return;
        };
        let (dropped, kept): (Vec<Op>, Vec<Op>) =
            s.outbound.take().into_iter().partition(|op| pred(op));
        for op in kept {
            s.outbound.push_back(op);
        }
        for op in dropped {
            self.complete_dropped(op);
        }
    }

    /// A queued op that never started completes as cancelled.
    pub(super) fn complete_dropped(&mut self, op: Op) {
        let completion = op.completion(-libc::ECANCELED);
        let ended = self.conclude(op, completion);
        self.push_ended(ended);
    }
}
