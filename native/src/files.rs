//! Files on a worker: open, read and write at an offset or at the file position,
//! vectored reads and writes, sync, allocate, truncate and stat. Open files are
//! handles in the worker's table (kind `File`).
//!
//! Buffers: a read borrows a host buffer and hands it back in its completion, filled
//! (`IOT_COMPLETION_BUFFER`, whatever the outcome); a write takes a host buffer and
//! returns it to the pool when done, like a send. With `IOT_CONFIG_REGISTER_BUFFERS`
//! single-buffer reads and writes use the fixed-buffer opcodes.
//!
//! Order: ops at the file position (`IOT_OFFSET_CURRENT`), syncs and truncates run one
//! at a time in call order, so appends land in the order queued and a sync covers the
//! writes queued before it. Ops at explicit offsets run concurrently.

use std::cell::UnsafeCell;
use std::ffi::CString;

use io_uring::types::{Fd, FsyncFlags};
use io_uring::{opcode, squeue, types};

use crate::completion::*;
use crate::error::{Result, IOT_E_BAD_BUFFER, IOT_E_NULL_POINTER};
use crate::ops::{Op, SendTarget, Work};
use crate::probe;
use crate::sockets::SocketKind;
use crate::worker::Worker;

/// File offset meaning "at the file position", which the op advances (appends, pipes).
pub const IOT_OFFSET_CURRENT: u64 = 0xffff_ffff_ffff_ffff;

/// Open flag: open for reading (with `IOT_OPEN_WRITE`: both).
pub const IOT_OPEN_READ: u32 = 1;
/// Open flag: open for writing.
pub const IOT_OPEN_WRITE: u32 = 2;
/// Open flag: create the file if missing (`O_CREAT`), with the given mode.
pub const IOT_OPEN_CREATE: u32 = 4;
/// Open flag: with `IOT_OPEN_CREATE`, fail with `-EEXIST` if it exists (`O_EXCL`).
pub const IOT_OPEN_EXCLUSIVE: u32 = 8;
/// Open flag: truncate to length 0 (`O_TRUNC`).
pub const IOT_OPEN_TRUNCATE: u32 = 16;
/// Open flag: every write appends, whatever its offset (`O_APPEND`).
pub const IOT_OPEN_APPEND: u32 = 32;

/// Sync flag: flush the data and only the metadata needed to read it (`fdatasync`).
pub const IOT_SYNC_DATA_ONLY: u32 = 1;

/// Most buffers one vectored read or write may name (`UIO_MAXIOV`).
const MAX_SLICES: usize = 1024;

/// Part of one pool buffer, for `iot_file_readv`/`iot_file_writev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct iot_buffer_slice {
    /// A buffer the host owns.
    pub buffer_id: u32,
    /// Where the slice starts in the buffer.
    pub offset: u32,
    /// Its length; `offset + len` must fit the buffer.
    pub len: u32,
}

/// What `iot_file_stat`/`iot_path_stat` report. Times are since the Unix epoch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct iot_file_info {
    /// Length in bytes.
    pub size: u64,
    /// Bytes of storage allocated (`st_blocks * 512`): more than `size` after an
    /// allocate, less for a sparse file.
    pub allocated: u64,
    pub accessed_sec: i64,
    pub modified_sec: i64,
    /// Last status change (metadata or data).
    pub changed_sec: i64,
    pub accessed_nsec: u32,
    pub modified_nsec: u32,
    pub changed_nsec: u32,
    /// File type and permission bits, as `st_mode` (`S_IFREG | 0644`, ...).
    pub mode: u32,
}

/// A read into `len` bytes of host buffer `buffer` from `offset`.
pub(crate) struct ReadInto {
    pub(crate) buffer: u32,
    pub(crate) offset: u32,
    len: u32,
    at: Option<u64>,
}

/// A `readv`/`writev` over host buffer slices. A partial write is resubmitted for the
/// rest: `first` skips the iovecs already done, the first remaining one is trimmed.
pub(crate) struct VectoredIo {
    iovecs: Box<[libc::iovec]>,
    buffers: Box<[u32]>,
    write: bool,
    at: Option<u64>,
    first: usize,
    done: u64,
    total: u64,
}

// SAFETY: the iovecs point into the worker's buffer pool, which moves with the worker.
unsafe impl Send for VectoredIo {}

impl VectoredIo {
    pub(crate) fn buffers(&self) -> &[u32] {
        &self.buffers
    }

    pub(crate) fn is_write(&self) -> bool {
        self.write
    }

    pub(crate) fn entry(&self, fd: Fd) -> squeue::Entry {
        let rest = &self.iovecs[self.first..];
        let at = file_offset(self.at.map(|at| at + self.done));
        if self.write {
            opcode::Writev::new(fd, rest.as_ptr(), rest.len() as u32)
                .offset(at)
                .build()
        } else {
            opcode::Readv::new(fd, rest.as_ptr(), rest.len() as u32)
                .offset(at)
                .build()
        }
    }

    /// Marks `n` more bytes done: drops finished iovecs, trims the next.
    fn advance(&mut self, n: u64) {
        self.done += n;
        let mut left = n as usize;
        while let Some(iov) = self.iovecs.get_mut(self.first) {
            if left < iov.iov_len {
                // SAFETY: left < iov_len, so the new base stays inside the buffer.
                iov.iov_base = unsafe { iov.iov_base.cast::<u8>().add(left) }.cast();
                iov.iov_len -= left;
                return;
            }
            left -= iov.iov_len;
            self.first += 1;
        }
    }
}

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
fn file_offset(at: Option<u64>) -> u64 {
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

/// `IOT_OPEN_*` flags as `open(2)` flags (ours are the same on every architecture,
/// `O_*` values are not).
fn open_flags(flags: u32) -> Result<i32> {
    let known = IOT_OPEN_READ
        | IOT_OPEN_WRITE
        | IOT_OPEN_CREATE
        | IOT_OPEN_EXCLUSIVE
        | IOT_OPEN_TRUNCATE
        | IOT_OPEN_APPEND;
    if flags & !known != 0 {
        return Err(-libc::EINVAL);
    }
    let access = match flags & (IOT_OPEN_READ | IOT_OPEN_WRITE) {
        IOT_OPEN_READ => libc::O_RDONLY,
        IOT_OPEN_WRITE => libc::O_WRONLY,
        0 => return Err(-libc::EINVAL),
        _ => libc::O_RDWR,
    };
    let extra = [
        (IOT_OPEN_CREATE, libc::O_CREAT),
        (IOT_OPEN_EXCLUSIVE, libc::O_EXCL),
        (IOT_OPEN_TRUNCATE, libc::O_TRUNC),
        (IOT_OPEN_APPEND, libc::O_APPEND),
    ];
    Ok(extra
        .iter()
        .filter(|(ours, _)| flags & ours != 0)
        .fold(access | libc::O_CLOEXEC, |acc, (_, theirs)| acc | theirs))
}

impl Worker {
    /// Opens `path`; the file arrives as a handle in the completion.
    pub(crate) fn file_open(
        &mut self,
        path: CString,
        flags: u32,
        mode: u32,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        let work = FileWork::Open {
            path,
            flags: open_flags(flags)?,
            mode: mode & 0o7777,
        };
        let op = Op::new(tag, IOT_KIND_FILE_OPEN, 0, Work::File(work), timeout_ms);
        self.start(op).map(drop)
    }

    /// Reads up to `len` bytes at file offset `at` into host buffer `buffer` from
    /// `offset`.
    #[allow(clippy::too_many_arguments)] // the fields of one read, in ABI order
    pub(crate) fn file_read(
        &mut self,
        file: u64,
        buffer: u32,
        offset: u32,
        len: u32,
        at: u64,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(file, SocketKind::File)?;
        let at_position = position(at)?;
        self.buffers.check_host_range(buffer, offset, len)?;
        self.buffers.lend_to_operation(buffer)?;
        let read = ReadInto {
            buffer,
            offset,
            len,
            at: at_position,
        };
        let op = Op::new(tag, IOT_KIND_FILE_READ, file, Work::Read(read), timeout_ms);
        self.run_file_op(op, at)
    }

    /// Writes `len` bytes of host buffer `buffer` from `offset` at file offset `at`,
    /// all of them (short writes are resubmitted) or an error.
    #[allow(clippy::too_many_arguments)] // the fields of one write, in ABI order
    pub(crate) fn file_write(
        &mut self,
        file: u64,
        buffer: u32,
        offset: u32,
        len: u32,
        at: u64,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(file, SocketKind::File)?;
        let to = SendTarget::File { at: position(at)? };
        let op = self.lend_for_send(file, buffer, offset, len, to, tag, timeout_ms)?;
        self.run_file_op(op, at)
    }

    /// `readv` (or with `write`, `writev`) over `slices` of host buffers, each buffer
    /// named at most once.
    pub(crate) fn file_vectored(
        &mut self,
        file: u64,
        slices: &[iot_buffer_slice],
        at: u64,
        write: bool,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(file, SocketKind::File)?;
        let at_position = position(at)?;
        if slices.is_empty() || slices.len() > MAX_SLICES {
            return Err(-libc::EINVAL);
        }
        let total: u64 = slices.iter().map(|s| u64::from(s.len)).sum();
        if total > i32::MAX as u64 {
            return Err(-libc::EINVAL); // the result must fit the completion
        }
        for slice in slices {
            self.buffers
                .check_host_range(slice.buffer_id, slice.offset, slice.len)?;
        }
        let mut buffers: Vec<u32> = slices.iter().map(|s| s.buffer_id).collect();
        buffers.sort_unstable();
        if buffers.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(IOT_E_BAD_BUFFER);
        }
        for &buffer in &buffers {
            self.buffers.lend_to_operation(buffer)?;
        }
        let iovecs = slices
            .iter()
            .map(|s| libc::iovec {
                // SAFETY: offset + len was checked against the buffer size above.
                iov_base: unsafe { self.buffers.ptr(s.buffer_id).add(s.offset as usize) }.cast(),
                iov_len: s.len as usize,
            })
            .collect();
        let io = VectoredIo {
            iovecs,
            buffers: buffers.into(),
            write,
            at: at_position,
            first: 0,
            done: 0,
            total,
        };
        let kind = if write {
            IOT_KIND_FILE_WRITE
        } else {
            IOT_KIND_FILE_READ
        };
        let op = Op::new(tag, kind, file, Work::Vectored(Box::new(io)), timeout_ms);
        self.run_file_op(op, at)
    }

    /// Flushes the file's data (and metadata unless `IOT_SYNC_DATA_ONLY`) to storage,
    /// after every op queued before it at the file position.
    pub(crate) fn file_sync(
        &mut self,
        file: u64,
        flags: u32,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        if flags & !IOT_SYNC_DATA_ONLY != 0 {
            return Err(-libc::EINVAL);
        }
        let work = FileWork::Sync {
            data_only: flags & IOT_SYNC_DATA_ONLY != 0,
        };
        self.start_file_work(file, IOT_KIND_FILE_SYNC, work, true, tag, timeout_ms)
    }

    /// `fallocate(2)` with `mode` (`FALLOC_FL_*`, 0 allocates and extends the size).
    #[allow(clippy::too_many_arguments)] // the fields of one allocate, in ABI order
    pub(crate) fn file_allocate(
        &mut self,
        file: u64,
        mode: u32,
        offset: u64,
        len: u64,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        let work = FileWork::Allocate {
            mode: mode as i32,
            offset,
            len,
        };
        self.start_file_work(file, IOT_KIND_FILE_ALLOCATE, work, false, tag, timeout_ms)
    }

    /// Sets the file's length (Linux 6.9+, else `IOT_E_UNSUPPORTED`).
    pub(crate) fn file_truncate(
        &mut self,
        file: u64,
        len: u64,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        probe::require(&self.probe, opcode::Ftruncate::CODE)?;
        let work = FileWork::Truncate { len };
        self.start_file_work(file, IOT_KIND_FILE_TRUNCATE, work, true, tag, timeout_ms)
    }

    /// Stats open `file`, or `path` when given (following symlinks), into `out` when
    /// the op succeeds.
    pub(crate) fn file_stat(
        &mut self,
        file: u64,
        path: Option<CString>,
        out: *mut iot_file_info,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        if out.is_null() {
            return Err(IOT_E_NULL_POINTER);
        }
        // SAFETY: all-zero bytes are a valid statx.
        let buf = Box::new(StatBuffer(UnsafeCell::new(unsafe { std::mem::zeroed() })));
        let stat_path = path.is_some();
        let work = FileWork::Stat {
            path,
            buf,
            out: HostStat(out),
        };
        if stat_path {
            let op = Op::new(tag, IOT_KIND_FILE_STAT, 0, Work::File(work), timeout_ms);
            return self.start(op).map(drop);
        }
        self.start_file_work(file, IOT_KIND_FILE_STAT, work, false, tag, timeout_ms)
    }

    /// Closes an open file now (not a socket: `close_socket`). Close does not block on
    /// local files, so it is immediate, and the handle goes stale before any later op
    /// could name a reused fd.
    pub(crate) fn close_file(&mut self, file: u64) -> Result<()> {
        self.sockets.get_kind(file, SocketKind::File)?;
        self.close_handle(file)
    }

    fn start_file_work(
        &mut self,
        file: u64,
        kind: u16,
        work: FileWork,
        in_order: bool,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(file, SocketKind::File)?;
        let op = Op::new(tag, kind, file, Work::File(work), timeout_ms);
        if in_order {
            self.queue_ordered(op)
        } else {
            self.start(op).map(drop)
        }
    }

    /// Starts a read or write now, or behind the file's ordered ops when it works at
    /// the file position.
    fn run_file_op(&mut self, op: Op, at: u64) -> Result<()> {
        if at == IOT_OFFSET_CURRENT {
            self.queue_ordered(op)
        } else {
            self.start_borrowing(op)
        }
    }

    /// A single-buffer file write: the fixed-buffer opcode when the pool is registered.
    pub(crate) fn write_entry(
        &self,
        fd: Fd,
        buffer: u32,
        ptr: *const u8,
        len: u32,
        at: Option<u64>,
    ) -> squeue::Entry {
        match self.buffers.fixed_index(buffer) {
            Some(index) => opcode::WriteFixed::new(fd, ptr, len, index)
                .offset(file_offset(at))
                .build(),
            None => opcode::Write::new(fd, ptr, len)
                .offset(file_offset(at))
                .build(),
        }
    }

    pub(crate) fn read_entry(&self, fd: Fd, read: &ReadInto) -> squeue::Entry {
        // SAFETY: offset + len was checked against the buffer size at queue time.
        let ptr = unsafe { self.buffers.ptr(read.buffer).add(read.offset as usize) };
        match self.buffers.fixed_index(read.buffer) {
            Some(index) => opcode::ReadFixed::new(fd, ptr, read.len, index)
                .offset(file_offset(read.at))
                .build(),
            None => opcode::Read::new(fd, ptr, read.len)
                .offset(file_offset(read.at))
                .build(),
        }
    }

    /// Final CQE of a file op; `None` when the op goes on (a partial write resubmitted).
    pub(crate) fn finish_file(
        &mut self,
        key: usize,
        completion: &mut iot_completion,
        retry: bool,
    ) -> Option<()> {
        let res = completion.result;
        let cancelled = self.ops[key].cancelled;
        match &mut self.ops[key].work {
            Work::Vectored(io) if io.write => {
                if res > 0 {
                    io.advance(res as u64);
                }
                let (done, total) = (io.done, io.total);
                if res > 0 && done < total && retry && self.submit_attempt(key).is_ok() {
                    return None;
                }
                completion.result = match res {
                    r if r < 0 => r,
                    _ if done < total => -libc::EIO,
                    _ => done as i32,
                };
            }
            Work::File(FileWork::Open { .. }) if res >= 0 => {
                // SAFETY: the kernel just opened this fd for us; nothing else owns it.
                let fd =
                    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(res) };
                if cancelled {
                    completion.result = -libc::ECANCELED; // dropping `fd` closes it
                } else {
                    match self.sockets.insert(fd, SocketKind::File) {
                        Ok(handle) => {
                            completion.result = 0;
                            completion.handle = handle;
                        }
                        Err(code) => completion.result = code,
                    }
                }
            }
            Work::File(FileWork::Stat { buf, out, .. }) if res == 0 && !cancelled => {
                // SAFETY: the kernel finished writing `buf`; the host keeps `out` valid
                // until this completion is drained (it was checked non-null).
                unsafe { out.0.write_unaligned(host_stat(&*buf.0.get())) };
            }
            _ => {}
        }
        Some(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_map_and_reject_unknown_bits() {
        assert_eq!(
            open_flags(IOT_OPEN_READ),
            Ok(libc::O_RDONLY | libc::O_CLOEXEC)
        );
        assert_eq!(
            open_flags(IOT_OPEN_READ | IOT_OPEN_WRITE | IOT_OPEN_APPEND),
            Ok(libc::O_RDWR | libc::O_APPEND | libc::O_CLOEXEC)
        );
        assert_eq!(
            open_flags(IOT_OPEN_WRITE | IOT_OPEN_CREATE | IOT_OPEN_EXCLUSIVE),
            Ok(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC)
        );
        assert_eq!(open_flags(IOT_OPEN_CREATE), Err(-libc::EINVAL));
        assert_eq!(open_flags(IOT_OPEN_READ | 1 << 20), Err(-libc::EINVAL));
    }

    #[test]
    fn a_partial_vectored_write_resumes_mid_buffer() {
        let mut bytes = [0u8; 10];
        let base = bytes.as_mut_ptr();
        let iovec = |start: usize, len: usize| libc::iovec {
            // SAFETY: start < bytes.len().
            iov_base: unsafe { base.add(start) }.cast(),
            iov_len: len,
        };
        let mut io = VectoredIo {
            iovecs: vec![iovec(0, 4), iovec(4, 6)].into(),
            buffers: vec![0, 1].into(),
            write: true,
            at: Some(100),
            first: 0,
            done: 0,
            total: 10,
        };
        io.advance(6);
        assert_eq!((io.first, io.done), (1, 6));
        assert_eq!(io.iovecs[1].iov_len, 4);
        assert_eq!(io.iovecs[1].iov_base, iovec(6, 0).iov_base);
        io.advance(4);
        assert_eq!((io.first, io.done), (2, 10));
    }
}
