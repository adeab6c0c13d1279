//! The worker configuration and the counters a worker reports to the host.

use crate::error::Result;

/// Worker configuration. Fill with `iot_config_default`, then adjust.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct iot_config {
    /// Submission queue entries (rounded up to a power of two by the kernel); the
    /// completion queue gets four times as many.
    pub ring_entries: u32,
    /// Buffers the kernel fills for receives (a provided buffer ring), 1..=32768.
    pub recv_buffer_count: u32,
    /// Buffers the host acquires for sends, 0..=32768.
    pub send_buffer_count: u32,
    /// Size of every buffer in bytes, 1..=16 MiB.
    pub buffer_size: u32,
    /// `IOT_CONFIG_*` bits; others must be 0.
    pub flags: u32,
    /// Receive buffers one stream socket may hold at a time (received and not yet
    /// released or sent on); at the limit it stops receiving until one comes back, so
    /// a peer that does not read cannot take the buffers other connections need.
    /// 0 (the default): an eighth of `recv_buffer_count`, at least 16 (at most all).
    pub socket_buffer_limit: u32,
}

impl Default for iot_config {
    fn default() -> Self {
        iot_config {
            ring_entries: 256,
            recv_buffer_count: 256,
            send_buffer_count: 256,
            buffer_size: 16 * 1024,
            flags: 0,
            socket_buffer_limit: 0,
        }
    }
}

/// Config flag: also register the buffer pool as fixed buffers, so file reads and
/// writes skip pinning pages on every operation. The pool's memory is then locked and
/// counts against `RLIMIT_MEMLOCK` (without `CAP_IPC_LOCK`); over the limit,
/// `iot_worker_new` fails with `IOT_E_MEMLOCK`.
pub const IOT_CONFIG_REGISTER_BUFFERS: u32 = 1;

const MAX_RING_BUFFERS: u32 = 1 << 15;
const MAX_BUFFER_SIZE: u32 = 16 << 20;

impl iot_config {
    pub(crate) fn validate(&self) -> Result<()> {
        let ok = (1..=32768).contains(&self.ring_entries)
            && (1..=MAX_RING_BUFFERS).contains(&self.recv_buffer_count)
            && self.send_buffer_count <= MAX_RING_BUFFERS
            && (1..=MAX_BUFFER_SIZE).contains(&self.buffer_size)
            && self.flags & !IOT_CONFIG_REGISTER_BUFFERS == 0;
        if ok {
            Ok(())
        } else {
            Err(-libc::EINVAL)
        }
    }
}

/// Counters for leak checks and monitoring.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(non_camel_case_types)]
pub struct iot_stats {
    /// Operations the kernel still owns (including receives waiting for buffers).
    pub ops_in_flight: u32,
    /// Open sockets (listeners, streams, datagram sockets) and files.
    pub sockets_open: u32,
    /// Buffers held by the host or by in-flight sends.
    pub buffers_outstanding: u32,
    /// Completions ready to drain without entering the kernel.
    pub completions_ready: u32,
}
