use super::boundary;
use crate::mailbox;
use crate::registry;

/// Returns 1 if this kernel supports messages between workers (`IORING_OP_MSG_RING`
/// with passed flags, Linux >= 6.3), else 0. Without it every send fails with
/// `IOT_E_UNSUPPORTED`; everything else works.
#[no_mangle]
pub extern "C" fn iot_messaging_supported() -> i32 {
    boundary(|| Ok(i32::from(mailbox::supported())))
}

/// Queues a message for worker `target`: it drains an `IOT_KIND_MESSAGE` completion
/// with `tag` and `value`. Goes out with the next flush; this worker then drains an
/// `IOT_KIND_MESSAGE_SENT` completion with `tag` (result 0: posted into the target's
/// queue). Messages from one worker to another arrive in the order they were queued.
/// Fails at once with `IOT_E_WORKER_GONE` if `target` is unknown, freed or stopped,
/// `-EBUSY` if the submission queue is full and cannot be flushed.
#[no_mangle]
pub extern "C" fn iot_message_send(worker: u64, target: u64, tag: u64, value: u32) -> i32 {
    boundary(|| registry::with(worker, |w| w.send_message(target, tag, value).map(|()| 0)))
}

/// Queues a message carrying the first `len` bytes of `payload` (see
/// `iot_payload_acquire`) for worker `target`, which drains an `IOT_KIND_PAYLOAD`
/// completion naming the payload under a new handle. The payload belongs to the message
/// from this call on: this host's handle goes stale. If the message cannot be delivered
/// the `IOT_KIND_MESSAGE_SENT` completion brings it back (its new handle in `handle`).
/// Fails with `IOT_E_BAD_HANDLE` if another worker holds `payload`, `IOT_E_BAD_BUFFER`
/// if nobody holds it under this handle (released, sent on), `-EINVAL` if
/// `len` exceeds the payload size, `IOT_E_WORKER_GONE` as for `iot_message_send`.
#[no_mangle]
pub extern "C" fn iot_message_send_payload(
    worker: u64,
    target: u64,
    tag: u64,
    payload: u64,
    len: u32,
) -> i32 {
    boundary(|| {
        registry::with(worker, |w| {
            w.send_payload(target, tag, payload, len).map(|()| 0)
        })
    })
}

/// Hands connected stream `socket` to worker `target`, which drains an `IOT_KIND_SOCKET`
/// completion with its own handle for it. The handle goes stale here at once. The
/// socket must be idle here: `-EBUSY` while an operation or a queued send uses it
/// (hand it over straight from its accept). If the hand-off cannot be delivered, the
/// `IOT_KIND_MESSAGE_SENT` completion brings the socket back under a new handle; if the
/// target is freed with the hand-off unprocessed, the socket is closed, never leaked.
/// `-EAGAIN` when too many sockets are in transit in the process.
#[no_mangle]
pub extern "C" fn iot_socket_handoff(worker: u64, socket: u64, target: u64, tag: u64) -> i32 {
    boundary(|| {
        registry::with(worker, |w| {
            w.handoff_socket(socket, target, tag).map(|()| 0)
        })
    })
}

/// Stops accepting messages: sends to this worker fail with `IOT_E_WORKER_GONE` from
/// now on. Keep draining: everything already on its way arrives, then one
/// `IOT_KIND_STOPPED` completion says nothing more will (and every message this worker
/// sent was reported); free the worker after it to lose no message. Other operations
/// are not affected. Calling it again does nothing.
#[no_mangle]
pub extern "C" fn iot_worker_stop(worker: u64) -> i32 {
    boundary(|| {
        registry::with(worker, |w| {
            w.stop_messages();
            Ok(0)
        })
    })
}
