use super::{boundary, in_slice, out_ptr};
use crate::transport;

/// Asks every worker of the process to stop: each drains an `IOT_KIND_STOP_REQUESTED`
/// completion with `value` (workers already stopped are skipped). Callable from any
/// thread, with or without a worker of its own. Returns how many workers were asked.
/// Not a leaf call: it waits for the kernel to post the messages.
#[no_mangle]
pub extern "C" fn iot_transport_request_stop(value: u32) -> i32 {
    boundary(|| transport::request_stop(value).map(|n| n.min(i32::MAX as u32) as i32))
}

/// Picks, among `count` worker handles at `candidates`, the one with the lowest load
/// (open sockets at its last drain plus messages on their way to it) and writes it to
/// `out_worker`; ties rotate from call to call. Workers freed or stopped are skipped;
/// `IOT_E_WORKER_GONE` if none is left. Takes no worker lock: an acceptor can call it
/// for every connection it hands over.
#[no_mangle]
pub extern "C" fn iot_worker_least_loaded(
    candidates: *const u64,
    count: u32,
    out_worker: *mut u64,
) -> i32 {
    boundary(|| {
        let out = out_ptr(out_worker)?;
        *out = transport::least_loaded(in_slice(candidates, count)?)?;
        Ok(0)
    })
}
