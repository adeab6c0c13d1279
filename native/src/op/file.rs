//! File operations that move no buffer: open, sync, allocate, truncate and stat.

use std::cell::UnsafeCell;
use std::ffi::CString;

use io_uring::types::{self, Fd, FsyncFlags};
use io_uring::{opcode, squeue};

use crate::abi::*;
use crate::error::Result;

/// A file op that moves no buffer.
pub(crate) enum FileWork {
    Open {
        path: CString,
        flags: i32,
        mode: u32,
    },
    Sync {
        data_only: bool,
    },
    Allocate {
        mode: i32,
        offset: u64,
        len: u64,
    },
    Truncate {
        len: u64,
    },
    /// Statx into `buf`, copied to the host's `out` on success.
    Stat {
        path: Option<CString>,
        buf: Box<StatBuffer>,
        out: HostStat,
    },
}

/// Where the kernel writes a statx result while the op is in flight.
pub(crate) struct StatBuffer(UnsafeCell<libc::statx>);

/// The host's `iot_file_info`, valid until the op's completion is drained.
pub(crate) struct HostStat(*mut iot_file_info);

// SAFETY: the host keeps the struct valid and unused until the completion is drained,
// whichever thread drains it.
unsafe impl Send for HostStat {}

impl FileWork {
    /// Statx of `path`, or of the op's file when `None`, for the host's `out` (checked
    /// non-null, valid until the completion is drained).
    pub(crate) fn stat(path: Option<CString>, out: *mut iot_file_info) -> FileWork {
        // SAFETY: all-zero bytes are a valid statx.
        let buf = Box::new(StatBuffer(UnsafeCell::new(unsafe { std::mem::zeroed() })));
        FileWork::Stat {
            path,
            buf,
            out: HostStat(out),
        }
    }

    /// A stat that succeeded copies its result to the host.
    pub(crate) fn stat_done(&self) {
        if let FileWork::Stat { buf, out, .. } = self {
            // SAFETY: the kernel finished writing `buf`; the host keeps `out` valid
            // until this completion is drained (it was checked non-null).
            unsafe { out.0.write_unaligned(host_stat(&*buf.0.get())) };
        }
    }

    /// The SQE; `fd` is the op's handle, which open and path stat do not need.
    pub(crate) fn entry(&self, fd: Result<Fd>) -> Result<squeue::Entry> {
        let cwd = Fd(libc::AT_FDCWD);
        Ok(match self {
            // Inline, the kernel first tries a non-blocking open, and keeps it when it
            // succeeds: a FIFO would open without waiting for its other end (reads then
            // see end of file at once) or fail with -ENXIO. Opening in an io-wq thread
            // gives open(2)'s blocking semantics; opens are not a hot path.
            FileWork::Open { path, flags, mode } => opcode::OpenAt::new(cwd, path.as_ptr())
                .flags(*flags)
                .mode(*mode)
                .build()
                .flags(squeue::Flags::ASYNC),
            FileWork::Sync { data_only } => {
                let flags = if *data_only {
                    FsyncFlags::DATASYNC
                } else {
                    FsyncFlags::empty()
                };
                opcode::Fsync::new(fd?).flags(flags).build()
            }
            FileWork::Allocate { mode, offset, len } => opcode::Fallocate::new(fd?, *len)
                .offset(*offset)
                .mode(*mode)
                .build(),
            FileWork::Truncate { len } => opcode::Ftruncate::new(fd?, *len).build(),
            FileWork::Stat { path, buf, .. } => {
                let statx = buf.0.get().cast::<types::statx>();
                let (dir, path, flags) = match path {
                    Some(path) => (cwd, path.as_ptr(), 0),
                    None => (fd?, c"".as_ptr(), libc::AT_EMPTY_PATH),
                };
                opcode::Statx::new(dir, path, statx)
                    .flags(flags)
                    .mask(libc::STATX_BASIC_STATS)
                    .build()
            }
        })
    }
}

/// The SQE offset for `at`: -1 means the file position.
pub(super) fn file_offset(at: Option<u64>) -> u64 {
    at.unwrap_or(IOT_OFFSET_CURRENT)
}

/// `None` for `IOT_OFFSET_CURRENT`, else the offset, which must fit `off_t` (so adding a
/// transfer's length to it cannot overflow).
pub(crate) fn position(offset: u64) -> Result<Option<u64>> {
    match offset {
        IOT_OFFSET_CURRENT => Ok(None),
        at if at <= i64::MAX as u64 => Ok(Some(at)),
        _ => Err(-libc::EINVAL),
    }
}

fn host_stat(stx: &libc::statx) -> iot_file_info {
    iot_file_info {
        size: stx.stx_size,
        allocated: stx.stx_blocks.saturating_mul(512),
        accessed_sec: stx.stx_atime.tv_sec,
        modified_sec: stx.stx_mtime.tv_sec,
        changed_sec: stx.stx_ctime.tv_sec,
        accessed_nsec: stx.stx_atime.tv_nsec,
        modified_nsec: stx.stx_mtime.tv_nsec,
        changed_nsec: stx.stx_ctime.tv_nsec,
        mode: u32::from(stx.stx_mode),
    }
}
