//! The worker configuration and the counters a worker reports to the host.

use crate::error::Result;

/// Worker configuration. Fill with `iot_config_default`, then adjust.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct iot_config {
    /// Submission queue entries (rounded up to a power of two by the kernel). The
    /// completion queue holds what can be outstanding at once: four completions per
    /// entry plus one per buffer, and at least 16 per receive buffer (16,384 with the
    /// default 1,024: a turn of 10,000 busy connections); the next power of two of
    /// that, at most 65,536.
    pub ring_entries: u32,
    /// Receive buffers at most, 1..=32768. The kernel fills them through a provided
    /// buffer ring that starts with up to 256 of them (256 KiB of them when receives
    /// are packed, see `iot_stats.packs_receives`) and grows when receives find it
    /// empty, by what they need, at most doubling: at the drain's end up to a budget
    /// when packed (16 KiB per open socket, at least 1 MiB), past it when a receive
    /// still finds it empty a drain later. The memory of all is reserved up front
    /// (address space), pages become resident as the ring grows into them.
    pub recv_buffer_count: u32,
    /// Buffers the host acquires for sends, 0..=32768.
    pub send_buffer_count: u32,
    /// Size of every buffer in bytes, 1..=16 MiB.
    pub buffer_size: u32,
    /// `IOT_CONFIG_*` bits; others must be 0.
    pub flags: u32,
    /// Received pieces one stream socket may hold at a time (received and not yet
    /// released or sent on; each pins at most one buffer); at the limit it stops
    /// receiving until one comes back, so a peer that does not read cannot take the
    /// buffers other connections need. A receive the kernel keeps armed stops at a byte
    /// count, which arrivals smaller than a buffer can fill with a few more pieces
    /// before the worker stops it. 0 (the default): an eighth of 256, i.e. 32 (at
    /// most `recv_buffer_count`).
    pub socket_buffer_limit: u32,
}

impl Default for iot_config {
    fn default() -> Self {
        iot_config {
            ring_entries: 256,
            recv_buffer_count: 1024,
            send_buffer_count: 256,
            buffer_size: 64 * 1024,
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
/// Config flag: every stream receive takes a whole buffer, as on kernels before Linux
/// 6.12, instead of packing receives into shared buffers (see `iot_stats.packs_receives`).
/// For comparisons and tests; packing needs far less memory when many connections
/// receive small messages at once.
pub const IOT_CONFIG_WHOLE_BUFFERS: u32 = 2;
/// Config flag: every stream receive is one-shot kernel attempts the worker resubmits,
/// as on kernels before Linux 6.17 (which have no byte limit for a multishot receive;
/// the worker falls back on its own there), instead of a multishot receive the kernel
/// keeps armed. For comparisons and tests.
pub const IOT_CONFIG_ONE_SHOT_RECEIVES: u32 = 4;

/// Config flag: the worker is created, driven and freed on one thread, the one that
/// calls `iot_worker_new`; a call on it from any other thread fails with
/// `IOT_E_WRONG_THREAD`. The kernel then runs the worker's completion work when that
/// thread waits (`iot_worker_wait`), in one batch, instead of as task work queued per
/// completion (`IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`): 8-10% less
/// CPU per echo round trip at 10,000 connections, and a backlog of completions can no
/// longer build up while the host is busy. Completions appear only once the thread
/// waits, and no notifier can watch the worker (`iot_worker_set_notifier` fails with
/// `-EINVAL`): for hosts that own a thread, not for a Dart isolate, which may run on a
/// different thread at every turn. Messages from other workers still arrive.
pub const IOT_CONFIG_SINGLE_THREAD: u32 = 8;

const MAX_RING_BUFFERS: u32 = 1 << 15;
const MAX_BUFFER_SIZE: u32 = 16 << 20;
/// The kernel's limit (`IORING_MAX_CQ_ENTRIES`).
const MAX_CQ_ENTRIES: u32 = 1 << 16;
/// Completion queue entries a worker has at least per receive buffer (16,384, 256 KiB,
/// with the default 1,024): packed receives share buffers, so the receives that can
/// complete at once are not bounded by the buffers. A stream socket's receive
/// completes as task work at the worker's next `io_uring_enter`, so one enter can post
/// a completion for every busy connection: 10,000 connections echoing overflowed the
/// 4,096 entries that four per submission entry and one per buffer gave
/// (`tests/completion_queue.rs`).
const MIN_CQ_ENTRIES_PER_RECV_BUFFER: u32 = 16;

impl iot_config {
    /// Completion queue entries: room for every completion that can be outstanding at
    /// once (see `ring_entries`), so the kernel need not park any in its overflow list.
    pub(crate) fn completion_entries(&self) -> u32 {
        let wanted = self
            .ring_entries
            .saturating_mul(4)
            .saturating_add(self.recv_buffer_count)
            .saturating_add(self.send_buffer_count)
            .max(
                self.recv_buffer_count
                    .saturating_mul(MIN_CQ_ENTRIES_PER_RECV_BUFFER),
            );
        wanted
            .checked_next_power_of_two()
            .unwrap_or(u32::MAX)
            .min(MAX_CQ_ENTRIES)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let ok = (1..=32768).contains(&self.ring_entries)
            && (1..=MAX_RING_BUFFERS).contains(&self.recv_buffer_count)
            && self.send_buffer_count <= MAX_RING_BUFFERS
            && (1..=MAX_BUFFER_SIZE).contains(&self.buffer_size)
            && self.flags
                & !(IOT_CONFIG_REGISTER_BUFFERS
                    | IOT_CONFIG_WHOLE_BUFFERS
                    | IOT_CONFIG_ONE_SHOT_RECEIVES
                    | IOT_CONFIG_SINGLE_THREAD)
                == 0;
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
    /// Drains and flushes that found completions parked in the kernel's overflow list
    /// (the completion queue was full). 0 in a steady state: the queue is sized for
    /// the load, and a host that falls behind has its completions moved out of the
    /// queue into the worker's own (see `iot_worker_flush`).
    pub completion_overflows: u32,
    /// Receive buffers the receive ring has grown to (see `recv_buffer_count`).
    pub recv_ring_buffers: u32,
    /// Pieces of receive buffers held by the host or by in-flight sends (see
    /// `packs_receives`); `buffers_outstanding` counts a buffer once however many of
    /// its pieces are out.
    pub pieces_outstanding: u32,
    /// 1 when stream receives are packed into shared buffers: each takes the next bytes
    /// of the buffer the kernel is filling (`IOU_PBUF_RING_INC`, Linux 6.12+), so a
    /// receive completion's `offset` is where its piece starts; 0 when each takes a
    /// whole buffer (older kernels, pools without datagram spans, or
    /// `IOT_CONFIG_WHOLE_BUFFERS`).
    pub packs_receives: u32,
}
