use std::ffi::c_char;

use super::{c_bytes, on_worker, out_ptr};

/// Opens a listening Unix stream socket at `path`: a filesystem path, or `@name` for
/// `name` in the abstract namespace (no file). An existing file at the path fails with
/// `-EADDRINUSE`, unless `flags` has `IOT_UNIX_REPLACE_STALE` and it is a socket
/// nobody listens on any more. Closing the listener removes the socket file it made.
/// Accept with `iot_accept`; connections then work like TCP ones. `backlog` 0 means
/// the system maximum. Writes the listener's handle to `out_socket`.
#[no_mangle]
pub extern "C" fn iot_unix_listen(
    worker: u64,
    path: *const c_char,
    backlog: u32,
    flags: u32,
    out_socket: *mut u64,
) -> i32 {
    on_worker(worker, |w| {
        let out = out_ptr(out_socket)?;
        let path = c_bytes(path)?;
        *out = w.unix_listen(path, backlog, flags)?;
        Ok(())
    })
}

/// Queues a connect to the Unix stream socket at `path` (`@name`: abstract). The
/// completion carries the new socket in `handle` on success; on failure
/// (`-ENOENT`, `-ECONNREFUSED`, `-ETIMEDOUT` after `timeout_ms`, ...) no socket remains.
#[no_mangle]
pub extern "C" fn iot_unix_connect(
    worker: u64,
    path: *const c_char,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        let path = c_bytes(path)?;
        w.unix_connect(path, tag, timeout_ms)
    })
}

/// Opens a Unix datagram socket bound to `path` (`@name`: abstract; the same stale-file
/// rules and `flags` as `iot_unix_listen`), or with `path` NULL to a kernel-chosen
/// abstract name, so peers can still answer. Receive with `iot_datagram_recv`, send
/// with `iot_unix_send_to`. Writes the socket handle to `out_socket`.
#[no_mangle]
pub extern "C" fn iot_unix_datagram_bind(
    worker: u64,
    path: *const c_char,
    flags: u32,
    out_socket: *mut u64,
) -> i32 {
    on_worker(worker, |w| {
        let out = out_ptr(out_socket)?;
        let path = if path.is_null() {
            None
        } else {
            Some(c_bytes(path)?)
        };
        *out = w.unix_datagram_bind(path, flags)?;
        Ok(())
    })
}

/// Queues one datagram of `len` bytes from host buffer `buffer_id` at `offset` to the
/// Unix datagram socket at `path` (`@name`: abstract). Buffer ownership, ordering and
/// `timeout_ms` as for `iot_udp_send_to`. A receiver whose queue is full makes the
/// send wait (bound it with `timeout_ms`); a missing one fails with `-ENOENT` or
/// `-ECONNREFUSED`.
#[no_mangle]
pub extern "C" fn iot_unix_send_to(
    worker: u64,
    socket: u64,
    buffer_id: u32,
    offset: u32,
    len: u32,
    path: *const c_char,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        let addr = crate::address::unix_addr(c_bytes(path)?)?;
        w.datagram_send_to(socket, buffer_id, offset, len, addr, tag, timeout_ms)
    })
}
