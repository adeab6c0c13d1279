//! A host's blocking wait on a ring, made without the worker's lock.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use io_uring::types::{self, Timespec};

use crate::error::{from_io, Result};

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
