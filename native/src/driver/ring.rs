//! A worker's io_uring instance: its setup (flags, completion queue size), pushing
//! groups of SQEs, submitting, cancelling, and reading CQEs back, with the entries the
//! kernel parked in its overflow list flushed in.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use io_uring::types::{CancelBuilder, SubmitArgs, Timespec};
use io_uring::{opcode, squeue, IoUring};

use super::timespecs::Timespecs;
use super::user_data;
use crate::error::{from_io, Result, IOT_E_MEMLOCK, IOT_E_UNSUPPORTED};

pub(crate) struct Ring {
    ring: IoUring,
    /// Drains and flushes that found completions parked in the kernel's overflow list.
    overflows: u32,
    /// Where the timeout SQEs not submitted yet read their timespecs from.
    timespecs: Timespecs,
}

fn setup_error(err: std::io::Error) -> i32 {
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

impl Ring {
    /// A ring of `entries` SQEs and `cq_entries` CQEs (clamped to the kernel's limits);
    /// `single_thread` when only the calling thread will ever enter it.
    pub(crate) fn new(entries: u32, cq_entries: u32, single_thread: bool) -> Result<Ring> {
        // SINGLE_ISSUER/DEFER_TASKRUN only for a single-thread worker: a Dart isolate
        // may submit from different OS threads. COOP_TASKRUN: the kernel does not
        // interrupt the submitting thread with an IPI to run our task work (a receive
        // finishing after its poll fired); it runs at that thread's next entry to the
        // kernel or interrupt, and a thread asleep (an idle Dart pool thread, a host
        // blocked in `wait`) is still woken for it. Cuts 13-23% of server CPU per echo
        // round trip (`iot_bench echo`).
        // All of these flags predate the Linux 6.1 baseline (COOP_TASKRUN: 5.19).
        let mut builder = IoUring::builder();
        builder
            .setup_cqsize(cq_entries)
            .setup_clamp()
            .setup_submit_all()
            .setup_coop_taskrun();
        if single_thread {
            // Completion work waits for this thread's next wait and runs there in one
            // batch (Linux 6.1).
            builder.setup_single_issuer().setup_defer_taskrun();
        }
        let ring = builder.build(entries).map_err(setup_error)?;
        Ok(Ring {
            ring,
            overflows: 0,
            timespecs: Timespecs::default(),
        })
    }

    /// The io_uring itself, to register buffers and probe opcodes.
    pub(crate) fn uring(&self) -> &IoUring {
        &self.ring
    }

    /// A duplicate of the ring's fd, for senders to post into and hosts to wait on: it
    /// never names a closed or reused fd while they hold it.
    pub(crate) fn duplicate_fd(&self) -> Result<OwnedFd> {
        // SAFETY: the ring fd is open for as long as `self` lives; we only duplicate it.
        unsafe { BorrowedFd::borrow_raw(self.ring.as_raw_fd()) }
            .try_clone_to_owned()
            .map_err(from_io)
    }

    /// `timeout_ms` as a timespec for a timeout SQE pushed next: it stays put until
    /// the ring next finds the submission queue empty (`submitted`), which `push`
    /// does not check.
    pub(crate) fn stage_timespec(&mut self, timeout_ms: u32) -> *const Timespec {
        self.timespecs.stage(timeout_ms)
    }

    /// After a submit, this thread's or another's (a host's wait submits without the
    /// worker's lock): once the submission queue is empty, the kernel has prepared
    /// every SQE, so it has read every staged timespec.
    pub(crate) fn submitted(&mut self) {
        if self.ring.submission().is_empty() {
            self.timespecs.reuse();
        }
    }

    /// Pushes SQEs as one contiguous group, submitting first when the queue is too full.
    #[inline]
    pub(crate) fn push(&mut self, entries: &[squeue::Entry]) -> Result<()> {
        loop {
            // SAFETY: every pointer in these SQEs refers to memory owned by an op slot
            // (boxed, stable), by the buffer pool (both alive until the op's last CQE)
            // or by the staged timespecs (until the queue was submitted).
            if unsafe { self.ring.submission().push_multiple(entries) }.is_ok() {
                return Ok(());
            }
            // Not `submitted()`: the timespecs of `entries` were staged before this
            // submit and are read only when they are, after it.
            if self.ring.submit().map_err(from_io)? == 0 {
                return Err(-libc::EBUSY);
            }
        }
    }

    /// Pushes an SQE whose completion carries no news (`user_data::IGNORED`).
    pub(crate) fn push_ignored(&mut self, entry: squeue::Entry) -> Result<()> {
        self.push(&[entry.user_data(user_data::IGNORED)])
    }

    /// Posts a CQE nobody reads (a NOP, submitted now with whatever is queued): a
    /// thread blocked in the ring wakes for it.
    pub(crate) fn wake_waiters(&mut self) -> Result<()> {
        self.push_ignored(opcode::Nop::new().build())?;
        self.flush().map(drop)
    }

    /// Submits `entry` alone and waits up to a second for its CQE: (result, flags).
    /// Only at setup, with nothing else in flight, so the next CQE is its own; one that
    /// comes later is ignored like any `user_data::IGNORED`.
    pub(crate) fn run_alone(&mut self, entry: squeue::Entry) -> Option<(i32, u32)> {
        self.push_ignored(entry).ok()?;
        let limit = Timespec::new().sec(1);
        let args = SubmitArgs::new().timespec(&limit);
        // A timeout is an error (ETIME) with nothing to read: the CQE decides.
        let _ = self.ring.submitter().submit_with_args(1, &args);
        self.submitted();
        let cqe = self.ring.completion().next()?;
        Some((cqe.result(), cqe.flags()))
    }

    /// Cancels whatever in flight `what` matches; each still completes.
    pub(crate) fn cancel(&mut self, what: CancelBuilder) -> Result<()> {
        self.push_ignored(opcode::AsyncCancel2::new(what).build())
    }

    /// Makes room for `count` SQEs before anything irreversible happens, so that
    /// pushing them next cannot fail for want of space.
    pub(crate) fn reserve(&mut self, count: usize) -> Result<()> {
        let room = |ring: &mut IoUring| {
            let queue = ring.submission();
            queue.capacity() - queue.len() >= count
        };
        if !room(&mut self.ring) {
            self.flush()?;
        }
        if !room(&mut self.ring) {
            return Err(-libc::EBUSY);
        }
        Ok(())
    }

    /// Submits everything queued; returns how many SQEs the kernel took. Costs no
    /// syscall when nothing is queued (hosts flush once per event-loop turn).
    pub(crate) fn flush(&mut self) -> Result<usize> {
        // A host that drains in batches may never empty the queue, so the overflow is
        // noted here too, not only when a drain finds the queue empty: this submit
        // brings the parked entries back.
        if !self.overflow_noted() && self.ring.submission().is_empty() {
            self.submitted();
            return Ok(0);
        }
        let submitted = self.ring.submit().map_err(from_io);
        self.submitted();
        submitted
    }

    /// Whether the kernel parked completions in its overflow list (counted).
    fn overflow_noted(&mut self) -> bool {
        let parked = self.ring.submission().cq_overflow();
        self.overflows = self.overflows.saturating_add(u32::from(parked));
        parked
    }

    /// SQEs queued and not yet submitted.
    pub(crate) fn queued(&mut self) -> u32 {
        self.ring.submission().len() as u32
    }

    /// The next CQE as (`user_data`, result, flags). When the queue looks empty while
    /// the kernel parked entries in its overflow list, they are brought back once per
    /// drain (`overflow_flushed`).
    #[inline]
    pub(crate) fn next_cqe(&mut self, overflow_flushed: &mut bool) -> Option<(u64, i32, u32)> {
        loop {
            if let Some(cqe) = self.ring.completion().next() {
                return Some((cqe.user_data(), cqe.result(), cqe.flags()));
            }
            if *overflow_flushed || !self.overflow_noted() {
                return None;
            }
            // Entries the kernel parked in its overflow list come back on enter.
            *overflow_flushed = true;
            let _ = self.ring.submit();
            self.submitted();
        }
    }

    /// Times so far that a drain or a flush found completions in the kernel's
    /// overflow list.
    pub(crate) fn overflows(&self) -> u32 {
        self.overflows
    }

    /// Entries of the completion queue.
    pub(crate) fn capacity(&self) -> usize {
        self.ring.params().cq_entries() as usize
    }

    /// CQEs ready to read (not counting the overflow list).
    pub(crate) fn completions(&mut self) -> usize {
        self.ring.completion().len()
    }

    /// Whether a CQE is ready, in the queue or in the kernel's overflow list.
    pub(crate) fn has_completions(&mut self) -> bool {
        !self.ring.completion().is_empty() || self.ring.submission().cq_overflow()
    }

    /// Runs the completion work the kernel deferred to this thread (a single-thread
    /// ring's) without waiting: what it completes is then in the queue.
    pub(crate) fn run_deferred_work(&mut self) {
        self.submit_and_wait_at_most(Timespec::new());
    }

    /// Submits and waits up to 100 ms for a completion (shutdown's bounded reaping).
    pub(crate) fn wait_a_little(&mut self) {
        self.submit_and_wait_at_most(Timespec::new().nsec(100_000_000));
    }

    /// Submits, runs deferred completion work and waits up to `limit` for a completion.
    fn submit_and_wait_at_most(&mut self, limit: Timespec) {
        let args = SubmitArgs::new().timespec(&limit);
        let _ = self.ring.submitter().submit_with_args(1, &args);
        self.submitted();
    }
}
