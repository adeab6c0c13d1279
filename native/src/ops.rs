//! In-flight operations. `user_data` is the slab key of the op (never an fd), with one
//! high bit marking the op's linked timeout; a few sentinels mark SQEs whose
//! completions carry no news (cancels).

use io_uring::types::Timespec;
use socket2::SockAddr;

/// Marks the linked-timeout CQE of op `key`.
pub(crate) const TIMEOUT_BIT: u64 = 1 << 62;
/// Completions of fire-and-forget SQEs (cancel requests).
pub(crate) const IGNORED: u64 = u64::MAX;

/// What an op still needs when its completion arrives.
pub(crate) enum Work {
    Accept {
        multishot: bool,
    },
    /// The socket is exposed to the host only when the connect succeeds.
    Connect {
        addr: Box<SockAddr>,
    },
    Recv {
        multishot: bool,
    },
    Send(SendProgress),
    Shutdown {
        how: i32,
    },
}

pub(crate) struct SendProgress {
    pub(crate) buffer: u32,
    pub(crate) offset: u32,
    pub(crate) len: u32,
    pub(crate) done: u32,
}

pub(crate) struct Op {
    pub(crate) tag: u64,
    pub(crate) kind: u16,
    pub(crate) socket: u64,
    pub(crate) work: Work,
    /// Timeout for each kernel attempt of this op (kept alive until submitted).
    pub(crate) timeout: Option<Box<Timespec>>,
    /// CQEs still expected for the current attempt (op + its linked timeout).
    pub(crate) expected: u8,
    /// The linked timeout fired: the op's `-ECANCELED` means `-ETIMEDOUT`.
    pub(crate) timed_out: bool,
    /// Final result of the current attempt, kept until the timeout CQE arrived too.
    pub(crate) result: Option<(i32, u32)>,
    /// The host asked to cancel: never retry or resubmit.
    pub(crate) cancelled: bool,
    /// Waiting for receive buffers to come back before resubmitting.
    pub(crate) starved: bool,
}

impl Op {
    pub(crate) fn new(tag: u64, kind: u16, socket: u64, work: Work, timeout_ms: u32) -> Op {
        let timeout = (timeout_ms > 0).then(|| {
            Box::new(
                Timespec::new()
                    .sec(u64::from(timeout_ms / 1000))
                    .nsec((timeout_ms % 1000) * 1_000_000),
            )
        });
        Op {
            tag,
            kind,
            socket,
            work,
            timeout,
            expected: 0,
            timed_out: false,
            result: None,
            cancelled: false,
            starved: false,
        }
    }
}
