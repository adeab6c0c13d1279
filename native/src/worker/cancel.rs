//! Stopping work: cancelling ops by tag (in flight, starved, backing off, or queued),
//! closing a handle under its ops, and shutting the worker down (cancel everything,
//! then reap in-flight ops for a bounded time).

use std::time::{Duration, Instant};

use io_uring::types::{self, CancelBuilder};

use super::Worker;
use crate::abi::*;
use crate::error::Result;
use crate::sockets::SocketKind;

/// How many final drains a freed worker makes to sweep messages still arriving.
const FINAL_SWEEP_ROUNDS: usize = 1024;

/// How long freeing a worker waits for cancelled operations to be reaped.
const SHUTDOWN_REAP_LIMIT: Duration = Duration::from_secs(5);

impl Worker {
    /// Cancels every op with `tag` (in flight, starved, or queued behind another).
    /// Their completions still arrive: in-flight ones from the kernel, the rest here.
    pub(crate) fn cancel(&mut self, tag: u64) -> Result<()> {
        let mut found = false;
        let keys = self
            .driver
            .keys_where(|op| op.tag == tag && !op.life.cancelled);
        for key in keys {
            found = true;
            self.cancel_op(key)?;
        }
        let queued: Vec<u64> = self.sockets.handles_with_queued(tag);
        for socket in queued {
            found = true;
            self.drop_queued(socket, |op| op.tag == tag);
        }
        if found {
            Ok(())
        } else {
            Err(-libc::ENOENT)
        }
    }

    /// Cancels op `key`: in the kernel (its CQE ends it), or here when it is starved.
    pub(super) fn cancel_op(&mut self, key: usize) -> Result<()> {
        if self.driver.cancel(key, true)? {
            self.forget_starved(key);
            self.unthrottle(key);
            self.abandon(key);
        }
        Ok(())
    }

    /// Closes a socket or file now: its handle goes stale, its queued ops complete as
    /// cancelled, in-flight ones are cancelled in the kernel before the fd is closed.
    pub(crate) fn close_handle(&mut self, socket: u64) -> Result<()> {
        let mut removed = self.remove_socket(socket)?;
        for op in removed.outbound.take() {
            self.complete_dropped(op);
        }
        // A stream's ops out of the kernel are its throttled receive and those in the
        // starved queues; its ops in the kernel see their socket gone when they end.
        // Only listeners (an accept backing off) and files (a paused read stream) need
        // a look at every op, which would make closing thousands of streams quadratic.
        let keys: Vec<usize> = match removed.kind {
            SocketKind::Stream => self
                .starved
                .iter()
                .chain(&self.starved_for_spans)
                .copied()
                .filter(|&key| self.driver.get(key).is_some_and(|op| op.socket == socket))
                .chain(removed.throttled.map(|key| key as usize))
                .collect(),
            _ => self.driver.keys_where(|op| op.socket == socket),
        };
        for key in keys {
            if self.driver.cancel(key, false)? {
                self.forget_starved(key);
                self.abandon(key);
            }
        }
        // The cancel must reach the kernel while the fd number still names this socket.
        self.driver
            .ring
            .cancel(CancelBuilder::fd(types::Fd(removed.raw())).all())?;
        self.flush()?;
        drop(removed);
        Ok(())
    }

    /// Cancels everything, closes every socket and reaps in-flight ops (bounded).
    /// Returns the number of ops still unreaped when the time limit hit (0 normally).
    pub(crate) fn shutdown(&mut self) -> usize {
        self.notifier = None;
        self.messaging.begin_final();
        self.starved.clear();
        self.starved_for_spans.clear();
        // Ops waiting out of the kernel (starved, paused) have no CQE to wait for.
        self.driver.cancel_everything();
        for mut socket in self.sockets.drain().collect::<Vec<_>>() {
            for op in socket.outbound.take() {
                let ended = self.conclude(op, iot_completion::default());
                self.hand_over(ended);
            }
        }
        self.fixed_files.clear_all(&self.driver.ring);
        let deadline = Instant::now() + SHUTDOWN_REAP_LIMIT;
        let mut scratch = [iot_completion::default(); 64];
        while self.in_flight() > 0 && Instant::now() < deadline {
            // Bounded wait: an op that never completes must not hang the free.
            self.driver.ring.wait_a_little();
            self.drain(&mut scratch);
        }
        // Sweep messages still arriving, now disposed of (bounded: senders may go on).
        for _ in 0..FINAL_SWEEP_ROUNDS {
            // A single-thread ring posts what other workers sent it (a socket, a
            // payload to dispose of) only when its thread enters the kernel.
            self.driver.ring.run_deferred_work();
            let more =
                self.drain(&mut scratch) == scratch.len() || self.driver.ring.completions() > 0;
            if !more {
                break;
            }
        }
        self.messaging.end_final();
        self.ready.clear();
        self.buffers.unregister(self.driver.ring.uring());
        self.in_flight()
    }
}
