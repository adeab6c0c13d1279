use std::ffi::c_char;

use super::{boundary, c_str, copy_text, out_ptr};
use crate::registry;
use crate::tcp::parse_ip;

/// Shut down the receiving side.
pub const IOT_SHUTDOWN_READ: i32 = 0;
/// Shut down the sending side (sends queued before it still go out first).
pub const IOT_SHUTDOWN_WRITE: i32 = 1;
/// Shut down both sides.
pub const IOT_SHUTDOWN_BOTH: i32 = 2;

/// Opens a listening TCP socket on numeric address `ip` ("127.0.0.1", "::1", "::")
/// and `port` (0 picks a free one). `backlog` 0 means the system maximum; `flags` are
/// `IOT_LISTEN_*`. Writes the listener's socket handle to `out_socket`.
#[no_mangle]
pub extern "C" fn iot_tcp_listen(
    worker: u64,
    ip: *const c_char,
    port: u16,
    backlog: u32,
    flags: u32,
    out_socket: *mut u64,
) -> i32 {
    boundary(|| {
        let out = out_ptr(out_socket)?;
        let ip = parse_ip(c_str(ip)?)?;
        registry::with(worker, |w| {
            *out = w.tcp_listen(ip, port, backlog, flags)?;
            Ok(0)
        })
    })
}

/// Queues an accept on `listener`. With `IOT_OP_MULTISHOT` it completes once per
/// connection (flag `IOT_COMPLETION_MORE`) until cancelled; `timeout_ms` (0 = none) is
/// for one-shot accepts only. Each completion carries the new socket in `handle`.
#[no_mangle]
pub extern "C" fn iot_tcp_accept(
    worker: u64,
    listener: u64,
    tag: u64,
    flags: u32,
    timeout_ms: u32,
) -> i32 {
    boundary(|| {
        registry::with(worker, |w| {
            w.tcp_accept(listener, tag, flags, timeout_ms).map(|()| 0)
        })
    })
}

/// Queues a connect to numeric address `ip` and `port`. The completion carries the new
/// socket in `handle` on success; on failure (`-ECONNREFUSED`, `-ETIMEDOUT` after
/// `timeout_ms`, ...) no socket remains.
#[no_mangle]
pub extern "C" fn iot_tcp_connect(
    worker: u64,
    ip: *const c_char,
    port: u16,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    boundary(|| {
        let ip = parse_ip(c_str(ip)?)?;
        registry::with(worker, |w| {
            w.tcp_connect(ip, port, tag, timeout_ms).map(|()| 0)
        })
    })
}

/// Queues a receive on a stream socket. Data lands in a pool buffer the kernel picks;
/// the completion names it (`IOT_COMPLETION_BUFFER`, `buffer_id`) and the host owns it
/// until `iot_buffer_release`. Result 0 means the peer closed its side. With
/// `IOT_OP_MULTISHOT` it completes once per chunk until end of stream, error or cancel.
/// When the pool runs dry the receive waits (no data is lost) and resumes as soon as a
/// buffer is released. `timeout_ms` (0 = none) is for one-shot receives only.
#[no_mangle]
pub extern "C" fn iot_recv(worker: u64, socket: u64, tag: u64, flags: u32, timeout_ms: u32) -> i32 {
    boundary(|| {
        registry::with(worker, |w| {
            w.recv(socket, tag, flags, timeout_ms).map(|()| 0)
        })
    })
}

/// Queues a send of `len` bytes from host buffer `buffer_id` at `offset`. Sends on one
/// socket go out in the order queued; each completes only when all its bytes were sent
/// (result = `len`) or with an error. The buffer belongs to the send from this call on
/// and returns to the pool when it completes, whatever the outcome.
/// `timeout_ms` (0 = none) bounds each wait for socket space.
#[no_mangle]
pub extern "C" fn iot_send(
    worker: u64,
    socket: u64,
    buffer_id: u32,
    offset: u32,
    len: u32,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    boundary(|| {
        registry::with(worker, |w| {
            w.send(socket, buffer_id, offset, len, tag, timeout_ms)
                .map(|()| 0)
        })
    })
}

/// Queues a shutdown (`IOT_SHUTDOWN_*`) behind every send queued before it.
#[no_mangle]
pub extern "C" fn iot_socket_shutdown(worker: u64, socket: u64, how: i32, tag: u64) -> i32 {
    boundary(|| registry::with(worker, |w| w.shutdown_socket(socket, how, tag).map(|()| 0)))
}

/// Closes a socket now. Its handle goes stale at once; operations on it complete with
/// `-ECANCELED` (receive buffers are recycled, not delivered). Closing a listener stops
/// its accepts.
#[no_mangle]
pub extern "C" fn iot_socket_close(worker: u64, socket: u64) -> i32 {
    boundary(|| registry::with(worker, |w| w.close_socket(socket).map(|()| 0)))
}

/// Writes the socket's local (`IOT_ADDRESS_LOCAL`) or peer (`IOT_ADDRESS_PEER`) IP
/// address as text into `buf` (NUL-terminated, truncated to `len`) and its port to
/// `out_port`. Returns the text's full length.
#[no_mangle]
pub extern "C" fn iot_socket_address(
    worker: u64,
    socket: u64,
    which: u32,
    buf: *mut c_char,
    len: usize,
    out_port: *mut u16,
) -> i32 {
    boundary(|| {
        let port = out_ptr(out_port)?;
        let addr = registry::with(worker, |w| w.socket_address(socket, which))?;
        let addr = addr.as_socket().ok_or(-libc::EAFNOSUPPORT)?;
        *port = addr.port();
        Ok(copy_text(&addr.ip().to_string(), buf, len) as i32)
    })
}
