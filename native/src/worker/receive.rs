//! Receives and the buffers they wait for. A stream socket may hold only so many
//! receive-ring buffers (`RecvCredit`): past that its receive parks (throttled) until
//! one comes back. A receive that finds the ring empty grows it (once per drain) or
//! waits, oldest first, in `starved` (`starved_for_spans` for datagram spans), fed one
//! per buffer that returns. A read stream pauses while the host holds its window of
//! chunks. Every buffer the host or an op gives back comes through here.

use io_uring::cqueue;

use super::Worker;
use crate::buffers::Freed;
use crate::error::Result;
use crate::op::{Op, Work};
use crate::recv_credit::RecvCredit;

/// Which provided buffer ring receives wait for: the receive buffers, or the
/// datagram spans.
#[derive(Clone, Copy)]
pub(super) enum RingKind {
    Buffers,
    Spans,
}

impl Worker {
    /// Starts a stream receive, or parks it until the socket's buffers come back.
    pub(crate) fn start_receive(&mut self, socket: u64, op: Op) -> Result<()> {
        let stream = self.sockets.get(socket)?;
        stream.check_tls_established()?;
        if stream.tls.is_some() {
            // Plaintext may wait in the session already (it came with the handshake).
            let key = self.driver.insert(op);
            self.deliver_plaintext(key, None);
            return Ok(());
        }
        if self.recv_credit.may_receive(&self.sockets, socket) {
            return self.start(op).map(drop);
        }
        let key = self.driver.insert(op);
        self.throttle(key);
        Ok(())
    }

    /// Receive op `key` waits out of the kernel until its socket is under its limit.
    pub(super) fn throttle(&mut self, key: usize) {
        let op = &mut self.driver[key];
        op.life.starved = true;
        RecvCredit::park(&mut self.sockets, op.socket, key);
    }

    /// Forgets that op `key` waits for its socket's buffers (it was cancelled).
    pub(super) fn unthrottle(&mut self, key: usize) {
        if let Some(op) = self.driver.get(key) {
            RecvCredit::unpark(&mut self.sockets, op.socket, key);
        }
    }

    /// Op `key`, starved and cancelled, leaves the queues of receives waiting for the
    /// rings.
    pub(super) fn forget_starved(&mut self, key: usize) {
        self.starved.retain(|&k| k != key);
        self.starved_for_spans.retain(|&k| k != key);
    }

    /// Receive buffer `id` went back to the ring: a receive parked at its socket's
    /// limit goes on.
    pub(super) fn recv_buffer_returned(&mut self, id: u32) {
        let Some(key) = self.recv_credit.returned(&mut self.sockets, id) else {
            return;
        };
        if let Some(op) = self.driver.get_mut(key) {
            op.life.starved = false;
            self.resume_receive(key);
        }
    }

    /// Receive op `key`, parked, goes on: a TLS receive hands over what its session
    /// holds first.
    fn resume_receive(&mut self, key: usize) {
        if self.receives_tls(key) {
            return self.deliver_plaintext(key, None);
        }
        if let Err(code) = self.submit_attempt(key) {
            let completion = self.driver[key].completion(code);
            self.end_op_later(key, completion);
        }
    }

    /// The buffer a receive CQE names: the host's now, or recycled if nobody can take it.
    pub(super) fn take_buffer(&mut self, flags: u32, socket_gone: bool) -> Option<u16> {
        let id = cqueue::buffer_select(flags)?;
        self.buffers.take_received(u32::from(id));
        if socket_gone {
            let _ = self.release_buffer(u32::from(id));
            return None;
        }
        Some(id)
    }

    /// The receive ring ran dry: op `key` waits out of the kernel until a buffer returns.
    pub(super) fn starve(&mut self, key: usize) {
        if self.receives_spans(key) {
            // The datagram ring has a fixed size; go on at once if spans came back.
            if self.buffers.datagram_ring_has_spans() && self.submit_attempt(key).is_ok() {
                return;
            }
            self.driver[key].life.starved = true;
            self.starved_for_spans.push_back(key);
            return;
        }
        // The ring was empty: it doubles, once per drain (the other receives that found
        // it empty in the same burst get the new buffers, so it grows no further than
        // the load needs), while spare buffers last. Buffers the host released after the
        // failed attempt started but before its CQE was seen would never feed it either:
        // try again at once while the ring has some.
        let grew = !self.grew_in_drain && self.buffers.grow_ring();
        self.grew_in_drain |= grew;
        if (grew || self.buffers.ring_has_buffers()) && self.submit_attempt(key).is_ok() {
            return;
        }
        self.driver[key].life.starved = true;
        self.starved.push_back(key);
    }

    /// Buffer `id` went back to the receive ring (released by the host, or sent on and
    /// done): if a paused stream delivered it, the stream may go on.
    pub(super) fn stream_buffer_returned(&mut self, id: u32) {
        let Some((key, serial)) = self.stream_holders.take(id) else {
            return;
        };
        let Some(op) = self.driver.get_mut(key) else {
            return;
        };
        let Work::ReadStream(stream) = &mut op.work else {
            return;
        };
        if stream.returned(serial, op.life.cancelled) {
            op.life.starved = false;
            self.read_next_chunk(key);
        }
    }

    /// Host gives a buffer back.
    pub(crate) fn release_buffer(&mut self, id: u32) -> Result<()> {
        let freed = self.buffers.release(id)?;
        self.receive_buffer_freed(id, freed);
        Ok(())
    }

    pub(super) fn release_operation_buffer(&mut self, id: u32) {
        // A stream's chunk the host sent on (zero copy) counts as given back.
        if let Some(freed) = self.buffers.release_from_operation(id) {
            self.receive_buffer_freed(id, freed);
        }
    }

    /// Buffer `id` is free again: its socket or read stream holds one fewer, and a
    /// receive waiting for the ring gets it.
    pub(super) fn receive_buffer_freed(&mut self, id: u32, freed: Freed) {
        if freed.was_receive_buffer() {
            self.recv_buffer_returned(id);
            self.stream_buffer_returned(id);
        }
        if freed == Freed::ToRing {
            self.feed_starved(RingKind::Buffers, 1);
        }
        if freed == Freed::SpanToRing {
            self.feed_starved(RingKind::Spans, 1);
        }
    }

    /// `count` buffers (or spans) are in the ring `of`: as many receives waiting for
    /// one go back to the kernel, the longest waiting first; the others cost nothing
    /// meanwhile.
    pub(super) fn feed_starved(&mut self, of: RingKind, mut count: u32) {
        while count > 0 {
            let next = match of {
                RingKind::Buffers => self.starved.pop_front(),
                RingKind::Spans => self.starved_for_spans.pop_front(),
            };
            let Some(key) = next else {
                return;
            };
            let Some(op) = self.driver.get_mut(key) else {
                continue;
            };
            op.life.starved = false;
            if self.receives_tls(key) {
                self.deliver_plaintext(key, None);
            } else if let Err(code) = self.submit_attempt(key) {
                let ended = self.retire(key, self.driver[key].completion(code));
                self.push_ended(ended);
                continue;
            }
            count -= 1;
        }
    }
}
