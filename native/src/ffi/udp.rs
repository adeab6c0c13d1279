use std::ffi::c_char;

use super::{c_str, on_worker, out_ptr};
use crate::tcp::parse_ip;

/// Opens a UDP socket bound to numeric address `ip` and `port` (0 picks a free one).
/// `flags`: `IOT_BIND_REUSEADDR`, `IOT_LISTEN_REUSEPORT`, `IOT_LISTEN_V6ONLY`. Writes
/// the socket handle to `out_socket`. Receive with `iot_datagram_recv`, send with
/// `iot_udp_send_to` (or `iot_send` after `iot_udp_connect`).
#[no_mangle]
pub extern "C" fn iot_udp_bind(
    worker: u64,
    ip: *const c_char,
    port: u16,
    flags: u32,
    out_socket: *mut u64,
) -> i32 {
    on_worker(worker, |w| {
        let out = out_ptr(out_socket)?;
        let ip = parse_ip(c_str(ip)?)?;
        *out = w.udp_bind(ip, port, flags)?;
        Ok(())
    })
}

/// Gives a UDP socket a default peer (synchronous: nothing goes on the wire). Then
/// `iot_send` sends there, only that peer's datagrams arrive, and ICMP errors from it
/// (`-ECONNREFUSED`) are reported by the next receive.
#[no_mangle]
pub extern "C" fn iot_udp_connect(worker: u64, socket: u64, ip: *const c_char, port: u16) -> i32 {
    on_worker(worker, |w| {
        let ip = parse_ip(c_str(ip)?)?;
        w.udp_connect(socket, ip, port)
    })
}

/// Queues one datagram of `len` bytes from host buffer `buffer_id` at `offset` to
/// numeric address `ip` and `port`. A datagram larger than a buffer goes from a span
/// (`iot_buffer_acquire_span`); past the protocol's maximum (65,507 bytes over IPv4,
/// 65,527 over IPv6) the send fails with `-EMSGSIZE`. The buffer belongs to the send
/// from this call on and returns to the pool when it completes (result = `len`, or an
/// error); if this call fails it stays with the host. Datagram sends go out at
/// once, several in flight: queued together they leave in order unless the socket's
/// send buffer is full. `timeout_ms` (0 = none) bounds the wait for buffer space.
#[no_mangle]
pub extern "C" fn iot_udp_send_to(
    worker: u64,
    socket: u64,
    buffer_id: u32,
    offset: u32,
    len: u32,
    ip: *const c_char,
    port: u16,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        let addr = std::net::SocketAddr::new(parse_ip(c_str(ip)?)?, port).into();
        w.datagram_send_to(socket, buffer_id, offset, len, addr, tag, timeout_ms)
    })
}

/// Joins multicast group `group` (numeric IPv4 or IPv6) on the interface with index
/// `interface_index` (0: the kernel's choice by route). Datagrams sent to the group
/// and the socket's port then arrive like any other.
#[no_mangle]
pub extern "C" fn iot_udp_join_multicast(
    worker: u64,
    socket: u64,
    group: *const c_char,
    interface_index: u32,
) -> i32 {
    multicast(worker, socket, group, interface_index, true)
}

/// Leaves a multicast group joined with `iot_udp_join_multicast` (same arguments).
#[no_mangle]
pub extern "C" fn iot_udp_leave_multicast(
    worker: u64,
    socket: u64,
    group: *const c_char,
    interface_index: u32,
) -> i32 {
    multicast(worker, socket, group, interface_index, false)
}

fn multicast(worker: u64, socket: u64, group: *const c_char, interface: u32, join: bool) -> i32 {
    on_worker(worker, |w| {
        let group = parse_ip(c_str(group)?)?;
        w.multicast_membership(socket, group, interface, join)
    })
}
