//! Kernel feature probe: creation fails cleanly when an opcode we rely on is missing,
//! and operations newer than the Linux 6.1 baseline check the probe before they start.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use io_uring::types::Fd;
use io_uring::{cqueue, opcode, squeue, IoUring, Probe};

use crate::buffers::RECV_GROUP;
use crate::driver::ring::Ring;
use crate::error::{Result, IOT_E_UNSUPPORTED};

const REQUIRED: &[u8] = &[
    opcode::Accept::CODE,
    opcode::Connect::CODE,
    opcode::Recv::CODE,
    opcode::Send::CODE,
    opcode::Shutdown::CODE,
    opcode::AsyncCancel::CODE,
    opcode::LinkTimeout::CODE,
    opcode::RecvMsg::CODE,
    opcode::Read::CODE,
    opcode::Write::CODE,
    opcode::Readv::CODE,
    opcode::Writev::CODE,
    opcode::ReadFixed::CODE,
    opcode::WriteFixed::CODE,
    opcode::Fsync::CODE,
    opcode::Fallocate::CODE,
    opcode::OpenAt::CODE,
    opcode::Statx::CODE,
];

/// Probes the ring; fails when an opcode every worker needs is missing.
pub(crate) fn check(ring: &IoUring) -> Result<Probe> {
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|_| IOT_E_UNSUPPORTED)?;
    for &code in REQUIRED {
        require(&probe, code)?;
    }
    Ok(probe)
}

/// `IOT_E_UNSUPPORTED` unless the kernel knows opcode `code`.
pub(crate) fn require(probe: &Probe, code: u8) -> Result<()> {
    if probe.is_supported(code) {
        Ok(())
    } else {
        Err(IOT_E_UNSUPPORTED)
    }
}

/// Whether a read that finds a pipe at its end leaves the packed receive ring's head
/// buffer where it is, as it must (it took no bytes). Kernels from 6.12 until the fix
/// "io_uring/kbuf: fix missing BUF_MORE for incremental buffers at EOF" (2026) leave it
/// at the head but report it consumed: given back to the ring, it would be in the
/// ring twice and take two receives' bytes at once. Run once, on a new ring whose
/// receive ring is packed and holds buffers, before any other op.
pub(crate) fn empty_reads_keep_buffers(ring: &mut Ring) -> bool {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return false;
    }
    // SAFETY: pipe2 just created both descriptors; nothing else owns them.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(write_end); // the read finds the end at once
    let read = opcode::Read::new(Fd(read_end.as_raw_fd()), std::ptr::null_mut(), 1)
        .buf_group(RECV_GROUP)
        .build()
        .flags(squeue::Flags::BUFFER_SELECT);
    matches!(
        ring.run_alone(read),
        Some((0, flags)) if cqueue::buffer_select(flags).is_none() || cqueue::buffer_more(flags)
    )
}

/// Whether a multishot receive takes a limit on the bytes it receives in all
/// (`IORING_RECV_MSHOT_LIM`, Linux 6.17): earlier kernels refuse the SQE field it is
/// in (`file_index`) with `EINVAL` before they look at the descriptor; later ones get
/// that far and find no socket at -1 (`EBADF`). Run once, on a new ring, before any
/// other op.
pub(crate) fn multishot_receives_take_a_byte_limit(ring: &mut Ring) -> bool {
    let receive = opcode::RecvMulti::new(Fd(-1), RECV_GROUP).build();
    let limited = crate::op::Recv::limit_total_bytes(receive, 1);
    matches!(ring.run_alone(limited), Some((res, _)) if res == -libc::EBADF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opcode_missing_from_the_probe_is_unsupported() {
        // A probe the kernel never filled knows no opcode, like a kernel too old.
        let empty = Probe::new();
        assert_eq!(
            require(&empty, opcode::Ftruncate::CODE),
            Err(IOT_E_UNSUPPORTED)
        );
    }

    /// The kernel's (major, minor) version, from `uname`.
    fn kernel_version() -> (u32, u32) {
        // SAFETY: uname fills the zeroed struct; its release is NUL-terminated.
        let text = unsafe {
            let mut name: libc::utsname = std::mem::zeroed();
            assert_eq!(libc::uname(&mut name), 0, "uname");
            std::ffi::CStr::from_ptr(name.release.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        let mut parts = text.split(|c: char| !c.is_ascii_digit());
        let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (next(), next())
    }

    #[test]
    fn multishot_receives_take_a_byte_limit_from_linux_6_17() {
        let mut ring = Ring::new(8, 16, false).expect("ring");
        let limited = multishot_receives_take_a_byte_limit(&mut ring);
        assert_eq!(
            limited,
            kernel_version() >= (6, 17),
            "kernel {:?}",
            kernel_version()
        );
    }
}
