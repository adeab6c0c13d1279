//! A worker: one io_uring ring plus everything in flight on it.
//!
//! The host queues operations (they only fill SQEs and slab entries), flushes them with
//! one `io_uring_enter`, and drains completions in batches. Every CQE produces at most
//! one host completion; ops that need several kernel attempts (partial sends, multishot
//! ops the kernel ended early, receives starved of buffers) are resubmitted here so the
//! host only sees finished work.
//!
//! This file is the glue: what a worker owns, starting ops, draining and waiting. The
//! rest, one concept a file: `finish` (an attempt's CQE turned into a completion,
//! family by family), `end` (an op ends and gives its buffers back), `receive`
//! (receives and the buffers they wait for), `ordered` (per-handle queues), `cancel`
//! (cancel, close, shutdown). The ring and the slab are the driver's.

use std::collections::VecDeque;
use std::sync::Arc;

use io_uring::{squeue, types};
use socket2::SockAddr;

use crate::abi::*;
use crate::abi::{
    iot_config, IOT_CONFIG_ONE_SHOT_RECEIVES, IOT_CONFIG_REGISTER_BUFFERS,
    IOT_CONFIG_SINGLE_THREAD, IOT_CONFIG_WHOLE_BUFFERS,
};
use crate::buffers::BufferPool;
use crate::driver::fixed_files::FixedFiles;
use crate::driver::in_flight::{Driver, Event};
use crate::driver::ring::Ring;
use crate::error::Result;
use crate::messaging::Messaging;
use crate::notifier::{Notifier, Signal, Wake};
use crate::op::{MessageHeader, Op, Recv, Work};
use crate::pieces::BufferRef;
use crate::probe;
use crate::recv_credit::RecvCredit;
use crate::recycled::Recycled;
use crate::ring_growth::RingGrowth;
use crate::sockets::{Socket, SocketKind, SocketTable};
use crate::thread_token;

mod cancel;
mod end;
mod finish;
mod ordered;
mod receive;
mod tls;

use end::Ended;

pub(crate) struct Worker {
    // Declared first so the ring closes before the memory its ops point into.
    pub(crate) driver: Driver<Op>,
    pub(crate) id: u64,
    pub(crate) sockets: SocketTable,
    /// The ring's registered files, which stream sends name (`fixed_files.rs`).
    fixed_files: FixedFiles,
    pub(crate) buffers: BufferPool,
    pub(crate) signal: Arc<Signal>,
    notifier: Option<Notifier>,
    /// Completions made without a CQE (cancelled queued sends, starved receives).
    ready: VecDeque<Ended>,
    /// Receives waiting for buffers to return to the ring, the longest waiting first.
    starved: VecDeque<usize>,
    /// When the receive ring grows (see `Worker::starve`).
    ring_growth: RingGrowth,
    /// CQEs are being reaped outside a drain (`reap_into_ready`): an op that ends and
    /// read into host buffers keeps them until the host drains its completion from
    /// `ready`; what a send lent goes back to the pool at once.
    reaping_outside_drain: bool,
    /// A CQE was posted to wake threads blocked in the ring for a completion put in
    /// `ready` since the last drain.
    waiters_woken: bool,
    /// Datagram receives waiting for spans to return to the datagram ring, likewise.
    starved_for_spans: VecDeque<usize>,
    /// Stream receives parked at the floor while the pool had no room, under their
    /// own limit: they go on once it has room again, not only when their own pieces
    /// come back (`resume_floor_parked`). May hold keys that went on or ended since.
    floor_parked: VecDeque<usize>,
    pub(crate) messaging: Messaging,
    /// Receive-ring buffers each stream socket holds, and may hold.
    recv_credit: RecvCredit,
    /// Multishot stream receives stay armed in the kernel, each limited in bytes
    /// (`recv_credit.rs`); false on kernels without that limit (before 6.17) and with
    /// `IOT_CONFIG_ONE_SHOT_RECEIVES`.
    pub(crate) kernel_multishot_receives: bool,
    /// Record buffers of finished TLS sends, for the next ones to seal into.
    record_buffers: Recycled<Vec<u8>, 32>,
    /// Destination boxes of finished datagram sends, for the next ones.
    pub(crate) send_addresses: Recycled<Box<SockAddr>, 64>,
    /// Message headers of finished datagram receives, for the next ones.
    pub(crate) receive_headers: Recycled<Box<MessageHeader>, 64>,
    /// The serial of the next read stream (its chunks name it when they come back).
    pub(crate) next_stream_serial: u64,
    /// Opcodes this kernel supports, for operations newer than the 6.1 baseline.
    pub(crate) probe: io_uring::Probe,
    /// The only thread that may call on a single-thread worker (`thread_token`).
    pub(crate) owner: Option<u64>,
}

impl Worker {
    pub(crate) fn new(id: u64, config: &iot_config) -> Result<Worker> {
        config.validate()?;
        let single_thread = config.flags & IOT_CONFIG_SINGLE_THREAD != 0;
        let mut ring = Ring::new(
            config.ring_entries,
            config.completion_entries(),
            single_thread,
        )?;
        let probe = probe::check(ring.uring())?;
        let ring_fd = ring.duplicate_fd()?;
        let signal = Signal::new()?;
        let mut buffers = BufferPool::new(
            ring.uring(),
            config.recv_buffer_count,
            config.send_buffer_count,
            config.buffer_size,
            config.flags & IOT_CONFIG_REGISTER_BUFFERS != 0,
            config.flags & IOT_CONFIG_WHOLE_BUFFERS == 0,
        )?;
        if buffers.packs_receives() && !probe::empty_reads_keep_buffers(&mut ring) {
            buffers.unpack(ring.uring())?;
        }
        let byte_limited_receives = probe::multishot_receives_take_a_byte_limit(&mut ring);
        let kernel_multishot_receives =
            config.flags & IOT_CONFIG_ONE_SHOT_RECEIVES == 0 && byte_limited_receives;
        // A kernel with receive byte limits (6.17) has per-slot file references (6.13).
        let fixed_files = FixedFiles::new(&ring, byte_limited_receives);
        Ok(Worker {
            driver: Driver::new(ring),
            id,
            sockets: SocketTable::new(id),
            fixed_files,
            buffers,
            messaging: Messaging::new(id, signal.clone(), ring_fd),
            signal,
            notifier: None,
            ready: VecDeque::new(),
            starved: VecDeque::new(),
            ring_growth: RingGrowth::default(),
            reaping_outside_drain: false,
            waiters_woken: false,
            starved_for_spans: VecDeque::new(),
            floor_parked: VecDeque::new(),
            next_stream_serial: 0,
            record_buffers: Recycled::default(),
            send_addresses: Recycled::default(),
            receive_headers: Recycled::default(),
            recv_credit: RecvCredit::new(config),
            kernel_multishot_receives,
            probe,
            owner: single_thread.then(thread_token::this_thread),
        })
    }

    /// Replaces the notifier. The ring's fd is watched only while a notifier is set, so
    /// hosts that block in `wait` pay nothing per completion for it.
    pub(crate) fn set_notifier(&mut self, wake: Option<Wake>) -> Result<()> {
        if self.owner.is_some() && wake.is_some() {
            // Its completion work runs only when its thread waits: a notifier would
            // watch a ring that never fills.
            return Err(-libc::EINVAL);
        }
        // Stop (and join) the old thread before the host may free the old callback.
        self.notifier = None;
        if let Some(wake) = wake {
            let ring = self.driver.ring.duplicate_fd()?;
            self.notifier = Some(Notifier::start(self.id, self.signal.clone(), ring, wake)?);
            // A new notifier starts with the ring unwatched, and the old one may have
            // eaten a kick as it stopped: an arm made before (with no notifier, or the
            // one just replaced) must still be answered. (Not `arm`: storing `armed`
            // again could answer one arm twice.)
            if self.signal.is_armed() {
                self.watch_for_news();
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
                self.release_operation_buffer(BufferRef::whole(buffer));
            }
            return Err(code);
        }
        Ok(())
    }

    /// Builds and queues one kernel attempt of op `key`, with its timeout.
    #[inline]
    fn submit_attempt(&mut self, key: usize) -> Result<()> {
        if matches!(self.driver[key].work, Work::Send(_)) {
            self.register_file(self.driver[key].socket);
        }
        let entry = self.build_entry(key)?;
        self.driver[key].ring_epoch = self.ring_growth.epoch();
        self.driver.submit(key, entry)
    }

    #[inline]
    fn build_entry(&self, key: usize) -> Result<squeue::Entry> {
        let op = &self.driver[key];
        // Looked up lazily: open and path stat work on no handle.
        let socket = self.sockets.get(op.socket);
        let fd = socket.map(|s| types::Fd(s.raw()));
        let fixed = match socket {
            Ok(s) if s.fixed => Some(types::Fixed(SocketTable::slot(op.socket) as u32)),
            _ => None,
        };
        let entry = op.work.entry(fd, fixed, &self.buffers)?;
        Ok(match &op.work {
            Work::Recv(recv) if recv.kernel_multishot => {
                let bytes =
                    self.recv_credit
                        .multishot_byte_limit(&self.sockets, op.socket, &self.buffers);
                Recv::limit_total_bytes(entry, bytes)
            }
            _ => entry,
        })
    }

    /// Puts stream `socket` in the ring's registered files before its first send, if
    /// there is room at its slot; its sends name the slot from then on.
    #[inline]
    fn register_file(&mut self, socket: u64) {
        let Ok(s) = self.sockets.get_mut(socket) else {
            return;
        };
        if s.fixed || s.kind != SocketKind::Stream {
            return;
        }
        let slot = SocketTable::slot(socket);
        s.fixed = self.fixed_files.set(&mut self.driver.ring, slot, s.raw());
    }

    /// Takes `socket` out of the table; its registered slot, if any, is emptied by the
    /// next submit, so that closing the fd closes the socket.
    pub(crate) fn remove_socket(&mut self, socket: u64) -> Result<Socket> {
        let removed = self.sockets.remove(socket)?;
        if removed.fixed {
            // Fails only on a broken ring; the slot's next socket, or the worker's
            // free, then releases it.
            let _ = self
                .fixed_files
                .clear(&mut self.driver.ring, SocketTable::slot(socket));
        }
        Ok(removed)
    }

    /// Submits everything queued; returns how many SQEs the kernel took. When the
    /// host has let the completion queue fill to half (it drains in batches and fell
    /// behind), its CQEs move into `ready` first: a CQE the kernel cannot post stops a
    /// multishot receive, which must then be submitted again, and the rest wait in
    /// the kernel's overflow list, each allocated on its own. `ready` grows instead.
    pub(crate) fn flush(&mut self) -> Result<usize> {
        if self.driver.ring.completions() >= self.driver.ring.capacity() / 2 {
            self.reap_into_ready();
        }
        self.driver.ring.flush()
    }

    /// Copies up to `out.len()` completions into `out`, without blocking.
    pub(crate) fn drain(&mut self, out: &mut [iot_completion]) -> usize {
        // A host that submits only through `iot_worker_wait` (no flush) submits
        // without the lock: what it submitted is noted here.
        self.driver.ring.submitted();
        self.waiters_woken = false;
        self.ring_growth.drain_started();
        let mut filled = 0;
        let mut overflow_flushed = false;
        while filled < out.len() {
            if let Some(ended) = self.ready.pop_front() {
                out[filled] = self.hand_over(ended);
                filled += 1;
                continue;
            }
            let Some((user_data, res, flags)) = self.driver.next_cqe(&mut overflow_flushed) else {
                // Every CQE is in: what the rings hold is known.
                self.feed_waiting();
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

    /// Before a stream socket is closed: lets its queued sends go into the kernel as
    /// far as the kernel takes them now, without waiting, as `write(2)`s made before a
    /// `close(2)` would have (the kernel still sends those after the close). Each
    /// round submits the send in flight (which the kernel tries at once) and reaps
    /// what completed, which starts the next queued send; it stops when the send in
    /// flight does not complete at once (the socket's buffer is full) or none is left.
    /// The completions reaped wait in `ready` for the host's next drain.
    pub(crate) fn push_sends_into_kernel(&mut self, socket: u64) -> Result<()> {
        let Ok(s) = self.sockets.get(socket) else {
            return Ok(());
        };
        // Each round ends at least one op (or stops): bounded by the queue.
        let mut rounds = s.outbound.len() + 2;
        while rounds > 0 && self.sockets.get(socket).is_ok_and(|s| s.sending) {
            rounds -= 1;
            self.flush()?;
            if !self.reap_into_ready() {
                break;
            }
        }
        Ok(())
    }

    /// Reaps every CQE outside a drain: their completions wait in `ready`, in order,
    /// for the host's next drain. Returns whether there was any.
    fn reap_into_ready(&mut self) -> bool {
        let mut overflow_flushed = false;
        let mut reaped = false;
        self.reaping_outside_drain = true;
        while let Some((user_data, res, flags)) = self.driver.next_cqe(&mut overflow_flushed) {
            reaped = true;
            // What the CQE ended besides (an op it made end at once) goes after it.
            let at = self.ready.len();
            if let Some(completion) = self.on_cqe(user_data, res, flags) {
                self.insert_ended(at, Ended::nothing_lent(completion));
            }
        }
        self.reaping_outside_drain = false;
        reaped
    }

    pub(crate) fn has_pending(&mut self) -> bool {
        !self.ready.is_empty() || self.driver.ring.has_completions()
    }

    /// Arms the notifier; if completions are already pending it fires at once.
    pub(crate) fn arm(&mut self) {
        // Receives that began waiting for the ring while a flush reaped completions
        // need a drain to come for the ring to grow, also when nothing else will.
        if self
            .ring_growth
            .needs_wake(!self.starved.is_empty(), self.buffers.ring_has_buffers())
        {
            let _ = self.driver.ring.wake_waiters();
        }
        self.signal.arm();
        self.watch_for_news();
    }

    /// For an armed worker: the notifier watches the ring (firing at once for CQEs
    /// already there), and is kicked for completions made here that wait in `ready`.
    fn watch_for_news(&self) {
        if let Some(notifier) = &self.notifier {
            notifier.watch_ring(&self.signal);
        }
        if !self.ready.is_empty() {
            self.signal.kick();
        }
    }

    /// Arms the notifier only when no completion is pending; false (not armed) when
    /// some are, so the host can drain them without a trip through the notifier.
    pub(crate) fn arm_if_idle(&mut self) -> bool {
        if self.has_pending() {
            return false;
        }
        self.arm();
        true
    }

    /// A completion made here (not by a CQE): queue it and wake an armed host.
    pub(crate) fn push_ready(&mut self, completion: iot_completion) {
        self.push_ended(Ended::nothing_lent(completion));
    }

    /// An op ended without a CQE: its completion waits in `ready`, and the buffers it
    /// hands back stay the op's until the host drains it (one owner at a time).
    fn push_ended(&mut self, ended: Ended) {
        self.insert_ended(self.ready.len(), ended);
    }

    /// `push_ended`, but at position `at` of `ready`.
    fn insert_ended(&mut self, at: usize, ended: Ended) {
        self.ready.insert(at, ended);
        if self.signal.is_armed() {
            self.signal.kick();
        } else if self.signal.has_waiters() && !self.waiters_woken {
            // A thread blocked in `iot_worker_wait` wakes only for a CQE.
            self.waiters_woken = self.driver.ring.wake_waiters().is_ok();
        }
    }

    /// Before a blocking wait: `None` when completions are already pending (after
    /// submitting queued work), else how many queued SQEs the wait should submit.
    pub(crate) fn prepare_wait(&mut self) -> Result<Option<u32>> {
        self.feed_waiting();
        if self.has_pending() {
            self.flush()?;
            return Ok(None);
        }
        Ok(Some(self.driver.ring.queued()))
    }

    #[inline]
    fn on_cqe(&mut self, user_data: u64, res: i32, flags: u32) -> Option<iot_completion> {
        if io_uring::cqueue::buffer_select(flags).is_some() {
            self.take_in_order(user_data, res, flags);
        }
        if res == -libc::ECONNRESET {
            // Noted now: an op with a timeout settles only with its timer's CQE, and a
            // receive's end of stream may be read before that.
            self.note_reset(user_data, flags);
        }
        match self.driver.route(user_data, res, flags) {
            Event::Settle(key) => self.settle(key),
            Event::More(key) => self.progress(key, res),
            Event::Message(wire) => {
                self.messaging
                    .on_message(user_data, res, wire, &mut self.sockets)
            }
            Event::Sent(key) => self.messaging.on_sent(key, res, &mut self.sockets),
            Event::BackedOff(key) => self.on_backoff_timer(key),
            Event::Nothing => None,
        }
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
            pieces_outstanding: self.buffers.pieces_outstanding(),
            packs_receives: u32::from(self.buffers.packs_receives()),
        }
    }
}
