use std::ffi::c_char;

use super::{c_str, on_worker, out_ptr};
use crate::tcp::parse_ip;

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
    on_worker(worker, |w| {
        let out = out_ptr(out_socket)?;
        let ip = parse_ip(c_str(ip)?)?;
        *out = w.tcp_listen(ip, port, backlog, flags)?;
        Ok(())
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
    on_worker(worker, |w| {
        let ip = parse_ip(c_str(ip)?)?;
        w.tcp_connect(ip, port, tag, timeout_ms)
    })
}
