//! Fair receive buffers: each stream socket may hold at most `socket_buffer_limit`
//! buffers of the shared receive ring at a time (received, and not yet released by the
//! host nor sent on and done). A socket at its limit stops receiving until one of its
//! buffers comes back, so a peer that never reads the replies to what it sends (whose
//! echoes wait unsent) back-pressures its own connection, not every connection of the
//! worker. Stream receives are one-shot kernel attempts (resubmitted by the worker for a
//! multishot receive): a kernel multishot receive could take any number of buffers in
//! one burst before the worker could stop it.
//!
//! Many such peers together could still hold the whole pool (128 at 32 buffers each
//! fill 4,096), and then no connection receives at all. So a socket may go past a
//! floor of `FLOOR` buffers (a round trip and the next request in flight) only while
//! half the pool is free: once peers that do not read hold half of it, each newcomer
//! among them stops at the floor, and it takes about a thousand of them (4,096 buffers)
//! before the other connections wait.

use crate::abi::iot_config;
use crate::sockets::{SocketKind, SocketTable};

/// Buffers a stream socket may always hold, however low the pool runs.
const FLOOR: u32 = 2;

/// Which stream socket holds each receive-ring buffer, and how many one may hold.
pub(crate) struct RecvCredit {
    /// The stream socket each receive-ring buffer out of the ring came from (0: none).
    origin: Vec<u64>,
    /// Receive-ring buffers one stream socket may hold.
    limit: u32,
    /// Receive buffers stream sockets hold together (those of closed sockets included,
    /// until they come back).
    held: u32,
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
        RecvCredit {
            origin: vec![0; count as usize],
            limit,
            held: 0,
        }
    }

    /// Whether stream `socket` may take another receive buffer now: under its limit,
    /// and under the floor or with the reserve still free.
    pub(crate) fn may_receive(&self, sockets: &SocketTable, socket: u64) -> bool {
        // Past the floor, a socket takes no more once fewer than half the pool's
        // buffers are free.
        let count = self.origin.len();
        let pool_has_room = self.held as usize + count / 2 < count;
        sockets.get(socket).map_or(true, |s| {
            s.received_held < self.limit && (s.received_held < FLOOR || pool_has_room)
        })
    }

    /// Receive op `key` of `socket` waits out of the kernel until the socket is under
    /// its limit.
    pub(crate) fn park(sockets: &mut SocketTable, socket: u64, key: usize) {
        if let Ok(s) = sockets.get_mut(socket) {
            s.throttled = Some(key as u32);
        }
    }

    /// Forgets that op `key` waits for `socket`'s buffers (it was cancelled).
    pub(crate) fn unpark(sockets: &mut SocketTable, socket: u64, key: usize) {
        if let Ok(s) = sockets.get_mut(socket) {
            if s.throttled == Some(key as u32) {
                s.throttled = None;
            }
        }
    }

    /// Stream `socket` received into buffer `id`: it holds one more.
    pub(crate) fn note_received(&mut self, sockets: &mut SocketTable, socket: u64, id: u16) {
        let Ok(s) = sockets.get_mut(socket) else {
            return;
        };
        if s.kind != SocketKind::Stream {
            return;
        }
        s.received_held += 1;
        if let Some(origin) = self.origin.get_mut(usize::from(id)) {
            *origin = socket;
            self.held += 1;
        }
    }

    /// Receive buffer `id` went back to the ring: its socket holds one fewer. Returns
    /// the receive parked at the limit that may go on now.
    pub(crate) fn returned(&mut self, sockets: &mut SocketTable, id: u32) -> Option<usize> {
        let socket = std::mem::take(self.origin.get_mut(id as usize)?);
        if socket == 0 {
            return None; // not a stream's buffer
        }
        self.held -= 1;
        // Closed meanwhile.
        let s = sockets.get_mut(socket).ok()?;
        s.received_held = s.received_held.saturating_sub(1);
        if !self.may_receive(sockets, socket) {
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
