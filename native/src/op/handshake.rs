//! A TLS handshake on a connected stream socket: flights of records sent, the peer's
//! received (into the receive ring, taken in and given back at once), until the
//! session is established or failed. A failure still sends the alert rustls made, so
//! the peer learns why, before the op ends with its code.

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use crate::buffers::{BufferPool, RECV_GROUP};

pub(crate) struct Handshake {
    /// The flight being sent; the handshake receives when it is all out.
    flight: Vec<u8>,
    sent: usize,
    /// The handshake failed with this code; the op ends once `flight` (the alert) is
    /// out.
    pub(crate) failure: Option<i32>,
}

impl Handshake {
    pub(crate) fn new() -> Handshake {
        Handshake {
            flight: Vec::new(),
            sent: 0,
            failure: None,
        }
    }

    pub(crate) fn entry(&self, fd: Fd, buffers: &BufferPool) -> squeue::Entry {
        if self.sending() {
            let rest = &self.flight[self.sent..];
            return opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build();
        }
        opcode::Recv::new(fd, std::ptr::null_mut(), buffers.buffer_size())
            .buf_group(RECV_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    }

    /// The current attempt sends (else it receives).
    pub(crate) fn sending(&self) -> bool {
        self.sent < self.flight.len()
    }

    /// The buffer the next flight is written into (empty).
    pub(crate) fn next_flight(&mut self) -> &mut Vec<u8> {
        self.flight.clear();
        self.sent = 0;
        &mut self.flight
    }

    /// Counts a send attempt's result; true when bytes of the flight are left.
    pub(crate) fn advance(&mut self, res: i32) -> bool {
        if res > 0 {
            self.sent += res as usize;
        }
        res > 0 && self.sending()
    }
}
