//! A worker: one io_uring ring plus everything in flight on it.
//!
//! The host queues operations (they only fill SQEs and slab entries), flushes them with
//! one `io_uring_enter`, and drains completions in batches. Every CQE produces at most
//! one host completion; ops that need several kernel attempts (partial sends, multishot
//! ops the kernel ended early, receives starved of buffers) are resubmitted here so the
//! host only sees finished work.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::CancelBuilder;
use io_uring::{cqueue, squeue, types};

use crate::abi::*;
use crate::abi::{iot_config, IOT_CONFIG_REGISTER_BUFFERS};
use crate::buffers::{BufferPool, Freed};
use crate::driver::in_flight::{Driver, Event};
use crate::driver::ring::Ring;
use crate::error::Result;
use crate::messaging::Messaging;
use crate::notifier::{Notifier, Signal, Wake};
use crate::op::{self, FileWork, Op, Recv, StreamHolders, Work};
use crate::probe;
use crate::recv_credit::RecvCredit;
use crate::sockets::SocketKind;
use crate::sockets::SocketTable;

/// An op's completion with the work whose borrowed host buffers it gives back: they
/// stay the op's until the host sees the completion, so each has one owner at a time.
struct Ended {
    completion: iot_completion,
    lent: Option<Work>,
}

impl Ended {
    fn nothing_lent(completion: iot_completion) -> Ended {
        Ended {
            completion,
            lent: None,
        }
    }
}

/// How many final drains a freed worker makes to sweep messages still arriving.
const FINAL_SWEEP_ROUNDS: usize = 1024;

/// How long freeing a worker waits for cancelled operations to be reaped.
const SHUTDOWN_REAP_LIMIT: Duration = Duration::from_secs(5);

pub(crate) struct Worker {
    // Declared first so the ring closes before the memory its ops point into.
    pub(crate) driver: Driver<Op>,
    pub(crate) id: u64,
    pub(crate) sockets: SocketTable,
    pub(crate) buffers: BufferPool,
    pub(crate) signal: Arc<Signal>,
    notifier: Option<Notifier>,
    /// Completions made without a CQE (cancelled queued sends, starved receives).
    ready: VecDeque<Ended>,
    /// Receives waiting for buffers to return to the ring, the longest waiting first.
    starved: VecDeque<usize>,
    /// The receive ring grew during this drain (it doubles at most once per drain).
    grew_in_drain: bool,
    /// Datagram receives waiting for spans to return to the datagram ring, likewise.
    starved_for_spans: VecDeque<usize>,
    pub(crate) messaging: Messaging,
    /// Receive-ring buffers each stream socket holds, and may hold.
    recv_credit: RecvCredit,
    /// Which read stream delivered each buffer the host holds.
    pub(crate) stream_holders: StreamHolders,
    /// Opcodes this kernel supports, for operations newer than the 6.1 baseline.
    pub(crate) probe: io_uring::Probe,
}

/// Which provided buffer ring receives wait for: the receive buffers, or the
/// datagram spans.
#[derive(Clone, Copy)]
enum RingKind {
    Buffers,
    Spans,
}

impl Worker {
    pub(crate) fn new(id: u64, config: &iot_config) -> Result<Worker> {
        config.validate()?;
        let ring = Ring::new(config.ring_entries, config.completion_entries())?;
        let probe = probe::check(ring.uring())?;
        let ring_fd = ring.duplicate_fd()?;
        let signal = Signal::new()?;
        let buffers = BufferPool::new(
            ring.uring(),
            config.recv_buffer_count,
            config.send_buffer_count,
            config.buffer_size,
            config.flags & IOT_CONFIG_REGISTER_BUFFERS != 0,
        )?;
        let stream_holders = StreamHolders::new(buffers.count());
        Ok(Worker {
            driver: Driver::new(ring),
            id,
            sockets: SocketTable::new(id),
            buffers,
            messaging: Messaging::new(id, signal.clone(), ring_fd),
            signal,
            notifier: None,
            ready: VecDeque::new(),
            starved: VecDeque::new(),
            grew_in_drain: false,
            starved_for_spans: VecDeque::new(),
            stream_holders,
            recv_credit: RecvCredit::new(config),
            probe,
        })
    }

    /// The ring signals the eventfd only while a notifier is set: hosts that block in
    /// `wait` pay nothing per completion for it.
    pub(crate) fn set_notifier(&mut self, wake: Option<Wake>) -> Result<()> {
        // Stop (and join) the old thread before the host may free the old callback.
        if self.notifier.take().is_some() {
            self.driver.ring.signal_eventfd(None)?;
        }
        if let Some(wake) = wake {
            self.driver
                .ring
                .signal_eventfd(Some(self.signal.eventfd.as_raw_fd()))?;
            match Notifier::start(self.id, self.signal.clone(), wake) {
                Ok(notifier) => self.notifier = Some(notifier),
                Err(code) => {
                    let _ = self.driver.ring.signal_eventfd(None);
                    return Err(code);
                }
            }
        }
        Ok(())
    }

    /// Inserts an op and submits its first attempt; on failure nothing stays behind.
    pub(crate) fn start(&mut self, op: Op) -> Result<usize> {
        let key = self.driver.insert(op);
        if let Err(code) = self.submit_attempt(key) {
            self.driver.remove(key);
            return Err(code);
        }
        Ok(key)
    }

    /// Starts an op that borrowed host buffers (or took pool buffers); when it cannot
    /// start they go back where they came from, so a rejected call changes nothing.
    pub(crate) fn start_borrowing(&mut self, op: Op) -> Result<()> {
        let key = self.driver.insert(op);
        if let Err(code) = self.submit_attempt(key) {
            let op = self.driver.remove(key);
            for &buffer in op.work.borrowed() {
                self.buffers.return_to_host(buffer);
            }
            for &buffer in op.work.taken() {
                self.release_operation_buffer(buffer);
            }
            return Err(code);
        }
        Ok(())
    }

    /// Starts a stream receive, or parks it until the socket's buffers come back.
    pub(crate) fn start_receive(&mut self, socket: u64, op: Op) -> Result<()> {
        if self.recv_credit.may_receive(&self.sockets, socket) {
            return self.start(op).map(drop);
        }
        let key = self.driver.insert(op);
        self.throttle(key);
        Ok(())
    }

    /// Receive op `key` waits out of the kernel until its socket is under its limit.
    fn throttle(&mut self, key: usize) {
        let op = &mut self.driver[key];
        op.life.starved = true;
        RecvCredit::park(&mut self.sockets, op.socket, key);
    }

    /// Forgets that op `key` waits for its socket's buffers (it was cancelled).
    fn unthrottle(&mut self, key: usize) {
        if let Some(op) = self.driver.get(key) {
            RecvCredit::unpark(&mut self.sockets, op.socket, key);
        }
    }

    /// Receive buffer `id` went back to the ring: a receive parked at its socket's
    /// limit goes on.
    fn recv_buffer_returned(&mut self, id: u32) {
        let Some(key) = self.recv_credit.returned(&mut self.sockets, id) else {
            return;
        };
        if let Some(op) = self.driver.get_mut(key) {
            op.life.starved = false;
            if let Err(code) = self.submit_attempt(key) {
                let completion = self.driver[key].completion(code);
                self.end_op_later(key, completion);
            }
        }
    }

    /// Builds and queues one kernel attempt of op `key`, with its timeout.
    #[inline]
    fn submit_attempt(&mut self, key: usize) -> Result<()> {
        let entry = self.build_entry(key)?;
        self.driver.submit(key, entry)
    }

    #[inline]
    fn build_entry(&self, key: usize) -> Result<squeue::Entry> {
        let op = &self.driver[key];
        // Looked up lazily: open and path stat work on no handle.
        let fd = self.sockets.get(op.socket).map(|s| types::Fd(s.raw()));
        op.work.entry(fd, &self.buffers)
    }

    /// Submits everything queued; returns how many SQEs the kernel took.
    pub(crate) fn flush(&mut self) -> Result<usize> {
        self.driver.ring.flush()
    }

    /// Copies up to `out.len()` completions into `out`, without blocking.
    pub(crate) fn drain(&mut self, out: &mut [iot_completion]) -> usize {
        let mut filled = 0;
        let mut overflow_flushed = false;
        self.grew_in_drain = false;
        while filled < out.len() {
            if let Some(ended) = self.ready.pop_front() {
                out[filled] = self.hand_over(ended);
                filled += 1;
                continue;
            }
            let Some((user_data, res, flags)) = self.driver.next_cqe(&mut overflow_flushed) else {
                break;
            };
            if let Some(c) = self.on_cqe(user_data, res, flags) {
                out[filled] = c;
                filled += 1;
            }
        }
        if let Some(stopped) = self.messaging.after_drain(self.sockets.len()) {
            self.push_ready(stopped);
        }
        filled
    }

    pub(crate) fn has_pending(&mut self) -> bool {
        !self.ready.is_empty() || self.driver.ring.has_completions()
    }

    /// Arms the notifier; if completions are already pending it fires at once.
    pub(crate) fn arm(&mut self) {
        self.signal.arm();
        if self.has_pending() {
            self.signal.kick();
        }
    }

    /// A completion made here (not by a CQE): queue it and wake an armed host.
    pub(crate) fn push_ready(&mut self, completion: iot_completion) {
        self.push_ended(Ended::nothing_lent(completion));
    }

    /// An op ended without a CQE: its completion waits in `ready`, and the buffers it
    /// hands back stay the op's until the host drains it (one owner at a time).
    fn push_ended(&mut self, ended: Ended) {
        self.ready.push_back(ended);
        if self.signal.is_armed() {
            self.signal.kick();
        }
    }

    /// Before a blocking wait: `None` when completions are already pending (after
    /// submitting queued work), else how many queued SQEs the wait should submit.
    pub(crate) fn prepare_wait(&mut self) -> Result<Option<u32>> {
        // Never sleep with receives waiting next to buffers in the ring (one fed while
        // its ENOBUFS was still on its way may have missed its buffer).
        if !self.starved.is_empty() && self.buffers.ring_has_buffers() {
            self.feed_starved(RingKind::Buffers, self.buffers.in_ring());
        }
        if !self.starved_for_spans.is_empty() && self.buffers.datagram_ring_has_spans() {
            self.feed_starved(RingKind::Spans, self.buffers.spans_in_ring());
        }
        if self.has_pending() {
            self.flush()?;
            return Ok(None);
        }
        Ok(Some(self.driver.ring.queued()))
    }

    #[inline]
    fn on_cqe(&mut self, user_data: u64, res: i32, flags: u32) -> Option<iot_completion> {
        match self.driver.route(user_data, res, flags) {
            Event::Settle(key) => self.settle(key),
            Event::More(key) => self.progress(key, res, flags),
            Event::Message(wire) => {
                self.messaging
                    .on_message(user_data, res, wire, &mut self.sockets)
            }
            Event::Sent(key) => self.messaging.on_sent(key, res, &mut self.sockets),
            Event::BackedOff(key) => self.on_backoff_timer(key),
            Event::Nothing => None,
        }
    }

    /// Finishes the current attempt of `key` once its op and timeout CQEs are both in.
    #[inline]
    fn settle(&mut self, key: usize) -> Option<iot_completion> {
        let op = &self.driver[key];
        // An op whose socket was closed under it was cancelled with it.
        let closed = op.socket != 0 && self.sockets.get(op.socket).is_err();
        let (res, flags) = self.driver.settle(key, closed)?;
        self.finish(key, res, flags)
    }

    /// A multishot op produced one result and stays armed.
    fn progress(&mut self, key: usize, res: i32, flags: u32) -> Option<iot_completion> {
        let op = &self.driver[key];
        let (tag, kind, socket_gone) = (op.tag, op.kind, self.sockets.get(op.socket).is_err());
        let mut completion = iot_completion::new(tag, kind, res);
        completion.flags = IOT_COMPLETION_MORE;
        match kind {
            IOT_KIND_ACCEPT if res >= 0 => {
                completion.result = 0;
                completion.handle = self.adopt_accepted(res, socket_gone)?;
            }
            IOT_KIND_RECV | IOT_KIND_RECV_FROM => {
                let buffer = self.take_buffer(flags, socket_gone)?;
                completion.flags |= IOT_COMPLETION_BUFFER;
                completion.buffer_id = buffer;
                self.describe_datagram(key, &mut completion);
            }
            _ => {}
        }
        Some(completion)
    }

    /// Registers an accepted fd as a socket; closes it when its listener is gone.
    fn adopt_accepted(&mut self, fd: i32, listener_gone: bool) -> Option<u64> {
        // SAFETY: the kernel just created this fd for us; nothing else owns it.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        if listener_gone {
            return None; // dropping closes it
        }
        // Fails harmlessly on Unix sockets, which have no Nagle delay to turn off.
        let _ = socket2::SockRef::from(&fd).set_nodelay(true);
        // No handle left for it (millions open): dropping it refuses the connection.
        self.sockets
            .insert(fd, crate::sockets::SocketKind::Stream)
            .ok()
    }

    /// The buffer a receive CQE names: the host's now, or recycled if nobody can take it.
    fn take_buffer(&mut self, flags: u32, socket_gone: bool) -> Option<u16> {
        let id = cqueue::buffer_select(flags)?;
        self.buffers.take_received(u32::from(id));
        if socket_gone {
            let _ = self.release_buffer(u32::from(id));
            return None;
        }
        Some(id)
    }

    /// The receive ring ran dry: op `key` waits out of the kernel until a buffer returns.
    fn starve(&mut self, key: usize) {
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

    /// A datagram receive's completion says where its payload is (stream receives and
    /// failed ones are left alone).
    fn describe_datagram(&mut self, key: usize, completion: &mut iot_completion) {
        if let Work::Recv(Recv {
            from: Some(header), ..
        }) = &mut self.driver[key].work
        {
            header.describe(completion, &mut self.buffers);
        }
    }

    /// Starts the back-off timer of accept `key` after a transient error.
    fn back_off(&mut self, key: usize) -> Result<()> {
        let Work::Accept(accept) = &mut self.driver[key].work else {
            return Err(-libc::EINVAL);
        };
        let pause = accept.next_pause();
        self.driver.back_off(key, pause)
    }

    /// The back-off timer of op `key` ended: re-arm the accept, unless the host
    /// cancelled it or closed the listener meanwhile (the timer was removed then).
    fn on_backoff_timer(&mut self, key: usize) -> Option<iot_completion> {
        let op = self.driver.get(key)?;
        let gone = op.life.cancelled || self.sockets.get(op.socket).is_err();
        let result = if gone {
            -libc::ECANCELED
        } else {
            match self.submit_attempt(key) {
                Ok(()) => return None,
                Err(code) => code,
            }
        };
        let completion = self.driver[key].completion(result);
        self.end_op(key, completion)
    }

    /// A chunk (or the end) of read stream `key` arrived: hand it over and read on,
    /// pause, or finish.
    fn finish_stream(
        &mut self,
        key: usize,
        flags: u32,
        mut completion: iot_completion,
        retry: bool,
    ) -> Option<iot_completion> {
        let res = completion.result;
        if res == -libc::ENOBUFS && retry {
            self.starve(key);
            return None;
        }
        // A chunk nobody will read (cancelled, closed) or an empty one goes back.
        let delivered = res > 0 && retry;
        let buffer = self.take_buffer(flags, !delivered);
        let Some(buffer) = buffer.filter(|_| delivered) else {
            if res > 0 {
                completion.result = -libc::ECANCELED;
            }
            return self.end_op(key, completion);
        };
        let Work::ReadStream(stream) = &mut self.driver[key].work else {
            return self.end_op(key, completion);
        };
        let paused = stream.delivered(key, res, buffer, &mut self.stream_holders);
        completion.flags = IOT_COMPLETION_BUFFER | IOT_COMPLETION_MORE;
        completion.buffer_id = buffer;
        if paused {
            self.driver[key].life.starved = true;
        } else {
            self.read_next_chunk(key);
        }
        Some(completion)
    }

    /// Resubmits stream `key`; when that fails the stream ends with the error, after
    /// the chunk being delivered now.
    fn read_next_chunk(&mut self, key: usize) {
        if let Err(code) = self.submit_attempt(key) {
            let completion = self.driver[key].completion(code);
            self.end_op_later(key, completion);
        }
    }

    /// Buffer `id` went back to the receive ring (released by the host, or sent on and
    /// done): if a paused stream delivered it, the stream may go on.
    fn stream_buffer_returned(&mut self, id: u32) {
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

    /// Final CQE of an attempt: resubmit, or complete the op and free its slot.
    fn finish(&mut self, key: usize, res: i32, flags: u32) -> Option<iot_completion> {
        let op = &self.driver[key];
        let (tag, kind, socket, cancelled) = (op.tag, op.kind, op.socket, op.life.cancelled);
        let socket_gone = self.sockets.get(socket).is_err();
        let retry = !cancelled && !socket_gone;
        let mut completion = iot_completion::new(tag, kind, res);
        match &mut self.driver[key].work {
            Work::Accept(accept) => {
                let multishot = accept.multishot;
                if res >= 0 {
                    accept.succeeded();
                }
                if res < 0 && multishot && retry && op::transient(res) {
                    // Accepting goes on after a pause; the host hears of the error.
                    if self.back_off(key).is_ok() {
                        completion.flags = IOT_COMPLETION_MORE;
                        return Some(completion);
                    }
                }
                if res >= 0 {
                    completion.result = 0;
                    completion.handle = self.adopt_accepted(res, socket_gone).unwrap_or(0);
                    if completion.handle == 0 {
                        completion.result = -libc::ECANCELED;
                    } else if multishot && retry && self.submit_attempt(key).is_ok() {
                        // The kernel ended a multishot accept early; keep it going.
                        completion.flags = IOT_COMPLETION_MORE;
                        return Some(completion);
                    }
                }
            }
            Work::Connect(_) => {
                if res == 0 && !socket_gone {
                    completion.handle = socket;
                } else if !socket_gone {
                    let _ = self.sockets.remove(socket); // never exposed: close it here
                }
            }
            Work::Recv(recv) => {
                let multishot = recv.multishot;
                if res == -libc::ENOBUFS && retry {
                    self.starve(key);
                    return None;
                }
                if res == -libc::ENOBUFS {
                    // Out of buffers after the host cancelled: report what it asked for.
                    completion.result = -libc::ECANCELED;
                }
                if let Some(id) = self.take_buffer(flags, socket_gone) {
                    completion.flags = IOT_COMPLETION_BUFFER;
                    completion.buffer_id = id;
                    self.recv_credit
                        .note_received(&mut self.sockets, socket, id);
                    self.describe_datagram(key, &mut completion);
                    if multishot
                        && res > 0
                        && retry
                        && !self.recv_credit.may_receive(&self.sockets, socket)
                    {
                        self.throttle(key);
                        completion.flags |= IOT_COMPLETION_MORE;
                        return Some(completion);
                    }
                    if multishot && res > 0 && retry && self.submit_attempt(key).is_ok() {
                        completion.flags |= IOT_COMPLETION_MORE;
                        return Some(completion);
                    }
                } else if socket_gone && res >= 0 {
                    completion.result = -libc::ECANCELED;
                } else {
                    // A one-shot datagram landed in the op's own buffer.
                    self.describe_datagram(key, &mut completion);
                }
            }
            Work::Send(progress) => {
                if progress.advance(res) && retry && self.submit_attempt(key).is_ok() {
                    return None;
                }
                if let Work::Send(progress) = &self.driver[key].work {
                    completion.result = progress.result(res);
                }
            }
            Work::Vectored(io) if io.is_write() => {
                if io.advance(res) && retry && self.submit_attempt(key).is_ok() {
                    return None;
                }
                if let Work::Vectored(io) = &self.driver[key].work {
                    completion.result = io.result(res);
                }
            }
            Work::File(FileWork::Open { .. }) if res >= 0 => {
                // SAFETY: the kernel just opened this fd for us; nothing else owns it.
                let fd = unsafe { <OwnedFd as FromRawFd>::from_raw_fd(res) };
                completion.result = match cancelled {
                    true => -libc::ECANCELED, // dropping `fd` closes it
                    false => match self.sockets.insert(fd, SocketKind::File) {
                        Ok(handle) => {
                            completion.handle = handle;
                            0
                        }
                        Err(code) => code,
                    },
                };
            }
            Work::File(file) if res == 0 && !cancelled => file.stat_done(),
            Work::ReadStream(_) => return self.finish_stream(key, flags, completion, retry),
            Work::Shutdown(_) | Work::Read(_) | Work::Vectored(_) | Work::File(_) => {}
        }
        self.end_op(key, completion)
    }

    /// Ends op `key` with its CQE, in a drain: the completion goes to the host now,
    /// with the buffers it hands back. The next op queued behind it starts.
    fn end_op(&mut self, key: usize, completion: iot_completion) -> Option<iot_completion> {
        let ended = self.end_op_unseen(key, completion);
        Some(self.hand_over(ended))
    }

    /// Ends op `key` outside a drain: its completion waits in `ready`.
    fn end_op_later(&mut self, key: usize, completion: iot_completion) {
        let ended = self.end_op_unseen(key, completion);
        self.push_ended(ended);
    }

    fn end_op_unseen(&mut self, key: usize, completion: iot_completion) -> Ended {
        let (socket, ordered) = (self.driver[key].socket, self.driver[key].ordered);
        let ended = self.retire(key, completion);
        if ordered {
            self.start_outbound(socket);
        }
        ended
    }

    /// The host sees `ended`'s completion now: the buffers the op borrowed go back,
    /// to the host (what was read) or to the pool (what was sent or written, which the
    /// completion says with `IOT_COMPLETION_BUFFERS_RETURNED`).
    fn hand_over(&mut self, ended: Ended) -> iot_completion {
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
        completion
    }

    /// Frees op `key`'s slot and gives back the buffers it borrowed (noting them in
    /// `completion`); an ordered op lets its handle's queue move on.
    fn retire(&mut self, key: usize, completion: iot_completion) -> Ended {
        let op = self.driver.remove(key);
        self.conclude(op, completion)
    }

    /// Gives back what `op` borrowed; the slot (if it had one) is already free.
    fn conclude(&mut self, op: Op, mut completion: iot_completion) -> Ended {
        let lent = self.return_taken(op.work, &mut completion);
        if op.ordered {
            if let Ok(s) = self.sockets.get_mut(op.socket) {
                s.sending = false;
            }
        }
        Ended { completion, lent }
    }

    /// Ends op `key`, which is not in the kernel, as cancelled.
    fn abandon(&mut self, key: usize) {
        self.end_op_later(key, self.driver[key].completion(-libc::ECANCELED));
    }

    /// Pool buffers the op took for itself (and did not hand over) go back now, which
    /// the completion says (a sender waiting for a free buffer or span may go on); the
    /// work is returned when it borrowed host buffers, which go back only when the
    /// host sees the completion (`hand_over`).
    fn return_taken(&mut self, work: Work, completion: &mut iot_completion) -> Option<Work> {
        for &buffer in work.taken() {
            self.release_operation_buffer(buffer);
            completion.flags |= IOT_COMPLETION_BUFFERS_RETURNED;
        }
        if let Work::Read(read) = &work {
            read.hand_back(completion);
        }
        (!work.borrowed().is_empty()).then_some(work)
    }

    /// Host gives a buffer back.
    pub(crate) fn release_buffer(&mut self, id: u32) -> Result<()> {
        let freed = self.buffers.release(id)?;
        self.receive_buffer_freed(id, freed);
        Ok(())
    }

    fn release_operation_buffer(&mut self, id: u32) {
        // A stream's chunk the host sent on (zero copy) counts as given back.
        if let Some(freed) = self.buffers.release_from_operation(id) {
            self.receive_buffer_freed(id, freed);
        }
    }

    /// Buffer `id` is free again: its socket or read stream holds one fewer, and a
    /// receive waiting for the ring gets it.
    fn receive_buffer_freed(&mut self, id: u32, freed: Freed) {
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
    fn feed_starved(&mut self, of: RingKind, mut count: u32) {
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
            if let Err(code) = self.submit_attempt(key) {
                let ended = self.retire(key, self.driver[key].completion(code));
                self.push_ended(ended);
                continue;
            }
            count -= 1;
        }
    }

    /// Queues `op` behind the handle's previous ordered op (sends and shutdowns on a
    /// socket, writes, reads and syncs at a file's position).
    pub(crate) fn queue_ordered(&mut self, op: Op) -> Result<()> {
        let socket = op.socket;
        self.sockets.get_mut(socket)?.outbound.push_back(op);
        self.start_outbound(socket);
        Ok(())
    }

    fn start_outbound(&mut self, socket: u64) {
        loop {
            let Ok(s) = self.sockets.get_mut(socket) else {
                return;
            };
            if s.sending {
                return;
            }
            let Some(mut op) = s.outbound.pop_front() else {
                return;
            };
            s.sending = true;
            op.ordered = true;
            let key = self.driver.insert(op);
            match self.submit_attempt(key) {
                Ok(()) => return,
                Err(code) => {
                    let ended = self.retire(key, self.driver[key].completion(code));
                    self.push_ended(ended);
                }
            }
        }
    }

    /// Cancels every op with `tag` (in flight, starved, or queued behind another).
    /// Their completions still arrive: in-flight ones from the kernel, the rest here.
    pub(crate) fn cancel(&mut self, tag: u64) -> Result<()> {
        let mut found = false;
        let keys = self
            .driver
            .keys_where(|op| op.tag == tag && !op.life.cancelled);
        for key in keys {
            found = true;
            self.cancel_op(key)?;
        }
        let queued: Vec<u64> = self.sockets.handles_with_queued(tag);
        for socket in queued {
            found = true;
            self.drop_queued(socket, |op| op.tag == tag);
        }
        if found {
            Ok(())
        } else {
            Err(-libc::ENOENT)
        }
    }

    fn cancel_op(&mut self, key: usize) -> Result<()> {
        if self.driver.cancel(key, true)? {
            self.starved.retain(|&k| k != key);
            self.starved_for_spans.retain(|&k| k != key);
            self.unthrottle(key);
            self.abandon(key);
        }
        Ok(())
    }

    /// Removes queued (not yet started) ops matching `pred`, completing them as
    /// cancelled and returning their buffers.
    fn drop_queued(&mut self, socket: u64, pred: impl Fn(&Op) -> bool) {
        let Ok(s) = self.sockets.get_mut(socket) else {
            return;
        };
        let (dropped, kept): (Vec<Op>, Vec<Op>) = s.outbound.drain(..).partition(|op| pred(op));
        s.outbound = kept.into();
        for op in dropped {
            self.complete_dropped(op);
        }
    }

    /// A queued op that never started completes as cancelled.
    fn complete_dropped(&mut self, op: Op) {
        let completion = op.completion(-libc::ECANCELED);
        let ended = self.conclude(op, completion);
        self.push_ended(ended);
    }

    /// Closes a socket or file now: its handle goes stale, its queued ops complete as
    /// cancelled, in-flight ones are cancelled in the kernel before the fd is closed.
    pub(crate) fn close_handle(&mut self, socket: u64) -> Result<()> {
        let mut removed = self.sockets.remove(socket)?;
        for op in removed.outbound.drain(..) {
            self.complete_dropped(op);
        }
        // A stream's ops out of the kernel are its throttled receive and those in the
        // starved queues; its ops in the kernel see their socket gone when they end.
        // Only listeners (an accept backing off) and files (a paused read stream) need
        // a look at every op, which would make closing thousands of streams quadratic.
        let keys: Vec<usize> = match removed.kind {
            SocketKind::Stream => self
                .starved
                .iter()
                .chain(&self.starved_for_spans)
                .copied()
                .filter(|&key| self.driver.get(key).is_some_and(|op| op.socket == socket))
                .chain(removed.throttled)
                .collect(),
            _ => self.driver.keys_where(|op| op.socket == socket),
        };
        for key in keys {
            if self.driver.cancel(key, false)? {
                self.starved.retain(|&k| k != key);
                self.starved_for_spans.retain(|&k| k != key);
                self.abandon(key);
            }
        }
        // The cancel must reach the kernel while the fd number still names this socket.
        self.driver
            .ring
            .cancel(CancelBuilder::fd(types::Fd(removed.raw())).all())?;
        self.flush()?;
        drop(removed);
        Ok(())
    }

    /// Cancels everything, closes every socket and reaps in-flight ops (bounded).
    /// Returns the number of ops still unreaped when the time limit hit (0 normally).
    pub(crate) fn shutdown(&mut self) -> usize {
        self.notifier = None;
        self.messaging.begin_final();
        self.starved.clear();
        self.starved_for_spans.clear();
        // Ops waiting out of the kernel (starved, paused) have no CQE to wait for.
        self.driver.cancel_everything();
        for mut socket in self.sockets.drain().collect::<Vec<_>>() {
            for op in socket.outbound.drain(..) {
                let ended = self.conclude(op, iot_completion::default());
                self.hand_over(ended);
            }
        }
        let deadline = Instant::now() + SHUTDOWN_REAP_LIMIT;
        let mut scratch = [iot_completion::default(); 64];
        while self.in_flight() > 0 && Instant::now() < deadline {
            // Bounded wait: an op that never completes must not hang the free.
            self.driver.ring.wait_a_little();
            self.drain(&mut scratch);
        }
        // Sweep messages still arriving, now disposed of (bounded: senders may go on).
        for _ in 0..FINAL_SWEEP_ROUNDS {
            let more =
                self.drain(&mut scratch) == scratch.len() || self.driver.ring.completions() > 0;
            if !more {
                break;
            }
        }
        self.messaging.end_final();
        self.ready.clear();
        self.buffers.unregister(self.driver.ring.uring());
        self.in_flight()
    }

    /// Operations the kernel still owns, messages sent included.
    fn in_flight(&self) -> usize {
        self.driver.len() + self.messaging.in_flight()
    }
}

impl Worker {
    pub(crate) fn stats(&mut self) -> crate::abi::iot_stats {
        crate::abi::iot_stats {
            ops_in_flight: self.in_flight() as u32,
            sockets_open: self.sockets.len() as u32,
            buffers_outstanding: self.buffers.outstanding() as u32,
            completions_ready: (self.ready.len() + self.driver.ring.completions()) as u32,
            completion_overflows: self.driver.ring.overflows(),
            recv_ring_buffers: self.buffers.ring_target(),
        }
    }
}
