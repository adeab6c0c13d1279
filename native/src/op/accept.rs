//! Accept: one connection, or (multishot) one per connection until cancelled. A
//! multishot accept outlives transient errors: the worker reports the error as a
//! non-final completion and re-arms the accept itself after a back-off timer that
//! doubles while the error persists, so a lasting `EMFILE` is neither fatal nor a busy
//! loop (the timer is the driver's: `Driver::back_off`). What follows each attempt is
//! decided here ([`Accept::after`]); the worker adopts the connection or starts the
//! timer.

use io_uring::types::{Fd, Timespec};
use io_uring::{opcode, squeue};

pub(crate) struct Accept {
    multishot: bool,
    /// Transient errors in a row (`EMFILE`, ...), which set the back-off.
    failures: u8,
}

/// Pauses before re-arming after 1, 2, 3, ... transient errors in a row (then the
/// last one). Static: the kernel reads a timeout's timespec when the SQE is submitted,
/// which is after the timer is queued.
static BACKOFF: [Timespec; 6] = [
    Timespec::new().nsec(5_000_000),
    Timespec::new().nsec(10_000_000),
    Timespec::new().nsec(20_000_000),
    Timespec::new().nsec(40_000_000),
    Timespec::new().nsec(80_000_000),
    Timespec::new().nsec(160_000_000),
];

impl Accept {
    pub(crate) fn new(multishot: bool) -> Accept {
        Accept {
            multishot,
            failures: 0,
        }
    }

    pub(crate) fn entry(&self, fd: Fd) -> squeue::Entry {
        if self.multishot {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        }
    }

    /// What follows an attempt that ended with `res`; `going`: neither cancelled nor
    /// its listener closed.
    pub(crate) fn after(&mut self, res: i32, going: bool) -> AcceptNext {
        if res >= 0 {
            // A connection arrived: the error streak is over.
            self.failures = 0;
            let rearm = self.multishot && going;
            return AcceptNext::Adopt { rearm };
        }
        if self.multishot && going && transient(res) {
            return AcceptNext::BackOff(self.next_pause());
        }
        AcceptNext::End
    }

    /// The pause before the next attempt after one more transient error.
    fn next_pause(&mut self) -> &'static Timespec {
        let pause = &BACKOFF[usize::from(self.failures).min(BACKOFF.len() - 1)];
        self.failures = self.failures.saturating_add(1);
        pause
    }
}

/// What the worker does after an accept attempt.
pub(crate) enum AcceptNext {
    /// Adopt the connection (fd = the result), then re-arm when `rearm`: the kernel
    /// ended a multishot accept early.
    Adopt { rearm: bool },
    /// A transient error: accepting goes on after this pause (the timer's CQE re-arms
    /// it), and the host hears of the error.
    BackOff(&'static Timespec),
    /// The accept ends with its result.
    End,
}

/// Whether an accept error passes: the listener itself is fine.
fn transient(res: i32) -> bool {
    matches!(
        -res,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED
    )
}
