//! Datagram sockets, shared by UDP and Unix datagram sockets: send to an address, and
//! receive with the sender's address and truncation reported.
//!
//! The buffer layout of a received datagram is in `op/recvmsg.rs`.

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
        let size = self.buffers.buffer_size() as usize;
        if size <= HEADER_LEN {
            return Err(-libc::EINVAL); // no room for any payload after the header
        }
        let multishot = multishot_mode(flags, timeout_ms)?;
        let header = if multishot {
            MessageHeader::multishot()
        } else {
            let buffer = self.buffers.acquire_for_operation()?;
            MessageHeader::one_shot(buffer, self.buffers.ptr(buffer), size)
        };
        let work = Work::Recv(Recv {
            multishot,
            from: Some(header),
        });
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
        let to = SendTarget::Address(Box::new(addr));
        let op = self.lend_for_send(socket, buffer, offset, len, to, tag, timeout_ms)?;
        self.start_borrowing(op)
    }

    /// The sender of the datagram in host buffer `buffer`.
    pub(crate) fn datagram_sender(&self, buffer: u32) -> Result<SockAddr> {
        recvmsg::sender(self.buffers.host_buffer(buffer)?)
    }
}
