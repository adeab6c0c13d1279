//! Files on a worker: open, read and write at an offset or at the file position,
//! vectored reads and writes, whole-file read streams (`op/read_stream.rs`), sync,
//! allocate, truncate and stat. Open files are
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

use std::ffi::CString;

use io_uring::opcode;

use crate::abi::*;
use crate::error::{Result, IOT_E_NULL_POINTER};
use crate::op::{position, FileWork, Op, ReadInto, ReadStream, SendTarget, VectoredIo, Work};
use crate::pieces::BufferRef;
use crate::probe;
use crate::sockets::SocketKind;
use crate::worker::Worker;

/// Most buffers one vectored read or write may name (`UIO_MAXIOV`).
const MAX_SLICES: usize = 1024;

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
        let into = BufferRef { id: buffer, offset };
        self.buffers.check_host_range(buffer, offset, len)?;
        self.buffers.lend_to_operation(into)?;
        let read = ReadInto::new(into, len, at_position);
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

    /// `readv` (or with `write`, `writev`) over `slices` of host buffers, each piece or
    /// buffer named at most once.
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
        let buffers: Vec<BufferRef> = slices
            .iter()
            .map(|s| BufferRef {
                id: s.buffer_id,
                offset: s.offset,
            })
            .collect();
        // Each piece or buffer once: lending one twice fails, and undoes the others.
        for (lent, &at) in buffers.iter().enumerate() {
            if let Err(code) = self.buffers.lend_to_operation(at) {
                for &back in &buffers[..lent] {
                    self.buffers.return_to_host(back);
                }
                return Err(code);
            }
        }
        let iovecs = slices
            .iter()
            .map(|s| libc::iovec {
                // SAFETY: offset + len was checked against the buffer size above.
                iov_base: unsafe { self.buffers.ptr(s.buffer_id).add(s.offset as usize) }.cast(),
                iov_len: s.len as usize,
            })
            .collect();
        let io = VectoredIo::new(iovecs, buffers.into(), write, at_position, total);
        let kind = if write {
            IOT_KIND_FILE_WRITE
        } else {
            IOT_KIND_FILE_READ
        };
        let op = Op::new(tag, kind, file, Work::Vectored(Box::new(io)), timeout_ms);
        self.run_file_op(op, at)
    }

    /// Streams `file` from offset `at` (`IOT_OFFSET_CURRENT`: the file position), at most
    /// `window` chunks in the host's hands (0: a quarter of the receive buffers).
    pub(crate) fn file_read_stream(
        &mut self,
        file: u64,
        at: u64,
        window: u32,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(file, SocketKind::File)?;
        let window = match window {
            0 => (self.buffers.recv_count() / 4).max(1),
            n => n,
        };
        self.next_stream_serial += 1;
        let stream = ReadStream::new(position(at)?, window, self.next_stream_serial);
        let work = Work::ReadStream(stream);
        self.start(Op::new(tag, IOT_KIND_FILE_READ, file, work, timeout_ms))
            .map(drop)
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
        let stat_path = path.is_some();
        let work = FileWork::stat(path, out);
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
}
