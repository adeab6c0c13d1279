//! One kernel attempt of an op: its SQE, linked to the op's timeout when it has one,
//! and the CQEs the attempt waits for before its result is final. An op is cancelled
//! or times out in the kernel; this is where the CQEs that say so are matched up.

use io_uring::types::Timespec;
use io_uring::{opcode, squeue};

use super::user_data;

/// Kernel-internal "restart the system call" code, which io-wq lets through.
const ERESTARTSYS: i32 = 512;

pub(crate) struct Attempt {
    /// Timeout of each kernel attempt, ms (0: none).
    timeout_ms: u32,
    /// CQEs still expected for the current attempt (op + its timeout).
    expected: u8,
    /// The timeout fired: the op's `-ECANCELED` means `-ETIMEDOUT`.
    timed_out: bool,
    /// Final result of the current attempt, kept until the timeout CQE arrived too.
    result: Option<(i32, u32)>,
}

/// The SQEs of one attempt, pushed as one group.
pub(crate) enum Sqes {
    One([squeue::Entry; 1]),
    Two([squeue::Entry; 2]),
}

impl Sqes {
    pub(crate) fn as_slice(&self) -> &[squeue::Entry] {
        match self {
            Sqes::One(one) => one,
            Sqes::Two(two) => two,
        }
    }
}

impl Attempt {
    /// Attempts of an op with `timeout_ms` each (0: none).
    pub(crate) fn new(timeout_ms: u32) -> Attempt {
        Attempt {
            timeout_ms,
            expected: 0,
            timed_out: false,
            result: None,
        }
    }

    /// Starts a new attempt of op `key`, whose SQE is `entry`: with its linked timeout,
    /// or, for an op that blocks in io-wq (where a linked timeout does not fire), a
    /// separate timer whose CQE makes the worker cancel the op. `stage` gives the
    /// timeout's timespec a place that lasts until the SQEs are submitted.
    #[inline]
    pub(crate) fn start(
        &mut self,
        key: usize,
        entry: squeue::Entry,
        in_io_wq: bool,
        stage: impl FnOnce(u32) -> *const Timespec,
    ) -> Sqes {
        let entry = entry.user_data(user_data::op(key));
        self.timed_out = false;
        self.result = None;
        if self.timeout_ms == 0 {
            self.expected = 1;
            return Sqes::One([entry]);
        }
        self.expected = 2;
        let timespec = stage(self.timeout_ms);
        if in_io_wq {
            let timer = opcode::Timeout::new(timespec)
                .build()
                .user_data(user_data::timeout(key));
            return Sqes::Two([entry, timer]);
        }
        let timeout = opcode::LinkTimeout::new(timespec)
            .build()
            .user_data(user_data::timeout(key));
        Sqes::Two([entry.flags(squeue::Flags::IO_LINK), timeout])
    }

    /// The op's final CQE for this attempt. True when its separate timer must be
    /// stopped now (its CQE then says `-ECANCELED`).
    #[inline]
    pub(crate) fn op_done(&mut self, res: i32, flags: u32, in_io_wq: bool) -> bool {
        let stop_timer = self.expected == 2 && in_io_wq;
        self.expected = self.expected.saturating_sub(1);
        self.result = Some((res, flags));
        stop_timer
    }

    /// The timeout's CQE. True when the op, blocked in io-wq, must be cancelled now.
    pub(crate) fn timeout_done(&mut self, res: i32, in_io_wq: bool) -> bool {
        // -ECANCELED: the op finished first. Anything else means the timeout fired:
        // -ETIME, or -ENOENT/-EALREADY when the op was already running in io-wq.
        self.timed_out |= res != -libc::ECANCELED;
        self.expected = self.expected.saturating_sub(1);
        self.timed_out && self.result.is_none() && in_io_wq
    }

    /// The attempt's result once its op and timeout CQEs are both in.
    #[inline]
    pub(crate) fn settle(&mut self, cancelled: bool) -> Option<(i32, u32)> {
        if self.expected > 0 {
            return None;
        }
        let (mut res, flags) = self.result.take()?;
        // An op blocked in an io-wq thread (a Unix datagram send to a full receiver, a
        // FIFO open) is interrupted rather than cancelled: it ends with -EINTR, or even
        // the kernel-internal -ERESTARTSYS.
        let interrupted = matches!(-res, libc::ECANCELED | libc::EINTR | ERESTARTSYS);
        if self.timed_out && interrupted {
            res = -libc::ETIMEDOUT;
        } else if cancelled && interrupted {
            res = -libc::ECANCELED;
        }
        Some((res, flags))
    }
}
