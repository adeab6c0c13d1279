//! A worker: one io_uring ring plus everything in flight on it.
//!
//! The host queues operations (they only fill SQEs and slab entries), flushes them with
//! one `io_uring_enter`, and drains completions in batches. Every CQE produces at most
//! one host completion; ops that need several kernel attempts (partial sends, multishot
//! ops the kernel ended early, receives starved of buffers) are resubmitted here so the
//! host only sees finished work.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::{CancelBuilder, Timespec};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use slab::Slab;

use crate::buffers::{BufferPool, RECV_GROUP};
use crate::completion::*;
use crate::config::{iot_config, IOT_CONFIG_REGISTER_BUFFERS};
use crate::error::{from_io, Result, IOT_E_MEMLOCK, IOT_E_UNSUPPORTED};
use crate::messaging::{self, Messaging};
use crate::notifier::{Notifier, Signal, Wake};
use crate::ops::{Op, SendTarget, Work, BACKOFF_BIT, IGNORED, TIMEOUT_BIT};
use crate::probe;
use crate::sockets::SocketTable;

/// Submits `to_submit` queued SQEs and blocks in the same `io_uring_enter` until the
/// ring at `ring_fd` has a completion or `timeout_ms` passes (0 = no limit). Runs
/// without the worker lock, so other threads may use the worker meanwhile: the kernel
/// only reads SQEs already published by the tail, and submits at most `to_submit`.
/// Interrupted or timed-out waits are not errors.
pub(crate) fn submit_and_wait(
    ring_fd: BorrowedFd<'_>,
    to_submit: u32,
    timeout_ms: u32,
) -> Result<()> {
    // The kernel reads a `__kernel_timespec` (64-bit seconds and nanoseconds on every
    // target), not a `libc::timespec`, which is two 32-bit fields on i686.
    let ts = Timespec::from(Duration::from_millis(u64::from(timeout_ms)));
    let args = match timeout_ms {
        0 => types::SubmitArgs::new(),
        _ => types::SubmitArgs::new().timespec(&ts),
    };
    const IORING_ENTER_GETEVENTS: u32 = 1;
    const IORING_ENTER_EXT_ARG: u32 = 1 << 3;
    // SAFETY: valid ring fd (kept open by the caller); `args` and `ts` outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            ring_fd.as_raw_fd(),
            to_submit,
            1u32,
            IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
            &args as *const types::SubmitArgs,
            std::mem::size_of::<types::SubmitArgs>(),
        )
    };
    if ret < 0 {
        let err = std::io::Error::last_os_error();
        if !matches!(err.raw_os_error(), Some(libc::ETIME | libc::EINTR)) {
            return Err(from_io(err));
        }
    }
    Ok(())
}

/// An op's completion with the work whose borrowed host buffers it gives back: they
/// stay the op's until the host sees the completion, so each has one owner at a time.
pub(crate) struct Ended {
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

/// Kernel-internal "restart the system call" code, which io-wq lets through.
const ERESTARTSYS: i32 = 512;

/// How long freeing a worker waits for cancelled operations to be reaped.
const SHUTDOWN_REAP_LIMIT: Duration = Duration::from_secs(5);

pub(crate) struct Worker {
    // Declared first so the ring closes before the memory its ops point into.
    pub(crate) ring: IoUring,
    pub(crate) id: u64,
    pub(crate) ops: Slab<Op>,
    pub(crate) sockets: SocketTable,
    pub(crate) buffers: BufferPool,
    pub(crate) signal: Arc<Signal>,
    notifier: Option<Notifier>,
    /// Completions made without a CQE (cancelled queued sends, starved receives).
    ready: VecDeque<Ended>,
    /// Receives waiting for buffers to return to the ring.
    starved: Vec<usize>,
    pub(crate) messaging: Messaging,
    /// The stream socket each receive-ring buffer out of the ring came from (0: none).
    pub(crate) recv_origin: Vec<u64>,
    /// Receive-ring buffers one stream socket may hold (`recv_credit.rs`).
    pub(crate) socket_buffer_limit: u32,
    /// Which read stream delivered each buffer the host holds.
    pub(crate) stream_holders: crate::file_stream::StreamHolders,
    /// Opcodes this kernel supports, for operations newer than the 6.1 baseline.
    pub(crate) probe: io_uring::Probe,
}

fn ring_setup_error(err: std::io::Error) -> i32 {
    match err.raw_os_error() {
        // Rings count against RLIMIT_MEMLOCK only before Linux 5.12; mapping them needs
        // address space on every kernel.
        Some(libc::ENOMEM) if crate::error::address_space_limited() => {
            crate::error::IOT_E_ADDRESS_SPACE
        }
        Some(libc::ENOMEM) => IOT_E_MEMLOCK,
        Some(libc::ENOSYS | libc::EPERM | libc::EACCES) => IOT_E_UNSUPPORTED,
        _ => from_io(err),
    }
}

impl Worker {
    pub(crate) fn new(id: u64, config: &iot_config) -> Result<Worker> {
        config.validate()?;
        // No SINGLE_ISSUER/DEFER_TASKRUN: a Dart isolate may submit from different OS
        // threads. No COOP_TASKRUN either: it skips waking the submitting thread for
        // task work, and an idle Dart pool thread would then sit on our completions.
        let ring = IoUring::builder()
            .setup_cqsize(config.ring_entries.saturating_mul(4))
            .setup_clamp()
            .setup_submit_all()
            .build(config.ring_entries)
            .map_err(ring_setup_error)?;
        let probe = probe::check(&ring)?;
        let signal = Signal::new()?;
        let buffers = BufferPool::new(
            &ring,
            config.recv_buffer_count,
            config.send_buffer_count,
            config.buffer_size,
            config.flags & IOT_CONFIG_REGISTER_BUFFERS != 0,
        )?;
        let stream_holders = crate::file_stream::StreamHolders::new(buffers.count());
        Ok(Worker {
            ring,
            id,
            ops: Slab::new(),
            sockets: SocketTable::new(id),
            buffers,
            messaging: Messaging::new(signal.clone()),
            signal,
            notifier: None,
            ready: VecDeque::new(),
            starved: Vec::new(),
            stream_holders,
            recv_origin: vec![0; config.recv_buffer_count as usize],
            socket_buffer_limit: config.socket_buffer_limit(),
            probe,
        })
    }

    /// The ring signals the eventfd only while a notifier is set: hosts that block in
    /// `wait` pay nothing per completion for it.
    pub(crate) fn set_notifier(&mut self, wake: Option<Wake>) -> Result<()> {
        // Stop (and join) the old thread before the host may free the old callback.
        if self.notifier.take().is_some() {
            self.ring
                .submitter()
                .unregister_eventfd()
                .map_err(from_io)?;
        }
        if let Some(wake) = wake {
            self.ring
                .submitter()
                .register_eventfd(self.signal.eventfd.as_raw_fd())
                .map_err(from_io)?;
            match Notifier::start(self.id, self.signal.clone(), wake) {
                Ok(notifier) => self.notifier = Some(notifier),
                Err(code) => {
                    let _ = self.ring.submitter().unregister_eventfd();
                    return Err(code);
                }
            }
        }
        Ok(())
    }

    /// Pushes SQEs as one contiguous group, submitting first when the queue is too full.
    pub(crate) fn push(&mut self, entries: &[squeue::Entry]) -> Result<()> {
        loop {
            // SAFETY: every pointer in these SQEs refers to memory owned by an op slot
            // (boxed, stable) or by the buffer pool, both alive until the op's last CQE.
            if unsafe { self.ring.submission().push_multiple(entries) }.is_ok() {
                return Ok(());
            }
            if self.ring.submit().map_err(from_io)? == 0 {
                return Err(-libc::EBUSY);
            }
        }
    }

    fn push_ignored(&mut self, entry: squeue::Entry) -> Result<()> {
        self.push(&[entry.user_data(IGNORED)])
    }

    /// Inserts an op and submits its first attempt; on failure nothing stays behind.
    pub(crate) fn start(&mut self, op: Op) -> Result<usize> {
        let key = self.ops.insert(op);
        if let Err(code) = self.submit_attempt(key) {
            self.ops.remove(key);
            return Err(code);
        }
        Ok(key)
    }

    /// Starts an op that borrowed host buffers (or took pool buffers); when it cannot
    /// start they go back where they came from, so a rejected call changes nothing.
    pub(crate) fn start_borrowing(&mut self, op: Op) -> Result<()> {
        let key = self.ops.insert(op);
        if let Err(code) = self.submit_attempt(key) {
            let op = self.ops.remove(key);
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

    /// Builds and queues one kernel attempt of op `key`, with its linked timeout.
    pub(crate) fn submit_attempt(&mut self, key: usize) -> Result<()> {
        let entry = self.build_entry(key)?.user_data(key as u64);
        let op = &mut self.ops[key];
        op.timed_out = false;
        op.result = None;
        match op.timeout.as_deref() {
            Some(timespec) if op.work.blocks_in_io_wq() => {
                // A separate timer; when it fires, `on_cqe` cancels the op.
                op.expected = 2;
                let timer = opcode::Timeout::new(timespec as *const Timespec)
                    .build()
                    .user_data(key as u64 | TIMEOUT_BIT);
                self.push(&[entry, timer])
            }
            Some(timespec) => {
                op.expected = 2;
                let timeout = opcode::LinkTimeout::new(timespec as *const Timespec)
                    .build()
                    .user_data(key as u64 | TIMEOUT_BIT);
                self.push(&[entry.flags(squeue::Flags::IO_LINK), timeout])
            }
            None => {
                op.expected = 1;
                self.push(&[entry])
            }
        }
    }

    fn build_entry(&self, key: usize) -> Result<squeue::Entry> {
        let op = &self.ops[key];
        // Looked up lazily: open and path stat work on no handle.
        let fd = self.sockets.get(op.socket).map(|s| types::Fd(s.raw()));
        Ok(match &op.work {
            Work::Accept {
                multishot: true, ..
            } => opcode::AcceptMulti::new(fd?)
                .flags(libc::SOCK_CLOEXEC)
                .build(),
            Work::Accept {
                multishot: false, ..
            } => opcode::Accept::new(fd?, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build(),
            Work::Connect { addr } => opcode::Connect::new(fd?, addr.as_ptr(), addr.len()).build(),
            Work::Recv {
                multishot,
                from: Some(header),
            } => header.entry(fd?, *multishot),
            // One-shot attempts even for a multishot receive (`recv_credit.rs`).
            Work::Recv { from: None, .. } => {
                opcode::Recv::new(fd?, std::ptr::null_mut(), self.buffers.buffer_size())
                    .buf_group(RECV_GROUP)
                    .build()
                    .flags(squeue::Flags::BUFFER_SELECT)
            }
            Work::Send(p) => {
                // SAFETY: offset + len was checked against the buffer size at queue time.
                let ptr = unsafe { self.buffers.ptr(p.buffer).add((p.offset + p.done) as usize) };
                let len = p.len - p.done;
                match &p.to {
                    SendTarget::Connected => opcode::Send::new(fd?, ptr, len)
                        .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
                        .build(),
                    SendTarget::Address(addr) => opcode::Send::new(fd?, ptr, len)
                        .flags(libc::MSG_NOSIGNAL)
                        .dest_addr(addr.as_ptr().cast())
                        .dest_addr_len(addr.len())
                        .build(),
                    SendTarget::File { at } => {
                        let at = at.map(|offset| offset + u64::from(p.done));
                        self.write_entry(fd?, p.buffer, ptr, len, at)
                    }
                }
            }
            Work::Shutdown { how } => opcode::Shutdown::new(fd?, *how).build(),
            Work::Read(read) => self.read_entry(fd?, read),
            Work::Vectored(io) => io.entry(fd?),
            Work::ReadStream(stream) => self.stream_entry(fd?, stream),
            Work::File(file) => file.entry(fd)?,
        })
    }

    /// Submits everything queued; returns how many SQEs the kernel took. Costs no
    /// syscall when nothing is queued (hosts flush once per event-loop turn).
    pub(crate) fn flush(&mut self) -> Result<usize> {
        if self.ring.submission().is_empty() && !self.ring.submission().cq_overflow() {
            return Ok(0);
        }
        self.ring.submit().map_err(from_io)
    }

    /// Copies up to `out.len()` completions into `out`, without blocking.
    pub(crate) fn drain(&mut self, out: &mut [iot_completion]) -> usize {
        let mut filled = 0;
        let mut overflow_flushed = false;
        while filled < out.len() {
            if let Some(ended) = self.ready.pop_front() {
                out[filled] = self.hand_over(ended);
                filled += 1;
                continue;
            }
            let cqe = self.ring.completion().next();
            match cqe {
                Some(cqe) => {
                    if let Some(c) = self.on_cqe(cqe.user_data(), cqe.result(), cqe.flags()) {
                        out[filled] = c;
                        filled += 1;
                    }
                }
                None if !overflow_flushed && self.ring.submission().cq_overflow() => {
                    // Entries the kernel parked in its overflow list come back on enter.
                    overflow_flushed = true;
                    let _ = self.ring.submit();
                }
                None => break,
            }
        }
        self.after_drain();
        filled
    }

    pub(crate) fn has_pending(&mut self) -> bool {
        !self.ready.is_empty()
            || !self.ring.completion().is_empty()
            || self.ring.submission().cq_overflow()
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
        if self.has_pending() {
            self.flush()?;
            return Ok(None);
        }
        Ok(Some(self.ring.submission().len() as u32))
    }

    fn on_cqe(&mut self, user_data: u64, res: i32, flags: u32) -> Option<iot_completion> {
        // Checked first: a message's user_data is the sender's tag, any 64-bit value.
        if let Some(wire) = messaging::incoming(flags) {
            return self.on_message(user_data, res, wire);
        }
        if user_data == IGNORED {
            return None;
        }
        if let Some(key) = messaging::sent_key(user_data) {
            return self.on_message_sent(key, res);
        }
        if user_data & BACKOFF_BIT != 0 {
            return self.on_backoff_timer((user_data & !BACKOFF_BIT) as usize);
        }
        if user_data & TIMEOUT_BIT != 0 {
            let key = (user_data & !TIMEOUT_BIT) as usize;
            let op = self.ops.get_mut(key)?;
            // -ECANCELED: the op finished first. Anything else means the timeout fired:
            // -ETIME, or -ENOENT/-EALREADY when the op was already running in io-wq.
            op.timed_out |= res != -libc::ECANCELED;
            op.expected = op.expected.saturating_sub(1);
            if op.timed_out && op.result.is_none() && op.work.blocks_in_io_wq() {
                let cancel = CancelBuilder::user_data(key as u64);
                let _ = self.push_ignored(opcode::AsyncCancel2::new(cancel).build());
            }
            return self.settle(key);
        }
        let key = user_data as usize;
        let op = self.ops.get(key)?;
        if cqueue::more(flags) {
            return self.progress(key, res, flags);
        }
        if op.expected == 2 && op.work.blocks_in_io_wq() {
            // Done before its timer: stop the timer (its CQE then says -ECANCELED).
            let stop = opcode::TimeoutRemove::new(user_data | TIMEOUT_BIT).build();
            let _ = self.push_ignored(stop);
        }
        let op = &mut self.ops[key];
        op.expected = op.expected.saturating_sub(1);
        op.result = Some((res, flags));
        self.settle(key)
    }

    /// Finishes the current attempt of `key` once its op and timeout CQEs are both in.
    fn settle(&mut self, key: usize) -> Option<iot_completion> {
        let op = &mut self.ops[key];
        if op.expected > 0 {
            return None;
        }
        let (mut res, flags) = op.result.take()?;
        // An op blocked in an io-wq thread (a Unix datagram send to a full receiver, a
        // FIFO open) is interrupted rather than cancelled: it ends with -EINTR, or even
        // the kernel-internal -ERESTARTSYS.
        let interrupted = matches!(-res, libc::ECANCELED | libc::EINTR | ERESTARTSYS);
        if op.timed_out && interrupted {
            res = -libc::ETIMEDOUT;
        } else if op.cancelled && interrupted {
            res = -libc::ECANCELED;
        }
        self.finish(key, res, flags)
    }

    /// A multishot op produced one result and stays armed.
    fn progress(&mut self, key: usize, res: i32, flags: u32) -> Option<iot_completion> {
        let op = &self.ops[key];
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
    pub(crate) fn take_buffer(&mut self, flags: u32, socket_gone: bool) -> Option<u16> {
        let id = cqueue::buffer_select(flags)?;
        self.buffers.take_received(u32::from(id));
        if socket_gone {
            let _ = self.release_buffer(u32::from(id));
            return None;
        }
        Some(id)
    }

    /// The receive ring ran dry: op `key` waits out of the kernel until a buffer returns.
    pub(crate) fn starve(&mut self, key: usize) {
        // Buffers the host released after the failed attempt started but before its CQE
        // was seen would never feed it: try again at once while the ring has some.
        if self.buffers.ring_has_buffers() && self.submit_attempt(key).is_ok() {
            return;
        }
        self.ops[key].starved = true;
        self.starved.push(key);
    }

    /// Final CQE of an attempt: resubmit, or complete the op and free its slot.
    fn finish(&mut self, key: usize, res: i32, flags: u32) -> Option<iot_completion> {
        let op = &self.ops[key];
        let (tag, kind, socket, cancelled) = (op.tag, op.kind, op.socket, op.cancelled);
        let socket_gone = self.sockets.get(socket).is_err();
        let retry = !cancelled && !socket_gone;
        let mut completion = iot_completion::new(tag, kind, res);
        match &mut self.ops[key].work {
            Work::Accept {
                multishot,
                failures,
            } => {
                let multishot = *multishot;
                if res >= 0 {
                    *failures = 0;
                }
                if res < 0 && multishot && retry && crate::accept_backoff::transient(res) {
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
            Work::Connect { .. } => {
                if res == 0 && !socket_gone {
                    completion.handle = socket;
                } else if !socket_gone {
                    let _ = self.sockets.remove(socket); // never exposed: close it here
                }
            }
            Work::Recv { multishot, .. } => {
                let multishot = *multishot;
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
                    self.note_received(socket, id);
                    self.describe_datagram(key, &mut completion);
                    if multishot && res > 0 && retry && !self.may_receive(socket) {
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
                if res > 0 {
                    progress.done += res as u32;
                }
                let (done, len) = (progress.done, progress.len);
                let to_file = matches!(progress.to, SendTarget::File { .. });
                if res > 0 && done < len && retry && self.submit_attempt(key).is_ok() {
                    return None;
                }
                completion.result = match res {
                    r if r < 0 => r,
                    // Nothing moved: the peer is gone, or the file takes no more.
                    _ if done < len && to_file => -libc::EIO,
                    _ if done < len => -libc::EPIPE,
                    _ => done as i32,
                };
            }
            Work::Shutdown { .. } => {}
            Work::Read(_) | Work::Vectored(_) | Work::File(_) => {
                self.finish_file(key, &mut completion, retry)?;
            }
            Work::ReadStream(_) => return self.finish_stream(key, flags, completion, retry),
        }
        self.end_op(key, completion)
    }

    /// Ends op `key` with its CQE, in a drain: the completion goes to the host now,
    /// with the buffers it hands back. The next op queued behind it starts.
    pub(crate) fn end_op(
        &mut self,
        key: usize,
        completion: iot_completion,
    ) -> Option<iot_completion> {
        let ended = self.end_op_unseen(key, completion);
        Some(self.hand_over(ended))
    }

    /// Ends op `key` outside a drain: its completion waits in `ready`.
    pub(crate) fn end_op_later(&mut self, key: usize, completion: iot_completion) {
        let ended = self.end_op_unseen(key, completion);
        self.push_ended(ended);
    }

    fn end_op_unseen(&mut self, key: usize, completion: iot_completion) -> Ended {
        let (socket, ordered) = (self.ops[key].socket, self.ops[key].ordered);
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
        let op = self.ops.remove(key);
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
        self.end_op_later(key, self.ops[key].completion(-libc::ECANCELED));
    }

    /// Pool buffers the op took for itself (and did not hand over) go back now; the
    /// work is returned when it borrowed host buffers, which go back only when the
    /// host sees the completion (`hand_over`).
    fn return_taken(&mut self, work: Work, completion: &mut iot_completion) -> Option<Work> {
        for &buffer in work.taken() {
            self.release_operation_buffer(buffer);
        }
        if let Work::Read(read) = &work {
            completion.flags |= IOT_COMPLETION_BUFFER;
            completion.buffer_id = read.buffer as u16;
            completion.offset = read.offset;
        }
        (!work.borrowed().is_empty()).then_some(work)
    }

    /// Host gives a buffer back.
    pub(crate) fn release_buffer(&mut self, id: u32) -> Result<()> {
        if self.buffers.release(id)? {
            self.recv_buffer_returned(id);
            self.stream_buffer_returned(id);
            self.feed_starved();
        }
        Ok(())
    }

    fn release_operation_buffer(&mut self, id: u32) {
        if self.buffers.release_from_operation(id) {
            // A stream's chunk the host sent on (zero copy) counts as given back.
            self.recv_buffer_returned(id);
            self.stream_buffer_returned(id);
            self.feed_starved();
        }
    }

    /// Receive buffers came back: resubmit the receives that ran out of them.
    fn feed_starved(&mut self) {
        for key in std::mem::take(&mut self.starved) {
            let Some(op) = self.ops.get_mut(key) else {
                continue;
            };
            op.starved = false;
            if let Err(code) = self.submit_attempt(key) {
                let ended = self.retire(key, self.ops[key].completion(code));
                self.push_ended(ended);
            }
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
            let key = self.ops.insert(op);
            match self.submit_attempt(key) {
                Ok(()) => return,
                Err(code) => {
                    let ended = self.retire(key, self.ops[key].completion(code));
                    self.push_ended(ended);
                }
            }
        }
    }

    /// Cancels every op with `tag` (in flight, starved, or queued behind another).
    /// Their completions still arrive: in-flight ones from the kernel, the rest here.
    pub(crate) fn cancel(&mut self, tag: u64) -> Result<()> {
        let mut found = false;
        let keys: Vec<usize> = self
            .ops
            .iter()
            .filter(|(_, op)| op.tag == tag && !op.cancelled)
            .map(|(k, _)| k)
            .collect();
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
        let op = &mut self.ops[key];
        op.cancelled = true;
        if op.starved {
            self.starved.retain(|&k| k != key);
            self.unthrottle(key);
            self.abandon(key);
            return Ok(());
        }
        if op.backing_off {
            return self.stop_backoff(key);
        }
        self.push_ignored(
            opcode::AsyncCancel2::new(CancelBuilder::user_data(key as u64).all()).build(),
        )
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
        let keys: Vec<usize> = self
            .ops
            .iter()
            .filter(|(_, op)| op.socket == socket)
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.ops[key].cancelled = true;
            if self.ops[key].starved {
                self.starved.retain(|&k| k != key);
                self.abandon(key);
            } else if self.ops[key].backing_off {
                self.stop_backoff(key)?;
            }
        }
        // The cancel must reach the kernel while the fd number still names this socket.
        self.push_ignored(
            opcode::AsyncCancel2::new(CancelBuilder::fd(types::Fd(removed.raw())).all()).build(),
        )?;
        self.flush()?;
        drop(removed);
        Ok(())
    }

    /// Cancels everything, closes every socket and reaps in-flight ops (bounded).
    /// Returns the number of ops still unreaped when the time limit hit (0 normally).
    pub(crate) fn shutdown(&mut self) -> usize {
        self.notifier = None;
        self.begin_final_messaging();
        self.starved.clear();
        // Ops waiting out of the kernel (starved, paused) have no CQE to wait for.
        self.ops.retain(|_, op| !op.starved);
        for (_, op) in self.ops.iter_mut() {
            op.cancelled = true;
        }
        let _ = self.push_ignored(opcode::AsyncCancel2::new(CancelBuilder::any()).build());
        let _ = self.flush();
        for mut socket in self.sockets.drain().collect::<Vec<_>>() {
            for op in socket.outbound.drain(..) {
                let ended = self.conclude(op, iot_completion::default());
                self.hand_over(ended);
            }
        }
        let deadline = Instant::now() + SHUTDOWN_REAP_LIMIT;
        let mut scratch = [iot_completion::default(); 64];
        let step = Timespec::new().nsec(100_000_000);
        let args = types::SubmitArgs::new().timespec(&step);
        while self.in_flight() > 0 && Instant::now() < deadline {
            // Bounded wait: an op that never completes must not hang the free.
            let _ = self.ring.submitter().submit_with_args(1, &args);
            self.drain(&mut scratch);
        }
        self.end_final_messaging();
        self.ready.clear();
        self.buffers.unregister(&self.ring);
        self.in_flight()
    }

    /// Operations the kernel still owns, messages sent included.
    fn in_flight(&self) -> usize {
        self.ops.len() + self.messaging.in_flight()
    }
}

impl Worker {
    pub(crate) fn stats(&mut self) -> crate::ffi::iot_stats {
        crate::ffi::iot_stats {
            ops_in_flight: self.in_flight() as u32,
            sockets_open: self.sockets.len() as u32,
            buffers_outstanding: self.buffers.outstanding() as u32,
            completions_ready: (self.ready.len() + self.ring.completion().len()) as u32,
        }
    }
}
