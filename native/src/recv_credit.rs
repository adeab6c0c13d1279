//! Fair receive buffers: each stream socket may hold at most `socket_buffer_limit`
//! buffers of the shared receive ring at a time (received, and not yet released by the
//! host nor sent on and done). A socket at its limit stops receiving until one of its
//! buffers comes back, so a peer that never reads the replies to what it sends (whose
//! echoes wait unsent) back-pressures its own connection, not every connection of the
//! worker. Stream receives are one-shot kernel attempts (resubmitted by the worker for a
//! multishot receive): a kernel multishot receive could take any number of buffers in
//! one burst before the worker could stop it.

use crate::ops::Op;
use crate::sockets::SocketKind;
use crate::worker::Worker;

/// The default share of the receive ring one socket may hold: an eighth of it, but at
/// least 16 buffers (or the whole ring when it is smaller).
pub(crate) fn default_limit(recv_count: u32) -> u32 {
    (recv_count / 8).max(16).min(recv_count)
}

impl Worker {
    /// Whether stream `socket` may take another receive buffer now.
    pub(crate) fn may_receive(&self, socket: u64) -> bool {
        self.sockets
            .get(socket)
            .map_or(true, |s| s.received_held < self.socket_buffer_limit)
    }

    /// Starts a stream receive, or parks it until the socket's buffers come back.
    pub(crate) fn start_receive(&mut self, socket: u64, op: Op) -> crate::error::Result<()> {
        if self.may_receive(socket) {
            return self.start(op).map(drop);
        }
        let key = self.ops.insert(op);
        self.throttle(key);
        Ok(())
    }

    /// Receive op `key` waits out of the kernel until its socket is under its limit.
    pub(crate) fn throttle(&mut self, key: usize) {
        let socket = self.ops[key].socket;
        self.ops[key].starved = true;
        if let Ok(s) = self.sockets.get_mut(socket) {
            s.throttled = Some(key);
        }
    }

    /// Forgets that op `key` waits for its socket's buffers (it was cancelled).
    pub(crate) fn unthrottle(&mut self, key: usize) {
        let Some(handle) = self.ops.get(key).map(|op| op.socket) else {
            return;
        };
        if let Ok(socket) = self.sockets.get_mut(handle) {
            if socket.throttled == Some(key) {
                socket.throttled = None;
            }
        }
    }

    /// Stream `socket` received into buffer `id`: it holds one more.
    pub(crate) fn note_received(&mut self, socket: u64, id: u16) {
        let Ok(s) = self.sockets.get_mut(socket) else {
            return;
        };
        if s.kind != SocketKind::Stream {
            return;
        }
        s.received_held += 1;
        if let Some(origin) = self.recv_origin.get_mut(usize::from(id)) {
            *origin = socket;
        }
    }

    /// Receive buffer `id` went back to the ring: its socket holds one fewer, and a
    /// receive parked at the limit goes on.
    pub(crate) fn recv_buffer_returned(&mut self, id: u32) {
        let Some(origin) = self.recv_origin.get_mut(id as usize) else {
            return;
        };
        let socket = std::mem::take(origin);
        let limit = self.socket_buffer_limit;
        let Ok(s) = self.sockets.get_mut(socket) else {
            return; // closed meanwhile (or 0: not a stream's buffer)
        };
        s.received_held = s.received_held.saturating_sub(1);
        if s.received_held >= limit {
            return;
        }
        let Some(key) = s.throttled.take() else {
            return;
        };
        if let Some(op) = self.ops.get_mut(key) {
            op.starved = false;
            if let Err(code) = self.submit_attempt(key) {
                let completion = self.ops[key].completion(code);
                self.end_op_later(key, completion);
            }
        }
    }
}
