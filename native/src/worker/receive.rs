//! Receives and the buffers they wait for. A stream socket may hold only so many
//! pieces of receive-ring buffers (`RecvCredit`): past that its receive parks
//! (throttled) until one comes back. A receive that finds the ring empty grows it
//! (at the drain's end or a drain later, `ring_growth.rs`) and waits, oldest first, in
//! `starved` (`starved_for_spans` for datagram spans), fed as many per buffer that
//! returns as it serves (one, or typical packed receives that fit in it). A read
//! stream pauses while the host holds its window of chunks. Every piece or buffer the
//! host or an op gives back comes through here.

use io_uring::cqueue;

use super::Worker;
use crate::buffers::{Freed, Released};
use crate::driver::in_flight::Driver;
use crate::driver::user_data::{self, Cqe};
use crate::error::Result;
use crate::op::{Op, Work};
use crate::pieces::{BufferRef, Origin};
use crate::recv_credit::RecvCredit;
use crate::ring_growth::{AtDrainEnd, RingState};
use crate::sockets::SocketTable;

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
        if self.may_receive(socket) {
            return self.start(op).map(drop);
        }
        let key = self.driver.insert(op);
        self.throttle(key);
        Ok(())
    }

    /// Receive op `key` waits out of the kernel until its socket is under its limit
    /// and, past the floor, the pool has room. One receive of a socket waits at a
    /// time: another that would wait beside it ends with `EBUSY`.
    pub(super) fn throttle(&mut self, key: usize) {
        let socket = self.driver[key].socket;
        let waiting = self.sockets.get(socket).ok().and_then(|s| s.throttled);
        if waiting.is_some_and(|other| other as usize != key) {
            let completion = self.driver[key].completion(-libc::EBUSY);
            return self.end_op_later(key, completion);
        }
        self.driver[key].life.starved = true;
        RecvCredit::park(&mut self.sockets, socket, key);
        self.wait_for_pool_room(key);
    }

    /// Parked receive `key`, under its socket's limit while the pool has no room,
    /// waits in `floor_parked` (once) to go on when the pool has room again.
    fn wait_for_pool_room(&mut self, key: usize) {
        let socket = self.driver[key].socket;
        if !self.recv_credit.under_limit(&self.sockets, socket)
            || RecvCredit::pool_has_room(&self.buffers)
        {
            return;
        }
        let Work::Recv(recv) = &mut self.driver[key].work else {
            return;
        };
        if std::mem::replace(&mut recv.awaits_room, true) {
            return;
        }
        if self.floor_parked.len() >= self.driver.len() {
            self.compact_floor_parked();
        }
        self.floor_parked.push_back(key);
    }

    /// Drops the keys of `floor_parked` that went on or ended since they were queued
    /// (those of ops still alive may queue again), and any key queued twice.
    fn compact_floor_parked(&mut self) {
        let mut kept = std::collections::HashSet::with_capacity(self.floor_parked.len());
        let queued = std::mem::take(&mut self.floor_parked);
        for key in queued {
            if parked(&self.driver, &self.sockets, key) && kept.insert(key) {
                self.floor_parked.push_back(key);
            } else if let Some(Work::Recv(recv)) = self.driver.get_mut(key).map(|op| &mut op.work) {
                recv.awaits_room = kept.contains(&key);
            }
        }
    }

    /// Op `user_data`'s socket was reset by its peer (`Socket::reset_seen`).
    pub(super) fn note_reset(&mut self, user_data: u64, flags: u32) {
        let Cqe::Op(key) = user_data::decode(user_data, flags) else {
            return;
        };
        if let Some(op) = self.driver.get(key) {
            if let Ok(s) = self.sockets.get_mut(op.socket) {
                s.reset_seen = true;
            }
        }
    }

    /// Receives parked at the floor go on, oldest first, while the pool has room; those
    /// that park again meanwhile wait for the next time.
    fn resume_floor_parked(&mut self) {
        for _ in 0..self.floor_parked.len() {
            if !RecvCredit::pool_has_room(&self.buffers) {
                return;
            }
            let Some(key) = self.floor_parked.pop_front() else {
                return;
            };
            if let Some(Work::Recv(recv)) = self.driver.get_mut(key).map(|op| &mut op.work) {
                recv.awaits_room = false;
            }
            if !parked(&self.driver, &self.sockets, key) {
                continue; // gone on or ended since
            }
            let socket = self.driver[key].socket;
            if !self.may_receive(socket) {
                continue; // at its own limit now: its own pieces resume it
            }
            RecvCredit::unpark(&mut self.sockets, socket, key);
            self.driver[key].life.starved = false;
            self.resume_receive(key);
        }
    }

    /// Kernel multishot stream receive `key` handed over `piece` and stays armed. Once
    /// its socket holds its share, the kernel's receive is cancelled, and its final
    /// CQE parks it (`park_stopped`). What arrives before the cancel runs is still
    /// delivered: one burst at most, the arrivals of one `io_uring_enter`.
    pub(super) fn received_by_multishot(&mut self, key: usize, piece: BufferRef) {
        let socket = self.driver[key].socket;
        RecvCredit::note_received(&mut self.sockets, socket, piece, &mut self.buffers);
        if self.may_receive(socket) {
            return;
        }
        let stopping = matches!(&self.driver[key].work, Work::Recv(r) if r.stopping);
        if !stopping && self.driver.cancel_attempt(key).is_ok() {
            if let Work::Recv(recv) = &mut self.driver[key].work {
                recv.stopping = true;
            }
        }
    }

    /// The final CQE of receive `key`'s kernel attempt: true when the worker had
    /// stopped it at its socket's share and it is now parked, or received again when
    /// the socket's pieces came back meanwhile. Any final CQE ends the stopping.
    pub(super) fn park_stopped(&mut self, key: usize, res: i32) -> bool {
        let op = &mut self.driver[key];
        let Work::Recv(recv) = &mut op.work else {
            return false;
        };
        let stopped = std::mem::take(&mut recv.stopping);
        if !stopped || op.life.cancelled || res != -libc::ECANCELED {
            return false;
        }
        let socket = op.socket;
        if self.may_receive(socket) {
            self.resume_receive(key);
        } else {
            self.throttle(key);
        }
        true
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

    /// Whether stream `socket` may take another piece of the receive ring now.
    pub(super) fn may_receive(&self, socket: u64) -> bool {
        self.recv_credit
            .may_receive(&self.sockets, socket, &self.buffers)
    }

    /// A piece stream `socket` received came back: a receive parked at the socket's
    /// limit goes on.
    fn credit_returned(&mut self, socket: u64) {
        let Some(key) = self
            .recv_credit
            .returned(&mut self.sockets, socket, &self.buffers)
        else {
            // Under its limit now, its parked receive may wait for the pool's room.
            let waiting = self.sockets.get(socket).ok().and_then(|s| s.throttled);
            if let Some(key) = waiting {
                self.wait_for_pool_room(key as usize);
            }
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

    /// A CQE of op `user_data` handed over buffer `flags` names, with `res` bytes: its
    /// piece is cut now, in the order the kernel posts CQEs (the order it fills packed
    /// buffers in), and kept with the op until the op hands it on (`take_piece`).
    pub(super) fn take_in_order(&mut self, user_data: u64, res: i32, flags: u32) {
        let Some(id) = cqueue::buffer_select(flags) else {
            return;
        };
        let more = cqueue::buffer_more(flags);
        let received = self.buffers.take_received(u32::from(id), res, more);
        if let Some(freed) = received.freed {
            self.buffer_freed(freed);
        }
        let Some(piece) = received.piece else {
            return;
        };
        let packed = self.buffers.packs_receives() && piece.id < self.buffers.recv_count();
        if packed && !self.starved.is_empty() && self.buffers.ring_has_buffers() {
            // A packed buffer serves many receives, not just the one fed when it came
            // back: each piece one gets feeds the next waiting receive (a chain).
            self.feed_starved(RingKind::Buffers, 1);
        }
        let op = match user_data::decode(user_data, flags) {
            Cqe::Op(key) => self.driver.get_mut(key),
            _ => None,
        };
        // Nobody to take it (an op already gone): back at once.
        let Some(unheld) = op.map_or(Some(piece), |op| op.received.replace(piece)) else {
            return;
        };
        self.drop_arrived(unheld);
    }

    /// The piece (or span) op `key`'s CQE handed over: the host's now, or given back at
    /// once if nobody can take it.
    pub(super) fn take_piece(&mut self, key: usize, socket_gone: bool) -> Option<BufferRef> {
        let piece = self.driver.get_mut(key)?.received.take()?;
        if socket_gone {
            self.drop_arrived(piece);
            return None;
        }
        self.buffers.hand_over(piece);
        Some(piece)
    }

    /// A piece that arrived for nobody goes back.
    pub(super) fn drop_arrived(&mut self, piece: BufferRef) {
        self.buffers.hand_over(piece);
        let _ = self.release_buffer(piece.id, piece.offset);
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
        // The ring was empty: it grows at the drain's end, or a drain later
        // (`ring_growth.rs`). Buffers the host released after the failed attempt
        // started but before its CQE was seen would never feed it: try again at once
        // while the ring has some.
        let ring = self.ring_state();
        self.ring_growth
            .found_empty(self.driver[key].ring_epoch, &ring);
        if ring.has_buffers && self.submit_attempt(key).is_ok() {
            return;
        }
        if ring.spare > 0 {
            self.ring_growth.waiting(self.reaping_outside_drain);
        }
        self.driver[key].life.starved = true;
        self.starved.push_back(key);
    }

    /// The receive ring as the receives waiting for it meet it.
    fn ring_state(&self) -> RingState {
        RingState {
            target: self.buffers.ring_target(),
            buffer_size: self.buffers.buffer_size(),
            packed: self.buffers.packs_receives(),
            open_sockets: self.sockets.len(),
            has_buffers: self.buffers.ring_has_buffers(),
            receives_per_buffer: self.buffers.receives_per_buffer(),
            waiting: u32::try_from(self.starved.len()).unwrap_or(u32::MAX),
            spare: self.buffers.spare_count(),
        }
    }

    fn grow_ring(&mut self, add: u32) {
        if self.buffers.grow_ring(add) {
            self.ring_growth.grew();
        }
    }

    /// A chunk of read stream (`key`, `serial`) came back (released by the host, or
    /// sent on and done): if the stream paused, it may go on.
    fn stream_chunk_returned(&mut self, key: usize, serial: u64) {
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

    /// Host gives back the piece of a receive buffer at `offset`, or a buffer it holds
    /// whole (`offset` 0).
    pub(crate) fn release_buffer(&mut self, id: u32, offset: u32) -> Result<()> {
        let released = self.buffers.release(id, offset)?;
        self.given_back(released);
        Ok(())
    }

    /// An op is done with the piece or buffer at `at` it borrowed.
    pub(super) fn release_operation_buffer(&mut self, at: BufferRef) {
        // A stream's chunk the host sent on (zero copy) counts as given back.
        if let Some(released) = self.buffers.release_from_operation(at) {
            self.given_back(released);
        }
    }

    /// A piece or buffer is back: the socket or read stream it counted against holds
    /// one fewer, and a receive waiting for the ring gets the buffer if it went there.
    fn given_back(&mut self, released: Released) {
        match released.origin {
            Origin::Socket(socket) => self.credit_returned(socket),
            Origin::ReadStream { key, serial } => self.stream_chunk_returned(key as usize, serial),
            Origin::Nobody => {}
        }
        if let Some(freed) = released.freed {
            self.buffer_freed(freed);
        }
    }

    /// A buffer went back to its ring (or pool): a receive waiting for one goes on.
    fn buffer_freed(&mut self, freed: Freed) {
        match freed {
            Freed::ToRing => {
                self.feed_starved(RingKind::Buffers, self.buffers.receives_per_buffer());
                self.resume_floor_parked();
            }
            Freed::SpanToRing => self.feed_starved(RingKind::Spans, 1),
            Freed::Spare | Freed::Send => {}
        }
    }

    /// Receives waiting next to buffers in the ring go on: one fed while its ENOBUFS
    /// was still on its way may have missed its buffer, and a packed buffer serves
    /// more receives than the one fed when it came back. Called once the CQEs are all
    /// read (never sleep, nor end a drain, with both).
    pub(super) fn feed_waiting(&mut self) {
        let ring = self.ring_state();
        match self.ring_growth.at_drain_end(&ring) {
            AtDrainEnd::Grow(add) => {
                self.grow_ring(add);
            }
            AtDrainEnd::WakeForNextDrain => {
                let _ = self.driver.ring.wake_waiters();
            }
            AtDrainEnd::Nothing => {}
        }
        self.resume_floor_parked();
        if !self.starved.is_empty() && self.buffers.ring_has_buffers() {
            self.feed_starved(RingKind::Buffers, self.buffers.receives_ring_serves());
        }
        if self.starved.is_empty() {
            self.ring_growth.none_waits();
        }
        if !self.starved_for_spans.is_empty() && self.buffers.datagram_ring_has_spans() {
            self.feed_starved(RingKind::Spans, self.buffers.spans_in_ring());
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

/// Whether op `key` is a receive parked at its socket's limit (`throttle`).
fn parked(driver: &Driver<Op>, sockets: &SocketTable, key: usize) -> bool {
    driver.get(key).is_some_and(|op| {
        op.life.starved
            && sockets
                .get(op.socket)
                .is_ok_and(|s| s.throttled == Some(key as u32))
    })
}
