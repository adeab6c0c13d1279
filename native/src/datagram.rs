//! Datagram sockets, shared by UDP and Unix datagram sockets: send to an address, and
//! receive with the sender's address and truncation reported.
//!
//! The buffer layout of a received datagram is in `op/recvmsg.rs`; datagrams larger
//! than one buffer travel in spans (`buffers.rs`): received whole from the datagram
//! ring, and sent from a span the host acquired (`iot_buffer_acquire_span`) with the
//! same calls as from one buffer.

use socket2::SockAddr;

use crate::abi::*;
use crate::error::Result;
use crate::op::recvmsg;
use crate::op::{MessageHeader, Op, Recv, SendTarget, Work, HEADER_LEN};
use crate::sockets::SocketKind;
use crate::stream::multishot_mode;
use crate::worker::Worker;

impl Worker {
    /// Receives datagrams into pool buffers, with their senders; see the module docs
    /// for the buffer layout.
    pub(crate) fn datagram_recv(
        &mut self,
        socket: u64,
        tag: u64,
        flags: u32,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(socket, SocketKind::Datagram)?;
        if self.buffers.buffer_size() as usize <= HEADER_LEN {
            return Err(-libc::EINVAL); // no room for any payload after the header
        }
        let multishot = multishot_mode(flags, timeout_ms)?;
        let header = if multishot {
            MessageHeader::multishot(self.receive_headers.take(), self.buffers.datagram_group())
        } else {
            let buffer = self.buffers.acquire_datagram_room()?;
            let size = self.buffers.buffer_len(buffer) as usize;
            let reuse = self.receive_headers.take();
            MessageHeader::one_shot(reuse, buffer, self.buffers.ptr(buffer), size)
        };
        let work = Work::Recv(Recv::datagram(multishot, header));
        self.start_borrowing(Op::new(tag, IOT_KIND_RECV_FROM, socket, work, timeout_ms))
    }

    /// Sends `len` bytes of host buffer `buffer` from `offset` as one datagram to
    /// `addr`; the buffer returns to the pool when the send completes.
    #[allow(clippy::too_many_arguments)] // the fields of one send, in ABI order
    pub(crate) fn datagram_send_to(
        &mut self,
        socket: u64,
        buffer: u32,
        offset: u32,
        len: u32,
        addr: SockAddr,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(socket, SocketKind::Datagram)?;
        let to = SendTarget::Address(self.send_addresses.boxed(addr));
        let op = self.lend_for_send(socket, buffer, offset, len, to, tag, timeout_ms)?;
        self.start_borrowing(op)
    }

    /// Whether op `key` is a multishot datagram receive taking spans from the datagram
    /// ring (it waits for a span, not a receive buffer, when that ring runs dry).
    pub(crate) fn receives_spans(&self, key: usize) -> bool {
        match self.driver.get(key).map(|op| &op.work) {
            Some(Work::Recv(Recv {
                from: Some(header), ..
            })) => header.takes_spans(),
            _ => false,
        }
    }

    /// The sender of the datagram in host buffer `buffer`.
    pub(crate) fn datagram_sender(&self, buffer: u32) -> Result<SockAddr> {
        recvmsg::sender(self.buffers.host_buffer(buffer)?)
    }
}
