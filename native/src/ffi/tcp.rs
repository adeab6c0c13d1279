use std::ffi::c_char;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr::null;

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
/// `timeout_ms`, ...) no socket remains. Same as `iot_tcp_connect_from` with no source.
#[no_mangle]
pub extern "C" fn iot_tcp_connect(
    worker: u64,
    ip: *const c_char,
    port: u16,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    iot_tcp_connect_from(worker, ip, port, null(), 0, tag, timeout_ms)
}

/// Queues a connect as `iot_tcp_connect` does, from a chosen local end: the socket is
/// bound to numeric address `source_ip` (NULL: any address of the peer's family) and
/// `source_port` (0: any) before connecting. A source of the other family fails with
/// `-EINVAL`; one in use (without `SO_REUSEADDR`) or not local fails at once
/// (`-EADDRINUSE`, `-EADDRNOTAVAIL`) and no socket remains.
#[no_mangle]
pub extern "C" fn iot_tcp_connect_from(
    worker: u64,
    ip: *const c_char,
    port: u16,
    source_ip: *const c_char,
    source_port: u16,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        let ip = parse_ip(c_str(ip)?)?;
        let source = match (source_ip.is_null(), source_port) {
            (true, 0) => None,
            (true, _) => Some(SocketAddr::new(unspecified_like(ip), source_port)),
            (false, _) => Some(SocketAddr::new(parse_ip(c_str(source_ip)?)?, source_port)),
        };
        if source.is_some_and(|s| s.is_ipv4() != ip.is_ipv4()) {
            return Err(-libc::EINVAL);
        }
        w.tcp_connect(ip, port, source, tag, timeout_ms)
    })
}

/// The any-address of `ip`'s family.
fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}
