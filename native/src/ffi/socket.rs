//! Socket calls shared by every kind of socket: accept on any listener, receive,
//! send, shutdown and close on connections, addresses and options.

use std::ffi::c_char;

use super::{boundary, copy_bytes, in_slice, on_worker, out_ptr, out_slice};
use crate::address::address_text;
use crate::error::Result;
use crate::registry;

/// Queues an accept on a TCP or Unix stream `listener`. With `IOT_OP_MULTISHOT` it
/// completes once per connection (flag `IOT_COMPLETION_MORE`) until cancelled or the
/// listener is closed; `timeout_ms` (0 = none) is for one-shot accepts only. Each
/// completion carries the new socket in `handle` (result 0). Transient errors
/// (`-EMFILE`, `-ENFILE`, `-ENOBUFS`, `-ENOMEM`, `-ECONNABORTED`) arrive as completions
/// with `IOT_COMPLETION_MORE` too: a multishot accept re-arms itself after a short
/// back-off (5 ms, doubling to 160 ms while the error persists); only other errors
/// end it.
#[no_mangle]
pub extern "C" fn iot_accept(
    worker: u64,
    listener: u64,
    tag: u64,
    flags: u32,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| w.accept(listener, tag, flags, timeout_ms))
}

/// The former name of `iot_accept`, kept while hosts move over; same arguments and
/// behaviour.
#[no_mangle]
pub extern "C" fn iot_tcp_accept(
    worker: u64,
    listener: u64,
    tag: u64,
    flags: u32,
    timeout_ms: u32,
) -> i32 {
    iot_accept(worker, listener, tag, flags, timeout_ms)
}

/// Queues a receive on a stream socket. Data lands in a pool buffer the kernel picks,
/// right after the previous receive's bytes when receives are packed
/// (`iot_stats.packs_receives`); the completion names the piece (`IOT_COMPLETION_BUFFER`,
/// `buffer_id`, `offset`, `result` bytes) and the host holds it until
/// `iot_buffer_release(worker, buffer_id, offset)` or a send of its bytes. Result 0
/// means the peer closed its side. With `IOT_OP_MULTISHOT` it completes once per chunk
/// until end of stream, error or cancel. When the pool runs dry the receive waits (no
/// data is lost) and resumes as soon as a buffer comes back. A socket holding
/// `socket_buffer_limit` of its received pieces (see `iot_config`) also waits, until
/// one of them is released or sent on, so one peer cannot take every buffer; past 2
/// pieces it also waits while half the pool is out, until the pool has room again. One
/// receive of a socket waits at a time: another that would wait beside it ends with
/// `-EBUSY`. A receive that finds the end of a stream whose peer reset it after a send
/// met the reset ends with `-ECONNRESET`, not 0.
/// `timeout_ms` (0 = none) is for one-shot receives only.
/// Datagram sockets use `iot_datagram_recv` (`IOT_E_WRONG_SOCKET_KIND` here), which
/// reports senders and truncation.
#[no_mangle]
pub extern "C" fn iot_recv(worker: u64, socket: u64, tag: u64, flags: u32, timeout_ms: u32) -> i32 {
    on_worker(worker, |w| w.recv(socket, tag, flags, timeout_ms))
}

/// Queues a send of `len` bytes from host buffer `buffer_id` at `offset`, on a stream
/// socket or a connected datagram socket (`iot_udp_connect`): an acquired buffer, or a
/// received one, whose bytes must lie inside the one piece the host holds (zero-copy
/// echo). Stream sends on one socket go out in the order queued; each completes only
/// when all its bytes were sent (result = `len`) or with an error. A datagram send goes
/// out at once as one datagram. A stream send (or shutdown) that fails, times out or is
/// cancelled once started ends those queued behind it on its socket, and those queued
/// later, with `-ECANCELED`, unsent: the peer never sees a gap in the stream. The
/// buffer (or received piece) belongs to the send from this call on and returns to the
/// pool when it completes, whatever the outcome; if this call fails it stays with the
/// host.
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
    on_worker(worker, |w| {
        w.send(socket, buffer_id, offset, len, tag, timeout_ms)
    })
}

/// Queues a shutdown (`IOT_SHUTDOWN_*`) behind every send queued before it.
#[no_mangle]
pub extern "C" fn iot_socket_shutdown(worker: u64, socket: u64, how: i32, tag: u64) -> i32 {
    on_worker(worker, |w| w.shutdown_socket(socket, how, tag))
}

/// Closes a socket now. Its handle goes stale at once; operations on it complete with
/// `-ECANCELED` (receive buffers are recycled, not delivered). Closing a listener stops
/// its accepts. Completions the worker already took from the kernel before the close
/// and holds for the next drain (a flush does that when the host falls behind) are
/// still delivered: received bytes to release, accepted sockets to use or close. A
/// Unix socket bound to a path removes its socket file (unless another file replaced
/// it meanwhile). Files are closed with `iot_file_close`.
#[no_mangle]
pub extern "C" fn iot_socket_close(worker: u64, socket: u64) -> i32 {
    on_worker(worker, |w| w.close_socket(socket))
}

/// Writes the socket's local (`IOT_ADDRESS_LOCAL`) or peer (`IOT_ADDRESS_PEER`) address
/// as text into `buf` (NUL-terminated, truncated to `len`) and its port to `out_port`.
/// IP sockets give the numeric IP; Unix sockets give the path (`@name` for abstract
/// names, empty when unnamed) and port 0. Returns the text's full length.
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
        write_address(&addr, buf, len, port)
    })
}

/// Writes `addr` as text into `buf` (NUL-terminated, truncated to `len`) and its port
/// to `port`; returns the text's full length.
pub(crate) fn write_address(
    addr: &socket2::SockAddr,
    buf: *mut c_char,
    len: usize,
    port: &mut u16,
) -> Result<i32> {
    let (text, addr_port) = address_text(addr)?;
    *port = addr_port;
    Ok(copy_bytes(text.as_bytes(), buf, len) as i32)
}

/// Sets socket option `option` (`IOT_OPTION_*`) to `value` (0/1 for on/off options).
#[no_mangle]
pub extern "C" fn iot_socket_set_option(worker: u64, socket: u64, option: u32, value: u32) -> i32 {
    on_worker(worker, |w| w.set_option(socket, option, value))
}

/// Reads socket option `option` (`IOT_OPTION_*` except `IOT_OPTION_MULTICAST_INTERFACE`)
/// into `out_value`.
#[no_mangle]
pub extern "C" fn iot_socket_get_option(
    worker: u64,
    socket: u64,
    option: u32,
    out_value: *mut u32,
) -> i32 {
    boundary(|| {
        let out = out_ptr(out_value)?;
        *out = registry::with(worker, |w| w.get_option(socket, option))?;
        Ok(0)
    })
}

/// Sets socket option `option` at `level` (`SOL_SOCKET`, `IPPROTO_TCP`, ...) to the
/// `len` bytes at `value` (NULL only when `len` is 0), as `setsockopt(2)` takes them,
/// on any socket. Errors are the kernel's, as negative errno (`-EINVAL`,
/// `-ENOPROTOOPT`, ...).
#[no_mangle]
pub extern "C" fn iot_socket_set_raw_option(
    worker: u64,
    socket: u64,
    level: i32,
    option: i32,
    value: *const u8,
    len: u32,
) -> i32 {
    boundary(|| {
        let value = in_slice(value, len)?;
        registry::with(worker, |w| w.set_raw_option(socket, level, option, value))?;
        Ok(0)
    })
}

/// Reads socket option `option` at `level` as `getsockopt(2)` does: `*inout_len` is
/// the room at `out` (NULL only when it is 0) on entry, and the count of bytes the
/// kernel wrote on success. Errors are the kernel's, as negative errno.
#[no_mangle]
pub extern "C" fn iot_socket_get_raw_option(
    worker: u64,
    socket: u64,
    level: i32,
    option: i32,
    out: *mut u8,
    inout_len: *mut u32,
) -> i32 {
    boundary(|| {
        let len = out_ptr(inout_len)?;
        let room = out_slice(out, *len)?;
        *len = registry::with(worker, |w| w.get_raw_option(socket, level, option, room))? as u32;
        Ok(0)
    })
}

/// Writes to `out_count` how many packets the kernel dropped for this socket because
/// its receive queue was full (what `SO_RXQ_OVFL` reports), since it was created. On
/// loopback that is the only way a datagram gets lost: raise `IOT_OPTION_RECV_BUFFER`
/// or receive faster.
#[no_mangle]
pub extern "C" fn iot_socket_dropped(worker: u64, socket: u64, out_count: *mut u32) -> i32 {
    boundary(|| {
        let out = out_ptr(out_count)?;
        *out = registry::with(worker, |w| w.dropped_count(socket))?;
        Ok(0)
    })
}
