use super::{boundary, out_ptr};
use crate::registry;

/// Describes the worker's buffer pool: buffer `id` starts at `base + id * size`, for
/// `id < count`. The memory stays valid until `iot_worker_free`. `count` includes the
/// buffers of the pool's spans (see `iot_buffer_acquire_span`): more than the
/// configured receive and send buffers when it has them.
#[no_mangle]
pub extern "C" fn iot_worker_buffers(
    worker: u64,
    out_base: *mut *mut u8,
    out_size: *mut u32,
    out_count: *mut u32,
) -> i32 {
    boundary(|| {
        let (base, size, count) = (out_ptr(out_base)?, out_ptr(out_size)?, out_ptr(out_count)?);
        registry::with(worker, |w| {
            *base = w.buffers.base();
            *size = w.buffers.buffer_size();
            *count = w.buffers.count();
            Ok(0)
        })
    })
}

/// Takes a free send buffer for the host to fill; writes its id to `out_id`.
/// Returns `-ENOBUFS` when every send buffer is in use (back-pressure: wait for sends
/// to complete).
#[no_mangle]
pub extern "C" fn iot_buffer_acquire(worker: u64, out_id: *mut u32) -> i32 {
    boundary(|| {
        let out = out_ptr(out_id)?;
        registry::with(worker, |w| {
            *out = w.buffers.acquire()?;
            Ok(0)
        })
    })
}

/// Takes a free *span* for the host to fill with one datagram of `len` bytes, more
/// than a buffer holds: consecutive buffers that start at buffer `out_id` and hold at
/// least 65,679 bytes (room for the largest datagram). Send it like a buffer
/// (`iot_udp_send_to`, `iot_unix_send_to`, `iot_send` with `offset + len` up to the
/// span's size), and give it back unsent with `iot_buffer_release`. `-EMSGSIZE` when
/// `len` exceeds a span, or the pool has none (its buffers hold the largest datagram
/// already, or are too small to make spans of: under 2,053 bytes); `-ENOBUFS` when
/// every free span is in use (16; wait for sends to complete). Received datagrams
/// arrive in spans too (see `iot_datagram_recv`).
#[no_mangle]
pub extern "C" fn iot_buffer_acquire_span(worker: u64, len: u32, out_id: *mut u32) -> i32 {
    boundary(|| {
        let out = out_ptr(out_id)?;
        registry::with(worker, |w| {
            if len > w.buffers.span_bytes() {
                return Err(-libc::EMSGSIZE);
            }
            *out = w.buffers.acquire_span()?;
            Ok(0)
        })
    })
}

/// Gives back what the host holds of buffer `id`: the piece of a stream receive that
/// starts at `offset` (the `offset` of the completion that delivered it: receives may
/// share a buffer, see `iot_stats.packs_receives`), or a buffer held whole with
/// `offset` 0 (an acquired buffer or span not sent, a datagram's buffer, a buffer a
/// file read handed back). A receive buffer returns to the ring once the kernel is
/// done with it and every piece of it is back. Returns `IOT_E_BAD_BUFFER` if the host
/// holds no piece or buffer there: a second release, a piece never handed out, an
/// offset other than the piece's start, a piece or buffer lent to a send.
#[no_mangle]
pub extern "C" fn iot_buffer_release(worker: u64, id: u32, offset: u32) -> i32 {
    boundary(|| registry::with(worker, |w| w.release_buffer(id, offset).map(|()| 0)))
}
