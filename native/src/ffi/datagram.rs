use std::ffi::c_char;

use super::{boundary, on_worker, out_ptr};
use crate::registry;

/// Queues a receive on a UDP or Unix datagram socket. Each datagram lands in a pool
/// buffer the host then owns (`IOT_COMPLETION_BUFFER`, `buffer_id`, release it with
/// `iot_buffer_release`): the payload starts at the completion's `offset` and is
/// `result` bytes long (0 for an empty datagram); `iot_datagram_sender` reads who sent
/// it. Where the pool has spans (buffers under 65,679 bytes and not tiny, see
/// `iot_buffer_acquire_span`), every datagram lands in a span, so the largest one
/// arrives whole (65,507 bytes over IPv4, 65,527 over IPv6; Unix ones up to the span
/// less `offset`, at least 65,535): its bytes run on past the first buffer,
/// contiguous, and releasing `buffer_id` gives the whole span back. A datagram longer
/// than the span (or buffer) minus `offset` is cut and flagged
/// `IOT_COMPLETION_TRUNCATED`, never silently. With `IOT_OP_MULTISHOT` it completes
/// once per datagram (`IOT_COMPLETION_MORE`) until error or cancel; when the pool runs
/// dry (its 64 ring spans, or the receive ring) it waits for a released one while the
/// kernel queues datagrams (and counts what overflows: `iot_socket_dropped`).
/// `timeout_ms` (0 = none) is for one-shot receives only. Needs buffers larger than
/// the 144-byte header. A one-shot receive lands in a free span, else in one of the
/// pool's send buffers (the kernel gives ring buffers only to non-empty multishot
/// datagrams): it takes one when queued, `-ENOBUFS` if none is free, and returns it to
/// the pool if the receive fails.
#[no_mangle]
pub extern "C" fn iot_datagram_recv(
    worker: u64,
    socket: u64,
    tag: u64,
    flags: u32,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| w.datagram_recv(socket, tag, flags, timeout_ms))
}

/// Reads the sender of the datagram in host buffer `buffer_id` (from an
/// `IOT_KIND_RECV_FROM` completion) without a system call: writes its address as text
/// into `buf` (NUL-terminated, truncated to `len`; numeric IP, or a Unix path with
/// `@name` for abstract names and empty for an unbound sender) and its port (0 for
/// Unix) to `out_port`. Returns the text's full length. `IOT_E_BAD_BUFFER` when the
/// host does not own the buffer.
#[no_mangle]
pub extern "C" fn iot_datagram_sender(
    worker: u64,
    buffer_id: u32,
    buf: *mut c_char,
    len: usize,
    out_port: *mut u16,
) -> i32 {
    boundary(|| {
        let port = out_ptr(out_port)?;
        let addr = registry::with(worker, |w| w.datagram_sender(buffer_id))?;
        super::socket::write_address(&addr, buf, len, port)
    })
}
