//! The host's messaging calls on a worker: send a message, a payload or a socket to
//! another worker, and stop receiving. What arrives, and the outcome of what was sent,
//! is handled in `messaging.rs`.

use std::os::fd::IntoRawFd;

use crate::driver::user_data::{self, Wire};
use crate::error::{Result, IOT_E_BAD_BUFFER};
use crate::handoff;
use crate::mailbox::Admission;
use crate::messaging::Parcel;
use crate::payloads;
use crate::registry;
use crate::slots::index_of;
use crate::sockets::SocketKind;
use crate::worker::Worker;

impl Worker {
    /// Queues a message with `tag` and `value` for worker `target`.
    pub(crate) fn send_message(&mut self, target: u64, tag: u64, value: u32) -> Result<()> {
        // Room first: posting a message whose parcel left the host must not fail.
        self.driver.ring.reserve(1)?;
        let admission = registry::admit(target)?;
        self.post(admission, tag, Wire::Plain, value as i32, Parcel::Nothing)
    }

    /// Queues a message carrying `len` bytes of `payload`; the payload belongs to the
    /// message from now on.
    pub(crate) fn send_payload(
        &mut self,
        target: u64,
        tag: u64,
        payload: u64,
        len: u32,
    ) -> Result<()> {
        let pool = payloads::existing().ok_or(IOT_E_BAD_BUFFER)?;
        // Room first: posting a message whose parcel left the host must not fail.
        self.driver.ring.reserve(1)?;
        let admission = registry::admit(target)?;
        let in_transit = pool.dispatch(self.id, payload, len, target)?;
        let slot = index_of(in_transit) as i32;
        self.post(
            admission,
            tag,
            Wire::Payload,
            slot,
            Parcel::Payload(in_transit),
        )
    }

    /// Hands stream `socket` to worker `target`: its handle goes stale here at once, and
    /// `target` drains an `IOT_KIND_SOCKET` completion with its own handle for it.
    pub(crate) fn handoff_socket(&mut self, socket: u64, target: u64, tag: u64) -> Result<()> {
        let stream = self.sockets.get_kind(socket, SocketKind::Stream)?;
        // A TLS session is this worker's state; the fd alone would lose it.
        if stream.tls.is_some() {
            return Err(crate::error::IOT_E_TLS_STATE);
        }
        let fd = stream.raw();
        // Operations in flight would keep using the fd on this ring after the hand-off.
        let busy = {
            let s = self.sockets.get(socket)?;
            s.sending || !s.outbound.is_empty()
        } || self.driver.iter().any(|(_, op)| op.socket == socket);
        if busy {
            return Err(-libc::EBUSY);
        }
        // Room first: posting a message whose parcel left the host must not fail. Two:
        // taking the socket from this worker may queue the emptying of its slot.
        self.driver.ring.reserve(2)?;
        let admission = registry::admit(target)?;
        let parked = handoff::park(fd, target)?;
        // The slot owns the fd now; the table entry must not close it.
        let detached = match self.remove_socket(socket) {
            Ok(detached) => detached,
            Err(code) => {
                // Checked above, so unreachable; the table still owns the fd then.
                handoff::unpark(parked, target);
                return Err(code);
            }
        };
        let _ = detached.fd.into_raw_fd();
        self.post(
            admission,
            tag,
            Wire::Socket,
            index_of(parked) as i32,
            Parcel::Socket(parked),
        )
    }

    /// Refuses new messages; `IOT_KIND_STOPPED` follows once everything already on its
    /// way here has arrived and every message this worker sent was reported.
    pub(crate) fn stop_messages(&mut self) {
        if let Some(stopped) = self.messaging.stop() {
            self.push_ready(stopped);
        }
    }

    /// Queues the SQE of an admitted message; its CQE completes it in
    /// `Messaging::on_sent`.
    fn post(
        &mut self,
        admission: Admission,
        tag: u64,
        wire: Wire,
        value: i32,
        parcel: Parcel,
    ) -> Result<()> {
        let entry = admission.entry(tag, wire, value);
        let key = self.messaging.queue(tag, admission, parcel);
        if let Err(code) = self
            .driver
            .ring
            .push(&[entry.user_data(user_data::sent(key))])
        {
            // Unreachable after `reserve`; never lose the parcel regardless.
            self.messaging.unqueue(key, &mut self.sockets);
            return Err(code);
        }
        Ok(())
    }
}
