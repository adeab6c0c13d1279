use std::ffi::c_char;

use super::{c_bytes, on_worker};
use crate::abi::{iot_buffer_slice, iot_file_info};
use crate::error::IOT_E_NULL_POINTER;

/// A NUL-terminated path argument, copied: the op keeps it until its completion.
fn owned_path(path: *const c_char) -> crate::error::Result<std::ffi::CString> {
    std::ffi::CString::new(c_bytes(path)?).map_err(|_| -libc::EINVAL)
}

/// Queues an open of file `path` with `flags` (`IOT_OPEN_*`; at least one of READ and
/// WRITE) and, when it creates the file, permission bits `mode` (e.g. 0644, less the
/// umask). The completion carries the file handle in `handle` (result 0), or an error
/// (`-ENOENT`, `-EACCES`, `-EISDIR`, `-ETIMEDOUT` after `timeout_ms`, ...) and no
/// handle. Opening a FIFO waits for its other end: bound it with `timeout_ms`.
#[no_mangle]
pub extern "C" fn iot_file_open(
    worker: u64,
    path: *const c_char,
    flags: u32,
    mode: u32,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        let path = owned_path(path)?;
        w.file_open(path, flags, mode, tag, timeout_ms)
    })
}

/// Queues a read of up to `len` bytes at `file_offset` (`IOT_OFFSET_CURRENT`: at the
/// file position, in call order with the file's other position ops) into host buffer
/// `buffer_id` from `offset` (inside one piece, for a received buffer). The buffer is
/// lent to the read and handed back in its completion (`IOT_COMPLETION_BUFFER`; the
/// bytes start at the completion's `offset`; release it as it was held before)
/// whatever the outcome; `result` is the byte count, short only at end of file (0
/// there) or on pipes. If this call fails the buffer stays with the host.
#[no_mangle]
pub extern "C" fn iot_file_read(
    worker: u64,
    file: u64,
    buffer_id: u32,
    offset: u32,
    len: u32,
    file_offset: u64,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    let slice = iot_buffer_slice {
        buffer_id,
        offset,
        len,
    };
    single(worker, file, slice, file_offset, false, tag, timeout_ms)
}

/// Queues a write of `len` bytes from host buffer `buffer_id` at `offset` to
/// `file_offset` (`IOT_OFFSET_CURRENT`: at the file position, in call order — appends
/// land in the order queued). It completes when every byte is written (result = `len`)
/// or with an error (`-EBADF` on a read-only file, `-ENOSPC`, ...). The buffer belongs
/// to the write and returns to the pool when it completes; if this call fails it stays
/// with the host.
#[no_mangle]
pub extern "C" fn iot_file_write(
    worker: u64,
    file: u64,
    buffer_id: u32,
    offset: u32,
    len: u32,
    file_offset: u64,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    let slice = iot_buffer_slice {
        buffer_id,
        offset,
        len,
    };
    single(worker, file, slice, file_offset, true, tag, timeout_ms)
}

/// `iot_file_read` or (with `write`) `iot_file_write` of one buffer slice.
fn single(
    worker: u64,
    file: u64,
    slice: iot_buffer_slice,
    file_offset: u64,
    write: bool,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        let (id, offset, len) = (slice.buffer_id, slice.offset, slice.len);
        if write {
            w.file_write(file, id, offset, len, file_offset, tag, timeout_ms)
        } else {
            w.file_read(file, id, offset, len, file_offset, tag, timeout_ms)
        }
    })
}

/// Queues one read filling `count` (1..=1024) slices of host buffers in order, from
/// `file_offset` (`IOT_OFFSET_CURRENT` as for `iot_file_read`). Each buffer may appear
/// once. All of them are lent to the read and belong to the host again when it
/// completes, whatever the outcome; `result` is the total byte count. `slices` is read
/// during this call only.
#[no_mangle]
pub extern "C" fn iot_file_readv(
    worker: u64,
    file: u64,
    slices: *const iot_buffer_slice,
    count: u32,
    file_offset: u64,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    vectored(
        worker,
        file,
        slices,
        count,
        file_offset,
        false,
        tag,
        timeout_ms,
    )
}

/// Queues one write of `count` (1..=1024) slices of host buffers in order, at
/// `file_offset` (`IOT_OFFSET_CURRENT` as for `iot_file_write`). It completes when
/// every byte is written (result = total) or with an error; every buffer returns to
/// the pool then. Each buffer may appear once. `slices` is read during this call only.
#[no_mangle]
pub extern "C" fn iot_file_writev(
    worker: u64,
    file: u64,
    slices: *const iot_buffer_slice,
    count: u32,
    file_offset: u64,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    vectored(
        worker,
        file,
        slices,
        count,
        file_offset,
        true,
        tag,
        timeout_ms,
    )
}

#[allow(clippy::too_many_arguments)] // the arguments of readv/writev, plus which one
fn vectored(
    worker: u64,
    file: u64,
    slices: *const iot_buffer_slice,
    count: u32,
    file_offset: u64,
    write: bool,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        if slices.is_null() {
            return Err(IOT_E_NULL_POINTER);
        }
        // SAFETY: non-null, with `count` readable records per the contract.
        let slices = unsafe { std::slice::from_raw_parts(slices, count as usize) };
        w.file_vectored(file, slices, file_offset, write, tag, timeout_ms)
    })
}

/// Streams the file from `file_offset` (`IOT_OFFSET_CURRENT`: the file position) to
/// its end: completions `IOT_KIND_FILE_READ` with `IOT_COMPLETION_MORE`, each a
/// host-owned piece of a receive buffer (`IOT_COMPLETION_PIECE`: released with its
/// `offset`) of up to buffer-size bytes in file order, then a final one
/// with result 0 at end of file (or an error). The stream pauses while the host holds
/// `window` of its buffers (0: a quarter of the receive buffers) and resumes as they
/// are released. `timeout_ms` (0 = none) bounds each chunk's read.
#[no_mangle]
pub extern "C" fn iot_file_read_stream(
    worker: u64,
    file: u64,
    file_offset: u64,
    window: u32,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        w.file_read_stream(file, file_offset, window, tag, timeout_ms)
    })
}

/// Queues an fsync (with `IOT_SYNC_DATA_ONLY`: fdatasync). It runs after the ops queued
/// before it at the file position; writes at explicit offsets still in flight are not
/// waited for, so sync after their completions.
#[no_mangle]
pub extern "C" fn iot_file_sync(
    worker: u64,
    file: u64,
    flags: u32,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| w.file_sync(file, flags, tag, timeout_ms))
}

/// Queues an `fallocate(2)` of `len` bytes at `offset`; `mode` takes the `FALLOC_FL_*`
/// values (0: allocate and extend the size; 1, KEEP_SIZE: allocate only).
#[no_mangle]
pub extern "C" fn iot_file_allocate(
    worker: u64,
    file: u64,
    mode: u32,
    offset: u64,
    len: u64,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        w.file_allocate(file, mode, offset, len, tag, timeout_ms)
    })
}

/// Queues a truncate (or extension) of the file to `len` bytes, in call order with the
/// file's position ops. Needs Linux 6.9 (`IORING_OP_FTRUNCATE`); older kernels return
/// `IOT_E_UNSUPPORTED` from this call.
#[no_mangle]
pub extern "C" fn iot_file_truncate(
    worker: u64,
    file: u64,
    len: u64,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| w.file_truncate(file, len, tag, timeout_ms))
}

/// Queues a stat of an open file. When it succeeds the result is written to `out`
/// just before the completion is drained; `out` must stay valid until then (or until
/// the op is cancelled or the worker freed, after which it is not written).
#[no_mangle]
pub extern "C" fn iot_file_stat(
    worker: u64,
    file: u64,
    out: *mut iot_file_info,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| w.file_stat(file, None, out, tag, timeout_ms))
}

/// Queues a stat of `path` (following symlinks), written to `out` as for
/// `iot_file_stat`. A missing path completes with `-ENOENT`.
#[no_mangle]
pub extern "C" fn iot_path_stat(
    worker: u64,
    path: *const c_char,
    out: *mut iot_file_info,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        let path = owned_path(path)?;
        w.file_stat(0, Some(path), out, tag, timeout_ms)
    })
}

/// Closes an open file now. Its handle goes stale at once; queued and in-flight
/// operations on it complete with `-ECANCELED` (or their result, if the kernel had
/// already done them). Sockets are closed with `iot_socket_close`.
#[no_mangle]
pub extern "C" fn iot_file_close(worker: u64, file: u64) -> i32 {
    on_worker(worker, |w| w.close_file(file))
}
