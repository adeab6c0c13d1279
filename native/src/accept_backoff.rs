//! A multishot accept outlives transient errors. The kernel ends a multishot accept on
//! any error; for the ones that pass (out of file descriptors or memory, a connection
//! reset before it was accepted) the worker reports the error as a non-final
//! completion and re-arms the accept itself, after a back-off timer that doubles while
//! the error persists, so a lasting `EMFILE` is neither fatal nor a busy loop.

use io_uring::opcode;
use io_uring::types::Timespec;

use crate::completion::iot_completion;
use crate::error::Result;
use crate::ops::{Work, BACKOFF_BIT};
use crate::worker::Worker;

/// Pauses before re-arming after 1, 2, 3, ... transient errors in a row (then the
/// last one). Static: the kernel reads a timeout's timespec when the SQE is submitted,
/// which is after `back_off` returns.
static BACKOFF: [Timespec; 6] = [
    Timespec::new().nsec(5_000_000),
    Timespec::new().nsec(10_000_000),
    Timespec::new().nsec(20_000_000),
    Timespec::new().nsec(40_000_000),
    Timespec::new().nsec(80_000_000),
    Timespec::new().nsec(160_000_000),
];

/// Whether an accept error passes: the listener itself is fine.
pub(crate) fn transient(res: i32) -> bool {
    matches!(
        -res,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED
    )
}

impl Worker {
    /// Starts the back-off timer of accept `key` after a transient error.
    pub(crate) fn back_off(&mut self, key: usize) -> Result<()> {
        let Work::Accept { failures, .. } = &mut self.ops[key].work else {
            return Err(-libc::EINVAL);
        };
        let pause = &BACKOFF[usize::from(*failures).min(BACKOFF.len() - 1)];
        *failures = failures.saturating_add(1);
        let timer = opcode::Timeout::new(pause as *const Timespec)
            .build()
            .user_data(key as u64 | BACKOFF_BIT);
        self.push(&[timer])?;
        self.ops[key].backing_off = true;
        Ok(())
    }

    /// The back-off timer of op `key` ended: re-arm the accept, unless the host
    /// cancelled it or closed the listener meanwhile (the timer was removed then).
    pub(crate) fn on_backoff_timer(&mut self, key: usize) -> Option<iot_completion> {
        let op = self.ops.get_mut(key)?;
        op.backing_off = false;
        let gone = op.cancelled || self.sockets.get(op.socket).is_err();
        let result = if gone {
            -libc::ECANCELED
        } else {
            match self.submit_attempt(key) {
                Ok(()) => return None,
                Err(code) => code,
            }
        };
        let completion = self.ops[key].completion(result);
        self.end_op(key, completion)
    }

    /// Cancels the back-off timer of op `key`; its CQE then ends the op.
    pub(crate) fn stop_backoff(&mut self, key: usize) -> Result<()> {
        let user_data = key as u64 | BACKOFF_BIT;
        self.push(&[opcode::TimeoutRemove::new(user_data)
            .build()
            .user_data(crate::ops::IGNORED)])
    }
}
