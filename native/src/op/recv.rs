//! Receive into a buffer the kernel picks from the receive ring. A stream receive
//! makes one-shot kernel attempts even when multishot (`recv_credit.rs`); a datagram
//! receive is a `recvmsg` that reports the sender and truncation (`recvmsg.rs`).

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::recvmsg::MessageHeader;
use crate::buffers::{BufferPool, RECV_GROUP};

pub(crate) struct Recv {
    pub(crate) multishot: bool,
    /// Datagram sockets: the `recvmsg` header.
    pub(crate) from: Option<Box<MessageHeader>>,
}

impl Recv {
    pub(crate) fn entry(&self, fd: Fd, buffers: &BufferPool) -> squeue::Entry {
        match &self.from {
            Some(header) => header.entry(fd, self.multishot),
            None => opcode::Recv::new(fd, std::ptr::null_mut(), buffers.buffer_size())
                .buf_group(RECV_GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
        }
    }

    /// Pool buffers the op took for itself (a one-shot datagram receive's).
    pub(crate) fn taken(&self) -> &[u32] {
        self.from.as_deref().map_or(&[], MessageHeader::buffer)
    }
}
