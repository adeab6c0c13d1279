use super::{boundary, out_ptr};
use crate::registry;

/// Describes the worker's buffer pool: buffer `id` starts at `base + id * size`, for
/// `id < count`. The memory stays valid until `iot_worker_free`.
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

/// Gives a host-owned buffer back (a received one, or an acquired one not sent).
/// Returns `IOT_E_BAD_BUFFER` if the host does not own it (e.g. a double release).
#[no_mangle]
pub extern "C" fn iot_buffer_release(worker: u64, id: u32) -> i32 {
    boundary(|| registry::with(worker, |w| w.release_buffer(id).map(|()| 0)))
}
