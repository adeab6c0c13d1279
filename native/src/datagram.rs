//! Datagram sockets, shared by UDP and Unix datagram sockets: send to an address, and
//! receive with the sender's address and truncation reported.
//!
//! Every received datagram's buffer has the layout of a multishot `recvmsg`: a
//! `struct io_uring_recvmsg_out` (16 bytes), then `NAME_SPACE` bytes holding the
//! sender's `sockaddr`, then the payload at `HEADER_LEN` (the completion's `offset`).
//! One-shot receives are laid out the same way here, so the host reads every datagram
//! alike and `iot_datagram_sender` parses any of them.

use std::cell::UnsafeCell;

use io_uring::types::Fd;
use io_uring::{opcode, squeue};
use socket2::SockAddr;

use crate::buffers::RECV_GROUP;
use crate::completion::*;
use crate::error::{Result, IOT_E_WRONG_SOCKET_KIND};
use crate::ops::{Op, SendTarget, Work};
use crate::sockets::SocketKind;
use crate::stream::reject_multishot_timeout;
use crate::worker::Worker;

/// Room for the sender's address in each buffer: any family fits.
const NAME_SPACE: usize = std::mem::size_of::<libc::sockaddr_storage>();
/// Size of `struct io_uring_recvmsg_out`.
const OUT_LEN: usize = std::mem::size_of::<OutHeader>();
/// Where the payload starts in a datagram buffer (16 + 128 = 144, 8-byte aligned).
pub(crate) const HEADER_LEN: usize = OUT_LEN + NAME_SPACE;

/// The `msghdr` of a datagram receive, with room for a one-shot receive's sender.
/// The kernel reads and writes it while the op is in flight, hence the cell; it is
/// boxed so its address (and `msg_name`, which points into it) stays fixed.
pub(crate) struct MessageHeader(UnsafeCell<Parts>);

struct Parts {
    msg: libc::msghdr,
    name: libc::sockaddr_storage,
}

// SAFETY: the raw pointers inside point only into this same allocation, which moves
// with the op between threads as a whole.
unsafe impl Send for MessageHeader {}

impl MessageHeader {
    fn new() -> Box<MessageHeader> {
        // SAFETY: all-zero bytes are valid for msghdr and sockaddr_storage.
        let header = Box::new(MessageHeader(UnsafeCell::new(unsafe {
            std::mem::zeroed()
        })));
        let parts = header.0.get();
        // SAFETY: `parts` is valid and unaliased; the box is not yet shared.
        unsafe {
            (*parts).msg.msg_name = std::ptr::addr_of_mut!((*parts).name).cast();
            // Multishot: the space reserved in each buffer; one-shot: the room in `name`.
            (*parts).msg.msg_namelen = NAME_SPACE as libc::socklen_t;
            // No iovec: with buffer select the kernel receives into a whole pool buffer.
            (*parts).msg.msg_iovlen = 0;
        }
        header
    }

    pub(crate) fn entry(&self, fd: Fd, multishot: bool) -> squeue::Entry {
        // SAFETY: only a pointer is formed; the kernel is its sole user while in flight.
        let msg = unsafe { std::ptr::addr_of_mut!((*self.0.get()).msg) };
        if multishot {
            opcode::RecvMsgMulti::new(fd, msg, RECV_GROUP).build()
        } else {
            opcode::RecvMsg::new(fd, msg)
                .buf_group(RECV_GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        }
    }

    /// What a finished one-shot receive wrote back: sender length, `MSG_*` flags, and
    /// the sender bytes.
    fn received(&self) -> (usize, u32, &[u8; NAME_SPACE]) {
        // SAFETY: the kernel is done with the header once the op's CQE arrived.
        let parts = unsafe { &*self.0.get() };
        // SAFETY: sockaddr_storage is exactly NAME_SPACE plain bytes.
        let name = unsafe { &*std::ptr::addr_of!(parts.name).cast::<[u8; NAME_SPACE]>() };
        (
            parts.msg.msg_namelen as usize,
            parts.msg.msg_flags as u32,
            name,
        )
    }
}

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
        let multishot = flags & IOT_OP_MULTISHOT != 0;
        reject_multishot_timeout(multishot, timeout_ms)?;
        let work = Work::Recv {
            multishot,
            from: Some(MessageHeader::new()),
        };
        self.start(Op::new(tag, IOT_KIND_RECV_FROM, socket, work, timeout_ms))
            .map(drop)
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

    /// Turns a datagram receive's raw result into the payload's length and place
    /// (`offset`), flagging truncation. Stream receives are left alone.
    pub(crate) fn describe_datagram(&mut self, key: usize, completion: &mut iot_completion) {
        let Work::Recv {
            multishot,
            from: Some(header),
        } = &self.ops[key].work
        else {
            return;
        };
        if completion.result < 0 || completion.flags & IOT_COMPLETION_BUFFER == 0 {
            return;
        }
        let size = self.buffers.buffer_size() as usize;
        // SAFETY: the kernel filled this buffer and handed it to us; nobody else
        // touches it until the host sees the completion.
        let buffer = unsafe {
            std::slice::from_raw_parts_mut(self.buffers.ptr(u32::from(completion.buffer_id)), size)
        };
        let raw = completion.result as usize;
        let (kept, truncated) = if *multishot {
            let out = read_out_header(buffer);
            let kept = raw.saturating_sub(HEADER_LEN);
            (kept, out.flags & libc::MSG_TRUNC as u32 != 0)
        } else {
            // The payload landed at the start: move it behind a header like multishot's.
            let (namelen, msg_flags, name) = header.received();
            let kept = raw.min(size - HEADER_LEN);
            buffer.copy_within(..kept, HEADER_LEN);
            let out = OutHeader {
                namelen: namelen as u32,
                controllen: 0,
                payloadlen: raw as u32,
                flags: msg_flags,
            };
            buffer[..OUT_LEN].copy_from_slice(&out.to_bytes());
            buffer[OUT_LEN..HEADER_LEN].copy_from_slice(name);
            (kept, msg_flags & libc::MSG_TRUNC as u32 != 0 || kept < raw)
        };
        completion.offset = HEADER_LEN as u32;
        completion.result = kept as i32;
        if truncated {
            completion.flags |= IOT_COMPLETION_TRUNCATED;
        }
    }

    /// The sender of the datagram in host buffer `buffer`.
    pub(crate) fn datagram_sender(&self, buffer: u32) -> Result<SockAddr> {
        let bytes = self.buffers.host_buffer(buffer)?;
        if bytes.len() <= HEADER_LEN {
            return Err(IOT_E_WRONG_SOCKET_KIND);
        }
        let namelen = (read_out_header(bytes).namelen as usize).min(NAME_SPACE);
        // SAFETY: all-zero bytes are a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: namelen <= NAME_SPACE = size of storage; the source is in bounds.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes[OUT_LEN..].as_ptr(),
                std::ptr::addr_of_mut!(storage).cast::<u8>(),
                namelen,
            )
        };
        let len = if namelen == 0 {
            // An unbound Unix socket sent it: an unnamed Unix address.
            storage.ss_family = libc::AF_UNIX as libc::sa_family_t;
            std::mem::size_of::<libc::sa_family_t>()
        } else {
            namelen
        };
        // SAFETY: storage holds `len` bytes of the address the kernel reported.
        Ok(unsafe { SockAddr::new(storage, len as libc::socklen_t) })
    }
}

/// `struct io_uring_recvmsg_out` from linux/io_uring.h, native endian.
#[repr(C)]
struct OutHeader {
    namelen: u32,
    controllen: u32,
    payloadlen: u32,
    flags: u32,
}

impl OutHeader {
    fn to_bytes(&self) -> [u8; OUT_LEN] {
        let mut bytes = [0; OUT_LEN];
        let fields = [self.namelen, self.controllen, self.payloadlen, self.flags];
        for (chunk, field) in bytes.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&field.to_ne_bytes());
        }
        bytes
    }
}

fn read_out_header(buffer: &[u8]) -> OutHeader {
    let field = |i: usize| {
        let mut word = [0; 4];
        word.copy_from_slice(&buffer[i * 4..i * 4 + 4]);
        u32::from_ne_bytes(word)
    };
    OutHeader {
        namelen: field(0),
        controllen: field(1),
        payloadlen: field(2),
        flags: field(3),
    }
}
