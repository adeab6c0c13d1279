//! Fair receive buffers: each stream socket may hold at most `socket_buffer_limit`
//! pieces of the shared receive ring's buffers at a time (received, and not yet
//! released by the host nor sent on and done). A socket at its limit stops receiving
//! until one of its pieces comes back, so a peer that never reads the replies to what
//! it sends (whose echoes wait unsent) back-pressures its own connection, not every
//! connection of the worker.
//!
//! A multishot stream receive stays armed in the kernel, which receives on its own
//! until the worker, seeing the piece that reaches the limit, cancels it: what arrives
//! before the cancel runs is delivered too. A flood would take the whole pool in that
//! time (4 MiB of backlog came as 267 pieces over a limit of 32), so the kernel ends
//! the receive by itself once it took a byte more than a buffer less than the socket's
//! remaining pieces' worth of whole buffers (`IORING_RECV_MSHOT_LIM`, Linux 6.17; the
//! worker resubmits it). A backlog arrives as the rest of the buffer being filled,
//! then whole buffers, so that keeps a flood to its share. Kernels without that limit
//! receive one attempt at a time, each resubmitted by the worker (`probe.rs`).
//!
//! The credit counts pieces, not bytes: each piece pins the whole buffer it is in
//! (the buffer goes back to the ring only when all its pieces are back), so a socket's
//! pieces bound the buffers it pins, whether receives are packed or each takes a whole
//! buffer. Bytes would not: 32 pieces of one byte each, in 32 buffers, pin 32 buffers.
//!
//! Many such peers together could still hold the whole pool (128 at 32 pieces each
//! can pin 4,096 buffers), and then no connection receives at all. So a socket may go
//! past a floor of `FLOOR` pieces (a round trip and the next request in flight) only
//! while half the pool's receive buffers are free: once peers that do not read pin
//! half of it, each newcomer among them stops at the floor, and it takes about a
//! thousand of them before the other connections wait.

use crate::abi::iot_config;
use crate::buffers::BufferPool;
use crate::pieces::{BufferRef, Origin};
use crate::sockets::{SocketKind, SocketTable};

/// Pieces a stream socket may always hold, however low the pool runs.
const FLOOR: u32 = 2;

/// How many pieces of receive-ring buffers one stream socket may hold.
pub(crate) struct RecvCredit {
    /// Pieces one stream socket may hold.
    limit: u32,
}

impl RecvCredit {
    /// The limit is the config's `socket_buffer_limit`, or by default an eighth of the
    /// ring's first 256 buffers, but at least 16 (or all when there are fewer).
    pub(crate) fn new(config: &iot_config) -> RecvCredit {
        let count = config.recv_buffer_count;
        let limit = match config.socket_buffer_limit {
            0 => (count.min(256) / 8).max(16).min(count),
            limit => limit.min(count),
        };
        RecvCredit { limit }
    }

    /// Whether stream `socket` may take another piece now: under its limit, and under
    /// the floor or with half the pool's receive buffers still free.
    pub(crate) fn may_receive(
        &self,
        sockets: &SocketTable,
        socket: u64,
        pool: &BufferPool,
    ) -> bool {
        let pool_has_room = Self::pool_has_room(pool);
        sockets.get(socket).map_or(true, |s| {
            s.received_held < self.limit && (s.received_held < FLOOR || pool_has_room)
        })
    }

    /// Whether the pool's receive buffers are more than half free.
    pub(crate) fn pool_has_room(pool: &BufferPool) -> bool {
        let count = pool.recv_count();
        pool.recv_out() + count / 2 < count
    }

    /// Whether stream `socket` holds fewer pieces than its limit: a receive of it that
    /// may not go on waits for the pool's room, not for its own pieces.
    pub(crate) fn under_limit(&self, sockets: &SocketTable, socket: u64) -> bool {
        sockets
            .get(socket)
            .is_ok_and(|s| s.received_held < self.limit)
    }

    /// The bytes after which a kernel multishot receive of stream `socket` ends by
    /// itself. The socket may take `pieces` in a row from now (at least one), as
    /// `may_receive` would allow them one by one, each taking a buffer of the pool. The
    /// first piece may be the last byte of a buffer and each later one a whole buffer:
    /// the receive ends once it took this many bytes, with `pieces` pieces at most (the
    /// kernel checks after each receive). It counts them down as an `int`: 2 GiB and
    /// more would end it at once.
    pub(crate) fn multishot_byte_limit(
        &self,
        sockets: &SocketTable,
        socket: u64,
        pool: &BufferPool,
    ) -> u32 {
        let count = pool.recv_count();
        let held = sockets.get(socket).map_or(0, |s| s.received_held);
        let while_pool_has_room = (count - count / 2).saturating_sub(pool.recv_out());
        let under_floor = FLOOR.saturating_sub(held);
        let under_limit = self.limit.saturating_sub(held);
        let pieces = under_limit.min(under_floor.max(while_pool_has_room)).max(1);
        let bytes = (pieces - 1)
            .saturating_mul(pool.buffer_size())
            .saturating_add(1);
        bytes.min(i32::MAX as u32)
    }

    /// Receive op `key` of `socket` waits out of the kernel until the socket is under
    /// its limit.
    pub(crate) fn park(sockets: &mut SocketTable, socket: u64, key: usize) {
        if let Ok(s) = sockets.get_mut(socket) {
            s.throttled = Some(key as u32);
        }
    }

    /// Forgets that op `key` waits for `socket`'s pieces (it was cancelled).
    pub(crate) fn unpark(sockets: &mut SocketTable, socket: u64, key: usize) {
        if let Ok(s) = sockets.get_mut(socket) {
            if s.throttled == Some(key as u32) {
                s.throttled = None;
            }
        }
    }

    /// `socket` received the piece at `at`: a stream socket holds one more, and hears
    /// when it comes back.
    pub(crate) fn note_received(
        sockets: &mut SocketTable,
        socket: u64,
        at: BufferRef,
        pool: &mut BufferPool,
    ) {
        let Ok(s) = sockets.get_mut(socket) else {
            return;
        };
        if s.kind != SocketKind::Stream || at.id >= pool.recv_count() {
            return;
        }
        s.received_held += 1;
        pool.set_origin(at, Origin::Socket(socket));
    }

    /// A piece `socket` received came back: it holds one fewer. Returns the receive
    /// parked at the limit that may go on now.
    pub(crate) fn returned(
        &self,
        sockets: &mut SocketTable,
        socket: u64,
        pool: &BufferPool,
    ) -> Option<usize> {
        // Closed meanwhile.
        let s = sockets.get_mut(socket).ok()?;
        s.received_held = s.received_held.saturating_sub(1);
        if !self.may_receive(sockets, socket, pool) {
            return None;
        }
        sockets
            .get_mut(socket)
            .ok()?
            .throttled
            .take()
            .map(|key| key as usize)
    }
}
