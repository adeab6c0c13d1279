use super::{boundary, out_ptr};
use crate::error::IOT_E_BAD_BUFFER;
use crate::payloads;
use crate::registry;

/// Sets the geometry of the process-wide payload pool: `count` payloads of `size`
/// bytes each (size 1..=16 MiB, count 1..=1048576). Only before the pool's first use;
/// `-EBUSY` after. Without this call the pool has 1024 payloads of 64 KiB.
#[no_mangle]
pub extern "C" fn iot_payload_pool_configure(size: u32, count: u32) -> i32 {
    boundary(|| payloads::configure(size, count).map(|()| 0))
}

/// Describes the process-wide payload pool (creating it if needed): payload `p` starts
/// at `base + (p & 0xffffffff) * size`. The memory stays mapped until the process
/// exits, so a view never dangles; its bytes belong to whoever holds the payload.
#[no_mangle]
pub extern "C" fn iot_payload_pool(
    out_base: *mut *mut u8,
    out_size: *mut u32,
    out_count: *mut u32,
) -> i32 {
    boundary(|| {
        let (base, size, count) = (out_ptr(out_base)?, out_ptr(out_size)?, out_ptr(out_count)?);
        let pool = payloads::pool()?;
        *base = pool.base();
        *size = pool.size();
        *count = pool.count();
        Ok(0)
    })
}

/// Returns how many payloads are held by hosts or travelling in messages, process-wide
/// (0 before the pool exists). For leak checks and monitoring.
#[no_mangle]
pub extern "C" fn iot_payloads_in_use() -> i32 {
    boundary(|| Ok(payloads::existing().map_or(0, |p| p.in_use() as i32)))
}

/// Takes a free payload for this worker's host to fill; writes its handle to
/// `out_payload`. `-ENOBUFS` when every payload is in use. Payloads this worker still
/// holds when it is freed return to the pool.
#[no_mangle]
pub extern "C" fn iot_payload_acquire(worker: u64, out_payload: *mut u64) -> i32 {
    boundary(|| {
        let out = out_ptr(out_payload)?;
        // Under the worker's lock, so a payload is never handed to a worker being freed.
        registry::with(worker, |w| {
            *out = payloads::pool()?.acquire(w.id)?;
            Ok(0)
        })
    })
}

/// Gives a payload this worker holds back to the pool. `IOT_E_BAD_HANDLE` if another
/// worker (or a message) holds it under this handle; `IOT_E_BAD_BUFFER` if nobody does
/// (released already, sent on).
#[no_mangle]
pub extern "C" fn iot_payload_release(worker: u64, payload: u64) -> i32 {
    boundary(|| {
        registry::with(worker, |w| {
            let pool = payloads::existing().ok_or(IOT_E_BAD_BUFFER)?;
            pool.release(w.id, payload).map(|()| 0)
        })
    })
}
